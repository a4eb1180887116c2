//! `tcto-tune`: the command-line skin over the tcto-tune library.
//!
//! No domain logic lives here: commands parse arguments, call the library,
//! and print. Data goes to stdout (text or `--json`), messages to stderr.
//! Exit codes: 0 ok, 1 error, 2 usage, 3 refused by a safety check,
//! 4 changes pending (`plan --exit-code`).

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
mod cmd_verify;
mod common;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::{CliError, Exit};

/// Fix TCP connect timeouts at their root: conntrack, listen backlogs,
/// NOTRACK rules and NIC offloads, as checked, reversible plans.
#[derive(Debug, Parser)]
#[command(name = "tcto-tune", version = env!("TCTO_TUNE_VERSION"), about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Where the journal and lock live.
    #[arg(
        long,
        global = true,
        env = "TCTO_TUNE_STATE_DIR",
        default_value = "/var/lib/tcto-tune"
    )]
    state_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a profile would change on this host; changes nothing.
    Plan(cmd_plan::PlanArgs),
    /// Apply a profile as one journaled transaction (or `--dry-run`).
    Apply(cmd_apply::ApplyArgs),
    /// Undo the last transaction (or every one back to `--to ID`).
    Rollback(cmd_rollback::RollbackArgs),
    /// Write the files that make a profile survive a reboot (sysctl.d,
    /// modules-load.d, modprobe.d, a boot unit), as one journaled
    /// transaction; `--dry-run` prints their diffs.
    Persist(cmd_persist::PersistArgs),
    /// List past transactions, newest first.
    History(cmd_history::HistoryArgs),
    /// List or show the built-in profiles.
    #[command(subcommand)]
    Profiles(cmd_profiles::ProfilesCommand),
    /// Rank the likely causes of connect timeouts here, with the plan that fixes each.
    Diagnose(cmd_diagnose::DiagnoseArgs),
    /// Watch drop counters and accept queues for a while; exit 1 if anything was dropped.
    Verify(cmd_verify::VerifyArgs),
    /// Make N TCP connects to one address; count outcomes and time handshakes.
    Probe(cmd_probe::ProbeArgs),
    /// Print the shell completion script for SHELL on stdout, e.g.
    /// `tcto-tune completions bash > /etc/bash_completion.d/tcto-tune`.
    Completions(cmd_completions::CompletionsArgs),
    /// Write the man pages, completions and unit the package installs.
    #[command(hide = true)]
    GenerateAssets(cmd_assets::AssetsArgs),
}

/// Settings every command shares.
pub struct Global {
    /// `--json`.
    pub json: bool,
    /// `--state-dir`.
    pub state_dir: PathBuf,
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`tcto-tune plan --json | head`), as
    // Unix tools do, instead of panicking inside println!.
    // SAFETY: setting a signal disposition to its default at startup, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    let global = Global {
        json: cli.json,
        state_dir: cli.state_dir,
    };
    let result = match cli.command {
        Command::Plan(args) => cmd_plan::run(&global, args),
        Command::Apply(args) => cmd_apply::run(&global, args),
        Command::Rollback(args) => cmd_rollback::run(&global, args),
        Command::Persist(args) => cmd_persist::run(&global, args),
        Command::History(args) => cmd_history::run(&global, args),
        Command::Profiles(cmd) => cmd_profiles::run(&global, cmd),
        Command::Diagnose(args) => cmd_diagnose::run(&global, args),
        Command::Verify(args) => cmd_verify::run(&global, args),
        Command::Probe(args) => cmd_probe::run(&global, args),
        Command::Completions(args) => cmd_completions::run(args),
        Command::GenerateAssets(args) => cmd_assets::run(args),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            let e = CliError::from(e);
            output::print_error(&e);
            ExitCode::from(e.exit as u8)
        }
    }
}
