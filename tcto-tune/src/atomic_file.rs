//! The one atomic file writer: a reader of the target sees the old file or
//! the new one, never half of one, and a power loss after the write keeps
//! the new one.
//!
//! A write is: a temporary file in the target's directory (so the rename
//! cannot cross a filesystem), the bytes, `fsync`, `rename` over the target,
//! and (where the new name must survive a power loss too) `fsync` of the
//! directory. The temporary file is created with `O_NOFOLLOW`: a symbolic
//! link planted at its name is never written through. It is removed again
//! whenever the write fails before the rename took place.
//!
//! Three writers use it: the journal's records (0600, the temporary file of
//! a crashed write reused), the files `persist` writes (0644 exactly, held
//! locked until the rename so a sweep of a killed run's leftovers never takes
//! it) and the CLI's Prometheus textfile. Each keeps its own error type: a
//! [`WriteError`] says which [`Step`] failed on which path, and the caller
//! words it.
//!
//! Public for embedders: whoever writes [`crate::diagnose`]'s Prometheus
//! text for node_exporter's textfile collector needs the same guarantee
//! ([`write()`], [`dir_of`]); a front end wording a hint that moves a
//! file aside needs a name nothing is at ([`aside_name`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// How the temporary file is made and what follows the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The mode the temporary file is created with (the umask applies).
    pub mode: u32,
    /// Set `mode` exactly after creating (bits the umask took come back).
    pub exact_mode: bool,
    /// Truncate a file already at the temporary name (one a crashed write
    /// of the same name left) instead of failing on it (`O_EXCL`).
    pub reuse_temp: bool,
    /// Hold an exclusive `flock` on the temporary file until after the
    /// rename.
    pub lock: bool,
    /// `fsync` the directory after the rename.
    pub sync_dir: bool,
}

impl Default for Options {
    /// What a new file gets from `open(2)`: 0666 less the umask, `O_EXCL`,
    /// no lock, no directory fsync.
    fn default() -> Self {
        Options {
            mode: 0o666,
            exact_mode: false,
            reuse_temp: false,
            lock: false,
            sync_dir: false,
        }
    }
}

/// The step of a write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the temporary file (its path).
    Create,
    /// Creating the temporary symbolic link (its path).
    CreateLink,
    /// Locking the temporary file (its path).
    Lock,
    /// Setting the temporary file's mode (its path).
    Chmod,
    /// Writing the bytes (the temporary file's path).
    Write,
    /// `fsync` of the temporary file (its path).
    Fsync,
    /// The rename over the target (the target's path).
    Rename,
    /// `fsync` of the directory (its path).
    SyncDir,
}

/// Why an atomic write failed: the step, the path it concerned, the cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step:?} `{}`", path.display())]
pub struct WriteError {
    /// What failed.
    pub step: Step,
    /// The path that step concerned (see [`Step`]).
    pub path: PathBuf,
    /// Cause.
    #[source]
    pub source: io::Error,
}

fn fail(step: Step, path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError {
        step,
        path: path.to_owned(),
        source,
    }
}

