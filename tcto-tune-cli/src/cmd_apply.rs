//! `tcto-tune apply`: make the plan real, as one journaled transaction.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tcto_tune::apply::{apply, error_chain, ApplyError, ApplyOptions, Run};
use tcto_tune::read_state;
use tcto_tune::system::{Backends, SimEffects};

use crate::common::{
    apply_error, compute_full, finish, persisted_profile, with_user_flags, ProfileArgs,
};
use crate::output::{require_privileges, CliError, Exit, Printer};
use crate::Global;

// Arguments of `apply`.
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
pub fn run(g: &Global, p: &Printer, args: ApplyArgs) -> anyhow::Result<Exit> {
    // Hints carry the user's state dir (the CLI's words say "go ahead
    // after the crash" as this very command, whole).
    with_user_flags(g, run_apply(g, p, args))
}

fn run_apply(g: &Global, p: &Printer, args: ApplyArgs) -> anyhow::Result<Exit> {
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
        if !p.json() {
            p.out(plan.render(p.style()));
        }
        let codes: Vec<String> = plan.refusals().iter().map(|f| f.code.to_string()).collect();
        if args.persisted && codes.iter().all(|c| tcto_tune::allowable(c)) {
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
        // What would block the real apply blocks the dry run too.
        crate::common::dry_run_blocked(g, args.force_after_crash)?;
        let mut sim = SimEffects::from_changes_and_state(&plan.changes, &state);
        let report = apply(&plan, Run::DryRun(&mut sim), &opts).map_err(apply_error)?;
        print_plan_notes(p, &plan);
        return finish(g, p, &report);
    }
    require_privileges("apply")?;
    let report = crate::common::apply_journaled(g, p, &plan, &args.wait, &opts)?;
    print_plan_notes(p, &plan);
    finish(g, p, &report)
}

/// Before the steps, the `skip` lines and findings `plan` printed: what
/// this apply leaves out, and why, is never silent. (JSON carries them in
/// the report's `skipped` and `findings`.)
fn print_plan_notes(p: &Printer, plan: &tcto_tune::Plan) {
    if p.json() {
        return;
    }
    let notes = plan.render_notes(p.style());
    p.out(notes.trim_start_matches('\n'));
}
