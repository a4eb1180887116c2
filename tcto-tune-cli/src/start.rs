//! The process start: what std's runtime does before and after `main`,
//! minus the main thread's stack-guard probe.
//!
//! std's start (`lang_start`) reopens closed standard descriptors on
//! `/dev/null`, ignores SIGPIPE, installs a stack-overflow handler, names
//! the main thread, catches a panic out of `main` (exit 101) and flushes
//! stdout at exit. To install the handler it first asks glibc for the main
//! thread's stack (`pthread_getattr_np`), which reads and parses all of
//! `/proc/self/maps`: about 117k instructions and 20 system calls of every
//! start, 8 % of an `apply` (issue 15). The binary is `#![no_main]` and
//! [`run`] does the rest itself:
//!
//! - closed fds 0, 1 and 2 are reopened on `/dev/null` as std does (so a
//!   journal file can never become fd 1 and receive output);
//! - SIGPIPE goes to its default disposition: `tcto-tune plan | head -1`
//!   ends quietly, as before (std ignored it and `main` restored it);
//! - a panic prints std's message, with the thread named `main`, and the
//!   process exits 101;
//! - stdout is flushed before `exit`;
//! - arguments and the environment need nothing: on glibc std reads them
//!   from its own `.init_array` hook.
//!
//! What is given up: on a stack overflow (a bug: no code here recurses on
//! input) the process dies of SIGSEGV instead of printing "has overflowed
//! its stack" and aborting; and under `RUST_BACKTRACE` a panic's backtrace
//! is `std::backtrace::Backtrace`'s rendering, which is not trimmed to the
//! frames between std's markers.

use std::io::Write as _;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};

/// The C entry point (`#![no_main]`): std's start without the probe.
#[cfg(not(test))]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    run(crate::run)
}

// Test builds have libtest's `main` instead of the one above: the start
// and the command are still used.
#[cfg(test)]
const _: fn(fn() -> u8) -> i32 = run;
#[cfg(test)]
const _: fn() -> u8 = crate::run;

/// Start the process around `body` (see the module docs) and return the
/// exit status for `exit`.
pub fn run(body: fn() -> u8) -> i32 {
    reopen_closed_standard_fds();
    default_sigpipe();
    name_the_main_thread_in_panics();
    call(body)
}

/// `body`'s exit code, or 101 if it panicked; stdout flushed either way.
fn call(body: impl FnOnce() -> u8 + std::panic::UnwindSafe) -> i32 {
    let code = std::panic::catch_unwind(body).map_or(101, i32::from);
    // std's runtime flushes stdout at exit and ignores a failure.
    let _ = std::io::stdout().flush();
    code
}

/// Die quietly on a closed pipe (`tcto-tune plan --json | head`), as Unix
/// tools do, instead of panicking inside println!.
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: setting a signal disposition to its default at startup, before
    // any thread exists; no handler code is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Reopen each closed descriptor among 0, 1 and 2 on `/dev/null`, as
/// std's start does: otherwise the next file opened (a lock, a journal
/// record) would take the number and receive what is printed. One `poll`
/// finds the closed ones; if `poll` itself fails for lack of resources,
/// each is tested with `fcntl`. Aborts when `/dev/null` cannot be opened,
/// as std does.
#[allow(unsafe_code)]
fn reopen_closed_standard_fds() {
    let open_null = || {
        // SAFETY: open(2) with a NUL-terminated constant path.
        if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) } == -1 {
            std::process::abort();
        }
    };
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll(2) over an array of three initialised pollfd, no wait.
    while unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } == -1 {
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EINVAL | libc::EAGAIN | libc::ENOMEM) => {
                for fd in 0..3 {
                    // SAFETY: fcntl(2) F_GETFD only reads the fd's flags.
                    let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
                        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
                    if closed {
                        open_null();
                    }
                }
                return;
            }
            _ => std::process::abort(),
        }
    }
    for fd in fds {
        if fd.revents & libc::POLLNVAL != 0 {
            open_null();
        }
    }
}

/// std names the main thread `main` during the start this binary skips,
/// so its panic message would say `<unnamed>`: a panic on the main thread
/// is printed as std prints it for `main`; other threads keep std's hook.
fn name_the_main_thread_in_panics() {
    let std_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let main = std::thread::current().name().is_none() && gettid() == std::process::id();
        if main {
            print_panic(&mut std::io::stderr().lock(), info, "main");
        } else {
            std_hook(info)
        }
    }));
}

