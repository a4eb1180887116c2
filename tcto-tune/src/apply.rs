//! The transaction: apply a plan, or undo a journaled one.
//!
//! One engine for every kind of change: it reads each [`Target`] before
//! writing (and writes only what differs), journals every prior value on
//! disk before the first write, reads each write back, and on any failure
//! reverts what it changed in reverse order, collecting revert errors
//! rather than stopping at the first. Dry-run is the same code run against
//! [`crate::system::SimEffects`] with no journal.
//!
//! The record is rewritten as the transaction goes: each step is marked
//! `writing` before its write and `applied` once read back, so a record
//! left by a crash says which steps were written, which one was in flight,
//! and which were never reached. `undo` (the `rollback` command) keeps the
//! same kind of record of its own progress.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::change::{Target, Value};
use crate::check::Finding;
use crate::journal::{
    now_rfc3339, Journal, JournalError, Locked, Step, StepStatus, TxRecord, TxState, JOURNAL_FORMAT,
};
use crate::plan::{Plan, Skipped};
use crate::system::{Checkpoint, Effects, Located, SimEffects, SystemError};
use crate::words::Remedy;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing differed; nothing written, no journal entry.
    Noop,
    /// Every change made and read back.
    Applied,
    /// Dry-run: every change would be made.
    WouldApply,
    /// A change failed; everything made was reverted.
    RolledBack,
    /// A change failed and some reverts failed too.
    RollbackIncomplete,
    /// `rollback`: every step restored.
    Undone,
    /// `rollback`: some steps could not be restored.
    UndoIncomplete,
}

/// The result of `apply` or of undoing one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReport {
    /// Journal id (`None` for dry-run and no-op).
    pub id: Option<String>,
    /// `apply`, `persist`, or `rollback`.
    pub command: String,
    /// Profile name.
    pub profile: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Every step with before, after and status.
    pub steps: Vec<Step>,
    /// The step that failed and why, if one did.
    pub failure: Option<String>,
    /// The plan's findings (apply only): what `plan` showed, shown again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The settings the plan skipped (apply only), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// What the journal noted about this transaction (e.g. that it went
    /// ahead past one interrupted before a reboot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Run without a journal against a simulated host (`apply --dry-run`,
    /// `rollback --dry-run`): nothing was written, and the report says what
    /// would be done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl TxReport {
    /// Whether the system ended where it started or where it was meant to be.
    pub fn succeeded(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Noop | Outcome::Applied | Outcome::WouldApply | Outcome::Undone
        )
    }
}

/// Options for [`apply`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// What to call the transaction in the journal (`apply`, `persist`).
    pub command: String,
    /// Proceed although an interrupted transaction is in the journal (it is
    /// marked abandoned: `rollback --to ID` can still undo it).
    pub force_after_crash: bool,
}

fn fail_text(target: &Target, e: &dyn fmt::Display) -> String {
    format!("{target}: {e}")
}

/// What the user can do about a step that failed with `e`.
fn remedy_of(e: &StepError) -> Option<Remedy> {
    match e {
        StepError::System(e) => remedy_of_system(e),
        StepError::Kept { .. } => None,
    }
}

fn remedy_of_system(e: &SystemError) -> Option<Remedy> {
    matches!(e, SystemError::OtherNamespace { .. }).then_some(Remedy::RollbackInItsNamespace)
}

pub use crate::error_chain::error_chain;

/// The error a new transaction gets when `record` left the system
/// half-changed: interrupted (the process died) or a failed transaction
/// whose own revert failed. `None` when it does not block. Only the newest
/// record can (see `journal`'s module docs).
///
/// `boot` is the current boot id: a record from an earlier boot blocks
/// only for the files it may have written, since the reboot reset its
/// runtime targets (sysctls, the table, offloads) and files survive it.
pub fn blocked_by(record: &TxRecord, boot: Option<&str>) -> Option<ApplyError> {
    let id = record.id.clone();
    let blocker = match record.state {
        TxState::Open => ApplyError::Interrupted { id },
        TxState::RollbackIncomplete => ApplyError::Incomplete { id },
        _ => return None,
    };
    if !record.from_earlier_boot(boot) {
        return Some(blocker);
    }
    let files = record.files_it_may_have_written();
    (!files.is_empty()).then(|| ApplyError::InterruptedFiles {
        id: record.id.clone(),
        files: files.into_iter().map(str::to_owned).collect(),
    })
}

