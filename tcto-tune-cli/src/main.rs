//! `tcto-tune`: the command-line skin over the tcto-tune library.
//!
//! No domain logic lives here: commands parse arguments, call the library,
//! and print. Data goes to stdout (text or `--json`), messages to stderr.
//! Exit codes: 0 ok, 1 error, 2 usage, 3 refused by a safety check,
//! 4 changes pending (`plan --exit-code`).
#![deny(unsafe_code)]
// The process start is `start::run`: std's, without the stack-guard probe.
#![cfg_attr(not(test), no_main)]

mod cli;
mod cmd_apply;
mod cmd_assets;
mod cmd_completions;
mod cmd_diagnose;
mod cmd_history;
mod cmd_persist;
mod cmd_plan;
mod cmd_probe;
mod cmd_profiles;
mod cmd_rollback;
mod cmd_status;
mod cmd_verify;
mod common;
mod output;
mod start;
mod words;

use std::path::PathBuf;

use crate::cli::{parse_args, Command};
use crate::common::DEFAULT_STATE_DIR;
use crate::output::{CliError, Exit, Printer};

/// Settings every command shares (how to print is the [`Printer`]'s).
pub struct Global {
    /// `--state-dir`.
    pub state_dir: PathBuf,
}

/// The whole command: parse, run, print; the process exit code. Called
/// by [`start::run`].
fn run() -> u8 {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            // Under `--json` a usage error is JSON too; clap could not
            // parse the line, so look for the flag among the raw words.
            let json = std::env::args_os().skip(1).any(|a| a == "--json");
            if json {
                let message = e.kind().to_string();
                let detail = e.render().to_string();
                let first = detail.lines().next().unwrap_or(&message);
                let err = CliError::new(
                    first.trim_start_matches("error: ").to_owned(),
                    Some("see `tcto-tune --help`".into()),
                    Exit::Usage,
                );
                Printer::new(true).error(&err);
            } else {
                let _ = e.print();
            }
            return Exit::Usage as u8;
        }
    };
    let state = match &cli.command {
        Command::Apply { state, .. }
        | Command::Rollback { state, .. }
        | Command::Persist { state, .. }
        | Command::History { state, .. }
        | Command::Status { state, .. }
        | Command::Verify { state, .. } => Some(state.state_dir.clone()),
        _ => None,
    };
    // After the subcommand wins over before it; then the environment. A
    // `--state-dir` before a subcommand that has no journal is accepted and
    // unused, so one alias (`tcto-tune --state-dir X`) serves every command.
    let state_dir = state
        .flatten()
        .or(cli.state_dir)
        .or_else(|| std::env::var_os("TCTO_TUNE_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    crate::words::set_state_dir(&state_dir);
    // Hints that say "run this again with ..." say the whole line. (A word
    // that is not UTF-8 is shown as near as text can: no panic.)
    crate::words::set_command_line(
        std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    );
    let global = Global { state_dir };
    let p = &Printer::new(cli.json);
    let g = &global;
    let result = match cli.command {
        Command::Plan(args) => cmd_plan::run(p, args),
        Command::Apply { args, .. } => cmd_apply::run(g, p, args),
        Command::Rollback { args, .. } => cmd_rollback::run(g, p, args),
        Command::Persist { args, .. } => cmd_persist::run(g, p, args),
        Command::History { args, .. } => cmd_history::run(g, p, args),
        Command::Profiles(cmd) => cmd_profiles::run(p, cmd),
        Command::Diagnose(args) => cmd_diagnose::run(p, args),
        Command::Status { args, .. } => cmd_status::run(g, p, args),
        Command::Verify { args, .. } => cmd_verify::run(g, p, args),
        Command::Probe(args) => cmd_probe::run(p, args),
        Command::Completions(args) => cmd_completions::run(p, args),
        Command::GenerateAssets(args) => cmd_assets::run(args),
    };
    match result {
        Ok(exit) => exit as u8,
        Err(e) => {
            let e = CliError::from(e);
            p.error(&e);
            e.exit as u8
        }
    }
}

#[cfg(test)]
mod layering {
    //! The module structure the CLI keeps (issue 15 items 4 and 7): no
    //! command module imports another (what two commands share lives in
    //! `common` or `output`), and only the printer in `output` touches
    //! stdout and stderr.

    use std::path::{Path, PathBuf};

    fn sources() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect()
    }

    /// The `cmd_*` modules a source names through `crate::`: in `use
    /// crate::...` lines (braced lists included, over several lines) and
    /// in paths written out inline (`crate::cmd_x::f()`).
    fn cmd_modules_named(text: &str) -> Vec<String> {
        let mut named = Vec::new();
        let mut in_use = false;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("//") {
                continue;
            }
            let starts_use = t.starts_with("use crate::") || t.starts_with("pub use crate::");
            if starts_use {
                in_use = true;
            }
            for (i, _) in t.match_indices("crate::") {
                let rest = &t[i + "crate::".len()..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if word.starts_with("cmd_") {
                    named.push(word);
                }
                if let Some(inner) = rest.strip_prefix('{') {
                    // `use crate::{cmd_a, common::x}`
                    for part in inner.split(',') {
                        let w = part.trim().split("::").next().unwrap_or("").trim();
                        if w.starts_with("cmd_") {
                            named.push(w.to_owned());
                        }
                    }
                }
            }
            if in_use {
                if !starts_use {
                    // A line inside a braced `use crate::{...}` list.
                    for part in t.split(',') {
                        let w = part.trim().split("::").next().unwrap_or("").trim();
                        if w.starts_with("cmd_") {
                            named.push(w.to_owned());
                        }
                    }
                }
                if t.ends_with(';') {
                    in_use = false;
                }
            }
        }
        named
    }

    #[test]
    fn the_parser_sees_every_way_of_naming_a_module() {
        let text = "use crate::cmd_plan::compute;\nuse crate::{\n    cmd_apply::finish,\n    common::X,\n};\nfn f() { crate::cmd_status::run(); }\n// crate::cmd_comment\n";
        assert_eq!(
            cmd_modules_named(text),
            ["cmd_plan", "cmd_apply", "cmd_status"]
        );
    }

    #[test]
    fn no_command_module_imports_another() {
        let mut bad = Vec::new();
        let files = sources();
        assert!(files.iter().filter(|(n, _)| n.starts_with("cmd_")).count() >= 10);
        for (name, text) in &files {
            if !name.starts_with("cmd_") {
                continue;
            }
            for other in cmd_modules_named(text) {
                if &other != name {
                    bad.push(format!("{name}.rs names crate::{other}"));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "a command module imports another; move what they share to common.rs or output.rs:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn only_the_printer_writes_to_stdout_and_stderr() {
        let mut bad = Vec::new();
        for (name, text) in sources() {
            if name == "output" {
                continue;
            }
            // The tests of a module may print what they like.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                let t = line.trim_start();
                if t.starts_with("//") {
                    continue;
                }
                for word in [
                    "println!",
                    "print!",
                    "eprintln!",
                    "eprint!",
                    "io::stdout()",
                    "io::stderr()",
                ] {
                    let hit = t.match_indices(word).any(|(i, _)| {
                        // `eprintln!` is not `println!`.
                        !t[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if hit {
                        bad.push(format!("{name}.rs:{}: {t}", n + 1));
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "print through the `Printer` (output.rs), not directly:\n{}",
            bad.join("\n")
        );
    }
}
