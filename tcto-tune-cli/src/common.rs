//! What more than one command uses, so that no `cmd_*` module imports
//! another: the arguments of the commands that take a profile (resolved
//! and planned in one place), the state-dir lock, the transaction's error
//! and report, the user's flags in printed commands, the persisted
//! profile, and the completion script.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tcto_tune::apply::{error_chain, ApplyError, OutcomeWords, TxReport};
use tcto_tune::journal::JournalError;
use tcto_tune::parse_port;
use tcto_tune::persist;
use tcto_tune::read_state;
use tcto_tune::system::{read_persist_facts, Backends};
use tcto_tune::words::{Action, Words as _};
use tcto_tune::{Plan, PlanOptions, Profile, SystemState};

use crate::output::{CliError, Exit, Printer};
use crate::words::CLI;
use crate::Global;

// `--profile`, `--set`, `--port`, `--app-backlog`, `--allow`.
#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// Built-in profile name (see `tcto-tune profiles list`) or a path to a TOML file.
    #[arg(long, short = 'p', value_name = "NAME|PATH")]
    pub profile: String,

    /// Fill a variable the profile declares, e.g. `--set backend=10.0.2.0/24`.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub set: Vec<(String, String)>,

    /// An application port whose listener the plan must respect (repeatable).
    #[arg(long = "port", value_name = "PORT", value_parser = parse_port_arg)]
    pub ports: Vec<u16>,

    /// The backlog the application on PORT asks for in listen(), e.g. `8080=4096`.
    #[arg(long = "app-backlog", value_name = "PORT=N", value_parser = parse_app_backlog)]
    pub app_backlogs: Vec<(u16, u32)>,

    /// Allow a refusing finding or a skip code, by its code (repeatable).
    #[arg(long = "allow", value_name = "CODE", value_parser = parse_code)]
    pub allow: Vec<String>,

    /// NOTRACK: replace the flows this profile applied earlier instead of
    /// adding to them (other profiles' flows stay).
    #[arg(long)]
    pub replace: bool,
}

impl ProfileArgs {
    /// Load the profile, add the listeners named on the command line, and
    /// build the plan options.
    pub fn resolve(&self) -> anyhow::Result<(Profile, PlanOptions)> {
        let vars = variables(&self.set)?;
        let mut profile = tcto_tune::profile::load(&self.profile, &vars)
            .with_context(|| format!("cannot load profile `{}`", self.profile))?;
        for port in &self.ports {
            profile.add_listener(*port, None);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (port, backlog) in &self.app_backlogs {
            if !seen.insert(*port) {
                return Err(CliError::new(
                    format!("`--app-backlog {port}=...` given twice"),
                    Some("give one backlog per port".into()),
                    Exit::Usage,
                )
                .into());
            }
            profile.add_listener(*port, Some(*backlog));
        }
        let opts = PlanOptions {
            allow: self.allow.iter().cloned().collect(),
            notrack_replace: self.replace,
            words: crate::words::cli_words(),
        };
        Ok((profile, opts))
    }
}

/// The `--set` pairs as a map; a variable given twice is a usage error.
pub fn variables(set: &[(String, String)]) -> Result<BTreeMap<String, String>, CliError> {
    let mut vars = BTreeMap::new();
    for (k, v) in set {
        if vars.insert(k.clone(), v.clone()).is_some() {
            return Err(CliError::new(
                format!("`--set {k}` given twice"),
                None,
                Exit::Usage,
            ));
        }
    }
    Ok(vars)
}

/// clap parser for `NAME=VALUE`.
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    if k.is_empty() {
        return Err("the variable name is empty".into());
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// clap parser for a port.
pub fn parse_port_arg(s: &str) -> Result<u16, String> {
    parse_port(s).map_err(|e| e.to_string())
}

fn parse_app_backlog(s: &str) -> Result<(u16, u32), String> {
    let (p, n) = s.split_once('=').ok_or("expected PORT=N, e.g. 8080=4096")?;
    let port = parse_port(p).map_err(|e| e.to_string())?;
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=i32::MAX as u32).contains(n))
        .ok_or_else(|| format!("backlog `{n}` is not an integer from 1 to {}", i32::MAX))?;
    Ok((port, n))
}

