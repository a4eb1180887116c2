//! `tcto-tune rollback`: undo the last transaction, or every one back to an id.

use clap::Args;
use tcto_tune::apply::{select_from_scan, undo, Run};
use tcto_tune::journal::Journal;
use tcto_tune::system::{LinuxEffects, SimEffects};

use crate::common::{apply_error, report_text, with_user_flags};
use crate::output::{require_privileges, CliError, Exit, Printer};
use crate::Global;

// Arguments of `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Undo transaction ID and every later one, newest first.
    #[arg(long, value_name = "ID")]
    to: Option<String>,

    /// Also restore values someone changed after the transaction.
    #[arg(long)]
    force: bool,

    /// Show what would be reverted (drift included) against the live
    /// values, through the simulated host; write nothing, journal nothing.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    wait: crate::common::WaitArg,
}

/// Run `rollback`.
pub fn run(g: &Global, p: &Printer, args: RollbackArgs) -> anyhow::Result<Exit> {
    with_user_flags(g, run_rollback(g, p, args))
}

fn run_rollback(g: &Global, p: &Printer, args: RollbackArgs) -> anyhow::Result<Exit> {
    if !args.dry_run {
        require_privileges("rollback")?;
    }
    let journal = match Journal::open_existing(&g.state_dir).map_err(|e| apply_error(e.into()))? {
        Some(j) => j,
        None => return Err(no_journal(g, "does not exist")),
    };
    // A dry run reads the journal and the live values only: no lock.
    let locked = if args.dry_run {
        None
    } else {
        Some(
            crate::common::lock_journal(p, &journal, &args.wait)
                .map_err(|e| apply_error(e.into()))?,
        )
    };
    let scan = journal.scan().map_err(|e| apply_error(e.into()))?;
    if scan.is_empty() {
        return Err(no_journal(g, "holds no transaction"));
    }
    let chosen = select_from_scan(&scan, args.to.as_deref()).map_err(|e| apply_error(e.into()))?;
    if chosen.is_empty() {
        return nothing(p, args.dry_run);
    }
    let mut reports = Vec::new();
    let mut effects = LinuxEffects::default();
    for mut record in chosen {
        let report = if args.dry_run {
            // The real undo, against a copy of what the host holds now.
            let mut sim = SimEffects::mirror(&mut effects, record.steps.iter().map(|s| &s.target))
                .map_err(|b| {
                    let (t, e) = *b;
                    CliError::new(
                        format!("cannot read {t}: {}", tcto_tune::apply::error_chain(&e)),
                        None,
                        Exit::Error,
                    )
                })?;
            undo(&mut record, Run::DryRun(&mut sim), args.force)
                .map_err(|e| apply_error(e.into()))?
        } else {
            let locked = locked.as_ref().expect("locked unless a dry run");
            undo(
                &mut record,
                Run::Journaled(&mut effects, locked),
                args.force,
            )
            .map_err(|e| apply_error(e.into()))?
        };
        reports.push(report);
    }
    let ok = reports.iter().all(|r| r.succeeded());
    if p.json() {
        let reports: Vec<_> = reports
            .iter()
            .map(|r| r.with_words(&crate::words::CLI))
            .collect();
        p.json_doc(&serde_json::json!({ "dry_run": args.dry_run, "reports": reports }))?;
    } else {
        for r in &reports {
            p.line(report_text(g, r));
        }
    }
    Ok(if ok { Exit::Ok } else { Exit::Error })
}

/// A state dir with no journal is most likely a typo in `--state-dir`:
/// say so and fail, rather than "nothing to roll back".
fn no_journal(g: &Global, why: &str) -> anyhow::Error {
    CliError::new(
        format!(
            "no journal: state dir `{}` {why}, so there is nothing it could roll back",
            g.state_dir.display()
        ),
        Some("check `--state-dir` (or TCTO_TUNE_STATE_DIR): it must name the directory `apply` used (default `/var/lib/tcto-tune`)".into()),
        Exit::Error,
    )
    .into()
}

fn nothing(p: &Printer, dry_run: bool) -> anyhow::Result<Exit> {
    if p.json() {
        p.json_doc(&serde_json::json!({ "dry_run": dry_run, "reports": [] }))?;
    } else {
        p.line("nothing to roll back");
    }
    Ok(Exit::Ok)
}
