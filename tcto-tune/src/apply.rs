//! The transaction: apply a plan, or undo a journaled one.
//!
//! One engine for every kind of change: it reads each [`Target`] before
//! writing (and writes only what differs), journals every prior value on
//! disk before the first write, reads each write back, and on any failure
//! reverts what it changed in reverse order, collecting revert errors
//! rather than stopping at the first. Dry-run is the same code run against
//! [`crate::system::SimEffects`] with no journal.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::change::{Target, Value};
use crate::journal::{
    now_rfc3339, Journal, JournalError, Step, StepStatus, TxRecord, TxState, JOURNAL_FORMAT,
};
use crate::plan::Plan;
use crate::system::{Effects, SystemError};

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

/// Why a transaction did not start (failures after the start are reported
/// in [`TxReport`], with the system restored).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Refusing findings were not allowed.
    #[error("refused by safety check(s): {}", codes.join(", "))]
    Refused {
        /// The codes.
        codes: Vec<String>,
    },
    /// An earlier transaction was interrupted.
    #[error("transaction {id} was interrupted (the process died mid-apply); its changes may be half made")]
    Interrupted {
        /// Its id.
        id: String,
    },
    /// An earlier transaction failed and could not revert every change.
    #[error(
        "transaction {id} failed and could not restore every value; the system is half-changed"
    )]
    Incomplete {
        /// Its id.
        id: String,
    },
    /// Reading a target before the transaction failed: nothing was changed.
    #[error("cannot read {target} before changing it")]
    Read {
        /// The target.
        target: String,
        /// Cause.
        #[source]
        source: SystemError,
    },
    /// The journal failed: nothing was changed (or, mid-way, see the report).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl ApplyError {
    /// A one-line suggestion.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Refused { codes } => Some(format!(
                "the findings say why and what to do; to proceed anyway pass {}",
                codes.iter().map(|c| format!("`--allow {c}`")).collect::<Vec<_>>().join(" ")
            )),
            ApplyError::Interrupted { id } => Some(format!(
                "run `tcto-tune rollback` to restore the values journaled by {id}, or `apply --force-after-crash` to keep them"
            )),
            ApplyError::Incomplete { id } => Some(format!(
                "`tcto-tune history -v` shows what {id} could not restore; fix the cause, then `tcto-tune rollback` (or `apply --force-after-crash` to keep things as they are)"
            )),
            ApplyError::Journal(j) => j.hint(),
            ApplyError::Read { .. } => None,
        }
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

/// An error and its causes on one line (`cannot write ...: Permission
/// denied`), the form reports and the CLI print.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let _ = write!(s, ": {c}");
        src = c.source();
    }
    s
}

