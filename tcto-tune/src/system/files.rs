//! Files: the only place tcto-tune reads or writes configuration files.
//!
//! `persist` changes files under /etc (or under an image's `--root`) as a
//! transaction: the journal records each file's prior content, a failure
//! midway restores them, `rollback` restores them later. That only works if
//! every write is all-or-nothing and never lands somewhere unexpected, so a
//! write here is: a temporary file in the same directory, `fsync`, `rename`
//! over the target, `fsync` of the directory. A symbolic link planted at the
//! target is refused, never followed (someone pointing
//! `/etc/sysctl.d/99-tcto-tune.conf` at `/etc/shadow` gets an error, not a
//! clobbered file). Parent directories missing under the root are created
//! (0755); they are left behind on rollback, empty, and are harmless.
//!
//! The read-only helpers below gather what the pure `persist` planner needs:
//! the current content of our targets, the sysctl.d files that compete with
//! ours at boot, whether nf_conntrack is built in, and whether kube-proxy or
//! TuneD would rewrite our values.

use std::fs::{self, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use resolve::{resolve, Unresolvable};

use super::SystemError;
use crate::atomic_file::{self, Step as WriteStep, TempFile, WriteError};
use crate::change::Value;
use crate::persist_facts::{
    Manager, ModuleState, PersistFacts, RootEscape, SysctlSource, MANAGED_FILES, PERSISTED_PATH,
    SYSCTL_CONF, SYSCTL_DIRS,
};

mod resolve;

/// Mode of every file tcto-tune writes.
pub const FILE_MODE: u32 = 0o644;
/// Largest file `read_file` accepts: our files are a few hundred bytes, and
/// the journal keeps a copy of whatever it reads.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

fn err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SystemError + 'a {
    move |source| SystemError::File {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// What a path holds, without following a final symlink: `Absent`,
/// `Symlink(target)` or `Bytes(content)`. A directory or device is an error.
pub fn read_file(path: &Path) -> Result<Value, SystemError> {
    refuse_link_below(path, "read")?;
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Value::Absent),
        Err(e) => return Err(err("inspect", path)(e)),
        Ok(m) => m,
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let link = fs::read_link(path).map_err(err("read link", path))?;
        return Ok(Value::Symlink(link.display().to_string()));
    }
    if !ft.is_file() {
        return Err(err("read", path)(io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(err("read", path)(io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        ))));
    }
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(err("open", path))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(err("read", path))?;
    Ok(Value::Bytes(buf))
}

/// [`read_file`] for a transaction about to change `path` (apply,
/// rollback; never a dry run): first removes the temporary files a killed
/// tcto-tune left next to it.
pub fn read_target(path: &Path) -> Result<Value, SystemError> {
    refuse_link_below(path, "read")?;
    sweep_stale_temps(path);
    read_file(path)
}

/// Make `path` hold `value`: `Bytes` (atomic write, mode 0644), `Symlink`
/// (atomic replace) or `Absent` (remove). Refuses to replace a symlink with
/// a file, and any other kind of value.
pub fn write_file(path: &Path, value: &Value) -> Result<(), SystemError> {
    if !path.is_absolute() {
        return Err(err("write", path)(io::Error::other("not an absolute path")));
    }
    refuse_link_below(path, "write")?;
    match value {
        Value::Absent => remove(path),
        Value::Bytes(b) => write_bytes(path, b),
        Value::Symlink(t) => write_symlink(path, t),
        other => Err(SystemError::Unsupported {
            what: format!("writing {} to file `{}`", other.display(), path.display()),
        }),
    }
}

/// Refuse a path with a symbolic link among its directories: the paths
/// persist plans (and rollback restores) were resolved inside the root and
/// hold none, so one found now was planted since, maybe pointing out of
/// the image (`persist-root-escape`).
fn refuse_link_below(path: &Path, action: &'static str) -> Result<(), SystemError> {
    match resolve::no_link_below(path) {
        None => Ok(()),
        Some((link, target)) => Err(err(action, path)(io::Error::other(format!(
            "`{}` is a symbolic link (to `{}`) that was not there when the path was resolved; tcto-tune never reads or writes through one (persist-root-escape)",
            link.display(),
            target.display()
        )))),
    }
}