/// Whether `record` is half-done from an earlier boot but blocks nothing
/// any more (see [`blocked_by`]): a new transaction goes ahead and both
/// records note it.
fn passed_after_reboot(record: &TxRecord, boot: Option<&str>) -> bool {
    matches!(record.state, TxState::Open | TxState::RollbackIncomplete)
        && record.from_earlier_boot(boot)
        && blocked_by(record, boot).is_none()
}

/// Whether a value read just before writing already satisfies an
/// `at_least`/`at_most` change (someone raised it since the plan was made:
/// lowering it back would be wrong).
fn satisfies_intent(c: &crate::change::Change, now: &Value) -> bool {
    let (Value::Text(now), Value::Text(want)) = (now, &c.after) else {
        return false;
    };
    match (
        now.trim().parse::<i64>(),
        want.trim().parse::<i64>(),
        c.intent,
    ) {
        (Ok(n), Ok(w), crate::fix::Intent::AtLeast) => n >= w,
        (Ok(n), Ok(w), crate::fix::Intent::AtMost) => n <= w,
        _ => false,
    }
}

/// Write `value` to `target` and read it back.
fn write_checked(
    effects: &mut dyn Effects,
    target: &Target,
    value: &Value,
) -> Result<(), StepError> {
    let back = effects.write_read_back(target, value)?;
    if back.matches(value) {
        Ok(())
    } else {
        Err(StepError::Kept {
            kept: back.display(),
            wanted: value.display(),
        })
    }
}

/// Where a transaction runs. A dry run is the simulated host and nothing
/// else; anything else is journaled, with the state-dir lock held (the
/// [`Locked`] guard is only had from [`Journal::lock`]).
pub enum Run<'a> {
    /// Against a simulated host, journaling nothing: what would be done
    /// (`apply --dry-run`, `rollback --dry-run`).
    DryRun(&'a mut SimEffects),
    /// For real through `effects` (the live host: [`LinuxEffects`], or any
    /// other backend), every step journaled first.
    ///
    /// [`LinuxEffects`]: crate::system::LinuxEffects
    Journaled(&'a mut dyn Effects, &'a Locked<'a>),
}

impl<'a> Run<'a> {
    /// The effects, and the journal when the run is real.
    fn split(self) -> (&'a mut dyn Effects, Option<&'a Journal>) {
        match self {
            Run::DryRun(sim) => (sim, None),
            Run::Journaled(effects, locked) => (effects, Some(locked.journal())),
        }
    }
}

/// Apply `plan`: for real with [`Run::Journaled`], or a dry run against a
/// simulated host with [`Run::DryRun`].
pub fn apply(plan: &Plan, run: Run<'_>, opts: &ApplyOptions) -> Result<TxReport, ApplyError> {
    let refusals: Vec<String> = plan.refusals().iter().map(|f| f.code.to_string()).collect();
    if !refusals.is_empty() {
        return Err(ApplyError::Refused { codes: refusals });
    }
    let command = if opts.command.is_empty() {
        "apply".to_owned()
    } else {
        opts.command.clone()
    };
    let (effects, journal) = run.split();
    let (next_id, notes) = match journal {
        Some(j) => {
            let (id, notes) = clear_the_way(j, &command, opts)?;
            (Some(id), notes)
        }
        None => (None, vec![]),
    };
    let mut report = TxReport {
        id: None,
        command: command.clone(),
        profile: plan.profile.clone(),
        outcome: Outcome::Noop,
        steps: read_before_write(plan, effects)?,
        failure: None,
        findings: plan.findings.clone(),
        skipped: plan.skipped.clone(),
        notes: notes.clone(),
        dry_run: journal.is_none(),
    };
    if report
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Unchanged)
    {
        return Ok(report);
    }
    let mut record = match (journal, next_id) {
        (Some(j), Some(id)) => {
            let rec = TxRecord {
                format: JOURNAL_FORMAT,
                id,
                command,
                profile: plan.profile.clone(),
                started: now_rfc3339(),
                updated: String::new(),
                state: TxState::Open,
                // Lent to the record for each write, not cloned: a NOTRACK
                // table is a large JSON value.
                steps: vec![],
                boot_id: j.boot_id().map(str::to_owned),
                notes,
            };
            let sink = write_ahead(j, rec, &mut report.steps)?;
            report.id = Some(sink.rec.id.clone());
            Some(sink)
        }
        _ => None,
    };
    let failed = write_all(effects, &mut report.steps, record.as_mut())?;
    report.outcome = match failed {
        None if journal.is_some() => Outcome::Applied,
        None => Outcome::WouldApply,
        Some((failed_at, text)) => {
            report.failure = Some(text);
            revert_after_failure(effects, &mut report.steps[..=failed_at])
        }
    };
    if let Some(sink) = record.as_mut() {
        sink.rec.state = match report.outcome {
            Outcome::Applied => TxState::Applied,
            Outcome::RolledBack => TxState::RolledBack,
            _ => TxState::RollbackIncomplete,
        };
        sink.save(&mut report.steps, false)?;
    }
    Ok(report)
}