/// The error a new transaction gets when `record` left the system
/// half-changed: interrupted (the process died) or a failed transaction
/// whose own revert failed. `None` when it does not block. Only the newest
/// record can (see `journal`'s module docs).
pub fn blocked_by(record: &TxRecord) -> Option<ApplyError> {
    match record.state {
        TxState::Open => Some(ApplyError::Interrupted {
            id: record.id.clone(),
        }),
        TxState::RollbackIncomplete => Some(ApplyError::Incomplete {
            id: record.id.clone(),
        }),
        _ => None,
    }
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
fn write_checked(effects: &mut dyn Effects, target: &Target, value: &Value) -> Result<(), String> {
    let back = effects
        .write_read_back(target, value)
        .map_err(|e| error_chain(&e))?;
    if back.matches(value) {
        Ok(())
    } else {
        Err(format!(
            "the kernel kept `{}` instead of `{}` (clamped or refused silently)",
            back.display(),
            value.display()
        ))
    }
}

#[cfg(feature = "fault-injection")]
fn crash_point(done: usize) {
    // Test-only: abort like a SIGKILL would, after N changes.
    if let Some(n) = std::env::var("TCTO_TUNE_FAULT_CRASH_AFTER")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        if done == n {
            std::process::abort();
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
fn crash_point(_done: usize) {}

/// Test-only: `TCTO_TUNE_FAULT_REFUSE_AT=N` makes the Nth write fail
/// before it reaches the system, as a kernel refusal would.
#[cfg(feature = "fault-injection")]
fn injected_refusal(n: usize) -> Option<String> {
    (fault_env("TCTO_TUNE_FAULT_REFUSE_AT") == Some(n))
        .then(|| "injected fault: write refused".to_owned())
}

/// Test-only: `TCTO_TUNE_FAULT_READBACK_AT=N` makes the Nth write land but
/// read back different, as a silent kernel clamp would.
#[cfg(feature = "fault-injection")]
fn injected_readback(n: usize) -> Option<String> {
    (fault_env("TCTO_TUNE_FAULT_READBACK_AT") == Some(n))
        .then(|| "injected fault: read-back differs".to_owned())
}

#[cfg(feature = "fault-injection")]
fn fault_env(var: &str) -> Option<usize> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

#[cfg(not(feature = "fault-injection"))]
fn injected_refusal(_n: usize) -> Option<String> {
    None
}

#[cfg(not(feature = "fault-injection"))]
fn injected_readback(_n: usize) -> Option<String> {
    None
}

/// Apply `plan` through `effects`. With a journal the transaction is real
/// (the caller holds the journal's lock); without one it is a dry-run.
pub fn apply(
    plan: &Plan,
    effects: &mut dyn Effects,
    journal: Option<&Journal>,
    opts: &ApplyOptions,
) -> Result<TxReport, ApplyError> {
    let refusals: Vec<String> = plan.refusals().iter().map(|f| f.code.clone()).collect();
    if !refusals.is_empty() {
        return Err(ApplyError::Refused { codes: refusals });
    }
    let command = if opts.command.is_empty() {
        "apply".to_owned()
    } else {
        opts.command.clone()
    };
    let mut next_id = None;
    if let Some(j) = journal {
        // Only the newest record can block (see `journal`'s module docs).
        let newest = j.newest()?;
        next_id = Some(crate::journal::next_id_after(newest.as_slice()));
        if let Some(mut rec) = newest {
            if let Some(e) = blocked_by(&rec) {
                if !opts.force_after_crash {
                    return Err(e);
                }
                rec.state = TxState::Abandoned;
                rec.updated = now_rfc3339();
                j.replace(&rec)?;
            }
        }
    }
    // Read before write: the prior value comes from the system now, not
    // from the plan, and targets already right are left alone.
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
            kind: c.kind,
            key: c.key.clone(),
            target: c.target.clone(),
            before,
            after: c.after.clone(),
            status,
            error: None,
        });
    }
    let mut report = TxReport {
        id: None,
        command: command.clone(),
        profile: plan.profile.clone(),
        outcome: Outcome::Noop,
        steps,
        failure: None,
    };
    if report
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Unchanged)
    {
        return Ok(report);
    }
    // Write-ahead: every prior value on disk before the first change.
    let mut record = match journal {
        Some(j) => {
            let now = now_rfc3339();
            let mut rec = TxRecord {
                format: JOURNAL_FORMAT,
                id: next_id.clone().unwrap_or_else(|| "000001".into()),
                command,
                profile: plan.profile.clone(),
                started: now.clone(),
                updated: now,
                state: TxState::Open,
                // Lent to the record for the write, not cloned: a NOTRACK
                // table is a large JSON value.
                steps: std::mem::take(&mut report.steps),
            };
            let written = j.write(&rec);
            report.steps = std::mem::take(&mut rec.steps);
            written?;
            report.id = Some(rec.id.clone());
            Some(rec)
        }
        None => None,
    };
    let mut done = 0;
    let mut failed = None;
    for (i, step) in report.steps.iter_mut().enumerate() {
        if step.status != StepStatus::Pending {
            continue;
        }
        match injected_refusal(done + 1)
            .map_or_else(|| write_checked(effects, &step.target, &step.after), Err)
            .and_then(|()| injected_readback(done + 1).map_or(Ok(()), Err))
        {
            Ok(()) => {
                step.status = if journal.is_some() {
                    StepStatus::Applied
                } else {
                    StepStatus::WouldApply
                };
                done += 1;
                crash_point(done);
            }
            Err(e) => {
                step.status = StepStatus::Failed;
                step.error = Some(e.clone());
                failed = Some((i, fail_text(&step.target, &e)));
                break;
            }
        }
    }
    report.outcome = match failed {
        None if journal.is_some() => Outcome::Applied,
        None => Outcome::WouldApply,
        Some((failed_at, text)) => {
            report.failure = Some(text);
            // Revert in reverse order; a failed step may have half-written
            // (a table batch is atomic, a sysctl is one write), so it is
            // restored too when it no longer holds its prior value.
            let mut all_ok = true;
            for step in report.steps[..=failed_at].iter_mut().rev() {
                if !matches!(
                    step.status,
                    StepStatus::Applied | StepStatus::WouldApply | StepStatus::Failed
                ) {
                    continue;
                }
                let was_failed = step.status == StepStatus::Failed;
                if was_failed
                    && effects
                        .read(&step.target)
                        .is_ok_and(|v| v.matches(&step.before))
                {
                    continue;
                }
                match write_checked(effects, &step.target, &step.before) {
                    Ok(()) if was_failed => {}
                    Ok(()) => step.status = StepStatus::Reverted,
                    Err(e) => {
                        all_ok = false;
                        step.status = StepStatus::RevertFailed;
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
    };
    if let (Some(j), Some(rec)) = (journal, record.as_mut()) {
        rec.state = match report.outcome {
            Outcome::Applied => TxState::Applied,
            Outcome::RolledBack => TxState::RolledBack,
            _ => TxState::RollbackIncomplete,
        };
        rec.steps = std::mem::take(&mut report.steps);
        rec.updated = now_rfc3339();
        let written = j.replace(rec);
        report.steps = std::mem::take(&mut rec.steps);
        written?;
    }
    Ok(report)
}

/// Undo one journaled transaction. Steps someone changed since (the value
/// is neither the prior nor the applied one) are left alone and reported
/// as drifted unless `force`.
pub fn undo(
    record: &mut TxRecord,
    effects: &mut dyn Effects,
    journal: Option<&Journal>,
    force: bool,
) -> Result<TxReport, JournalError> {
    let mut failure = None;
    for step in record.steps.iter_mut().rev() {
        if !matches!(
            step.status,
            StepStatus::Applied
                | StepStatus::Pending
                | StepStatus::RevertFailed
                | StepStatus::Drifted
        ) {
            continue;
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
            step.status = StepStatus::Reverted;
            step.error = None;
            continue;
        }
        if !current.matches(&step.after) && !force {
            step.status = StepStatus::Drifted;
            step.error = Some(format!(
                "now `{}`, set by someone else since; left alone (use --force to restore `{}`)",
                current.display(),
                step.before.display()
            ));
            failure.get_or_insert_with(|| fail_text(&step.target, step.error.as_ref().unwrap()));
            continue;
        }
        let forced = !current.matches(&step.after);
        match write_checked(effects, &step.target, &step.before) {
            Ok(()) => {
                step.status = StepStatus::Reverted;
                // Say what --force overwrote (for a table: what was not ours).
                step.error = forced.then(|| {
                    format!(
                        "--force: replaced `{}`, set by someone else",
                        current.display()
                    )
                });
            }
            Err(e) => {
                step.status = StepStatus::RevertFailed;
                failure.get_or_insert_with(|| fail_text(&step.target, &e));
                step.error = Some(e);
            }
        }
    }
    let ok = failure.is_none();
    record.state = if ok {
        TxState::Undone
    } else {
        TxState::UndoIncomplete
    };
    record.updated = now_rfc3339();
    if let Some(j) = journal {
        j.replace(record)?;
    }
    Ok(TxReport {
        id: Some(record.id.clone()),
        command: "rollback".into(),
        profile: record.profile.clone(),
        outcome: if ok {
            Outcome::Undone
        } else {
            Outcome::UndoIncomplete
        },
        steps: record.steps.clone(),
        failure,
    })
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
            // `--to 7` means `000007`.
            let padded = match id.parse::<u64>() {
                Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => format!("{n:06}"),
                _ => id.to_owned(),
            };
            let id = padded.as_str();
            if !records.iter().any(|r| r.id == id) {
                return Err(JournalError::UnknownTx { id: id.to_owned() });
            }
            records
                .iter()
                .filter(|r| r.id.as_str() >= id && r.state.undoable())
                .cloned()
                .collect()
        }
    };
    chosen.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(chosen)
}

fn verb(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::Unchanged => "ok",
        StepStatus::Applied => "set",
        StepStatus::WouldApply => "would set",
        StepStatus::Failed => "FAILED",
        StepStatus::Reverted => "reverted",
        StepStatus::RevertFailed => "NOT RESTORED",
        StepStatus::Drifted => "drifted",
    }
}

