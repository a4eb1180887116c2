//! The CLI's words for the library's actions: the flags and commands a
//! user types. The library's hints and notes name an action
//! ([`tcto_tune::words::Action`]); these are the words they print here,
//! so that every hint that names a command runs as printed (with the
//! user's `--state-dir`: given by `set_state_dir` for the rollback these
//! words name, and by `common::user_flags` to every other command).
//!
//! "Go ahead past the crash" ([`Action::ForceAfterCrash`]) is the command
//! the user ran, again, with `--force-after-crash`: `main` gives these
//! words that command line (`set_command_line`), so they say the whole
//! line at once and no hint is rewritten afterwards. A dry run's line is
//! said without `--dry-run`: a dry run keeps nothing.

use std::path::Path;
use std::sync::OnceLock;

use tcto_tune::words::{Action, Neutral, Words, WordsRef};

/// The command line's words.
#[derive(Debug, Clone, Copy)]
pub struct Cli;

/// The command line's words, as the library's options carry them.
pub static CLI: Cli = Cli;

/// [`CLI`] for the library's options.
pub fn cli_words() -> WordsRef {
    WordsRef(&CLI)
}

/// `--state-dir DIR ` when the user's state dir is not the default, set
/// once by `main`: the commands these words name run with it.
static STATE_DIR_FLAG: OnceLock<String> = OnceLock::new();

/// Give the commands these words name the user's state dir (once, from
/// `main`; the default needs no flag).
pub fn set_state_dir(dir: &Path) {
    if dir != Path::new(crate::common::DEFAULT_STATE_DIR) {
        let q = crate::common::shell_quote(&dir.display().to_string());
        let _ = STATE_DIR_FLAG.set(format!("--state-dir {q} "));
    }
}

/// The words the user typed after `tcto-tune`, set once by `main`.
static COMMAND_LINE: OnceLock<Vec<String>> = OnceLock::new();

/// Give these words the command line that ran (its words after the
/// program's name; once, from `main`).
pub fn set_command_line(args: Vec<String>) {
    let _ = COMMAND_LINE.set(args);
}

/// Whether the command that ran is a dry run (`--dry-run`).
pub fn is_dry_run() -> bool {
    COMMAND_LINE
        .get()
        .is_some_and(|args| args.iter().any(|a| a == DRY_RUN))
}

const DRY_RUN: &str = "--dry-run";

/// `args` (the words after `tcto-tune`) as the one line that goes ahead
/// past an interrupted transaction: without `--dry-run` (a dry run keeps
/// nothing), with `--force-after-crash`, and with `state_dir_flag` (the
/// user's `--state-dir DIR `, or empty) when `args` name no state dir (it
/// came from the environment). Every word shell-quoted, so it runs as
/// printed. (A flag's value is never the word `--dry-run`: clap reads
/// that word as the flag.)
fn after_crash(args: &[String], state_dir_flag: &str) -> String {
    let names_state_dir = args
        .iter()
        .any(|a| a == "--state-dir" || a.starts_with("--state-dir="));
    let mut s = "tcto-tune".to_owned();
    if !names_state_dir && !state_dir_flag.is_empty() {
        s.push(' ');
        s.push_str(state_dir_flag.trim_end());
    }
    for a in args.iter().filter(|a| *a != DRY_RUN) {
        s.push(' ');
        s.push_str(&crate::common::shell_quote(a));
    }
    s.push_str(" --force-after-crash");
    s
}

/// `tcto-tune ` with the user's state dir.
fn tool() -> String {
    format!(
        "tcto-tune {}",
        STATE_DIR_FLAG.get().map_or("", String::as_str)
    )
}

fn backlog(b: Option<i64>) -> String {
    b.map_or("N".to_owned(), |b| b.to_string())
}

