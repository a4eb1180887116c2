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
        StepStatus::Gone => "gone",
    }
}

/// The commands a user interface names in a report's outcome line: how
/// to undo an applied transaction, where to read what could not be
/// restored. [`TxReport`]'s own `Display` names none.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutcomeWords<'a> {
    /// Appended to an applied transaction's line as ", undo with {undo}".
    pub undo: Option<&'a str>,
    /// Appended after the transaction id of an incomplete rollback as
    /// "; see {history}".
    pub history: Option<&'a str>,
}

/// A [`TxReport`] displayed with a user interface's [`OutcomeWords`].
pub struct Worded<'a> {
    report: &'a TxReport,
    words: OutcomeWords<'a>,
}

impl fmt::Display for Worded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.report.render(f, self.words)
    }
}

impl fmt::Display for TxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, OutcomeWords::default())
    }
}

impl TxReport {
    /// The report as text, its outcome line naming `words`' commands.
    pub fn worded<'a>(&'a self, words: OutcomeWords<'a>) -> Worded<'a> {
        Worded {
            report: self,
            words,
        }
    }

    fn render(&self, f: &mut fmt::Formatter<'_>, words: OutcomeWords<'_>) -> fmt::Result {
        // A report not yet worded by its reader: its remedies in the
        // neutral words.
        if self.has_remedies() {
            return self.with_words(&crate::words::NEUTRAL).render(f, words);
        }
        // Values read from the system, errors quoting paths and nft names:
        // control characters are shown escaped, never sent to the terminal.
        use crate::escape::escape_lines as esc;
        for n in &self.notes {
            writeln!(f, "note: {}", esc(n))?;
        }
        // A dry run wrote nothing: a failed dry apply reverted nothing real
        // (its steps say what the real apply would do), and a dry rollback
        // says what it would revert.
        let dry_fail = self.dry_run
            && matches!(
                self.outcome,
                Outcome::RolledBack | Outcome::RollbackIncomplete
            );
        let dry_undo =
            self.dry_run && matches!(self.outcome, Outcome::Undone | Outcome::UndoIncomplete);
        let verb = |st: StepStatus| match st {
            StepStatus::Reverted if dry_fail => "would set",
            StepStatus::Failed if dry_fail => "would FAIL",
            StepStatus::Pending if dry_fail => "not reached",
            StepStatus::Reverted if dry_undo => "would revert",
            StepStatus::RevertFailed if dry_undo => "cannot revert",
            other => verb(other),
        };
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
            let values = if dry_fail && s.status == StepStatus::Reverted {
                // Simulated, then undone in the simulation: show the write.
                format!("{} -> {}", s.before.display(), s.after.display())
            } else {
                s.transition(self.command == "rollback")
            };
            writeln!(
                f,
                "{:<w_verb$}  {:<w_key$}  {}",
                verb(s.status),
                esc(&s.key),
                esc(&values)
            )?;
            if let Some(e) = &s.error {
                writeln!(f, "{:<w_verb$}  {}", "", esc(e))?;
            }
            if let Some(n) = &s.note {
                writeln!(f, "{:<w_verb$}  {}", "", esc(n))?;
            }
        }
        let changed = self
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Applied | StepStatus::WouldApply))
            .count();
        let id = self.id.as_deref().unwrap_or("-");
        let skipped = self.skipped_keys();
        let profile = esc(&self.profile);
        let failure = esc(self.failure.as_deref().unwrap_or("?"));
        if dry_undo {
            let writes = self
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Reverted)
                .count();
            write!(
                f,
                "would roll back transaction {id} (profile `{profile}`): {writes} value(s) to restore; nothing was written"
            )?;
            if self.failure.is_some() {
                write!(f, "\nwould not complete: {failure}")?;
            }
            return Ok(());
        }
        if dry_fail {
            write!(
                f,
                "would fail: {failure}\nnothing would change: the real apply stops there and reverts what it set before"
            )?;
            return Ok(());
        }
        match self.outcome {
            Outcome::Noop if !skipped.is_empty() => write!(f, "nothing applied: every key of profile `{profile}` that could be set here is already in effect"),
            Outcome::Noop => write!(f, "nothing to do: profile `{profile}` is already in effect"),
            Outcome::WouldApply => write!(f, "would apply {changed} change(s) for profile `{profile}`"),
            Outcome::Applied => {
                write!(f, "applied {changed} change(s) for profile `{profile}`; transaction {id}")?;
                match words.undo {
                    Some(undo) => write!(f, ", undo with {undo}"),
                    None => Ok(()),
                }
            }
            Outcome::RolledBack => write!(f, "failed: {failure}\nevery change was reverted: the system is as it was before (transaction {id})"),
            Outcome::RollbackIncomplete => {
                let keys: Vec<_> = self.steps.iter().filter(|s| s.status == StepStatus::RevertFailed).map(|s| s.key.as_str()).collect();
                write!(f, "failed: {failure}\nCOULD NOT RESTORE: {} (transaction {id}", esc(&keys.join(", ")))?;
                match words.history {
                    Some(history) => write!(f, "; see {history})"),
                    None => write!(f, ")"),
                }
            }
            Outcome::Undone => write!(f, "rolled back transaction {id} (profile `{profile}`)"),
            Outcome::UndoIncomplete => write!(f, "rollback of transaction {id} incomplete: {failure}"),
        }?;
        if !skipped.is_empty() && self.outcome != Outcome::RolledBack {
            write!(
                f,
                "\nNOT IN EFFECT: {} key(s) of the profile skipped (see `skip` above): {}",
                skipped.len(),
                esc(&skipped.join(", "))
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
