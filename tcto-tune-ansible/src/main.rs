//! `tcto_tune`: an Ansible module that links the tcto-tune library.
//!
//! Ansible's binary-module protocol: Ansible copies this executable to the
//! managed host and runs it with one argument, the path of a JSON file
//! holding the task's options and Ansible's own `_ansible_*` keys. The
//! module prints one JSON object on stdout and nothing else; `failed: true`
//! fails the task. No Python is needed on the managed host, and no
//! `tcto-tune` binary either: the plan, the journaled transaction, the
//! rollback and persist are the library's, called directly.
//!
//! The options are documented for `ansible-doc` in the sidecar
//! `library/tcto_tune.yml`, which must sit beside this binary.
#![deny(unsafe_code)]

mod args;
mod diff;
mod run;
mod words;

use std::io::Write as _;
use std::process::ExitCode;

use run::ModuleResult;

fn failed(msg: impl Into<String>) -> ModuleResult {
    ModuleResult {
        failed: true,
        msg: msg.into(),
        ..Default::default()
    }
}

/// Read the arguments file and run the task.
fn execute(argv: &[String]) -> ModuleResult {
    let Some(path) = argv.get(1) else {
        return failed(
            "tcto_tune is an Ansible module: run it through Ansible (its first argument is the path of a JSON file of options), or use the `tcto-tune` command",
        );
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return failed(format!("cannot read the arguments file `{path}`: {e}")),
    };
    let obj = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => return failed(format!("the arguments file `{path}` is not a JSON object")),
        Err(e) => {
            return failed(format!(
            "the arguments file `{path}` is not JSON ({e}); this module takes JSON arguments only"
        ))
        }
    };
    match args::parse(&obj) {
        Ok(a) => run::run(&a),
        Err(e) => failed(e.0),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    // A bug must still produce the one JSON object Ansible expects.
    let result = std::panic::catch_unwind(|| execute(&argv)).unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        failed(format!(
            "internal error in tcto_tune (a bug; please report it): {why}"
        ))
    });
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &result)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if written.is_err() || result.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
