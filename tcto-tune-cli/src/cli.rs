//! The command line's definition (clap derive), and how it is parsed.
//!
//! The definition is written once and derived twice (`define_cli!`):
//! [`Cli`] is what `main` parses, with its subcommands deferred
//! (`Command::defer`): a subcommand's arguments are built only when that
//! subcommand is parsed or its help is shown, so `apply` does not pay for
//! the definitions of the eleven others (about 100k instructions of every
//! start, issue 15). [`FullCli`] builds every subcommand at once, as clap
//! does by default; the man pages and completion scripts are generated from
//! it, since they list arguments in the order they were added, and a
//! deferred subcommand receives the global `--json` before its own
//! arguments rather than after them.
//!
//! A deferred subcommand's own `about` is set before its arguments are
//! added, so a doc comment on a flattened `#[derive(Args)]` struct (which
//! clap turns into an `about`) would replace it: those structs carry plain
//! comments. The tests below render every subcommand's help and usage
//! errors from both trees and require them to be byte-identical.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    cmd_apply, cmd_assets, cmd_completions, cmd_diagnose, cmd_history, cmd_persist, cmd_plan,
    cmd_probe, cmd_profiles, cmd_rollback, cmd_status, cmd_verify,
};

// `--state-dir`, only on the commands that read or write the journal. A
// plain comment, not a doc comment: see the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct StateDirArg {
    /// Where the journal and lock live [env: TCTO_TUNE_STATE_DIR]
    /// [default: /var/lib/tcto-tune].
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The definition, derived once per pair of names given; the attributes
/// are added to the struct and to the subcommand enum.
macro_rules! define_cli {
    ($cli:ident [$(#[$cli_attr:meta])*], $command:ident [$(#[$command_attr:meta])*]) => {
        /// Fix TCP connect timeouts at their root: conntrack, listen backlogs,
        /// NOTRACK rules and NIC offloads, as checked, reversible plans.
        #[derive(Debug, Parser)]
        $(#[$cli_attr])*
        #[command(name = "tcto-tune", version = env!("TCTO_TUNE_VERSION"), about, long_about = None)]
        pub struct $cli {
            /// Print machine-readable JSON on stdout instead of text.
            #[arg(long, global = true)]
            pub json: bool,

            /// `--state-dir` before the subcommand, as earlier versions took it
            /// (hidden: only the commands that use a journal offer it).
            #[arg(long = "state-dir", value_name = "DIR", hide = true)]
            pub state_dir: Option<PathBuf>,

            #[command(subcommand)]
            pub command: $command,
        }

        #[derive(Debug, Subcommand)]
        $(#[$command_attr])*
        pub enum $command {
            /// Show what a profile would change on this host; changes nothing.
            Plan(cmd_plan::PlanArgs),
            /// Apply a profile as one journaled transaction (or `--dry-run`).
            Apply {
                #[command(flatten)]
                args: cmd_apply::ApplyArgs,
                #[command(flatten)]
                state: StateDirArg,
            },
            /// Undo the last transaction (or every one back to `--to ID`).
            Rollback {
                #[command(flatten)]
                args: cmd_rollback::RollbackArgs,
                #[command(flatten)]
                state: StateDirArg,
            },
            /// Write the files that make a profile survive a reboot (sysctl.d,
            /// modules-load.d, modprobe.d, a boot unit), as one journaled
            /// transaction; `--dry-run` prints their diffs.
            Persist {
                #[command(flatten)]
                args: cmd_persist::PersistArgs,
                #[command(flatten)]
                state: StateDirArg,
            },
            /// List past transactions, newest first.
            History {
                #[command(flatten)]
                args: cmd_history::HistoryArgs,
                #[command(flatten)]
                state: StateDirArg,
            },
            /// List or show the built-in profiles.
            #[command(subcommand)]
            Profiles(cmd_profiles::ProfilesCommand),
            /// Rank the likely causes of connect timeouts here, with the plan that fixes each.
            Diagnose(cmd_diagnose::DiagnoseArgs),
            /// Is what was applied and persisted still in effect? (`--exit-code`:
            /// exit 4 on drift, for cron and fleets)
            Status {
                #[command(flatten)]
                args: cmd_status::StatusArgs,
                #[command(flatten)]
                state: StateDirArg,
            },
            /// Watch drop counters and accept queues for a while; exit 1 if anything was dropped.
            Verify {
                #[command(flatten)]
                args: cmd_verify::VerifyArgs,
                #[command(flatten)]
                state: StateDirArg,
            },
            /// Make N TCP connects to one address; count outcomes and time handshakes.
            Probe(cmd_probe::ProbeArgs),
            /// Print the shell completion script for SHELL on stdout, e.g.
            /// `tcto-tune completions bash > /etc/bash_completion.d/tcto-tune`.
            Completions(cmd_completions::CompletionsArgs),
            /// Write the man pages, completions and unit the package installs.
            #[command(hide = true)]
            GenerateAssets(cmd_assets::AssetsArgs),
        }
    };
}

define_cli!(Cli [], Command [#[command(defer = true)]]);
define_cli!(
    FullCli [#[allow(dead_code)]],
    FullCommand [#[allow(dead_code)]]
);

/// `Cli::try_parse()`, without dropping the parser: clap's `Command` tree
/// (every subcommand and argument) is freed just before the process exits
/// anyway, and freeing it piece by piece cost `apply` 2 % of its
/// instructions.
pub fn parse_args() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = std::mem::ManuallyDrop::new(Cli::command());
    let mut matches = command.try_get_matches_from_mut(std::env::args_os())?;
    let cli = Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut Cli::command()));
    std::mem::forget(matches);
    cli
}

#[cfg(test)]
mod tests {
    //! The deferred tree that `main` parses with renders every help text and
    //! usage error exactly as the full tree does (the one clap builds by
    //! default, and the one the man pages and completions come from).

    use clap::{CommandFactory, FromArgMatches};

    use super::{Cli, FullCli};

    /// Every subcommand path of the full tree, hidden ones and clap's own
    /// `help` included.
    fn paths() -> Vec<Vec<String>> {
        fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
            for sc in cmd.get_subcommands() {
                let mut p = path.clone();
                p.push(sc.get_name().to_owned());
                out.push(p.clone());
                walk(sc, p, out);
            }
        }
        let mut cmd = FullCli::command();
        cmd.build();
        let mut out = Vec::new();
        walk(&cmd, Vec::new(), &mut out);
        out
    }

    /// What parsing `args` gives: the error's kind, exit code and text
    /// (styled, so colours count too), or the parsed value.
    fn outcome<C: CommandFactory + FromArgMatches + std::fmt::Debug>(args: &[String]) -> String {
        let argv = std::iter::once("tcto-tune".to_owned()).chain(args.iter().cloned());
        let mut cmd = C::command();
        let parsed = cmd
            .try_get_matches_from_mut(argv)
            .and_then(|m| C::from_arg_matches(&m).map_err(|e| e.format(&mut C::command())));
        match parsed {
            Ok(v) => format!("ok: {v:?}")
                .replace("FullCommand::", "")
                .replace("FullCli", "Cli")
                .replace("FullCommand", "Command"),
            Err(e) => format!(
                "{:?} exit {} use_stderr {}\n{}",
                e.kind(),
                e.exit_code(),
                e.use_stderr(),
                e.render().ansi()
            ),
        }
    }

    fn cases() -> Vec<Vec<String>> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut cases: Vec<Vec<String>> = [
            &[][..],
            &["--help"],
            &["-h"],
            &["help"],
            &["--version"],
            &["-V"],
            &["--bogus"],
            &["--json", "--bogus"],
            &["aply"],
            &["help", "aply"],
            &["plan"],
            &["plan", "--profile"],
            &["plan", "--profile", "high-conn", "--port", "0"],
            &["plan", "--profile", "high-conn", "--allow", "no-such-code"],
            &["plan", "--profile", "high-conn", "--set", "x"],
            &["plan", "-p", "high-conn", "--json", "--exit-code"],
            &[
                "--json",
                "--state-dir",
                "/x",
                "apply",
                "-p",
                "high-conn",
                "--dry-run",
            ],
            &["apply", "--profile", "high-conn", "--persisted"],
            &["apply", "--state-dir", "/x", "--state-dir", "/y", "-p", "x"],
            &["rollback", "--to"],
            &["diagnose", "--port", "x"],
            &["completions"],
            &["completions", "tcsh"],
            &["profiles"],
            &["profiles", "bogus"],
            &["profiles", "show"],
            &["profiles", "show", "high-conn", "--set", "a=b"],
            &["verify", "--for", "soon"],
            &["probe"],
        ]
        .iter()
        .map(|w| words(w))
        .collect();
        for path in paths() {
            for extra in [
                &["--help"][..],
                &["-h"],
                &["--bogus"],
                &["--json", "--bogus"],
                &[],
            ] {
                let mut c = path.clone();
                c.extend(words(extra));
                cases.push(c);
            }
            let mut help = words(&["help"]);
            help.extend(path.iter().cloned());
            cases.push(help);
        }
        cases
    }

    #[test]
    fn deferred_parsing_renders_help_and_errors_as_the_full_tree() {
        let cases = cases();
        assert!(cases.len() > 80, "{} cases", cases.len());
        let mut differ = Vec::new();
        for args in &cases {
            let (deferred, full) = (outcome::<Cli>(args), outcome::<FullCli>(args));
            if deferred != full {
                differ.push(format!(
                    "tcto-tune {}:\n--- full\n{full}\n--- deferred\n{deferred}",
                    args.join(" ")
                ));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }

    /// Built whole, the deferred tree has the same subcommands, each with
    /// the same about texts, usage and arguments (order aside: help sorts
    /// them, the generators use the full tree).
    #[test]
    fn deferred_tree_built_whole_has_the_same_subcommands_and_arguments() {
        fn describe(cmd: &mut clap::Command, path: &str, out: &mut Vec<String>) {
            let mut args: Vec<String> = cmd
                .get_arguments()
                .map(|a| format!("{:?} {:?} {:?}", a.get_id(), a.get_long(), a.get_help()))
                .collect();
            args.sort();
            let usage = cmd.render_usage().ansi().to_string();
            out.push(format!(
                "{path}: about {:?} long {:?} usage {usage}\n  {}",
                cmd.get_about(),
                cmd.get_long_about(),
                args.join("\n  ")
            ));
            for sc in cmd.get_subcommands_mut() {
                let p = format!("{path} {}", sc.get_name());
                describe(sc, &p, out);
            }
        }
        let (mut deferred, mut full) = (Cli::command(), FullCli::command());
        deferred.build();
        full.build();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        describe(&mut deferred, "tcto-tune", &mut a);
        describe(&mut full, "tcto-tune", &mut b);
        assert!(b.len() >= 15, "{b:?}");
        assert_eq!(a, b);
    }

    /// The point of deferring: parsing `apply` builds no other subcommand.
    #[test]
    fn parsing_a_subcommand_builds_only_that_one() {
        let mut cmd = Cli::command();
        let m = cmd.try_get_matches_from_mut(["tcto-tune", "apply", "--profile", "high-conn"]);
        assert!(m.is_ok());
        let mut built = Vec::new();
        for sc in cmd.get_subcommands() {
            // `--json` reaches every subcommand from the top; clap's own
            // `help` has its argument from the start.
            if sc.get_name() != "help" && sc.get_arguments().any(|a| a.get_id() != "json") {
                built.push(sc.get_name());
            }
        }
        assert_eq!(built, ["apply"]);
    }
}
