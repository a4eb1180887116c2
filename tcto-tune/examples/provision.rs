//! A provisioning step that embeds tcto-tune, the whole story: build a
//! profile in code, read the live state, plan, stop on refusing findings,
//! apply with the journal (its lock held), read the outcome, and roll the
//! change back when the caller's own next step fails.
//!
//! Run: `cargo run -p tcto-tune --example provision` prints the plan and
//! a dry run against a simulated host (reads only; changes nothing).
//! `... --example provision -- --apply STATE_DIR` applies for real (root,
//! and it changes this host's sysctls: run it in a scratch network
//! namespace or a VM); add `--fail` to watch the rollback of a deployment
//! step that failed after the tuning.

use std::path::PathBuf;
use std::process::ExitCode;

use tcto_tune::apply::{apply, error_chain, undo, ApplyOptions, Outcome, Run, TxReport};
use tcto_tune::journal::Journal;
use tcto_tune::read_state;
use tcto_tune::system::{Backends, LinuxEffects, SimEffects};
use tcto_tune::{plan, Desired, Plan, Profile};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let state_dir = args
        .iter()
        .position(|a| a == "--apply")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let fail = args.iter().any(|a| a == "--fail");

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
            eprintln!("cannot read the system state: {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let plan = plan(&profile, &state);

    // Refusing findings stop the run: `apply` would refuse them too.
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

    let opts = ApplyOptions {
        command: "provision".into(),
        force_after_crash: false,
    };
    let Some(state_dir) = state_dir else {
        // A dry run is the simulated host, seeded from what was read:
        // nothing here can reach the live system.
        let mut sim = SimEffects::from_changes_and_state(&plan.changes, &state);
        return match apply(&plan, Run::DryRun(&mut sim), &opts) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dry run: {}", error_chain(&e));
                ExitCode::FAILURE
            }
        };
    };
    match apply_then_deploy(&plan, &state_dir, &opts, fail) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
    }
}

/// Apply for real, then run the caller's own step; undo the tuning when
/// that step fails.
fn apply_then_deploy(
    plan: &Plan,
    state_dir: &std::path::Path,
    opts: &ApplyOptions,
    fail: bool,
) -> Result<(), String> {
    let journal = Journal::open_or_create(state_dir).map_err(|e| error_chain(&e))?;
    // The lock is a value: `apply` and `undo` take it, so a real run
    // cannot happen without it. It is released when `locked` is dropped.
    let locked = journal.lock().map_err(|e| error_chain(&e))?;
    let mut live = LinuxEffects::default();
    let report = apply(plan, Run::Journaled(&mut live, &locked), opts).map_err(|e| {
        // Nothing was changed: the error (and its hint) says why.
        let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
        format!("{}{hint}", error_chain(&e))
    })?;
    print_outcome(&report);
    match report.outcome {
        Outcome::Applied => {}
        // Nothing to undo: nothing differed.
        Outcome::Noop => return Ok(()),
        // A step failed and the transaction already restored what it
        // changed (or says what it could not).
        _ => return Err("tuning failed; the report says what is left".into()),
    }

    // The caller's own next step (start the service, run a health check).
    if !fail {
        return Ok(());
    }
    eprintln!("deployment step failed: undoing the tuning");
    let id = report
        .id
        .as_deref()
        .expect("an applied transaction has an id");
    let mut record = journal.load(id).map_err(|e| error_chain(&e))?;
    let undone = undo(&mut record, Run::Journaled(&mut live, &locked), false)
        .map_err(|e| error_chain(&e))?;
    print_outcome(&undone);
    if undone.succeeded() {
        Err("deployment failed; the tuning was rolled back".into())
    } else {
        Err("deployment failed and the tuning could not all be rolled back".into())
    }
}

fn print_outcome(report: &TxReport) {
    println!("{report}");
    if let Some(why) = &report.failure {
        eprintln!("failed: {why}");
    }
}
