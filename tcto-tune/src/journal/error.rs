//! Why the journal could not be used, with the path it concerns and a hint.

use crate::atomic_file::aside_name;
use crate::words::shell_word;
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
    /// The state dir's `tx` directory, where the records are, is unsafe to
    /// trust (a link, not a directory, writable by others, not ours).
    #[error("journal directory `{}` is unsafe: {why}; its records cannot be trusted", path.display())]
    UnsafeTx {
        /// `STATE_DIR/tx`.
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
                    "nothing was rolled back or changed; inspect `{p}` and undo by hand what it changed, then move it aside (`mv {p} {b}`)",
                    p = shell_word(&path.display().to_string()),
                    b = shell_word(&aside_name(path, "broken"))
                ))
            }
            JournalError::Exists { path } => Some(format!(
                "nothing was changed; inspect `{p}`: if it is not a transaction of this journal, move it aside (`mv {p} {b}`) and try again",
                p = shell_word(&path.display().to_string()),
                b = shell_word(&aside_name(path, "broken"))
            )),
            JournalError::IdsExhausted { path } => {
                let dir = crate::atomic_file::dir_of(path);
                Some(format!(
                    "nothing was changed; keep the history elsewhere and start a new one (`mv {d} {o}`), or rename a stray file with that id aside",
                    d = shell_word(&dir.display().to_string()),
                    o = shell_word(&aside_name(dir, "old"))
                ))
            }
            JournalError::MissingParent { parent, .. } => Some(format!(
                "create the parent first (`mkdir -p {}`)",
                shell_word(&parent.display().to_string())
            )),
            JournalError::Locked { .. } => Some("wait for it to finish; tcto-tune never interleaves transactions".into()),
            JournalError::Unsafe { .. } => Some("use a root-owned directory with mode 0700".into()),
            // Records someone else could write may be planted (a rollback
            // writes what a record says): set aside, never repaired in place.
            JournalError::UnsafeTx { path, .. } => Some(format!(
                "nothing was changed; look at it (`ls -la {p}`), then move it aside (`mv {p} {u}`): the next transaction starts a new journal; copy back only records you trust",
                p = shell_word(&path.display().to_string()),
                u = shell_word(&aside_name(path, "unsafe"))
            )),
            JournalError::UnknownTx { .. } => None,
            JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                Some("run as root, or use a state dir you own".into())
            }
            // A record name that leads nowhere (a dangling symbolic link).
            JournalError::Io { action: "read", path, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some(format!(
                    "nothing was changed; inspect `{p}` (`ls -l {p}`), then move it aside (`mv {p} {b}`)",
                    p = shell_word(&path.display().to_string()),
                    b = shell_word(&aside_name(path, "broken"))
                ))
            }
            JournalError::Io { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command a journal hint names with a path runs as printed when
    /// the state dir has a space in it (each path one shell word).
    #[test]
    fn hints_quote_the_paths_they_name() {
        let rec = PathBuf::from("/tmp/s d/tx/000002.json");
        // A torn record (the hint a power loss leads to) and one that
        // could be newer than the one to undo.
        let torn = JournalError::Corrupt {
            path: rec.clone(),
            line: 1,
            column: 2,
            message: "eof".into(),
        }
        .hint()
        .unwrap();
        assert!(
            torn.contains("`mv '/tmp/s d/tx/000002.json' '/tmp/s d/tx/000002.json.broken'`"),
            "{torn}"
        );
        let exists = JournalError::Exists { path: rec.clone() }.hint().unwrap();
        assert!(
            exists.contains("`mv '/tmp/s d/tx/000002.json' '/tmp/s d/tx/000002.json.broken'`"),
            "{exists}"
        );
        let ids = JournalError::IdsExhausted { path: rec.clone() }
            .hint()
            .unwrap();
        assert!(
            ids.contains("`mv '/tmp/s d/tx' '/tmp/s d/tx.old'`"),
            "{ids}"
        );
        let parent = JournalError::MissingParent {
            path: "/tmp/p q/s".into(),
            parent: "/tmp/p q".into(),
            why: "does not exist",
        }
        .hint()
        .unwrap();
        assert!(parent.contains("`mkdir -p '/tmp/p q'`"), "{parent}");
        let dangling = JournalError::Io {
            action: "read",
            path: rec,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .hint()
        .unwrap();
        assert!(
            dangling.contains("`ls -l '/tmp/s d/tx/000002.json'`"),
            "{dangling}"
        );
        // A plain path prints as before.
        let plain = JournalError::Exists {
            path: "/var/lib/tcto-tune/tx/000002.json".into(),
        }
        .hint()
        .unwrap();
        assert!(
            plain.contains(
                "`mv /var/lib/tcto-tune/tx/000002.json /var/lib/tcto-tune/tx/000002.json.broken`"
            ),
            "{plain}"
        );
    }
}