/// Before a journaled transaction: the id it gets, and what the newest
/// record says. Only the newest record can block (see `journal`'s module
/// docs); one half-done before a reboot that blocks nothing any more, or
/// one passed with `force_after_crash`, is marked so, and the new record's
/// notes say so.
fn clear_the_way(
    j: &Journal,
    command: &str,
    opts: &ApplyOptions,
) -> Result<(String, Vec<String>), ApplyError> {
    let newest = j.newest()?;
    // From the newest file's name (a record's `id` is its name's, or it
    // did not load); past the last id this refuses before any write.
    let id = j.next_id_after(newest.as_ref().map(|r| r.id.as_str()))?;
    let mut notes = Vec::new();
    let Some(mut rec) = newest else {
        return Ok((id, notes));
    };
    let boot = j.boot_id();
    if passed_after_reboot(&rec, boot) {
        notes.push(format!(
            "went ahead after transaction {}, interrupted before the reboot (the reboot reset its runtime changes)",
            rec.id
        ));
        rec.state = TxState::BeforeReboot;
        rec.notes.push(format!(
            "interrupted before a reboot, which reset its runtime changes; the next {command} went ahead at {}",
            now_rfc3339()
        ));
        rec.updated = now_rfc3339();
        j.replace(&rec)?;
    } else if let Some(e) = blocked_by(&rec, boot) {
        if !opts.force_after_crash {
            return Err(e);
        }
        notes.push(worded::forced_note(&rec.id));
        rec.state = TxState::Abandoned;
        rec.updated = now_rfc3339();
        j.replace(&rec)?;
    }
    Ok((id, notes))
}

/// Read before write: each step's prior value comes from the system now,
/// not from the plan, and targets already right are left alone.
fn read_before_write(plan: &Plan, effects: &mut dyn Effects) -> Result<Vec<Step>, ApplyError> {
    let mut steps = Vec::with_capacity(plan.changes.len());
    for c in &plan.changes {
        let before = effects.read(&c.target).map_err(|source| ApplyError::Read {
            target: c.target.to_string(),
            source,
        })?;
        let status = if before.matches(&c.after) || satisfies_intent(c, &before) {
            StepStatus::Unchanged
        } else {
            StepStatus::Pending
        };
        steps.push(Step {
            kind: c.kind(),
            key: c.key(),
            target: c.target.clone(),
            before,
            after: c.after.clone(),
            status,
            error: None,
            remedy: None,
            note: None,
        });
    }
    Ok(steps)
}

/// Write-ahead: every prior value on disk before the first change, with
/// the first step to be written marked in flight.
fn write_ahead<'j>(
    j: &'j Journal,
    mut rec: TxRecord,
    steps: &mut Vec<Step>,
) -> Result<Sink<'j>, JournalError> {
    if let Some(first) = steps.iter_mut().find(|s| s.status == StepStatus::Pending) {
        first.status = StepStatus::Writing;
    }
    rec.updated.clone_from(&rec.started);
    let mut sink = Sink { j, rec };
    sink.save(steps, true)?;
    Ok(sink)
}