fn parent_of(path: &Path) -> Result<&Path, SystemError> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| err("write", path)(io::Error::other("no parent directory")))
}

fn ensure_dir(dir: &Path) -> Result<(), SystemError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(err("create directory", dir))
}

fn sync_dir(dir: &Path) -> Result<(), SystemError> {
    atomic_file::sync_dir(dir).map_err(err("fsync directory", dir))
}

/// What sits at `path` now, by `lstat`.
enum Existing {
    Nothing,
    Symlink(PathBuf),
    Dir,
    Other,
}

fn existing(path: &Path) -> Result<Existing, SystemError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Nothing),
        Err(e) => Err(err("inspect", path)(e)),
        Ok(m) if m.file_type().is_symlink() => Ok(Existing::Symlink(
            fs::read_link(path).map_err(err("read link", path))?,
        )),
        Ok(m) if m.is_dir() => Ok(Existing::Dir),
        Ok(_) => Ok(Existing::Other),
    }
}

fn refuse_links_and_dirs(path: &Path) -> Result<(), SystemError> {
    match existing(path)? {
        Existing::Symlink(link) => Err(SystemError::FileIsSymlink {
            path: path.display().to_string(),
            link: link.display().to_string(),
        }),
        Existing::Dir => Err(err("replace", path)(io::Error::from_raw_os_error(
            libc::EISDIR,
        ))),
        Existing::Nothing | Existing::Other => Ok(()),
    }
}

