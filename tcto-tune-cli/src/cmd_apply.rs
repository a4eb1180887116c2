//! `tcto-tune apply`: make the plan real, as one journaled transaction.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tcto_tune::apply::{apply, blocked_by, error_chain, ApplyError, ApplyOptions, Run, TxReport};
use tcto_tune::journal::Journal;
use tcto_tune::system::{read_state, Backends, LinuxEffects, SimEffects};

use crate::cmd_persist::persisted_profile;
use crate::cmd_plan::compute_full;
use crate::common::ProfileArgs;
use crate::output::{print_json_doc, require_privileges, CliError, Exit};
use crate::Global;

/// Arguments of `apply`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["profile", "persisted"])))]
pub struct ApplyArgs {
    #[command(flatten)]
    profile: Option<ProfileArgs>,

    /// Apply the NOTRACK rules and NIC offloads of every profile `persist`
    /// saved in /etc/tcto-tune/persisted.d, as one transaction (what
    /// tcto-tune-restore.service runs at boot).
    #[arg(long, conflicts_with = "ProfileArgs")]
    persisted: bool,

    /// With `--persisted`: read the persisted entries under DIR instead of `/`.
    #[arg(long, value_name = "DIR", requires = "persisted")]
    root: Option<PathBuf>,

    /// Run the transaction against a simulation of this host: same output,
    /// nothing written, no journal entry, no root needed.
    #[arg(long)]
    dry_run: bool,

    /// Proceed although an earlier transaction was interrupted (its record
    /// is kept; `rollback --to ID` can still undo it).
    #[arg(long)]
    force_after_crash: bool,

    #[command(flatten)]
    wait: crate::common::WaitArg,
}

/// Map a transaction error to the user's exit code and hint.
pub fn apply_error(e: ApplyError) -> anyhow::Error {
    let exit = if matches!(e, ApplyError::Refused { .. }) {
        Exit::Refused
    } else {
        Exit::Error
    };
    CliError::new(error_chain(&e), e.hint(), exit).into()
}

/// The state dir `--state-dir` defaults to.
const DEFAULT_STATE_DIR: &str = "/var/lib/tcto-tune";

/// `text` with every `` `tcto-tune ...` `` command it names given the
/// user's `--state-dir`, so that a printed command runs as printed. Left
/// alone for the default state dir, or when it already names one.
pub fn user_flags(g: &Global, text: &str) -> String {
    if g.state_dir == Path::new(DEFAULT_STATE_DIR) || text.contains("--state-dir") {
        return text.to_owned();
    }
    let dir = g.state_dir.display().to_string();
    let safe = dir
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b));
    let dir = if safe {
        dir
    } else {
        format!("'{}'", dir.replace('\'', r"'\''"))
    };
    text.replace("`tcto-tune ", &format!("`tcto-tune --state-dir {dir} "))
}

/// [`user_flags`] applied to the hint of the error a command failed with.
pub fn with_user_flags(g: &Global, result: anyhow::Result<Exit>) -> anyhow::Result<Exit> {
    result.map_err(|e| {
        let mut e = CliError::from(e);
        e.hint = e.hint.map(|h| user_flags(g, &h));
        e.into()
    })
}

/// Print a report and return its exit code.
pub fn finish(g: &Global, report: &TxReport) -> anyhow::Result<Exit> {
    if g.json {
        print_json_doc(report)?;
    } else {
        println!("{}", user_flags(g, &report.to_string()));
    }
    Ok(if report.succeeded() {
        Exit::Ok
    } else {
        Exit::Error
    })
}

/// The plan of the profile `persist` saved (NOTRACK rules and offloads),
/// against the state of this host now.
fn persisted_plan(
    g: &Global,
    root: Option<&Path>,
) -> anyhow::Result<(tcto_tune::SystemState, tcto_tune::Plan)> {
    let profile = persisted_profile(g, root)?;
    let state = read_state(&profile, &Backends::linux()).context("cannot read the system state")?;
    // The codes allowed when persisting are recorded in the file (`allow`)
    // and honoured here through the profile.
    let plan = tcto_tune::plan(&profile, &state);
    Ok((state, plan))
}

