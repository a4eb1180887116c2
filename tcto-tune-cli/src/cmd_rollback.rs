//! `tcto-tune rollback`: undo the last transaction, or every one back to an id.

use clap::Args;
use tcto_tune::apply::{select_from_scan, undo};
use tcto_tune::journal::Journal;
use tcto_tune::system::LinuxEffects;

use crate::cmd_apply::{apply_error, user_flags, with_user_flags};
use crate::output::{print_json, require_privileges, CliError, Exit};
use crate::Global;

/// Arguments of `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Undo transaction ID and every later one, newest first.
    #[arg(long, value_name = "ID")]
    to: Option<String>,

    /// Also restore values someone changed after the transaction.
    #[arg(long)]
    force: bool,
}

/// Run `rollback`.
pub fn run(g: &Global, args: RollbackArgs) -> anyhow::Result<Exit> {
    with_user_flags(g, run_rollback(g, args))
}

fn run_rollback(g: &Global, args: RollbackArgs) -> anyhow::Result<Exit> {
    require_privileges("rollback")?;
    let journal = match Journal::open_existing(&g.state_dir).map_err(|e| apply_error(e.into()))? {
        Some(j) => j,
        None => return Err(no_journal(g, "does not exist")),
    };
    let _lock = journal.lock().map_err(|e| apply_error(e.into()))?;
    let scan = journal.scan().map_err(|e| apply_error(e.into()))?;
    if scan.is_empty() {
        return Err(no_journal(g, "holds no transaction"));
    }
    let chosen = select_from_scan(&scan, args.to.as_deref()).map_err(|e| apply_error(e.into()))?;
    if chosen.is_empty() {
        return nothing(g);
    }
    let mut reports = Vec::new();
    let mut effects = LinuxEffects::default();
    for mut record in chosen {
        reports.push(
            undo(&mut record, &mut effects, Some(&journal), args.force)
                .map_err(|e| apply_error(e.into()))?,
        );
    }
    let ok = reports.iter().all(|r| r.succeeded());
    if g.json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            println!("{}", user_flags(g, &r.to_string()));
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

fn nothing(g: &Global) -> anyhow::Result<Exit> {
    if g.json {
        print_json(&Vec::<()>::new())?;
    } else {
        println!("nothing to roll back");
    }
    Ok(Exit::Ok)
}