fn parse_code(s: &str) -> Result<String, String> {
    if !tcto_tune::allowable(s) {
        return Err(format!(
            "`{s}` can never be allowed: the key makes the kernel run a program or load code as root; remove it from the profile"
        ));
    }
    match s.parse::<tcto_tune::FindingCode>() {
        Ok(code) => Ok(code.to_string()),
        // clap names the value already.
        Err(e) => Err(format!("unknown code; known codes: {}", e.known.join(", "))),
    }
}

/// clap parser for a duration (`500ms`, `3s`, `1m`).
pub fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    tcto_tune::parse_duration(s).map_err(|e| e.to_string())
}

// `--wait DURATION` of the commands that take the state-dir lock.
#[derive(Debug, Clone, Args)]
pub struct WaitArg {
    /// Wait up to DURATION for the state-dir lock held by another tcto-tune
    /// (a provisioning run overlapping a cron'd one) instead of failing at
    /// once, e.g. `--wait 30s`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub wait: Option<std::time::Duration>,
}

/// The real transaction of `apply` and `persist`: open (or create) the
/// journal under the user's state dir, take its lock (waiting as `--wait`
/// says), and apply `plan` to the live host.
pub fn apply_journaled(
    g: &Global,
    p: &Printer,
    plan: &Plan,
    wait: &WaitArg,
    opts: &tcto_tune::apply::ApplyOptions,
) -> anyhow::Result<TxReport> {
    use tcto_tune::apply::{apply, Run};
    use tcto_tune::journal::Journal;
    use tcto_tune::system::LinuxEffects;
    let journal = Journal::open_or_create(&g.state_dir).map_err(|e| apply_error(e.into()))?;
    let locked = lock_journal(p, &journal, wait).map_err(|e| apply_error(e.into()))?;
    apply(
        plan,
        Run::Journaled(&mut LinuxEffects::default(), &locked),
        opts,
    )
    .map_err(apply_error)
}

/// For a dry run: what would block the real transaction blocks the dry run
/// too (an interrupted transaction, a newest record that cannot be read),
/// unless `force_after_crash`. An unreadable state dir is left to the real
/// run: a dry run needs no root.
pub fn dry_run_blocked(g: &Global, force_after_crash: bool) -> anyhow::Result<()> {
    use tcto_tune::apply::blocked_by;
    use tcto_tune::journal::Journal;
    if let Ok(Some(journal)) = Journal::open_existing(&g.state_dir) {
        let newest = journal.newest().map_err(|e| apply_error(e.into()))?;
        if let Some(e) = newest.and_then(|r| blocked_by(&r, journal.boot_id())) {
            if !force_after_crash {
                return Err(apply_error(e));
            }
        }
    }
    Ok(())
}

