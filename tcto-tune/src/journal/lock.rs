//! The state-dir lock: one `apply`, `rollback` or `persist` at a time.
//!
//! An advisory `flock(2)` on `STATE_DIR/lock`, taken without waiting. The
//! kernel drops it when the process dies (even by SIGKILL), so a crash never
//! leaves a stale lock; the pid written into the file is only for messages.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt};
use std::path::Path;

use super::JournalError;

/// Held while a transaction runs; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Take the lock at `path` or fail at once.
    pub fn acquire(path: &Path) -> Result<Self, JournalError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| JournalError::Io {
                action: "open",
                path: path.to_owned(),
                source,
            })?;
        // rustix's safe flock(2) (std's `File::try_lock` is the same call
        // but needs Rust 1.89; the workspace's MSRV is 1.85).
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(JournalError::Locked {
                    path: path.to_owned(),
                    holder,
                });
            }
            Err(e) => {
                let source = std::io::Error::from(e);
                return Err(JournalError::Io {
                    action: "lock",
                    path: path.to_owned(),
                    source,
                });
            }
        }
        // Overwrite in place at a fixed width: truncating first would make
        // ext4 (auto_da_alloc) flush the file on close, on every apply.
        let _ = file.write_all_at(format!("{:<20}\n", std::process::id()).as_bytes(), 0);
        Ok(StateLock { _file: file })
    }
}

/// Whether another process holds the lock at `path` right now: `Some` with
/// its pid (" (pid N)", or empty when unknown), `None` when it is free or
/// there is no lock file. A probe with a shared lock, released at once; it
/// writes nothing, so a reader (`status`) can tell a transaction in
/// progress from one interrupted by a crash.
pub fn holder(path: &Path) -> Result<Option<String>, JournalError> {
    // Non-blocking: opening a FIFO left at the lock's name for reading
    // would wait for a writer for ever (a hung `status` in a cron job).
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Io {
                action: "open",
                path: path.to_owned(),
                source,
            })
        }
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        // Free; closing the file drops the probe's own lock.
        Ok(()) => Ok(None),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Ok(Some(
                if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            ))
        }
        Err(e) => Err(JournalError::Io {
            action: "lock",
            path: path.to_owned(),
            source: e.into(),
        }),
    }
}

/// A journal whose state-dir lock this process holds, from
/// [`Journal::lock`](super::Journal::lock). A real transaction
/// ([`crate::apply::apply`], [`crate::apply::undo`]) takes one, so it cannot
/// run without the lock; the lock is released when this is dropped.
#[derive(Debug)]
pub struct Locked<'j> {
    journal: &'j super::Journal,
    _lock: StateLock,
}

impl<'j> Locked<'j> {
    pub(super) fn new(journal: &'j super::Journal, lock: StateLock) -> Self {
        Locked {
            journal,
            _lock: lock,
        }
    }

    /// The journal.
    pub fn journal(&self) -> &'j super::Journal {
        self.journal
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = super::Journal;
    fn deref(&self) -> &super::Journal {
        self.journal
    }
}
