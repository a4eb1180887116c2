//! `tcto-tune history`: past transactions, newest first.

use clap::Args;
use serde::Serialize;
use tcto_tune::escape::{escape_control, escape_lines};
use tcto_tune::journal::{Journal, StepStatus, TxRecord};

use crate::cmd_apply::apply_error;
use crate::output::{print_json, Exit};
use crate::Global;

/// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show every step of each transaction.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    record: &'a TxRecord,
    status: &'static str,
}

/// Run `history`.
pub fn run(g: &Global, args: HistoryArgs) -> anyhow::Result<Exit> {
    let records = match Journal::open_existing(&g.state_dir).map_err(|e| apply_error(e.into()))? {
        Some(j) => j.list().map_err(|e| apply_error(e.into()))?,
        None => vec![],
    };
    if g.json {
        let entries: Vec<Entry> = records
            .iter()
            .rev()
            .map(|r| Entry {
                record: r,
                status: r.state.label(),
            })
            .collect();
        print_json(&entries)?;
        return Ok(Exit::Ok);
    }
    if records.is_empty() {
        println!("no transactions in {}", g.state_dir.display());
        return Ok(Exit::Ok);
    }
    println!(
        "{:<6}  {:<20}  {:<8}  {:<23}  {:<7}  PROFILE",
        "ID", "STARTED", "COMMAND", "STATUS", "CHANGES"
    );
    for r in records.iter().rev() {
        let changed = r
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::Unchanged)
            .count();
        println!(
            "{:<6}  {:<20}  {:<8}  {:<23}  {:<7}  {}",
            r.id,
            r.started,
            r.command,
            r.state.label(),
            changed,
            escape_control(&r.profile)
        );
        if args.verbose {
            let w = r
                .steps
                .iter()
                .map(|s| s.key.chars().count())
                .max()
                .unwrap_or(0);
            for s in &r.steps {
                // The same snake_case names as the JSON.
                let status = serde_json::to_value(s.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                // The same rendering of the values as apply and rollback
                // print: a reverted step reads back towards its prior value.
                println!(
                    "        {status:<13}  {:<w$}  {}",
                    escape_control(&s.key),
                    escape_lines(&s.transition(false))
                );
                if let Some(e) = &s.error {
                    println!("        {:<13}  {}", "", escape_lines(e));
                }
            }
        }
    }
    Ok(Exit::Ok)
}
