//! The write-ahead journal and the state-dir lock.
//!
//! Every change tcto-tune makes is recorded here *before* it is made: the
//! prior value of every target, read from the system, lands on disk
//! (temp file, fsync, rename, directory fsync) before the first write to
//! the kernel. A process killed mid-transaction therefore leaves an `open`
//! record that names every value needed to undo it, and no later `apply`
//! proceeds until the user has dealt with it. Later rewrites of a record
//! (its final state, a rollback) are fsynced and renamed over it; a power
//! loss can only bring back the earlier complete version.
//!
//! Layout: `STATE_DIR/` (0700) holds `lock` and `tx/NNNNNN.json` (0600),
//! one file per transaction. An id is a number of at most 12 digits, named
//! `{:06}` (see `names.rs`): ids order as numbers, the next one is one past
//! the greatest file name, and any other name in `tx/` is foreign and
//! ignored. A record is created with no-replace semantics: a new
//! transaction can never overwrite an existing file, whatever stray file
//! led it to that id. A record whose `id` is not its file name is
//! unreadable, like a torn one.
//!
//! Only the newest record can block a new transaction, so `apply` reads
//! that one record and its cost does not grow with the history. A record
//! blocks while it is `open` or `rollback_incomplete`, and only `apply`
//! writes those states, always into the record it has just created (the
//! newest). Before creating it, `apply` refuses, or with
//! `--force-after-crash` marks `abandoned`, whatever blocked; afterwards the
//! older records are only ever rewritten by `rollback` (`undone`,
//! `undo_incomplete`) or marked `abandoned`, none of which blocks.
//! `history` and `rollback` still read every record and name a corrupt one.
//!
//! A record also says which boot it was written in (see `boot.rs`): an
//! interrupted transaction from an earlier boot no longer blocks for its
//! runtime targets, which the reboot reset, only for the files it may have
//! written. `rollback` is journaled like `apply`: it marks the record
//! `undoing` before its first write, each step `reverting` before writing
//! it, and the result after, so a killed rollback leaves a record the next
//! `rollback` completes.
//!
//! One unreadable file (empty, torn, edited) never hides the others:
//! [`Journal::scan`] returns every readable record and names the rest, and
//! nothing is ever deleted automatically.

mod boot;
mod error;
mod lock;
mod names;
mod pretty;
mod record;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::atomic_file::{self, Step as WriteStep};

pub use error::JournalError;
pub use lock::{Locked, StateLock};
pub use record::{Step, StepStatus, TxRecord, TxState, JOURNAL_FORMAT, READABLE_FORMATS};

pub(crate) use record::now_rfc3339;

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The journal in a state dir.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    /// The current boot's id (see [`boot`]).
    boot: Option<String>,
}

/// A journal file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// Its transaction id (from the file name).
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be read (without the path).
    pub error: String,
}

/// Every journal file: the records that read, and the ones that did not.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Readable records, oldest first.
    pub records: Vec<TxRecord>,
    /// Unreadable files, oldest first.
    pub unreadable: Vec<Unreadable>,
}

impl Scan {
    /// Whether the journal holds no transaction at all, readable or not.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.unreadable.is_empty()
    }

    /// The unreadable file that could be a transaction at `id` or newer
    /// (`None` for any id): what an operation on `id` must not step over.
    pub fn unreadable_from(&self, id: Option<&str>) -> Option<&Unreadable> {
        self.unreadable
            .iter()
            .rev()
            .find(|u| id.is_none_or(|id| id_order(&u.id, id).is_ge()))
    }
}