/// Remove temporary files a killed tcto-tune left next to `path`
/// (`.NAME.tcto-tune-PID.tmp` that no process holds locked): a SIGKILL
/// between creating the temporary file and the rename leaves one, and the
/// rollback (or the next persist) of that path cleans it up. A writer holds
/// an exclusive `flock` on its temporary file until the rename, which the
/// kernel drops when the process dies (a PID check would not do: PID
/// namespaces). Only names of exactly that form are touched, never
/// followed (unlink removes a link itself).
fn sweep_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tcto-tune-", name.to_string_lossy());
    let Ok(it) = fs::read_dir(dir) else { return };
    for e in it.filter_map(|e| e.ok()) {
        let n = e.file_name().to_string_lossy().into_owned();
        let ours = n
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ours {
            continue;
        }
        let stale = match e.file_type() {
            Ok(t) if t.is_symlink() => true,
            Ok(t) if t.is_file() => OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
                .open(e.path())
                .is_ok_and(|f| {
                    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                        .is_ok()
                }),
            _ => false,
        };
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn temp_path(path: &Path) -> Result<PathBuf, SystemError> {
    let name = path
        .file_name()
        .ok_or_else(|| err("write", path)(io::Error::other("no file name")))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tcto-tune-{}.tmp", std::process::id()));
    Ok(parent_of(path)?.join(tmp))
}

/// What a failed step of the atomic writer is called in a `SystemError::File`.
fn write_err(e: WriteError) -> SystemError {
    let action = match e.step {
        WriteStep::Create => "create",
        WriteStep::CreateLink => "create link",
        WriteStep::Lock => "lock",
        WriteStep::Chmod => "chmod",
        WriteStep::Write => "write",
        WriteStep::Fsync => "fsync",
        WriteStep::Rename => "rename into place",
        WriteStep::SyncDir => "fsync directory",
    };
    err(action, &e.path)(e.source)
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), SystemError> {
    let dir = parent_of(path)?;
    ensure_dir(dir)?;
    refuse_links_and_dirs(path)?;
    let temp = temp_path(path)?;
    // A stale temp file of ours (a crash of this very pid number) goes first;
    // create_new then guarantees nobody else's file or link is written through.
    if let Existing::Other | Existing::Symlink(_) = existing(&temp)? {
        fs::remove_file(&temp).map_err(err("remove stale", &temp))?;
    }
    // Locked until the rename (the file is closed after it): a sweep of a
    // killed run's leftovers never takes a temporary file still in use. The
    // umask may have masked bits off: the mode is made exact.
    let options = atomic_file::Options {
        mode: FILE_MODE,
        exact_mode: true,
        lock: true,
        sync_dir: true,
        ..atomic_file::Options::default()
    };
    let mut tmp = TempFile::create(&temp, options).map_err(write_err)?;
    tmp.write(bytes).map_err(write_err)?;
    // Checked again right before the rename: a link planted meanwhile is
    // refused too (rename would replace, not follow, it; we still refuse).
    refuse_links_and_dirs(path)?;
    tmp.commit(path).map_err(write_err)
}

fn write_symlink(path: &Path, target: &str) -> Result<(), SystemError> {
    let dir = parent_of(path)?;
    ensure_dir(dir)?;
    if let Existing::Dir = existing(path)? {
        return Err(err("replace", path)(io::Error::from_raw_os_error(
            libc::EISDIR,
        )));
    }
    let temp = temp_path(path)?;
    if !matches!(existing(&temp)?, Existing::Nothing) {
        fs::remove_file(&temp).map_err(err("remove stale", &temp))?;
    }
    TempFile::symlink(&temp, target, true)
        .and_then(|tmp| tmp.commit(path))
        .map_err(write_err)
}

fn remove(path: &Path) -> Result<(), SystemError> {
    match existing(path)? {
        Existing::Nothing => Ok(()),
        Existing::Dir => Err(err("remove", path)(io::Error::from_raw_os_error(
            libc::EISDIR,
        ))),
        Existing::Symlink(_) | Existing::Other => {
            fs::remove_file(path).map_err(err("remove", path))?;
            sync_dir(parent_of(path)?)
        }
    }
}

/// Check that `root` exists and is a directory (it is never created: a
/// typo in an image path must not write a fresh tree somewhere).
pub fn check_root(root: &Path) -> Result<PathBuf, SystemError> {
    let meta = fs::metadata(root).map_err(err("use root directory", root))?;
    if !meta.is_dir() {
        return Err(err("use root directory", root)(
            io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    // Canonical, so that no path under it holds a link (see
    // `refuse_link_below`); a root that is itself a link is the caller's
    // own choice and is followed here, once.
    fs::canonicalize(root).map_err(err("resolve root directory", root))
}

/// `root` joined with an absolute in-system path (`/etc/x` -> `ROOT/etc/x`).
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Gather everything the persist planner needs from the system under `root`
/// (`/` for the live host).
pub fn read_persist_facts(root: &Path) -> Result<PersistFacts, SystemError> {
    let root = check_root(root)?;
    let mut facts = PersistFacts {
        root: root.display().to_string(),
        ..Default::default()
    };
    for f in MANAGED_FILES {
        let Some(host) = in_image(&root, f, false, &mut facts.escapes)? else {
            continue;
        };
        facts
            .resolved
            .insert(f.to_string(), host.display().to_string());
        facts
            .existing
            .insert(host.display().to_string(), read_file(&host)?);
    }
    if let Some(dir) = in_image(&root, PERSISTED_PATH, true, &mut facts.escapes)? {
        facts
            .resolved
            .insert(PERSISTED_PATH.to_owned(), dir.display().to_string());
        facts.entry_files = read_entries(&dir)?;
    }
    facts.sysctl_sources = read_sysctl_sources(&root, &mut facts.escapes)?;
    facts.module = conntrack_module(&root);
    facts.managers = managers(&root);
    facts.packaged_unit = packaged_unit(&root);
    Ok(facts)
}

/// Whether the Debian package's restore unit is installed under `root`
/// (through `/lib` or merged `/usr`), recognised by its `ExecStart=` line.
fn packaged_unit(root: &Path) -> bool {
    use crate::persist_facts::{PACKAGED_EXEC_START, PACKAGED_UNIT_PATH, PACKAGED_UNIT_USR_PATH};
    [PACKAGED_UNIT_PATH, PACKAGED_UNIT_USR_PATH]
        .iter()
        .any(|p| {
            look(root, p)
                .and_then(|p| fs::read_to_string(p).ok())
                .is_some_and(|t| t.lines().any(|l| l.trim() == PACKAGED_EXEC_START))
        })
}

/// [`resolve`] for a path persist reads or writes: a path leading out of
/// the root is recorded (the planner refuses with `persist-root-escape`)
/// and gives `None`; a loop or an unreadable link is an error.
fn in_image(
    root: &Path,
    path: &str,
    follow_last: bool,
    escapes: &mut Vec<RootEscape>,
) -> Result<Option<PathBuf>, SystemError> {
    match resolve(root, path, follow_last) {
        Ok(p) => Ok(Some(p)),
        Err(Unresolvable::Escape { link, target }) => {
            escapes.push(RootEscape {
                path: path.to_owned(),
                link,
                target,
            });
            Ok(None)
        }
        Err(e) => Err(err("resolve", &under(root, path))(io::Error::other(
            e.to_string(),
        ))),
    }
}

/// The `*.toml` files of the persisted.d directory (none when it is absent),
/// each read without following a link (a link is reported, not read).
fn read_entries(dir: &Path) -> Result<std::collections::BTreeMap<String, Value>, SystemError> {
    let mut out = std::collections::BTreeMap::new();
    let it = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(err("list", dir)(e)),
        Ok(it) => it,
    };
    for e in it {
        let e = e.map_err(err("list", dir))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        let path = dir.join(&name);
        // A directory, FIFO or device named `*.toml` is no entry: said as
        // what it is (an unreadable entry naming it), never an error that
        // stops every persist command, and never opened (a FIFO would block).
        let value = match fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_file() && !m.file_type().is_symlink() => {
                Value::Text(file_kind(&m.file_type()).to_owned())
            }
            _ => read_file(&path)?,
        };
        out.insert(path.display().to_string(), value);
    }
    Ok(out)
}

fn file_kind(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Host path of an in-image path for information-only reads (module
/// lists, kube-proxy or TuneD): `None` when it cannot be resolved inside.
fn look(root: &Path, path: &str) -> Option<PathBuf> {
    resolve(root, path, true).ok()
}

fn read_sysctl_sources(
    root: &Path,
    escapes: &mut Vec<RootEscape>,
) -> Result<Vec<SysctlSource>, SystemError> {
    let mut out = Vec::new();
    let conf = look(root, SYSCTL_CONF);
    for dir in SYSCTL_DIRS {
        let Some(host_dir) = in_image(root, dir, true, escapes)? else {
            continue;
        };
        let entries = match fs::read_dir(&host_dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(err("list", &host_dir)(e)),
            Ok(it) => it,
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".conf"))
            .collect();
        names.sort();
        for name in names {
            let host = host_dir.join(&name);
            let in_sys = format!("{dir}/{name}");
            let masked = fs::read_link(&host).is_ok_and(|l| l == Path::new("/dev/null"));
            let target = if masked {
                None
            } else {
                match resolve(root, &in_sys, true) {
                    Ok(t) => Some(t),
                    Err(Unresolvable::Escape { link, target }) => {
                        escapes.push(RootEscape {
                            path: in_sys,
                            link,
                            target,
                        });
                        continue;
                    }
                    // A loop or an unreadable link: systemd skips the file too.
                    Err(_) => continue,
                }
            };
            let masked = masked
                || target
                    .as_deref()
                    .is_some_and(|t| fs::metadata(t).is_ok_and(|m| m.file_type().is_char_device()));
            let is_conf = target.is_some() && target == conf;
            let text = match (&target, masked) {
                (Some(t), false) => match fs::read(t) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    // A dangling link or an unreadable file: systemd skips it too.
                    Err(_) => continue,
                },
                _ => String::new(),
            };
            out.push(SysctlSource {
                dir: dir.to_string(),
                name,
                path: host.display().to_string(),
                text,
                masked,
                is_sysctl_conf: is_conf,
            });
        }
    }
    if let Some(b) = conf.as_ref().and_then(|c| fs::read(c).ok()) {
        out.push(SysctlSource {
            dir: "/etc".into(),
            name: "sysctl.conf".into(),
            path: conf.unwrap_or_default().display().to_string(),
            text: String::from_utf8_lossy(&b).into_owned(),
            masked: false,
            is_sysctl_conf: true,
        });
    }
    Ok(out)
}

fn kernel_release() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned())
}