impl Words for Cli {
    fn instruct(&self, action: &Action) -> String {
        match action {
            Action::Allow(_)
            | Action::AllowAny
            | Action::AppBacklog { .. }
            | Action::SetVariables(_) => {
                format!("pass {}", self.name(action))
            }
            Action::Force => "use --force".into(),
            Action::DropVariables => format!("drop {}", self.name(action)),
            // The command that ran, again, as a whole line to run.
            Action::ForceAfterCrash => {
                let args = COMMAND_LINE.get().map_or(&[][..], Vec::as_slice);
                let state_dir = STATE_DIR_FLAG.get().map_or("", String::as_str);
                format!("`{}`", after_crash(args, state_dir))
            }
            _ => self.name(action),
        }
    }
    fn name(&self, action: &Action) -> String {
        match action {
            Action::Allow(code) => format!("`--allow {code}`"),
            Action::AllowAny => "`--allow`".into(),
            Action::AppBacklog { port, backlog: b } => {
                format!("`--app-backlog {port}={}`", backlog(*b))
            }
            Action::Rollback => format!("`{}rollback`", tool()),
            Action::Force => "--force".into(),
            Action::ForceAfterCrash => "--force-after-crash".into(),
            // A plain name as always; one that reads as a flag is joined
            // with `=`, one with spaces or quotes is shell-quoted.
            Action::PersistRemove { name } => {
                let q = crate::common::shell_quote(name);
                if name.starts_with('-') {
                    format!("`tcto-tune persist --remove={q}`")
                } else {
                    format!("`tcto-tune persist --remove {q}`")
                }
            }
            // Bare, as diagnose prints its next steps: a line to copy.
            Action::Plan(c) => {
                let mut s = format!("tcto-tune plan --profile {}", c.profile);
                for (k, v) in &c.sets {
                    s.push_str(&format!(" --set {k}={v}"));
                }
                for p in &c.ports {
                    s.push_str(&format!(" --port {p}"));
                }
                s
            }
            Action::Diagnose { interval: None } => "`tcto-tune diagnose`".into(),
            Action::Diagnose { interval: Some(i) } => {
                format!("`tcto-tune diagnose --interval {i}`")
            }
            // As the accept-queue note always printed it.
            Action::Verify { duration } => format!("`verify --for {duration}`"),
            // Bare, as a line to copy to a client.
            Action::Probe { target, count } => format!("tcto-tune probe {target} --count {count}"),
            Action::SetVariable { name, value } => format!("`--set {name}={value}`"),
            Action::SetVariables(names) => {
                let sets: Vec<String> = names.iter().map(|n| format!("--set {n}=VALUE")).collect();
                format!("`{}`", sets.join(" "))
            }
            Action::DropVariables => "the `--set`".into(),
            Action::ShowProfile { name } => format!("`tcto-tune profiles show {name}`"),
            // As the listener table's last line always printed it.
            Action::ShowEveryListener => "--port or --json".into(),
            // An action added to the library after these words: its neutral name.
            other => Neutral.name(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcto_tune::words::PlanCommand;
    use tcto_tune::{
        plan_with, Desired, FindingCode, PlanOptions, Profile, SysctlReading, SystemState,
    };

    /// The library's finding hints, planned with the CLI's words, name the
    /// flags as the CLI always printed them.
    #[test]
    fn plan_hints_name_the_cli_flags() {
        let mut s = SystemState::default();
        s.sysctls
            .insert("net.core.somaxconn".into(), SysctlReading::rw("1024"));
        let p = Profile::builder("t")
            .somaxconn(Desired::at_least(4096))
            .listener(8080, None)
            .listener(8081, Some(128))
            .build();
        let opts = PlanOptions {
            words: cli_words(),
            ..Default::default()
        };
        let hints: Vec<String> = plan_with(&p, &s, &opts)
            .findings
            .iter()
            .filter_map(|f| f.hint.clone())
            .collect();
        assert!(
            hints
                .iter()
                .any(|h| h == "declare the application's backlog with `--app-backlog 8080=N`"),
            "{hints:#?}"
        );
        assert!(
            hints
                .iter()
                .any(|h| h.ends_with("and restart it, then pass `--app-backlog 8081=4096`")),
            "{hints:#?}"
        );
    }

    /// The diagnose notes that name diagnose, verify and probe print
    /// what they printed when the library wrote the command itself.
    #[test]
    fn diagnose_notes_name_the_commands_as_before() {
        let w = &CLI;
        let note = format!(
            "bursts fill accept queues between samples; run {} during the burst, or {} to watch the queues",
            w.name(&Action::Diagnose {
                interval: Some("5s".into())
            }),
            w.name(&Action::Verify {
                duration: "60s".into()
            })
        );
        assert_eq!(note, "bursts fill accept queues between samples; run `tcto-tune diagnose --interval 5s` during the burst, or `verify --for 60s` to watch the queues");
        assert_eq!(
            format!(
                "then run there: {}",
                w.name(&Action::Probe {
                    target: "10.0.1.1:8080".into(),
                    count: 20
                })
            ),
            "then run there: tcto-tune probe 10.0.1.1:8080 --count 20"
        );
        assert_eq!(
            w.name(&Action::Diagnose { interval: None }),
            "`tcto-tune diagnose`"
        );
    }

    fn words(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    /// Going ahead past a crash is the command that ran, whole: its own
    /// flags, shell-quoted, without `--dry-run` (a dry run keeps nothing),
    /// with the state dir when the environment gave it.
    #[test]
    fn going_ahead_after_a_crash_is_the_whole_command_that_ran() {
        assert_eq!(
            after_crash(&words(&["apply", "--profile", "p"]), ""),
            "tcto-tune apply --profile p --force-after-crash"
        );
        assert_eq!(
            after_crash(
                &words(&["persist", "--profile", "p", "--root", "/r x", "--dry-run"]),
                "--state-dir '/s d' "
            ),
            "tcto-tune --state-dir '/s d' persist --profile p --root '/r x' --force-after-crash"
        );
        for given in [&["--state-dir", "/s"][..], &["--state-dir=/s"][..]] {
            let mut args = words(&["apply"]);
            args.extend(words(given));
            args.extend(words(&["--dry-run", "--profile", "p", "--set", "x=a b"]));
            assert_eq!(
                after_crash(&args, "--state-dir /s "),
                format!(
                    "tcto-tune apply {} --profile p --set 'x=a b' --force-after-crash",
                    given.join(" ")
                )
            );
        }
        // What the hints print: a whole command, never a fragment for a
        // caller to rewrite.
        let said = CLI.instruct(&Action::ForceAfterCrash);
        assert!(said.starts_with("`tcto-tune "), "{said}");
        assert!(said.ends_with(" --force-after-crash`"), "{said}");
    }

    #[test]
    fn cli_words_are_the_flags_and_commands() {
        let w = &CLI;
        let allow = Action::Allow(FindingCode::KeyOutsideScope);
        assert_eq!(w.instruct(&allow), "pass `--allow key-outside-scope`");
        assert_eq!(w.name(&Action::AllowAny), "`--allow`");
        assert_eq!(
            w.instruct(&Action::AppBacklog {
                port: 8080,
                backlog: None
            }),
            "pass `--app-backlog 8080=N`"
        );
        assert_eq!(w.instruct(&Action::Rollback), "`tcto-tune rollback`");
        assert_eq!(w.name(&Action::Force), "--force");
        // Profile errors' hints and the diagnosis's listener table, as the
        // CLI always printed them.
        assert_eq!(
            w.instruct(&Action::SetVariables(vec!["a".into(), "b".into()])),
            "pass `--set a=VALUE --set b=VALUE`"
        );
        assert_eq!(w.instruct(&Action::DropVariables), "drop the `--set`");
        assert_eq!(
            w.name(&Action::ShowProfile {
                name: "offload-off".into()
            }),
            "`tcto-tune profiles show offload-off`"
        );
        assert_eq!(w.name(&Action::ShowEveryListener), "--port or --json");
        assert_eq!(w.name(&Action::ForceAfterCrash), "--force-after-crash");
        assert_eq!(
            w.name(&Action::PersistRemove { name: "web".into() }),
            "`tcto-tune persist --remove web`"
        );
        assert_eq!(
            w.name(&Action::PersistRemove { name: "-x".into() }),
            "`tcto-tune persist --remove=-x`"
        );
        assert_eq!(
            w.name(&Action::PersistRemove {
                name: "a b'c".into()
            }),
            r"`tcto-tune persist --remove 'a b'\''c'`"
        );
        let plan = PlanCommand::new("trusted-notrack")
            .set("frontend", "CIDR")
            .set("port", 8080);
        assert_eq!(
            w.instruct(&Action::Plan(plan)),
            "tcto-tune plan --profile trusted-notrack --set frontend=CIDR --set port=8080"
        );
        assert_eq!(
            w.instruct(&Action::Plan(
                PlanCommand::new("backlog-overflow").ports(&[80, 443])
            )),
            "tcto-tune plan --profile backlog-overflow --port 80 --port 443"
        );
    }
}