/// Ids compare as numbers (a canonical id past 999999 is wider, and
/// newer); anything that is not a canonical id sorts before every id, by
/// width then bytes.
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    let num = |s: &str| names::parse_id(s.as_bytes());
    num(a)
        .cmp(&num(b))
        .then_with(|| a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

impl Journal {
    /// Open the journal at `dir` for reading: the directory must exist and
    /// be safe; a missing one is an empty journal.
    pub fn open_existing(dir: &Path) -> Result<Option<Self>, JournalError> {
        match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("inspect", dir)(e)),
            Ok(_) => {
                check_dir(dir)?;
                check_tx(&dir.join("tx"))?;
                Ok(Some(Journal {
                    dir: dir.to_owned(),
                    boot: boot::current_boot_id(),
                }))
            }
        }
    }

    /// Open the journal at `dir`, creating it (mode 0700) if needed. Only
    /// `dir` itself is created: a missing parent is an error naming it.
    pub fn open_or_create(dir: &Path) -> Result<Self, JournalError> {
        if let Err(e) = fs::symlink_metadata(dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io("inspect", dir)(e));
            }
            let parent = match dir.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) => p,
                None => dir,
            };
            if !parent.is_dir() {
                return Err(JournalError::MissingParent {
                    path: dir.to_owned(),
                    parent: parent.to_owned(),
                    why: if parent.exists() {
                        "is not a directory"
                    } else {
                        "does not exist"
                    },
                });
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Raced by another first-ever transaction: check_dir decides.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create", dir)(e)),
            }
            // DirBuilder honours the umask; make the mode exact.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io("chmod", dir))?;
        }
        check_dir(dir)?;
        let tx = dir.join("tx");
        if !check_tx(&tx)? {
            // Two first-ever transactions may race here: the loser sees
            // EEXIST, which is fine (the lock then decides who runs).
            match fs::DirBuilder::new().mode(0o700).create(&tx) {
                Ok(()) => sync_dir(dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create", &tx)(e)),
            }
        }
        Ok(Journal {
            dir: dir.to_owned(),
            boot: boot::current_boot_id(),
        })
    }

    /// The same journal, taking `boot` as the current boot id (tests
    /// simulate a reboot with it).
    pub fn with_boot_id(mut self, boot: Option<String>) -> Self {
        self.boot = boot;
        self
    }

    /// The current boot's id, as records are stamped with it.
    pub fn boot_id(&self) -> Option<&str> {
        self.boot.as_deref()
    }

    /// The state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Take the state-dir lock, failing at once if another process has it.
    /// The guard is what [`crate::apply::apply`] and [`crate::apply::undo`]
    /// take to run for real.
    pub fn lock(&self) -> Result<Locked<'_>, JournalError> {
        StateLock::acquire(&self.dir.join("lock")).map(|l| Locked::new(self, l))
    }

    /// Whether a process holds the state-dir lock now (an `apply`,
    /// `rollback` or `persist` running): `Some` with its pid as
    /// " (pid N)" (empty when unknown). Read from `/proc/locks`: it takes
    /// nothing and opens nothing, so it never gets in a transaction's way.
    pub fn lock_holder(&self) -> Result<Option<String>, JournalError> {
        lock::holder(&self.dir.join("lock"))
    }

    fn tx_dir(&self) -> PathBuf {
        self.dir.join("tx")
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.tx_dir().join(format!("{id}.json"))
    }

    /// Every transaction, oldest first. A corrupt file is an error naming it.
    pub fn list(&self) -> Result<Vec<TxRecord>, JournalError> {
        self.ids()?.iter().map(|id| self.load(id)).collect()
    }

    /// Every transaction, oldest first, with the files that cannot be read
    /// named beside them instead of failing the whole listing.
    pub fn scan(&self) -> Result<Scan, JournalError> {
        let mut scan = Scan::default();
        for id in self.ids()? {
            match self.load(&id) {
                Ok(r) => scan.records.push(r),
                // Gone between the listing and the read: not a record.
                Err(JournalError::UnknownTx { .. }) => {}
                Err(e) => scan.unreadable.push(Unreadable {
                    path: self.path_of(&id),
                    id,
                    error: match e {
                        JournalError::Corrupt {
                            line,
                            column,
                            message,
                            ..
                        } => format!("corrupt at line {line}, column {column}: {message}"),
                        JournalError::Io { action, source, .. } => {
                            format!("cannot {action} it: {source}")
                        }
                        other => crate::error_chain::error_chain(&other),
                    },
                }),
            }
        }
        Ok(scan)
    }

    /// The newest transaction, the only one that can block a new one (see
    /// the module docs); reads one file however long the history is.
    pub fn newest(&self) -> Result<Option<TxRecord>, JournalError> {
        self.newest_id()?.map(|id| self.load(&id)).transpose()
    }

    /// The newest id, in one pass over the names (no list, no sort).
    fn newest_id(&self) -> Result<Option<String>, JournalError> {
        let dir = self.tx_dir();
        let mut newest: Option<u64> = None;
        names::each_id(&dir, |id| newest = newest.max(Some(id))).map_err(io("list", &dir))?;
        Ok(newest.map(names::id_string))
    }

    /// The ids of every transaction, oldest first, from the file names
    /// alone.
    fn ids(&self) -> Result<Vec<String>, JournalError> {
        let dir = self.tx_dir();
        let mut ids = Vec::new();
        names::each_id(&dir, |id| ids.push(id)).map_err(io("list", &dir))?;
        ids.sort_unstable();
        Ok(ids.into_iter().map(names::id_string).collect())
    }

    /// Load one transaction. A record whose `id` is not its file name's is
    /// corrupt: an edited or copied file, which must not pass for another
    /// transaction.
    pub fn load(&self, id: &str) -> Result<TxRecord, JournalError> {
        if names::parse_id(id.as_bytes()).is_none() {
            return Err(JournalError::UnknownTx {
                id: id.escape_debug().to_string(),
            });
        }
        let path = self.path_of(id);
        let text = match fs::read(&path) {
            // A name that is there but leads nowhere (a dangling symbolic
            // link) is a file that cannot be read, named as such; only a
            // name that is gone is no transaction.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && fs::symlink_metadata(&path).is_err() =>
            {
                return Err(JournalError::UnknownTx { id: id.to_owned() })
            }
            Err(e) => return Err(io("read", &path)(e)),
            Ok(t) => t,
        };
        let record = parse_record(&path, &text)?;
        if record.id != id {
            return Err(JournalError::Corrupt {
                path,
                line: 1,
                column: 1,
                message: format!(
                    "its id `{}` is not its file name's `{id}`",
                    record.id.escape_debug()
                ),
            });
        }
        Ok(record)
    }

    /// The id the next transaction gets (tests only: `apply` takes it from
    /// the newest record it read, [`next_id_after`]).
    #[cfg(test)]
    pub(crate) fn next_id(&self) -> Result<String, JournalError> {
        let newest = self.newest_id()?;
        self.next_id_after(newest.as_deref())
    }

    /// The id after `newest` (the greatest file id, `None` in an empty
    /// journal); an error, before anything is written, past the last id.
    pub(crate) fn next_id_after(&self, newest: Option<&str>) -> Result<String, JournalError> {
        let last = match newest {
            None => 0,
            Some(id) => names::parse_id(id.as_bytes()).ok_or_else(|| JournalError::UnknownTx {
                id: id.escape_debug().to_string(),
            })?,
        };
        if last >= names::MAX_ID {
            return Err(JournalError::IdsExhausted {
                path: self.path_of(&names::id_string(last)),
            });
        }
        Ok(names::id_string(last + 1))
    }

    /// Durably write a new `record`: temp file (0600), fsync, rename
    /// without replacing (`RENAME_NOREPLACE`), fsync the directory (the new
    /// name must survive a power loss too). This is the write-ahead record:
    /// it is on disk before the first change. A file already at its name is
    /// never overwritten: [`JournalError::Exists`] names it.
    pub fn write(&self, record: &TxRecord) -> Result<(), JournalError> {
        self.put(record, true)
    }

    /// Replace an existing record (its final state, or a rollback's):
    /// temp file (0600), fsync, rename. The directory is not fsynced: its
    /// entry already points at a complete, fsynced version, so a power loss
    /// right after can only bring back that earlier version (an `open`
    /// record reads as interrupted, which asks the user to look), never a
    /// torn one.
    pub fn replace(&self, record: &TxRecord) -> Result<(), JournalError> {
        self.put(record, false)
    }

    fn put(&self, record: &TxRecord, new: bool) -> Result<(), JournalError> {
        if names::parse_id(record.id.as_bytes()).is_none() {
            return Err(JournalError::UnknownTx {
                id: record.id.escape_debug().to_string(),
            });
        }
        let path = self.path_of(&record.id);
        let tmp = self.tx_dir().join(format!(".{}.json.tmp", record.id));
        let body = pretty::to_vec(record).expect("records serialize");
        let options = atomic_file::Options {
            mode: 0o600,
            reuse_temp: true,
            sync_dir: new,
            ..atomic_file::Options::default()
        };
        let written = if new {
            atomic_file::write_new(&path, &tmp, &body, options)
        } else {
            atomic_file::write(&path, &tmp, &body, options)
        };
        written.map_err(|e| {
            if new
                && e.step == WriteStep::Rename
                && e.source.kind() == std::io::ErrorKind::AlreadyExists
            {
                return JournalError::Exists { path: path.clone() };
            }
            let action = match e.step {
                WriteStep::Create | WriteStep::CreateLink | WriteStep::Lock | WriteStep::Chmod => {
                    "create"
                }
                WriteStep::Write | WriteStep::Fsync => "write",
                WriteStep::Rename => "rename",
                WriteStep::SyncDir => "fsync",
            };
            io(action, &e.path)(e.source)
        })
    }
}

