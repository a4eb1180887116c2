//! How a transaction's report reads: one aligned line per step, then one
//! line saying how it ended.

use std::fmt;

use super::{Outcome, TxReport};
use crate::journal::StepStatus;

fn verb(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::Writing => "in flight",
        StepStatus::Unchanged => "ok",
        StepStatus::Applied => "set",
        StepStatus::WouldApply => "would set",
        StepStatus::Failed => "FAILED",
        StepStatus::Reverted => "reverted",
        StepStatus::RevertFailed => "NOT RESTORED",
        StepStatus::Drifted => "drifted",
        StepStatus::Reverting => "revert in flight",
        StepStatus::AlreadyAt => "already at",
        StepStatus::ResetByReboot => "reset by reboot",
    }
}

impl fmt::Display for TxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
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
        let skipped = self.skipped_keys();
        match self.outcome {
            Outcome::Noop if !skipped.is_empty() => write!(f, "nothing applied: every key of profile `{}` that could be set here is already in effect", self.profile),
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
        }?;
        if !skipped.is_empty() && self.outcome != Outcome::RolledBack {
            write!(
                f,
                "\nNOT IN EFFECT: {} key(s) of the profile skipped (see `skip` above): {}",
                skipped.len(),
                skipped.join(", ")
            )?;
        }
        Ok(())
    }
}

impl TxReport {
    /// The keys the plan skipped that were not allowed (`key-missing` and
    /// the like): the part of the profile this transaction does not make.
    pub fn skipped_keys(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|s| format!("{} [{}]", s.key, s.code))
            .collect()
    }
}