/// Take the journal's lock, waiting up to `wait` while another process
/// holds it, with the holder's pid in a progress line on stderr (once, then
/// every 10 s). Without `--wait` a held lock fails at once, as before.
pub fn lock_journal<'j>(
    p: &Printer,
    journal: &'j tcto_tune::journal::Journal,
    wait: &WaitArg,
) -> Result<tcto_tune::journal::Locked<'j>, tcto_tune::journal::JournalError> {
    use tcto_tune::journal::JournalError;
    let start = std::time::Instant::now();
    let mut said: Option<std::time::Instant> = None;
    loop {
        match journal.lock() {
            Err(JournalError::Locked { holder, .. })
                if wait.wait.is_some_and(|w| start.elapsed() < w) =>
            {
                if said.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)) {
                    p.message(format_args!(
                        "waiting for the state-dir lock held by another tcto-tune{holder} ({} of {} waited)",
                        tcto_tune::format_duration(std::time::Duration::from_secs(start.elapsed().as_secs())),
                        tcto_tune::format_duration(wait.wait.unwrap_or_default())
                    ));
                    said = Some(std::time::Instant::now());
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// The state dir when neither flag nor environment names one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tcto-tune";

/// Compute the plan for this host, and return the resolved profile with it.
pub fn compute_with_profile(args: &ProfileArgs) -> anyhow::Result<(Profile, Plan)> {
    let (profile, _state, plan) = compute_full(args)?;
    Ok((profile, plan))
}

/// The profile, the state it was planned against, and the plan.
pub fn compute_full(args: &ProfileArgs) -> anyhow::Result<(Profile, SystemState, Plan)> {
    let (profile, opts) = args.resolve()?;
    let state = read_state(&profile, &Backends::linux()).context("cannot read the system state")?;
    let plan = tcto_tune::plan_with(&profile, &state, &opts);
    Ok((profile, state, plan))
}

/// Map a transaction error to the user's exit code and hint.
pub fn apply_error(e: ApplyError) -> anyhow::Error {
    let exit = if matches!(e, ApplyError::Refused { .. }) {
        Exit::Refused
    } else {
        Exit::Error
    };
    CliError::new(error_chain(&e), apply_hint(&e), exit).into()
}

/// The hint for a transaction error, in the CLI's words: the library
/// states the fact (the codes, the transaction id), the CLI names the
/// command and the flag that deal with it.
pub fn apply_hint(e: &ApplyError) -> Option<String> {
    match e {
        ApplyError::Refused { codes } => {
            let (lift, never): (Vec<&String>, Vec<&String>) =
                codes.iter().partition(|c| tcto_tune::allowable(c));
            if !never.is_empty() {
                return e.hint();
            }
            Some(format!(
                "the findings say why and what to do; to proceed anyway pass {}",
                lift.iter()
                    .map(|c| format!("`--allow {c}`"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
        // Both ways out as whole commands in the CLI's words: the
        // rollback with the user's state dir, going ahead as the command
        // that ran, again (for a dry run, the real one: a dry run keeps
        // nothing).
        ApplyError::Interrupted { id } => Some(format!(
            "run {} to restore the values journaled by {id}, or {} to keep them{}",
            CLI.name(&Action::Rollback),
            CLI.instruct(&Action::ForceAfterCrash),
            preview_note()
        )),
        ApplyError::InterruptedFiles { id, .. } => Some(format!(
            "run {} to restore the files journaled by {id}, or {} to keep them{}",
            CLI.name(&Action::Rollback),
            CLI.instruct(&Action::ForceAfterCrash),
            preview_note()
        )),
        ApplyError::Incomplete { id } => Some(format!(
            "`tcto-tune history -v` shows what {id} could not restore; fix the cause, then {} (or {} to keep things as they are){}",
            CLI.name(&Action::Rollback),
            CLI.instruct(&Action::ForceAfterCrash),
            preview_note()
        )),
        ApplyError::Journal(j) => journal_hint(j),
        _ => e.hint(),
    }
}

/// After a dry run's "go ahead" command: that it is the real run, and
/// how to preview it.
fn preview_note() -> &'static str {
    if crate::words::is_dry_run() {
        " (a dry run keeps nothing; add `--dry-run` to preview it)"
    } else {
        ""
    }
}

/// The hint for a journal error, in the CLI's words (`--state-dir`,
/// `--wait`, `tcto-tune history`).
pub fn journal_hint(e: &JournalError) -> Option<String> {
    match e {
        JournalError::MissingParent { parent, .. } => Some(format!(
            "check `--state-dir` for a typo, or create the parent first (`mkdir -p {}`)",
            shell_quote(&parent.display().to_string())
        )),
        JournalError::Locked { .. } => Some("wait for it to finish, or run the command again with `--wait DURATION`; tcto-tune never interleaves transactions".into()),
        JournalError::Unsafe { .. } => {
            Some("use a root-owned directory with mode 0700 (`--state-dir`)".into())
        }
        JournalError::UnknownTx { .. } => Some("`tcto-tune history` lists the transactions".into()),
        JournalError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Some("run as root, or pass `--state-dir` to a directory you own".into())
        }
        // A transaction file that cannot be read (a directory in its
        // place, a bad disk): the way out `rollback` gives, for `apply` too.
        JournalError::Io {
            action: "read",
            path,
            ..
        } if path.extension().is_some_and(|x| x == "json")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == "tx") =>
        {
            let p = shell_quote(&path.display().to_string());
            // A name nothing is at: `mv` onto an earlier `.broken` file
            // would replace it, onto a directory move the record into it.
            let aside = shell_quote(&tcto_tune::atomic_file::aside_name(path, "broken"));
            Some(format!(
                "nothing was changed; inspect {p}: if it is a transaction, undo by hand what it changed; then move it aside (`mv {p} {aside}`)"
            ))
        }
        _ => e.hint(),
    }
}

/// `text` with every `` `tcto-tune ...` `` command it names given the
/// user's `--state-dir`, so that a printed command runs as printed. Left
/// alone for the default state dir, or when it already names one
/// (anywhere in the command: after the subcommand too).
pub fn user_flags(g: &Global, text: &str) -> String {
    if g.state_dir == Path::new(DEFAULT_STATE_DIR) {
        return text.to_owned();
    }
    let dir = shell_quote(&g.state_dir.display().to_string());
    // Each command on its own: one that already names a state dir (the
    // CLI's words give theirs) is left as it is.
    let mut parts = text.split("`tcto-tune ");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for rest in parts {
        out.push_str("`tcto-tune ");
        let command = rest.split('`').next().unwrap_or_default();
        let names_one = command
            .split_whitespace()
            .any(|w| w == "--state-dir" || w.starts_with("--state-dir="));
        if !names_one {
            out.push_str(&format!("--state-dir {dir} "));
        }
        out.push_str(rest);
    }
    out
}

pub use tcto_tune::words::shell_word as shell_quote;

/// [`user_flags`] applied to the hint of the error a command failed with.
pub fn with_user_flags(g: &Global, result: anyhow::Result<Exit>) -> anyhow::Result<Exit> {
    result.map_err(|e| {
        let mut e = CliError::from(e);
        e.hint = e.hint.map(|h| user_flags(g, &h));
        e.into()
    })
}

/// A transaction's report as text, its remedies, notes and outcome line
/// naming the CLI's commands, given the user's `--state-dir` ([`user_flags`]).
pub fn report_text(g: &Global, report: &TxReport) -> String {
    let words = OutcomeWords {
        undo: Some("`tcto-tune rollback`"),
        history: Some("`tcto-tune history`"),
    };
    let report = report.with_words(&crate::words::CLI);
    user_flags(g, &report.worded(words).to_string())
}

/// Print a transaction's report and return its exit code.
pub fn finish(g: &Global, p: &Printer, report: &TxReport) -> anyhow::Result<Exit> {
    if p.json() {
        p.json_doc(&report.with_words(&crate::words::CLI))?;
    } else {
        p.line(report_text(g, report));
    }
    Ok(if report.succeeded() {
        Exit::Ok
    } else {
        Exit::Error
    })
}

/// `--root` that cannot be read: the error, with a hint when it is not a
/// directory.
pub fn root_error(root: &Path, e: tcto_tune::system::SystemError) -> anyhow::Error {
    let hint = if !root.exists() {
        Some(format!(
            "`--root` must be an existing directory; it is never created (`mkdir -p {}` if that is really the place)",
            shell_quote(&root.display().to_string())
        ))
    } else if !root.is_dir() {
        Some(
            "`--root` must be a directory (the root of an image or a chroot), not a file"
                .to_owned(),
        )
    } else {
        None
    };
    // The whole cause chain on one line, as for every other error.
    CliError {
        hint,
        ..CliError::from(anyhow::Error::new(e))
    }
    .into()
}

/// Paths leading out of the root make `persist --list` and `apply
/// --persisted` fail.
pub fn escape_error(facts: &persist::PersistFacts) -> Option<anyhow::Error> {
    let e = facts.escapes.first()?;
    let f = persist::root_escape(e);
    Some(CliError::new(format!("refused: {}", f.message), f.hint, Exit::Error).into())
}

/// A hint naming `tcto-tune persist --...` gets the user's flags, so that
/// it runs as printed.
pub fn flag_hint(f: &mut tcto_tune::Finding, prefix: &str) {
    if let Some(h) = &mut f.hint {
        *h = h.replace("`tcto-tune persist --", &format!("`{prefix} --"));
    }
}

/// The profile `apply --persisted` plans: the NOTRACK rules and offloads
/// of every persisted entry under `root`, as one profile.
pub fn persisted_profile(g: &Global, root: Option<&Path>) -> anyhow::Result<tcto_tune::Profile> {
    let dir = shell_quote(&g.state_dir.display().to_string());
    let prefix = match root {
        Some(r) => format!(
            "tcto-tune --state-dir {dir} persist --root {}",
            shell_quote(&r.display().to_string())
        ),
        None => format!("tcto-tune --state-dir {dir} persist"),
    };
    let fail = |f: &tcto_tune::Finding| -> anyhow::Error {
        let mut f = f.clone();
        flag_hint(&mut f, &prefix);
        CliError::new(f.message, f.hint, Exit::Error).into()
    };
    let root = root.unwrap_or(Path::new("/"));
    let facts = read_persist_facts(root).map_err(|e| root_error(root, e))?;
    if let Some(e) = escape_error(&facts) {
        return Err(e);
    }
    let dir = persist::host_path(&facts.root, persist::PERSISTED_PATH);
    let (entries, bad) = persist::persisted(&facts, &crate::words::CLI);
    if let Some(f) = bad.first() {
        return Err(fail(f));
    }
    if let Some(f) = persist::entries::conflicts(&entries, &crate::words::CLI).first() {
        return Err(fail(f));
    }
    if !entries.iter().any(persist::Persisted::restores) {
        return Err(CliError::new(
            format!("nothing persisted: no entry in `{dir}` has NOTRACK rules or offloads"),
            Some(format!("`{prefix} --list` shows what is persisted; persist a profile with `[[notrack]]` or `[[offload]]` first")),
            Exit::Error,
        )
        .into());
    }
    let text = persist::entries::boot_profile(&entries);
    tcto_tune::profile::load_text(
        tcto_tune::profile::ProfileOrigin::File(PathBuf::from(&dir).join("persisted.toml")),
        &text,
        &BTreeMap::new(),
    )
    .with_context(|| format!("cannot load the persisted entries in `{dir}`"))
}

/// The command as the completion generators see it: `--profile` offers
/// the built-in profile names.
pub fn completion_command() -> clap::Command {
    use clap::CommandFactory as _;
    fn profile_names(cmd: clap::Command) -> clap::Command {
        let cmd = cmd.mut_subcommands(profile_names);
        if cmd.get_arguments().any(|a| a.get_id() == "profile") {
            cmd.mut_arg("profile", |a| {
                a.value_parser(clap::builder::PossibleValuesParser::new(
                    tcto_tune::profile::builtin_names(),
                ))
            })
        } else {
            cmd
        }
    }
    // Without the hidden subcommands: clap_complete's bash generator offers
    // them anyway, so they are left out of the command it sees.
    let full = crate::cli::FullCli::command();
    let visible = clap::Command::new("tcto-tune")
        .version(env!("TCTO_TUNE_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    profile_names(visible)
}

/// The completion script for `shell` (`completions` prints it,
/// `generate-assets` writes it).
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = completion_command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tcto-tune", &mut out);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6's bash generator escapes the `-` of a binary
        // name two ways: the walk over the words names a subcommand
        // `tcto__tune__subcmd__plan`, its case arm
        // `tcto__subcmd__tune__subcmd__plan`, so nothing after the first
        // word would complete. One spelling, the walk's, fixes it.
        let text = String::from_utf8_lossy(&out).replace("tcto__subcmd__tune", "tcto__tune");
        return text.into_bytes();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's hints of an interrupted or incomplete transaction state
    /// the facts; the CLI names the commands that act on them.
    #[test]
    fn apply_hint_names_the_cli_commands() {
        let id = || "000001".to_owned();
        let interrupted = apply_hint(&ApplyError::Interrupted { id: id() }).unwrap();
        let files = apply_hint(&ApplyError::InterruptedFiles {
            id: id(),
            files: vec!["/etc/sysctl.d/99-tcto-tune.conf".into()],
        })
        .unwrap();
        let incomplete = apply_hint(&ApplyError::Incomplete { id: id() }).unwrap();
        for h in [&interrupted, &files, &incomplete] {
            assert!(h.contains("`tcto-tune rollback`"), "{h}");
            assert!(h.contains("000001"), "{h}");
            // The command that ran, again, as the CLI's words say it (no
            // command line in a unit test: just the program and the flag).
            assert!(h.contains("`tcto-tune --force-after-crash`"), "{h}");
            assert!(!h.contains("dry run"), "{h}");
        }
        assert!(incomplete.contains("tcto-tune history -v"), "{incomplete}");
    }

    /// The outcome line names `tcto-tune rollback` / `tcto-tune history`,
    /// with the user's `--state-dir`; the library's own Display names none.
    #[test]
    fn report_text_names_the_cli_commands() {
        let report = |outcome: &str| -> TxReport {
            serde_json::from_value(serde_json::json!({
                "id": "000001", "command": "apply", "profile": "p",
                "outcome": outcome, "steps": [], "failure": "boom"
            }))
            .unwrap()
        };
        let g = Global {
            state_dir: "/tmp/st".into(),
        };
        let applied = report("applied");
        assert_eq!(
            report_text(&g, &applied),
            "applied 0 change(s) for profile `p`; transaction 000001, undo with `tcto-tune --state-dir /tmp/st rollback`"
        );
        assert!(!applied.to_string().contains("tcto-tune"), "{applied}");
        let incomplete = report("rollback_incomplete");
        let text = report_text(&g, &incomplete);
        assert!(
            text.ends_with("(transaction 000001; see `tcto-tune --state-dir /tmp/st history`)"),
            "{text}"
        );
        assert!(
            incomplete.to_string().ends_with("(transaction 000001)"),
            "{incomplete}"
        );
    }
    /// Each command a text names gets the state dir, even when another
    /// already names one (as the CLI's words give it).
    #[test]
    fn user_flags_gives_each_command_the_state_dir_once() {
        let g = Global {
            state_dir: "/tmp/a b".into(),
        };
        assert_eq!(
            user_flags(
                &g,
                "`tcto-tune --state-dir '/tmp/a b' rollback` or `tcto-tune history`"
            ),
            "`tcto-tune --state-dir '/tmp/a b' rollback` or `tcto-tune --state-dir '/tmp/a b' history`"
        );
    }
    /// A command that names the state dir after its subcommand (as the
    /// user typed it, given back whole by the CLI's words) is left as it
    /// is: `--state-dir` twice would be noise.
    #[test]
    fn user_flags_leaves_a_command_naming_the_state_dir_anywhere() {
        let g = Global {
            state_dir: "/tmp/a b".into(),
        };
        let text = "`tcto-tune apply --state-dir '/tmp/a b' --profile p --force-after-crash` or `tcto-tune apply --state-dir=/x --profile p`";
        assert_eq!(user_flags(&g, text), text);
    }
    /// What the journal keeps typed (a drifted, forced or other-namespace
    /// step's remedy, the note of going ahead after a crash) prints with
    /// the CLI's words, in the text and the JSON, as it always did.
    #[test]
    fn journaled_remedies_and_notes_print_the_cli_words() {
        let step = |status: &str, error: &str, remedy: &str| {
            serde_json::json!({
                "kind": "sysctl", "key": "net.core.somaxconn",
                "target": {"kind": "sysctl", "key": "net.core.somaxconn"},
                "before": {"type": "text", "value": "1024"},
                "after": {"type": "text", "value": "4096"},
                "status": status, "error": error, "remedy": remedy
            })
        };
        let drift = "now `9999`, set by someone else since; left alone";
        let netns = "cannot find it: `a` was changed in network namespace net:[1] and this is net:[2]: its ifindex means nothing here (`ip netns identify` names the current one)";
        let report: TxReport = serde_json::from_value(serde_json::json!({
            "id": "000002", "command": "rollback", "profile": "p",
            "outcome": "undo_incomplete",
            "steps": [
                step("drifted", drift, "force-restores"),
                step("reverted", "replaced `9999`, set by someone else", "forced"),
                step("revert_failed", netns, "rollback-in-its-namespace"),
            ],
            // As the library says it: the target, then the step's error.
            "failure": format!("sysctl net.core.somaxconn: {drift}"),
            "notes": ["went ahead after interrupted transaction 000001 (forced past the crash)"]
        }))
        .unwrap();
        let g = Global {
            state_dir: DEFAULT_STATE_DIR.into(),
        };
        let text = report_text(&g, &report);
        for want in [
            "note: went ahead after interrupted transaction 000001 (--force-after-crash)",
            "now `9999`, set by someone else since; left alone (use --force to restore `1024`)",
            "--force: replaced `9999`, set by someone else",
            "its ifindex means nothing here; run `tcto-tune rollback` inside that namespace (`ip netns identify` names the current one)",
            "incomplete: sysctl net.core.somaxconn: now `9999`, set by someone else since; left alone (use --force to restore `1024`)",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        let json = serde_json::to_string(&report.with_words(&crate::words::CLI)).unwrap();
        assert!(!json.contains("remedy"), "{json}");
        assert!(json.contains("(use --force to restore `1024`)"), "{json}");
    }
}
