//! Undo one journaled transaction: the `rollback` command.
//!
//! Journaled like `apply`, so that a rollback killed half-way is visible
//! and completed by the next one: the record is marked `undoing` before
//! the first write, each step `reverting` before its write (in the same
//! durable rewrite that saves the previous step's result), and the final
//! state last. Each step is read first: one already at its prior value is
//! `already at` (nothing written), one someone else changed since is left
//! alone as drifted unless forced. A runtime step of a transaction from an
//! earlier boot is not touched at all: the reboot reset it.

use super::{error_chain, fail_text, write_checked, Outcome, Run, TxReport};
use crate::change::Target;
use crate::journal::{
    id_order, now_rfc3339, Journal, JournalError, Scan, StepStatus, TxRecord, TxState,
};
use crate::system::Checkpoint;
use crate::words::Remedy;

fn save(journal: Option<&Journal>, record: &mut TxRecord) -> Result<(), JournalError> {
    record.updated = now_rfc3339();
    match journal {
        Some(j) => j.replace(record),
        None => Ok(()),
    }
}

/// Undo one journaled transaction. Steps someone changed since (the value
/// is neither the prior nor the applied one) are left alone and reported
/// as drifted unless `force`.
pub fn undo(record: &mut TxRecord, run: Run<'_>, force: bool) -> Result<TxReport, JournalError> {
    let (effects, journal) = run.split();
    let earlier_boot = record.from_earlier_boot(journal.and_then(Journal::boot_id));
    // Intent first: a crash from here on leaves `undoing`, never `applied`
    // over values already restored.
    record.state = TxState::Undoing;
    save(journal, record)?;
    let mut wrote = vec![false; record.steps.len()];
    let mut failure = None;
    let mut restored = 0;
    for i in (0..record.steps.len()).rev() {
        let step = &mut record.steps[i];
        let restored_before = matches!(step.status, StepStatus::Reverted | StepStatus::AlreadyAt);
        if matches!(
            step.status,
            StepStatus::Unchanged
                | StepStatus::WouldApply
                | StepStatus::ResetByReboot
                | StepStatus::Gone
        ) {
            continue;
        }
        if earlier_boot && !matches!(step.target, Target::File { .. }) {
            step.status = StepStatus::ResetByReboot;
            step.error = None;
            continue;
        }
        // What the user could do about an earlier attempt is said anew.
        step.remedy = None;
        // Follow a renamed NIC; a removed one closes the step as `gone`.
        match super::follow(effects, step) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                step.status = StepStatus::RevertFailed;
                step.error = Some(format!("cannot find it: {e}"));
                failure
                    .get_or_insert_with(|| fail_text(&step.target, step.error.as_ref().unwrap()));
                continue;
            }
        }
        let current = match effects.read(&step.target) {
            Ok(v) => v,
            Err(e) => {
                step.status = StepStatus::RevertFailed;
                step.error = Some(format!("cannot read it: {}", error_chain(&e)));
                failure
                    .get_or_insert_with(|| fail_text(&step.target, step.error.as_ref().unwrap()));
                continue;
            }
        };
        if current.matches(&step.before) {
            step.status = match step.status {
                // Restored by an earlier, interrupted rollback.
                StepStatus::Reverting | StepStatus::Reverted => StepStatus::Reverted,
                _ => StepStatus::AlreadyAt,
            };
            step.error = None;
            continue;
        }
        // A value restored earlier and changed since is someone else's.
        let ours = current.matches(&step.after) && !restored_before;
        if !ours && !force {
            step.status = StepStatus::Drifted;
            step.error = Some(format!(
                "now `{}`, set by someone else since; left alone",
                current.display()
            ));
            step.remedy = Some(Remedy::ForceRestores);
            failure.get_or_insert_with(|| fail_text(&step.target, step.error.as_ref().unwrap()));
            continue;
        }
        // What force overwrites is said (for a table: what was not ours).
        let forced =
            (!ours).then(|| format!("replaced `{}`, set by someone else", current.display()));
        step.status = StepStatus::Reverting;
        save(journal, record)?;
        let step = &mut record.steps[i];
        match write_checked(effects, &step.target, &step.before) {
            Ok(()) => {
                step.status = StepStatus::Reverted;
                step.remedy = forced.is_some().then_some(Remedy::Forced);
                step.error = forced;
                wrote[i] = true;
                restored += 1;
                effects.checkpoint(Checkpoint::Restored(restored));
            }
            Err(e) => {
                step.status = StepStatus::RevertFailed;
                failure.get_or_insert_with(|| fail_text(&step.target, &e));
                step.remedy = super::remedy_of(&e);
                step.error = Some(e.to_string());
            }
        }
    }
    let ok = failure.is_none();
    record.state = if ok {
        TxState::Undone
    } else {
        TxState::UndoIncomplete
    };
    save(journal, record)?;
    // The report says what this run did: a step at its prior value that
    // this run did not write is `already at`, never `reverted`.
    let steps = record
        .steps
        .iter()
        .zip(wrote)
        .map(|(s, wrote)| {
            let mut s = s.clone();
            if !wrote && s.status == StepStatus::Reverted {
                s.status = StepStatus::AlreadyAt;
            }
            s
        })
        .collect();
    Ok(TxReport {
        id: Some(record.id.clone()),
        command: "rollback".into(),
        profile: record.profile.clone(),
        outcome: if ok {
            Outcome::Undone
        } else {
            Outcome::UndoIncomplete
        },
        steps,
        failure,
        findings: vec![],
        skipped: vec![],
        notes: vec![],
        dry_run: journal.is_none(),
    })
}