/// The directory a file lives in: its parent, or `.` for a bare name.
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `PATH.SUFFIX`, or `PATH.SUFFIX.2`, `.3`, ... : the first name nothing
/// is at, for a hint's `mv PATH NAME` (a `mv` onto an existing directory
/// would move PATH into it, onto a file would replace that file).
pub fn aside_name(path: &Path, suffix: &str) -> String {
    let base = format!("{}.{suffix}", path.display());
    std::iter::once(base.clone())
        .chain((2..1000).map(|n| format!("{base}.{n}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or(base)
}

/// `fsync` a directory, so that the names created, renamed or removed in it
/// survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// Write `bytes` to `target` through the temporary file `temp` (a name in
/// the same directory).
pub fn write(target: &Path, temp: &Path, bytes: &[u8], options: Options) -> Result<(), WriteError> {
    let mut tmp = TempFile::create(temp, options)?;
    tmp.write(bytes)?;
    tmp.commit(target)
}

/// Write `bytes` to a new file `target` through `temp`, as [`write()`]
/// does, except that a file already at `target` is never replaced: the
/// [`Step::Rename`] error then has kind `AlreadyExists`, and `temp` is
/// removed.
pub fn write_new(
    target: &Path,
    temp: &Path,
    bytes: &[u8],
    options: Options,
) -> Result<(), WriteError> {
    let mut tmp = TempFile::create(temp, options)?;
    tmp.write(bytes)?;
    tmp.commit_new(target)
}

/// A temporary file (or link) on its way to its target: removed when
/// dropped unless [`TempFile::commit`] renamed it.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    /// Kept open (and locked, with [`Options::lock`]) until after the rename.
    file: Option<File>,
    sync_dir: bool,
    committed: bool,
}

impl TempFile {
    /// Create the temporary file `temp` as `options` say.
    pub fn create(temp: &Path, options: Options) -> Result<TempFile, WriteError> {
        let mut open = OpenOptions::new();
        open.write(true)
            .mode(options.mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        // Exclusively first: the usual case, no leftover, costs no `stat`
        // (a journal record is rewritten after every step, issue 15).
        let created = open.clone().create_new(true).open(temp);
        let file = match created {
            Err(e) if options.reuse_temp && e.kind() == io::ErrorKind::AlreadyExists => {
                // A leftover that is a second link to a file (a write_new
                // on a filesystem without RENAME_NOREPLACE, killed between
                // its link and unlink) is unlinked, never truncated:
                // truncating it would empty the file it links to.
                if let Ok(meta) = fs::symlink_metadata(temp) {
                    use std::os::unix::fs::MetadataExt as _;
                    if meta.is_file() && meta.nlink() > 1 {
                        fs::remove_file(temp).map_err(fail(Step::Create, temp))?;
                    }
                }
                open.create(true).truncate(true).open(temp)
            }
            other => other,
        }
        .map_err(fail(Step::Create, temp))?;
        // From here on, a failure removes the file again.
        let tmp = TempFile {
            path: temp.to_owned(),
            file: Some(file),
            sync_dir: options.sync_dir,
            committed: false,
        };
        let file = tmp.file.as_ref().expect("just opened");
        if options.lock {
            rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| fail(Step::Lock, temp)(e.into()))?;
        }
        if options.exact_mode {
            file.set_permissions(fs::Permissions::from_mode(options.mode))
                .map_err(fail(Step::Chmod, temp))?;
        }
        Ok(tmp)
    }

    /// Create the temporary symbolic link `temp` pointing at `link`
    /// (nothing may be at `temp`).
    pub fn symlink(temp: &Path, link: &str, sync_dir: bool) -> Result<TempFile, WriteError> {
        std::os::unix::fs::symlink(link, temp).map_err(fail(Step::CreateLink, temp))?;
        Ok(TempFile {
            path: temp.to_owned(),
            file: None,
            sync_dir,
            committed: false,
        })
    }

    /// Write all of `bytes` and `fsync` them.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let Some(file) = self.file.as_mut() else {
            return Err(fail(Step::Write, &self.path)(io::Error::other(
                "a symbolic link has no content to write",
            )));
        };
        file.write_all(bytes)
            .map_err(fail(Step::Write, &self.path))?;
        file.sync_all().map_err(fail(Step::Fsync, &self.path))
    }

    /// Rename it over `target` (in the same directory), then `fsync` the
    /// directory if asked to. The file is closed (its lock released) last.
    pub fn commit(mut self, target: &Path) -> Result<(), WriteError> {
        fs::rename(&self.path, target).map_err(fail(Step::Rename, target))?;
        self.committed = true;
        self.after_rename(target)
    }

    /// Rename it to `target` only if nothing is there
    /// (`renameat2(RENAME_NOREPLACE)`; `link` then `unlink` of the
    /// temporary name where the filesystem lacks it), then as [`commit`].
    ///
    /// [`commit`]: TempFile::commit
    pub fn commit_new(mut self, target: &Path) -> Result<(), WriteError> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, &self.path, CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => self.committed = true,
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                fs::hard_link(&self.path, target).map_err(fail(Step::Rename, target))?;
                // From here the target is the new file; the temporary
                // name is only a second link to it.
                self.committed = true;
                let _ = fs::remove_file(&self.path);
            }
            Err(e) => return Err(fail(Step::Rename, target)(e.into())),
        }
        self.after_rename(target)
    }

    fn after_rename(&self, target: &Path) -> Result<(), WriteError> {
        if self.sync_dir {
            let dir = dir_of(target);
            sync_dir(dir).map_err(fail(Step::SyncDir, dir))?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Closed (and unlocked) before it is removed.
        drop(self.file.take());
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "tcto-atomic-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp_file() {
        let d = Dir::new("write");
        let (target, temp) = (d.0.join("t"), d.0.join(".t.tmp"));
        let exact = Options {
            mode: 0o640,
            exact_mode: true,
            lock: true,
            sync_dir: true,
            ..Options::default()
        };
        write(&target, &temp, b"one", exact).unwrap();
        write(&target, &temp, b"two", exact).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o7777, 0o640);
        assert!(!temp.exists());
    }

    #[test]
    fn a_temp_file_in_the_way_is_refused_or_reused_and_a_link_never_followed() {
        let d = Dir::new("temp");
        let (target, temp) = (d.0.join("t"), d.0.join(".t.tmp"));
        fs::write(&temp, b"left over").unwrap();
        let e = write(&target, &temp, b"x", Options::default()).unwrap_err();
        assert_eq!((e.step, e.path.as_path()), (Step::Create, temp.as_path()));
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert!(temp.exists(), "not ours to remove");
        let reuse = Options {
            reuse_temp: true,
            ..Options::default()
        };
        write(&target, &temp, b"x", reuse).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"x");
        // A link at the temporary name: never written through.
        let victim = d.0.join("victim");
        fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let e = write(&target, &temp, b"y", reuse).unwrap_err();
        assert_eq!(e.step, Step::Create);
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(&target).unwrap(), b"x");
    }

    #[test]
    fn write_new_never_replaces_and_a_linked_leftover_is_not_truncated() {
        let d = Dir::new("new");
        let (target, temp) = (d.0.join("t"), d.0.join(".t.tmp"));
        write_new(&target, &temp, b"first", Options::default()).unwrap();
        let e = write_new(&target, &temp, b"second", Options::default()).unwrap_err();
        assert_eq!((e.step, e.path.as_path()), (Step::Rename, target.as_path()));
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"first");
        assert!(!temp.exists(), "removed after the refused rename");
        // What the link + unlink fallback leaves when killed in between: the
        // temporary name is a second link to the target. Reusing it must
        // not empty the target through the link.
        fs::hard_link(&target, &temp).unwrap();
        let reuse = Options {
            reuse_temp: true,
            ..Options::default()
        };
        let mut tmp = TempFile::create(&temp, reuse).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"first");
        tmp.write(b"again").unwrap();
        tmp.commit(&target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"again");
        assert!(!temp.exists());
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file() {
        let d = Dir::new("rename");
        let (target, temp) = (d.0.join("sub"), d.0.join(".sub.tmp"));
        fs::create_dir(&target).unwrap();
        fs::write(target.join("f"), b"").unwrap();
        let e = write(&target, &temp, b"x", Options::default()).unwrap_err();
        assert_eq!((e.step, e.path.as_path()), (Step::Rename, target.as_path()));
        assert!(!temp.exists());
    }

    #[test]
    fn a_symlink_is_renamed_into_place() {
        let d = Dir::new("link");
        let (target, temp) = (d.0.join("l"), d.0.join(".l.tmp"));
        fs::write(&target, b"file").unwrap();
        TempFile::symlink(&temp, "/dev/null", true)
            .unwrap()
            .commit(&target)
            .unwrap();
        assert_eq!(fs::read_link(&target).unwrap(), Path::new("/dev/null"));
        assert!(!temp.exists());
    }

    #[test]
    fn the_directory_of_a_bare_name_is_the_current_one() {
        assert_eq!(dir_of(Path::new("x.prom")), Path::new("."));
        assert_eq!(dir_of(Path::new("/a/x.prom")), Path::new("/a"));
    }
}
