//! A provisioning step that embeds tcto-tune: build a profile in code, read
//! the live state, plan, stop on refusing findings, print the JSON plan.
//!
//! Run: `cargo run -p tcto-tune --example provision` (reads only; changes nothing).

use std::process::ExitCode;

use tcto_tune::system::{read_state, Backends};
use tcto_tune::{plan, Desired, Profile};

fn main() -> ExitCode {
    // What this service needs, as the provisioning tool knows it.
    let profile = Profile::builder("web-frontend")
        .description("nginx on :8080 with backlog 4096")
        .somaxconn(Desired::at_least(4096).because("nginx listens with backlog=4096"))
        .tcp_max_syn_backlog(Desired::at_least(8192).because("twice the accept queue"))
        .conntrack_max(Desired::at_least(262_144).because("many keep-alive upstream flows"))
        .listener(8080, Some(4096))
        .build();

    // Any caller may pass its own backends (a remote host, a fixture).
    let state = match read_state(&profile, &Backends::linux()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read the system state: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = plan(&profile, &state);

    let refusals = plan.refusals();
    if !refusals.is_empty() {
        for f in refusals {
            eprintln!("refused: {f}");
        }
        return ExitCode::from(3);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&plan).expect("plans serialize")
    );
    ExitCode::SUCCESS
}