fn padded(id: &str) -> String {
    // `--to 7` means `000007`.
    match id.parse::<u64>() {
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => format!("{n:06}"),
        _ => id.to_owned(),
    }
}

/// Which transactions `rollback` undoes, newest first: the newest undoable
/// one, or with `to` every undoable one from `to` on.
pub fn select_for_rollback(
    records: &[TxRecord],
    to: Option<&str>,
) -> Result<Vec<TxRecord>, JournalError> {
    let mut chosen: Vec<TxRecord> = match to {
        None => records
            .iter()
            .rev()
            .find(|r| r.state.undoable())
            .cloned()
            .into_iter()
            .collect(),
        Some(id) => {
            let id = padded(id);
            if !records.iter().any(|r| r.id == id) {
                return Err(JournalError::UnknownTx { id });
            }
            records
                .iter()
                .filter(|r| id_order(&r.id, &id).is_ge() && r.state.undoable())
                .cloned()
                .collect()
        }
    };
    chosen.sort_by(|a, b| id_order(&b.id, &a.id));
    Ok(chosen)
}

/// [`select_for_rollback`] over a [`Scan`], refusing when a file that
/// cannot be read could be a transaction to undo first: one at or past
/// the oldest chosen (or past `--to`), or any when nothing readable is
/// undoable. Older unreadable files do not matter, and none is deleted.
pub fn select_from_scan(scan: &Scan, to: Option<&str>) -> Result<Vec<TxRecord>, JournalError> {
    // With `--to` on an unreadable id, the unreadable file itself is named.
    let to = to.map(padded);
    if let Some(id) = &to {
        if let Some(u) = scan.unreadable.iter().find(|u| &u.id == id) {
            return Err(JournalError::UnreadableNewer {
                path: u.path.clone(),
                risk: format!("it is the transaction asked for ({id})"),
                why: u.error.clone(),
            });
        }
    }
    let chosen = select_for_rollback(&scan.records, to.as_deref())?;
    let floor = to.clone().or_else(|| chosen.last().map(|r| r.id.clone()));
    if let Some(u) = scan.unreadable_from(floor.as_deref()) {
        return Err(JournalError::UnreadableNewer {
            path: u.path.clone(),
            risk: match &floor {
                Some(id) => {
                    format!("it may be a transaction newer than {id}, to be undone before it")
                }
                None => "no readable transaction is left to undo, and this one may be".into(),
            },
            why: u.error.clone(),
        });
    }
    Ok(chosen)
}
