//! The journal's on-disk record of one transaction.

use serde::{Deserialize, Serialize};

use crate::change::{ChangeKind, Target, Value};

/// Version of the journal record format this build writes. Format 2 adds
/// the boot id, notes, and the in-flight step states (`writing`,
/// `reverting`); format 1 records (no boot id) are still read.
pub const JOURNAL_FORMAT: u32 = 2;

/// The record formats this build reads.
pub const READABLE_FORMATS: std::ops::RangeInclusive<u32> = 1..=JOURNAL_FORMAT;

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Changes may be in flight. Seen by a later process, it means the
    /// process died mid-transaction: "interrupted".
    Open,
    /// Every change was made and read back.
    Applied,
    /// A change failed; every change made was reverted.
    RolledBack,
    /// A change failed and some reverts failed too (see the steps).
    RollbackIncomplete,
    /// Undone later by `tcto-tune rollback`.
    Undone,
    /// `tcto-tune rollback` could not restore every step (see the steps).
    UndoIncomplete,
    /// Was open (interrupted) and the user chose `apply --force-after-crash`;
    /// `rollback --to ID` can still undo it.
    Abandoned,
    /// `tcto-tune rollback` is reverting it. Seen by a later process, the
    /// rollback was interrupted: each step is either restored or still as
    /// applied (the steps say which), and `rollback` completes it.
    Undoing,
    /// Was interrupted (or half-reverted) in an earlier boot, touched only
    /// runtime state (which the reboot reset), and a later transaction went
    /// ahead past it. `rollback --to ID` can still undo it.
    BeforeReboot,
}

impl TxState {
    /// The word `history` shows: an open record seen later is "interrupted".
    pub fn label(self) -> &'static str {
        match self {
            TxState::Open => "interrupted",
            TxState::Applied => "applied",
            TxState::RolledBack => "rolled back",
            TxState::RollbackIncomplete => "rollback incomplete",
            TxState::Undone => "undone",
            TxState::UndoIncomplete => "undo incomplete",
            TxState::Abandoned => "interrupted (abandoned)",
            TxState::Undoing => "rollback interrupted",
            TxState::BeforeReboot => "interrupted (before reboot)",
        }
    }

    /// Whether this transaction left the system half-changed, so no new one
    /// may start past it: interrupted (`open`) or a failed revert.
    pub fn blocks(self) -> bool {
        matches!(self, TxState::Open | TxState::RollbackIncomplete)
    }

    /// Whether `rollback` has something to undo in this transaction.
    pub fn undoable(self) -> bool {
        matches!(
            self,
            TxState::Open
                | TxState::Applied
                | TxState::RollbackIncomplete
                | TxState::UndoIncomplete
                | TxState::Abandoned
                | TxState::Undoing
                | TxState::BeforeReboot
        )
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Prior value recorded, not written yet. (In a format 1 record, which
    /// journaled no step results, it may or may not have been written.)
    Pending,
    /// Being written when the record was last saved: a crash then leaves it
    /// written or not (`rollback` reads which).
    Writing,
    /// Already held the wanted value: nothing written.
    Unchanged,
    /// Written and read back.
    Applied,
    /// Dry-run: would be written.
    WouldApply,
    /// The write failed or did not read back.
    Failed,
    /// Restored to its prior value (and read back).
    Reverted,
    /// Restoring the prior value failed.
    RevertFailed,
    /// Not restored by `rollback`: someone changed it since (see `error`).
    Drifted,
    /// Being restored by `rollback` when the record was last saved: a crash
    /// then leaves it restored or not (the next `rollback` reads which).
    Reverting,
    /// `rollback` found it already at its prior value: nothing written.
    AlreadyAt,
    /// A runtime value (sysctl, table, offload) changed in an earlier boot:
    /// the reboot reset it, so `rollback` leaves it as the boot set it.
    ResetByReboot,
    /// Closed without restoring: what it changed no longer exists (a NIC
    /// that was removed; see `error`). Nothing is left to restore.
    Gone,
}

impl StepStatus {
    /// Whether the step's target may hold the value the transaction wrote
    /// (what a crash or a failed revert can leave behind).
    pub fn may_hold_new_value(self) -> bool {
        matches!(
            self,
            StepStatus::Writing
                | StepStatus::Applied
                | StepStatus::Failed
                | StepStatus::RevertFailed
                | StepStatus::Drifted
                | StepStatus::Reverting
        )
    }

    /// The word `history -v` shows: the JSON name, except that a step
    /// written and read back is `written` and one whose write (or revert)
    /// was under way when the record was last saved is `in flight`: after a
    /// crash, written or not (`rollback` reads which).
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Writing => "in flight",
            StepStatus::Unchanged => "unchanged",
            StepStatus::Applied => "written",
            StepStatus::WouldApply => "would_apply",
            StepStatus::Failed => "failed",
            StepStatus::Reverted => "reverted",
            StepStatus::RevertFailed => "revert_failed",
            StepStatus::Drifted => "drifted",
            StepStatus::Reverting => "revert in flight",
            StepStatus::AlreadyAt => "already_at",
            StepStatus::ResetByReboot => "reset_by_reboot",
            StepStatus::Gone => "gone",
        }
    }
}