/// Write each pending step and read it back, in order, stopping at the
/// first failure: its index and the report's failure line. With a record,
/// each result is journaled together with the next step in flight.
fn write_all(
    effects: &mut dyn Effects,
    steps: &mut Vec<Step>,
    mut record: Option<&mut Sink<'_>>,
) -> Result<Option<(usize, String)>, JournalError> {
    let mut done = 0;
    for i in 0..steps.len() {
        // With a journal the step to write is already marked `writing` on
        // disk (by the write-ahead record, or by the previous step's save).
        if !matches!(steps[i].status, StepStatus::Writing | StepStatus::Pending) {
            continue;
        }
        let step = &mut steps[i];
        if let Err(e) = write_checked(effects, &step.target, &step.after) {
            step.status = StepStatus::Failed;
            step.error = Some(e.to_string());
            step.remedy = remedy_of(&e);
            return Ok(Some((i, fail_text(&step.target, &e))));
        }
        done += 1;
        match record.as_deref_mut() {
            Some(sink) => {
                // This step's result and the next one in flight, in one
                // durable rewrite.
                step.status = StepStatus::Applied;
                if let Some(next) = steps[i + 1..]
                    .iter_mut()
                    .find(|s| s.status == StepStatus::Pending)
                {
                    next.status = StepStatus::Writing;
                }
                sink.save(steps, false)?;
            }
            None => step.status = StepStatus::WouldApply,
        }
        effects.checkpoint(Checkpoint::Applied(done));
    }
    Ok(None)
}

/// Revert, newest first, the steps of a failed transaction. A failed step
/// may have half-written (a table batch is atomic, a sysctl is one write),
/// so it is restored too when it no longer holds its prior value.
/// Before reverting `step`, follow its target to where it is now (a NIC
/// renamed since is reverted under its new name, and the step says so).
/// `Ok(false)`: what it changed is gone; the step is closed as `gone`.
pub(crate) fn follow(effects: &mut dyn Effects, step: &mut Step) -> Result<bool, String> {
    let located = effects.locate(&step.target).map_err(|e| {
        step.remedy = remedy_of_system(&e);
        error_chain(&e)
    })?;
    match located {
        Located::Here => Ok(true),
        Located::Moved { to, note } => {
            step.key = to.key();
            step.target = to;
            step.note = Some(note);
            Ok(true)
        }
        Located::Gone { why } => {
            step.status = StepStatus::Gone;
            step.error = Some(why);
            Ok(false)
        }
    }
}

fn revert_after_failure(effects: &mut dyn Effects, steps: &mut [Step]) -> Outcome {
    let mut all_ok = true;
    for step in steps.iter_mut().rev() {
        if !matches!(
            step.status,
            StepStatus::Applied | StepStatus::WouldApply | StepStatus::Failed
        ) {
            continue;
        }
        let was_failed = step.status == StepStatus::Failed;
        match follow(effects, step) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                all_ok = false;
                step.status = StepStatus::RevertFailed;
                step.error = Some(format!("revert failed: cannot find it: {e}"));
                continue;
            }
        }
        if was_failed
            && effects
                .read(&step.target)
                .is_ok_and(|v| v.matches(&step.before))
        {
            continue;
        }
        let written = write_checked(effects, &step.target, &step.before);
        let remedy = written.as_ref().err().and_then(remedy_of);
        match written.map_err(|e| e.to_string()) {
            Ok(()) if was_failed => {}
            Ok(()) => step.status = StepStatus::Reverted,
            Err(e) => {
                all_ok = false;
                step.status = StepStatus::RevertFailed;
                step.remedy = step.remedy.take().or(remedy);
                step.error = Some(match &step.error {
                    Some(first) => format!("{first}; revert failed: {e}"),
                    None => format!("revert failed: {e}"),
                });
            }
        }
    }
    if all_ok {
        Outcome::RolledBack
    } else {
        Outcome::RollbackIncomplete
    }
}

/// A record being kept on disk as its transaction goes.
struct Sink<'a> {
    j: &'a Journal,
    rec: TxRecord,
}

impl Sink<'_> {
    /// Durably rewrite the record with `steps` (lent, not cloned); `first`
    /// creates it (the write-ahead write, directory fsynced too).
    fn save(&mut self, steps: &mut Vec<Step>, first: bool) -> Result<(), JournalError> {
        self.rec.steps = std::mem::take(steps);
        self.rec.updated = now_rfc3339();
        let written = if first {
            self.j.write(&self.rec)
        } else {
            self.j.replace(&self.rec)
        };
        *steps = std::mem::take(&mut self.rec.steps);
        written
    }
}

mod error;
mod report;
pub use report::{OutcomeWords, Worded};
mod undo;
mod worded;

pub use error::{ApplyError, StepError};

pub use undo::{select_for_rollback, select_from_scan, undo};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crash;
#[cfg(test)]
mod tests_words;