/// Parse a journal file; errors carry its path, line and column. Not
/// API: public for the fuzz target only (`tcto_tune::fuzzing`).
#[doc(hidden)]
pub fn parse_record(path: &Path, bytes: &[u8]) -> Result<TxRecord, JournalError> {
    let record: TxRecord = serde_json::from_slice(bytes).map_err(|e| JournalError::Corrupt {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if !READABLE_FORMATS.contains(&record.format) {
        return Err(JournalError::Corrupt {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: format!(
                "unknown journal format {} (this build reads {} to {})",
                record.format,
                READABLE_FORMATS.start(),
                READABLE_FORMATS.end()
            ),
        });
    }
    Ok(record)
}

fn check_dir(dir: &Path) -> Result<(), JournalError> {
    let meta = fs::symlink_metadata(dir).map_err(io("inspect", dir))?;
    match untrusted(&meta) {
        Some(why) => Err(JournalError::Unsafe {
            path: dir.to_owned(),
            why: why.to_owned(),
        }),
        None => Ok(()),
    }
}

/// `STATE_DIR/tx`, where the records are, must be trusted like the state
/// dir itself: a record read from it tells `rollback` what to write where,
/// and one written through a link would land outside the state dir. A link
/// is never followed (not even to a safe directory: the records would live
/// where the state dir's checks do not reach). `Ok(false)` when absent.
fn check_tx(tx: &Path) -> Result<bool, JournalError> {
    let meta = match fs::symlink_metadata(tx) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("inspect", tx)(e)),
        Ok(m) => m,
    };
    let Some(why) = untrusted(&meta) else {
        return Ok(true);
    };
    let why = match fs::read_link(tx) {
        Ok(to) if meta.file_type().is_symlink() => {
            format!("{why} (to `{}`), never followed", to.display())
        }
        _ => why,
    };
    Err(JournalError::UnsafeTx {
        path: tx.to_owned(),
        why,
    })
}

/// Why a directory of the journal cannot be trusted, if it cannot: a link,
/// not a directory, writable by others, or not ours.
fn untrusted(meta: &fs::Metadata) -> Option<String> {
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return Some("it is not a directory".into());
    }
    if meta.mode() & 0o022 != 0 {
        return Some("it is writable by group or others".into());
    }
    let uid = rustix::process::geteuid().as_raw();
    (meta.uid() != uid).then(|| format!("it is owned by uid {}, not by us (uid {uid})", meta.uid()))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    atomic_file::sync_dir(dir).map_err(io("fsync", dir))
}

#[cfg(test)]
mod tests;