/// The calling thread's kernel id (the process id on the main thread).
#[allow(unsafe_code)]
fn gettid() -> u32 {
    // SAFETY: gettid(2) takes nothing and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Only the first panic gets the `RUST_BACKTRACE` note, as in std.
static FIRST_PANIC: AtomicBool = AtomicBool::new(true);

/// std's default panic message for a thread named `name` (with the OS
/// thread id from Rust 1.91 on: `cfg(panic_message_tid)`, set by build.rs).
fn print_panic(out: &mut dyn std::io::Write, info: &PanicHookInfo<'_>, name: &str) {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    #[cfg(panic_message_tid)]
    let thread = format!("'{name}' ({})", gettid());
    #[cfg(not(panic_message_tid))]
    let thread = format!("'{name}'");
    let _ = writeln!(out, "\nthread {thread} panicked at {location}:\n{msg}");
    let style = std::env::var_os("RUST_BACKTRACE");
    match style.as_ref().and_then(|s| s.to_str()) {
        None | Some("0") => {
            if FIRST_PANIC.swap(false, Ordering::Relaxed) {
                let _ = writeln!(
                    out,
                    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
                );
            }
        }
        Some(_) => {
            let _ = writeln!(
                out,
                "stack backtrace:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_is_the_body_s_and_101_after_a_panic() {
        assert_eq!(call(|| 0), 0);
        assert_eq!(call(|| 4), 4);
        assert_eq!(call(|| panic!("a bug")), 101);
    }

    fn boom() {
        panic!("boom {}", 42);
    }

    /// Run this test binary again as a child that panics in `boom` on a
    /// thread, with std's hook (on a thread std names `main`) or with
    /// ours; its stderr with the thread id blanked.
    fn panic_in_child(which: &str) -> String {
        let err = child_stderr(which);
        let start = err.find("\nthread 'main'").expect(&err);
        let mut text = err[start..].to_owned();
        let end = text.find("backtrace\n").expect(&err) + "backtrace\n".len();
        text.truncate(end);
        // The OS thread id, ` (1234)` after the name from Rust 1.91 on.
        let rest = &text["\nthread 'main'".len()..];
        if let Some(id) = rest.strip_prefix(" (").and_then(|r| r.split(')').next()) {
            assert!(id.bytes().all(|b| b.is_ascii_digit()), "{err}");
            text = text.replacen(&format!(" ({id})"), " (TID)", 1);
        }
        text
    }

    fn child_stderr(which: &str) -> String {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "start::tests::panic_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TCTO_START_PANIC_CHILD", which)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A panic on another thread (none today) keeps std's own message.
    #[test]
    fn a_panic_on_another_thread_is_std_s_message() {
        let err = child_stderr("installed");
        assert!(
            err.contains("\nthread 'worker'") && err.contains("boom 42"),
            "{err}"
        );
        assert!(!err.contains("thread 'main'"), "{err}");
    }

    #[test]
    fn panic_child() {
        let Some(which) = std::env::var_os("TCTO_START_PANIC_CHILD") else {
            return;
        };
        if which == "ours" {
            std::panic::set_hook(Box::new(|info| {
                print_panic(&mut std::io::stderr().lock(), info, "main")
            }));
        }
        if which == "installed" {
            // The hook `run` installs, on a thread that is not the main one.
            name_the_main_thread_in_panics();
        }
        let name = if which == "installed" {
            "worker"
        } else if which == "std" {
            "main"
        } else {
            "other"
        };
        let t = std::thread::Builder::new().name(name.into());
        let _ = t.spawn(boom).unwrap().join();
    }

    /// The message a panic prints is std's, byte for byte (the thread id
    /// aside), including the note on the first panic.
    #[test]
    fn a_panic_prints_what_std_prints_for_the_main_thread() {
        let theirs = panic_in_child("std");
        let ours = panic_in_child("ours");
        assert!(
            theirs.contains("panicked at tcto-tune-cli/src/start.rs:")
                && theirs.contains(":\nboom 42\nnote: run with `RUST_BACKTRACE=1`"),
            "{theirs}"
        );
        assert_eq!(ours, theirs);
    }
}
