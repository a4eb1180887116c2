//! `tcto-tune history`: past transactions, newest first.
//!
//! A journal file that cannot be read is listed by name with the reason,
//! between the records that can: one corrupt file never hides the rest.

use clap::Args;
use serde::Serialize;
use tcto_tune::journal::{id_order, Journal, Scan, StepStatus, TxRecord, Unreadable};
use tcto_tune::{escape_control, escape_lines};

use crate::common::apply_error;
use crate::output::{Exit, Printer};
use crate::Global;

// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show every step of each transaction.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Record {
        #[serde(flatten)]
        record: &'a TxRecord,
        status: String,
    },
    Unreadable {
        #[serde(flatten)]
        file: &'a Unreadable,
        status: &'static str,
    },
}

impl Entry<'_> {
    fn id(&self) -> &str {
        match self {
            Entry::Record { record, .. } => &record.id,
            Entry::Unreadable { file, .. } => &file.id,
        }
    }
}

/// Every entry, newest first.
fn entries<'a>(scan: &'a Scan, boot: Option<&str>) -> Vec<Entry<'a>> {
    let mut all: Vec<Entry> = scan
        .records
        .iter()
        .map(|r| Entry::Record {
            record: r,
            status: r.label(boot),
        })
        .chain(scan.unreadable.iter().map(|u| Entry::Unreadable {
            file: u,
            status: "unreadable",
        }))
        .collect();
    all.sort_by(|a, b| id_order(b.id(), a.id()));
    all
}

/// Run `history`.
pub fn run(g: &Global, p: &Printer, args: HistoryArgs) -> anyhow::Result<Exit> {
    let journal = Journal::open_existing(&g.state_dir).map_err(|e| apply_error(e.into()))?;
    let mut scan = match &journal {
        Some(j) => j.scan().map_err(|e| apply_error(e.into()))?,
        None => Scan::default(),
    };
    // What the records keep typed (a step's remedy), in the CLI's words.
    for r in &mut scan.records {
        *r = r.with_words(&crate::words::CLI);
    }
    let entries = entries(&scan, journal.as_ref().and_then(Journal::boot_id));
    if p.json() {
        p.json_doc(&serde_json::json!({ "transactions": entries }))?;
        return Ok(Exit::Ok);
    }
    if entries.is_empty() {
        p.line(format_args!("no transactions in {}", g.state_dir.display()));
        return Ok(Exit::Ok);
    }
    p.line(format_args!(
        "{:<6}  {:<20}  {:<8}  {:<27}  {:<7}  PROFILE",
        "ID", "STARTED", "COMMAND", "STATUS", "CHANGES"
    ));
    for e in &entries {
        let r = match e {
            Entry::Unreadable { file, .. } => {
                p.line(format_args!(
                    "{:<6}  {:<20}  {:<8}  UNREADABLE",
                    file.id, "-", "-"
                ));
                p.line(format_args!(
                    "        `{}`: {}",
                    escape_control(&file.path.display().to_string()),
                    escape_lines(&file.error.to_string())
                ));
                continue;
            }
            Entry::Record { record, status } => {
                let changed = record
                    .steps
                    .iter()
                    .filter(|s| s.status != StepStatus::Unchanged)
                    .count();
                p.line(format_args!(
                    "{:<6}  {:<20}  {:<8}  {:<27}  {:<7}  {}",
                    record.id,
                    record.started,
                    record.command,
                    status,
                    changed,
                    escape_control(&record.profile)
                ));
                record
            }
        };
        if args.verbose {
            for n in &r.notes {
                p.line(format_args!("        note: {}", escape_lines(n)));
            }
            let w = r
                .steps
                .iter()
                .map(|s| s.key.chars().count())
                .max()
                .unwrap_or(0);
            for s in &r.steps {
                // The values read in the direction they last moved, as
                // apply and rollback print them.
                p.line(format_args!(
                    "        {:<16}  {:<w$}  {}",
                    s.status.label(),
                    escape_control(&s.key),
                    escape_lines(&s.transition(false))
                ));
                if let Some(e) = &s.error {
                    p.line(format_args!("        {:<16}  {}", "", escape_lines(e)));
                }
            }
        }
    }
    if !scan.unreadable.is_empty() {
        p.message(format_args!(
            "warning: {} journal file(s) cannot be read and were left as they are: {}",
            scan.unreadable.len(),
            scan.unreadable
                .iter()
                .map(|u| u.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Exit::Ok)
}