fn module_lists(dir: &Path) -> Option<ModuleState> {
    let builtin = dir.join("modules.builtin");
    if fs::read_to_string(&builtin)
        .is_ok_and(|t| t.lines().any(|l| l.ends_with("/nf_conntrack.ko")))
    {
        return Some(ModuleState::BuiltIn {
            evidence: format!("listed in {}", builtin.display()),
        });
    }
    let dep = dir.join("modules.dep");
    if fs::read_to_string(&dep).is_ok_and(|t| {
        t.lines().any(|l| {
            l.split(':')
                .next()
                .is_some_and(|m| m.contains("/nf_conntrack.ko"))
        })
    }) {
        return Some(ModuleState::Loadable {
            evidence: format!("listed in {}", dep.display()),
        });
    }
    None
}

/// Whether nf_conntrack is built into the kernel the files are for.
fn conntrack_module(root: &Path) -> ModuleState {
    if root == Path::new("/") {
        let sys = Path::new("/sys/module/nf_conntrack");
        if sys.is_dir() {
            // Loadable modules have an initstate file; built-in ones do not.
            return if sys.join("initstate").exists() {
                ModuleState::Loadable {
                    evidence: "/sys/module/nf_conntrack/initstate exists (a loaded module)".into(),
                }
            } else {
                ModuleState::BuiltIn {
                    evidence: "/sys/module/nf_conntrack has no initstate (built in)".into(),
                }
            };
        }
        if let Some(s) =
            kernel_release().and_then(|rel| module_lists(&Path::new("/lib/modules").join(rel)))
        {
            return s;
        }
        return ModuleState::Unknown;
    }
    // An image: look at the kernels it ships.
    for base in ["/lib/modules", "/usr/lib/modules"] {
        let Some(Ok(entries)) = look(root, base).map(fs::read_dir) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        dirs.sort();
        if let Some(s) = dirs.iter().find_map(|d| module_lists(d)) {
            return s;
        }
    }
    ModuleState::Unknown
}

