//! Why the journal could not be used, with the path it concerns and a hint.

use std::path::PathBuf;

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file or directory operation failed.
    #[error("journal: cannot {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The state dir is unsafe to trust.
    #[error("state dir `{}` is unsafe: {why}", path.display())]
    Unsafe {
        /// The dir.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A journal file does not parse: torn, truncated or edited.
    #[error("journal file `{}` is corrupt at line {line}, column {column}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Another process holds the lock.
    #[error("another tcto-tune apply or rollback is running{holder} (lock `{}`)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// ` (pid N)` when known.
        holder: String,
    },
    /// No such transaction.
    #[error("no transaction `{id}` in the journal")]
    UnknownTx {
        /// The id asked for.
        id: String,
    },
    /// The state dir's parent does not exist: only the last component is
    /// ever created, so a typo cannot start a second journal.
    #[error("cannot create state dir `{}`: its parent `{}` {why}", path.display(), parent.display())]
    MissingParent {
        /// The state dir.
        path: PathBuf,
        /// Its missing parent.
        parent: PathBuf,
        /// `does not exist` or `is not a directory`.
        why: &'static str,
    },
    /// A new transaction's file already exists: it is never overwritten
    /// (it may be an earlier transaction's prior values).
    #[error("journal file `{}` already exists; the new transaction was not started", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The newest id is the last one (12 digits): no transaction can start.
    #[error("the journal's newest transaction `{}` has the last id (ids have at most 12 digits); no transaction can start", path.display())]
    IdsExhausted {
        /// The newest record's file.
        path: PathBuf,
    },
    /// A journal file that cannot be read may be a transaction that must be
    /// dealt with before the one asked for.
    #[error("journal file `{}` cannot be read ({why}); {risk}", path.display())]
    UnreadableNewer {
        /// The file.
        path: PathBuf,
        /// Why that matters here (it may be newer than what would be undone).
        risk: String,
        /// Why it cannot be read.
        why: String,
    },
}

impl JournalError {
    /// A one-line suggestion, in words that fit any caller: it names no
    /// command or flag (a command-line tool words its own from the
    /// variant's fields).
    pub fn hint(&self) -> Option<String> {
        match self {
            JournalError::Corrupt { path, .. } | JournalError::UnreadableNewer { path, .. } => {
                Some(format!(
                    "nothing was rolled back or changed; inspect `{p}` and undo by hand what it changed, then move it aside (`mv {p} {p}.broken`)",
                    p = path.display()
                ))
            }
            JournalError::Exists { path } => Some(format!(
                "nothing was changed; inspect `{p}`: if it is not a transaction of this journal, move it aside (`mv {p} {p}.broken`) and try again",
                p = path.display()
            )),
            JournalError::IdsExhausted { path } => {
                let dir = crate::atomic_file::dir_of(path);
                Some(format!(
                    "nothing was changed; keep the history elsewhere and start a new one (`mv {d} {d}.old`), or rename a stray file with that id aside",
                    d = dir.display()
                ))
            }
            JournalError::MissingParent { parent, .. } => Some(format!(
                "create the parent first (`mkdir -p {}`)",
                parent.display()
            )),
            JournalError::Locked { .. } => Some("wait for it to finish; tcto-tune never interleaves transactions".into()),
            JournalError::Unsafe { .. } => Some("use a root-owned directory with mode 0700".into()),
            JournalError::UnknownTx { .. } => None,
            JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                Some("run as root, or use a state dir you own".into())
            }
            // A record name that leads nowhere (a dangling symbolic link).
            JournalError::Io { action: "read", path, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some(format!(
                    "nothing was changed; inspect `{p}` (`ls -l {p}`), then move it aside (`mv {p} {p}.broken`)",
                    p = path.display()
                ))
            }
            JournalError::Io { .. } => None,
        }
    }
}
