//! Why a transaction did not start, and what the user can do about it.

use crate::journal::JournalError;
use crate::system::SystemError;

/// Why a transaction did not start (failures after the start are reported
/// in [`TxReport`](crate::apply::TxReport), with the system restored).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Refusing findings were not allowed.
    #[error("refused by safety check(s): {}", codes.join(", "))]
    Refused {
        /// The codes.
        codes: Vec<String>,
    },
    /// An earlier transaction was interrupted.
    #[error("transaction {id} was interrupted (its process died before it finished); its changes may be half made")]
    Interrupted {
        /// Its id.
        id: String,
    },
    /// A transaction interrupted before the last reboot may have written
    /// files, which survive a reboot (its runtime changes do not block).
    #[error("transaction {id} was interrupted before the last reboot and may have written {}; files survive a reboot", files.join(", "))]
    InterruptedFiles {
        /// Its id.
        id: String,
        /// The files.
        files: Vec<String>,
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
    /// A one-line suggestion, in words that fit any caller: it names no
    /// command or flag (a command-line tool words its own from the
    /// variant's fields: the codes, the transaction id).
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Refused { codes } => {
                let (lift, never): (Vec<&String>, Vec<&String>) =
                    codes.iter().partition(|c| crate::check::allowable(c));
                Some(if never.is_empty() {
                    format!(
                        "the findings say why and what to do; to proceed anyway allow {}",
                        lift.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" ")
                    )
                } else {
                    format!(
                        "the findings say why; {} can never be allowed: remove the key from the profile",
                        never.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                    )
                })
            }
            ApplyError::Interrupted { id } => Some(format!(
                "rolling back {id} restores the values it journaled; going ahead after the crash keeps them"
            )),
            ApplyError::InterruptedFiles { id, .. } => Some(format!(
                "rolling back {id} restores the files it journaled; going ahead after the crash keeps them"
            )),
            ApplyError::Incomplete { id } => Some(format!(
                "the journal of {id} says what could not be restored; fix the cause, then roll it back (or go ahead after the crash to keep things as they are)"
            )),
            ApplyError::Journal(j) => j.hint(),
            ApplyError::Read { .. } => None,
        }
    }
}

/// Why one step of a transaction failed (its write, or its read-back).
#[derive(Debug)]
pub enum StepError {
    /// The backend failed.
    System(SystemError),
    /// The write went through but the target holds something else (the
    /// kernel clamped the value or ignored it).
    Kept {
        /// What the target holds, as shown.
        kept: String,
        /// What was written, as shown.
        wanted: String,
    },
}

impl From<SystemError> for StepError {
    fn from(e: SystemError) -> Self {
        StepError::System(e)
    }
}

impl std::fmt::Display for StepError {
    /// One line, causes included: the form steps record and reports print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::System(e) => f.write_str(&super::error_chain(e)),
            StepError::Kept { kept, wanted } => write!(
                f,
                "the kernel kept `{kept}` instead of `{wanted}` (clamped or refused silently)"
            ),
        }
    }
}

// No `source`: the one-line form already carries the causes.
impl std::error::Error for StepError {}