impl fmt::Display for TxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w_verb = self
            .steps
            .iter()
            .map(|s| verb(s.status).len())
            .max()
            .unwrap_or(0);
        let w_key = self
            .steps
            .iter()
            .map(|s| s.key.chars().count())
            .max()
            .unwrap_or(0);
        for s in &self.steps {
            let values = s.transition(self.command == "rollback");
            writeln!(
                f,
                "{:<w_verb$}  {:<w_key$}  {values}",
                verb(s.status),
                s.key
            )?;
            if let Some(e) = &s.error {
                writeln!(f, "{:<w_verb$}  {e}", "")?;
            }
        }
        let changed = self
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Applied | StepStatus::WouldApply))
            .count();
        let id = self.id.as_deref().unwrap_or("-");
        match self.outcome {
            Outcome::Noop => write!(f, "nothing to do: profile `{}` is already in effect", self.profile),
            Outcome::WouldApply => write!(f, "would apply {changed} change(s) for profile `{}`", self.profile),
            Outcome::Applied => write!(f, "applied {changed} change(s) for profile `{}`; transaction {id}, undo with `tcto-tune rollback`", self.profile),
            Outcome::RolledBack => write!(f, "failed: {}\nevery change was reverted: the system is as it was before (transaction {id})", self.failure.as_deref().unwrap_or("?")),
            Outcome::RollbackIncomplete => {
                let keys: Vec<_> = self.steps.iter().filter(|s| s.status == StepStatus::RevertFailed).map(|s| s.key.as_str()).collect();
                write!(f, "failed: {}\nCOULD NOT RESTORE: {} (transaction {id}; see `tcto-tune history`)", self.failure.as_deref().unwrap_or("?"), keys.join(", "))
            }
            Outcome::Undone => write!(f, "rolled back transaction {id} (profile `{}`)", self.profile),
            Outcome::UndoIncomplete => write!(f, "rollback of transaction {id} incomplete: {}", self.failure.as_deref().unwrap_or("?")),
        }
    }
}

#[cfg(test)]
mod tests;
