//! A private tracefs instance for `diagnose --trace`.
//!
//! The kernel's drop reasons come from the `skb:kfree_skb` tracepoint. A
//! tool that enabled it in the global buffer would trample whatever
//! another tool (or the admin) traces there, so everything happens in an
//! instance of our own, `instances/tcto-tune-<pid>`, which is removed on
//! every exit: [`TraceSession`]'s `Drop`, also after SIGINT/SIGTERM (they
//! only set a flag while a session runs). A SIGKILLed run cannot clean up;
//! the next run removes instances whose `tcto-tune` process is gone.
//! Where tracefs is not mounted it is mounted in a private mount
//! namespace of this process, so nothing is left mounted on the host.
// FFI: a private mount namespace (unshare, mount) and sigaction
// (docs/architecture.md).
#![allow(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::observed::{kfree_skb_filter, parse_reason_names};

/// Prefix of our instances' names.
pub const INSTANCE_PREFIX: &str = "tcto-tune-";
const MOUNTS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const EVENTS: &[&str] = &["skb/kfree_skb", "tcp/tcp_retransmit_synack"];

/// Why tracing could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Not root.
    #[error("`--trace` needs root (tracefs is root-only)")]
    NotRoot,
    /// No tracefs and it cannot be mounted.
    #[error("tracefs is not available: {0}")]
    NoTracefs(String),
    /// Kernel lockdown or a missing event.
    #[error("cannot {step} `{}`", path.display())]
    Io {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TraceError + 'a {
    move |source| TraceError::Io {
        step,
        path: path.to_owned(),
        source,
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A running trace in our own instance.
#[derive(Debug)]
pub struct TraceSession {
    dir: PathBuf,
    started: Instant,
    old: Vec<(libc::c_int, libc::sigaction)>,
    /// Stale instances of earlier, killed runs that were removed.
    pub removed_stale: Vec<String>,
}

fn tracefs_root() -> Result<PathBuf, TraceError> {
    if let Some(p) = MOUNTS
        .iter()
        .map(Path::new)
        .find(|p| p.join("instances").is_dir())
    {
        return Ok(p.to_owned());
    }
    // Mount it where only this process sees it.
    // SAFETY: plain syscalls with valid, NUL-terminated arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(TraceError::NoTracefs(format!(
                "not mounted, and no private mount namespace: {}",
                io::Error::last_os_error()
            )));
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
            || libc::mount(
                c"nodev".as_ptr(),
                c"/sys/kernel/tracing".as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
        {
            return Err(TraceError::NoTracefs(format!(
                "mount -t tracefs failed: {}",
                io::Error::last_os_error()
            )));
        }
    }
    Ok(PathBuf::from(MOUNTS[0]))
}

fn write(path: &Path, text: &str) -> Result<(), TraceError> {
    std::fs::write(path, text).map_err(io_err("write", path))
}

/// Turn an instance's events off and remove it (best effort, every step
/// tried).
fn remove_instance(dir: &Path) -> io::Result<()> {
    let _ = std::fs::write(dir.join("tracing_on"), "0");
    for e in EVENTS {
        let _ = std::fs::write(dir.join("events").join(e).join("enable"), "0");
    }
    std::fs::remove_dir(dir)
}

/// Remove our instances whose process is gone (a SIGKILLed run).
fn remove_stale(instances: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(instances) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(INSTANCE_PREFIX) else {
            continue;
        };
        let alive = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "tcto-tune");
        if !alive && pid.parse::<u32>().is_ok() && remove_instance(&e.path()).is_ok() {
            out.push(name);
        }
    }
    out
}

impl TraceSession {
    /// Remove stale instances, create ours, filter and enable the events.
    pub fn start() -> Result<TraceSession, TraceError> {
        if !rustix::process::geteuid().is_root() {
            return Err(TraceError::NotRoot);
        }
        let root = tracefs_root()?;
        let instances = root.join("instances");
        let removed_stale = remove_stale(&instances);
        let dir = instances.join(format!("{INSTANCE_PREFIX}{}", std::process::id()));
        INTERRUPTED.store(false, Ordering::SeqCst);
        // The handlers go in before the instance exists: it is visible
        // while mkdir(2) still runs, and a SIGTERM sent on seeing it must
        // find them (else the default action kills us and leaves it).
        let mut handlers = TraceSession {
            dir: PathBuf::new(),
            started: Instant::now(),
            old: vec![],
            removed_stale,
        };
        handlers.install_handlers();
        // On failure `handlers` is dropped with an empty dir: it restores
        // the signal actions and removes nothing (the name may not be ours).
        std::fs::create_dir(&dir).map_err(io_err("create the tracefs instance", &dir))?;
        let mut s = handlers;
        s.dir = dir;
        // From here on, Drop removes the instance whatever fails.
        let kfree = s.dir.join("events/skb/kfree_skb");
        let format = kfree.join("format");
        let text = std::fs::read_to_string(&format).map_err(io_err("read", &format))?;
        let reasons = parse_reason_names(&text);
        write(&kfree.join("filter"), &kfree_skb_filter(&reasons))?;
        write(&s.dir.join("buffer_size_kb"), "2048")?;
        for e in EVENTS {
            write(&s.dir.join("events").join(e).join("enable"), "1")?;
        }
        write(&s.dir.join("tracing_on"), "1")?;
        s.started = Instant::now();
        Ok(s)
    }

    fn install_handlers(&mut self) {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with a plain handler that only
            // stores an atomic; the old action is kept to restore it.
            unsafe {
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &new, &mut old) == 0 {
                    self.old.push((sig, old));
                }
            }
        }
    }

    /// Whether SIGINT/SIGTERM/SIGHUP arrived during the session.
    pub fn interrupted(&self) -> bool {
        Self::was_interrupted()
    }

    /// Whether the last session was ended by SIGINT/SIGTERM/SIGHUP (also
    /// after it was dropped).
    pub fn was_interrupted() -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }

    /// Wait until `total` has passed since the start (or a signal came),
    /// stop, and return the trace's text.
    pub fn finish(self, total: Duration) -> Result<String, TraceError> {
        while self.started.elapsed() < total && !self.interrupted() {
            std::thread::sleep(Duration::from_millis(20));
        }
        write(&self.dir.join("tracing_on"), "0")?;
        let trace = self.dir.join("trace");
        std::fs::read_to_string(&trace).map_err(io_err("read", &trace))
    }

    /// How long it has traced.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for TraceSession {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = remove_instance(&self.dir);
        }
        for (sig, old) in self.old.drain(..) {
            // SAFETY: restores the action saved in install_handlers.
            unsafe {
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
        }
    }
}