/// Run `apply`.
pub fn run(g: &Global, args: ApplyArgs) -> anyhow::Result<Exit> {
    with_user_flags(g, run_apply(g, args))
}

fn run_apply(g: &Global, args: ApplyArgs) -> anyhow::Result<Exit> {
    let (state, plan) = match (&args.profile, args.persisted) {
        (Some(p), false) => {
            let (_, state, plan) = compute_full(p)?;
            (state, plan)
        }
        (None, true) => persisted_plan(g, args.root.as_deref())?,
        _ => {
            return Err(CliError::new(
                "give `--profile NAME` or `--persisted`",
                Some("`tcto-tune profiles list` shows the built-in profiles".into()),
                Exit::Usage,
            )
            .into())
        }
    };
    let opts = ApplyOptions {
        command: "apply".into(),
        force_after_crash: args.force_after_crash,
    };
    if !plan.refusals().is_empty() {
        // Show the findings that refuse (the plan, as `plan` prints it),
        // then refuse before asking for privileges.
        if !g.json {
            print!(
                "{}",
                plan.render(tcto_tune::TextStyle {
                    color: crate::output::stdout_color()
                })
            );
        }
        let codes: Vec<String> = plan.refusals().iter().map(|f| f.code.clone()).collect();
        if args.persisted && codes.iter().all(|c| tcto_tune::check::allowable(c)) {
            // `--allow` does not go with `--persisted`: the boot-time apply
            // honours the `allow` list recorded in the file.
            let dir = tcto_tune::persist::host_path(
                &args
                    .root
                    .as_deref()
                    .map_or_else(|| "/".to_owned(), |r| r.display().to_string()),
                tcto_tune::persist::PERSISTED_PATH,
            );
            let refused = ApplyError::Refused {
                codes: codes.clone(),
            };
            return Err(CliError::new(
                error_chain(&refused),
                Some(format!(
                    "the findings say why; to accept {} at boot, persist the profile again with {} (each entry in {dir} records the codes allowed when it was persisted)",
                    codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                    codes.iter().map(|c| format!("`--allow {c}`")).collect::<Vec<_>>().join(" "),
                )),
                Exit::Refused,
            )
            .into());
        }
        return Err(apply_error(ApplyError::Refused { codes }));
    }
    if args.dry_run {
        // What would block the real apply blocks the dry-run too: an
        // interrupted transaction, or a newest record that cannot be read.
        // (An unreadable state dir is left to the real apply: a dry-run
        // needs no root.)
        if let Ok(Some(journal)) = Journal::open_existing(&g.state_dir) {
            let newest = journal.newest().map_err(|e| apply_error(e.into()))?;
            if let Some(e) = newest.and_then(|r| blocked_by(&r, journal.boot_id())) {
                if !args.force_after_crash {
                    return Err(apply_error(e));
                }
            }
        }
        let mut sim = SimEffects::from_plan_and_state(&plan, &state);
        let report = apply(&plan, Run::DryRun(&mut sim), &opts).map_err(apply_error)?;
        print_plan_notes(g, &plan);
        return finish(g, &report);
    }
    require_privileges("apply")?;
    let journal = Journal::open_or_create(&g.state_dir).map_err(|e| apply_error(e.into()))?;
    let locked =
        crate::common::lock_journal(&journal, &args.wait).map_err(|e| apply_error(e.into()))?;
    let report = apply(
        &plan,
        Run::Journaled(&mut LinuxEffects::default(), &locked),
        &opts,
    )
    .map_err(apply_error)?;
    print_plan_notes(g, &plan);
    finish(g, &report)
}

/// Before the steps, the `skip` lines and findings `plan` printed: what
/// this apply leaves out, and why, is never silent. (JSON carries them in
/// the report's `skipped` and `findings`.)
fn print_plan_notes(g: &Global, plan: &tcto_tune::Plan) {
    if g.json {
        return;
    }
    let notes = plan.render_notes(tcto_tune::TextStyle {
        color: crate::output::stdout_color(),
    });
    print!("{}", notes.trim_start_matches('\n'));
}
