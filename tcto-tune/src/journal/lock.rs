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

/// Whether a process holds the lock at `path` right now: `Some` with its
/// pid (" (pid N)", or empty when unknown), `None` when it is free, there
/// is no lock file, or the kernel's lock table cannot be read. Read from
/// `/proc/locks`, never by taking a lock: a probe that took even a shared
/// lock for an instant could make an `apply` starting at that instant fail
/// as if another tcto-tune were running. So a reader (`status`) can tell a
/// transaction in progress from one interrupted by a crash without ever
/// getting in its way. (The kernel lists only the locks of processes in
/// the reader's PID namespace: a holder in another one reads as free.)
pub fn holder(path: &Path) -> Result<Option<String>, JournalError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Io {
                action: "inspect",
                path: path.to_owned(),
                source,
            })
        }
    };
    // `apply` locks only a regular file (O_NOFOLLOW): nothing else can
    // be held by one.
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return Ok(None);
    };
    Ok(flock_holder(&table, meta.dev(), meta.ino()))
}

/// The pid (" (pid N)") of the process holding an exclusive `flock` on
/// the file `dev`/`ino`, in the text of `/proc/locks`, whose lines read
/// `1: FLOCK  ADVISORY  WRITE 4242 00:2a:1234 0 EOF` (device major and
/// minor in hex, inode in decimal; a waiter's line has `->` after the
/// number and holds nothing).
fn flock_holder(table: &str, dev: u64, ino: u64) -> Option<String> {
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    table.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, file, ..] if *file == want => {
                Some(if pid.bytes().all(|b| b.is_ascii_digit()) && *pid != "0" {
                    format!(" (pid {pid})")
                } else {
                    String::new()
                })
            }
            _ => None,
        }
    })
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

#[cfg(test)]
mod tests {
    use super::flock_holder;

    #[test]
    fn the_lock_table_names_only_an_exclusive_flock_on_that_file() {
        let dev = rustix::fs::makedev(0, 0x2a);
        let table = "1: POSIX  ADVISORY  WRITE 11 00:2a:1234 0 EOF\n\
                     2: FLOCK  ADVISORY  READ 12 00:2a:1234 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 13 00:2a:12345 0 EOF\n\
                     4: -> FLOCK  ADVISORY  WRITE 14 00:2a:1234 0 EOF\n\
                     5: FLOCK  ADVISORY  WRITE 15 00:2b:1234 0 EOF\n";
        assert_eq!(flock_holder(table, dev, 1234), None);
        let held = format!("{table}6: FLOCK  ADVISORY  WRITE 4242 00:2a:1234 0 EOF\n");
        assert_eq!(
            flock_holder(&held, dev, 1234).as_deref(),
            Some(" (pid 4242)")
        );
        // Major and minor are hex, two digits at least.
        let big = rustix::fs::makedev(259, 3);
        let t = "1: FLOCK  ADVISORY  WRITE 7 103:03:99 0 EOF\n";
        assert_eq!(flock_holder(t, big, 99).as_deref(), Some(" (pid 7)"));
    }
}