/// One change within a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Kind, for display.
    pub kind: ChangeKind,
    /// Display key.
    pub key: String,
    /// What it touches.
    pub target: Target,
    /// Its value before the transaction (read from the system, not the plan).
    pub before: Value,
    /// The value the transaction writes.
    pub after: Value,
    /// Where it stands.
    pub status: StepStatus,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// What the user can do about `error`, worded by the reader (absent in
    /// records written before it, whose `error` says it in the CLI's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<crate::words::Remedy>,
    /// What else the reader should know (a NIC followed to its new name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Step {
    /// The step's values as a reader takes them in: the value alone when it
    /// was left unchanged, else `from -> to` in the direction the value last
    /// moved: back to `before` for a reverted step, or for every step when
    /// `undoing` (a rollback's report).
    pub fn transition(&self, undoing: bool) -> String {
        let back = undoing
            || matches!(
                self.status,
                StepStatus::Reverted | StepStatus::RevertFailed | StepStatus::Reverting
            );
        let (from, to) = if back {
            (&self.after, &self.before)
        } else {
            (&self.before, &self.after)
        };
        match self.status {
            StepStatus::Unchanged | StepStatus::Gone => from.display(),
            StepStatus::AlreadyAt => self.before.display(),
            StepStatus::ResetByReboot => format!("{} before the reboot", self.after.display()),
            _ => format!("{} -> {}", from.display(), to.display()),
        }
    }
}

/// One transaction as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Record format ([`JOURNAL_FORMAT`]).
    pub format: u32,
    /// Transaction id (sortable, zero-padded sequence number).
    pub id: String,
    /// What made it: `apply`, `persist`.
    pub command: String,
    /// Profile name.
    pub profile: String,
    /// UTC start time, RFC 3339.
    pub started: String,
    /// UTC time of the last update, RFC 3339.
    pub updated: String,
    /// Where it stands.
    pub state: TxState,
    /// Its steps, in apply order.
    pub steps: Vec<Step>,
    /// The boot it was written in (`/proc/sys/kernel/random/boot_id`);
    /// absent in format 1 records and where the kernel does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// What happened to it beyond its state, oldest first (e.g. that it
    /// went ahead past a transaction interrupted before a reboot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl TxRecord {
    /// Whether it was written in an earlier boot than `boot` (the current
    /// one). Unknown on either side is "not known to be earlier".
    pub fn from_earlier_boot(&self, boot: Option<&str>) -> bool {
        matches!((self.boot_id.as_deref(), boot), (Some(a), Some(b)) if a != b)
    }

    /// The word `history` shows, knowing the current boot: an interrupted
    /// transaction from an earlier boot is `interrupted (before reboot)`.
    pub fn label(&self, boot: Option<&str>) -> String {
        match self.state {
            TxState::Open | TxState::RollbackIncomplete | TxState::Undoing
                if self.from_earlier_boot(boot) =>
            {
                format!("{} (before reboot)", self.state.label())
            }
            s => s.label().to_owned(),
        }
    }

    /// The files among its steps that may hold what it wrote. Files survive
    /// a reboot, so these keep a transaction from an earlier boot blocking.
    pub fn files_it_may_have_written(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.status.may_hold_new_value())
            .filter_map(|s| match &s.target {
                crate::change::Target::File { path } => Some(path.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// RFC 3339 UTC timestamp for now (no time-zone database needed).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// RFC 3339 UTC timestamp for seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Written digit by digit: a record is stamped at every step, and
    // `format!` with widths cost 3,400 instructions a stamp.
    let mut out = String::with_capacity(20);
    if (0..=9999).contains(&year) {
        digits(&mut out, year as u64, 4);
    } else {
        out.push_str(&format!("{year:04}"));
    }
    for (sep, n) in [
        ('-', month as u64),
        ('-', day as u64),
        ('T', rem / 3600),
        (':', rem % 3600 / 60),
        (':', rem % 60),
    ] {
        out.push(sep);
        digits(&mut out, n, 2);
    }
    out.push('Z');
    out
}

/// `n` in decimal, zero-padded to `width` digits (`n` has at most `width`).
fn digits(out: &mut String, n: u64, width: u32) {
    for i in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u64.pow(i) % 10) as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_222_923), "2026-11-21T01:02:03Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
    }

    #[test]
    fn timestamps_match_the_format_macro_layout() {
        // The previous formatting, kept as the reference.
        fn reference(secs: u64) -> String {
            let days = (secs / 86_400) as i64;
            let rem = secs % 86_400;
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z.rem_euclid(146_097);
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let day = doy - (153 * mp + 2) / 5 + 1;
            let month = if mp < 10 { mp + 3 } else { mp - 9 };
            let year = yoe + era * 400 + i64::from(month <= 2);
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            )
        }
        // A prime stride through 12,000 years: every month, day, hour,
        // minute and second, and years of 1 to 5 digits.
        for secs in (0..380_000_000_000u64).step_by(99_999_989) {
            assert_eq!(rfc3339(secs), reference(secs), "{secs}");
        }
    }
}