/// Tools that rewrite conntrack and backlog sysctls at their own start.
fn managers(root: &Path) -> Vec<Manager> {
    let mut out = Vec::new();
    let tools: [(&str, &[&str]); 2] = [
        (
            "kube-proxy",
            &[
                "/usr/bin/kube-proxy",
                "/usr/local/bin/kube-proxy",
                "/var/lib/kube-proxy",
                "/etc/kubernetes/manifests/kube-proxy.yaml",
            ],
        ),
        (
            "TuneD",
            &[
                "/usr/sbin/tuned",
                "/etc/tuned/active_profile",
                "/usr/lib/systemd/system/tuned.service",
            ],
        ),
    ];
    for (name, paths) in tools {
        let found = paths
            .iter()
            .filter_map(|p| look(root, p))
            .find(|p| fs::symlink_metadata(p).is_ok());
        if let Some(p) = found {
            out.push(Manager {
                name: name.into(),
                evidence: p.display().to_string(),
            });
        }
    }
    if root == Path::new("/") {
        for (comm, name) in [("kube-proxy", "kube-proxy"), ("tuned", "TuneD")] {
            if out.iter().any(|m| m.name == name) {
                continue;
            }
            if let Some(pid) = process_named(comm) {
                out.push(Manager {
                    name: name.into(),
                    evidence: format!("running as pid {pid}"),
                });
            }
        }
    }
    out
}

fn process_named(comm: &str) -> Option<u32> {
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let c = fs::read_to_string(e.path().join("comm")).ok()?;
            (c.trim() == comm).then_some(pid)
        })
}

#[cfg(test)]
mod tests;
