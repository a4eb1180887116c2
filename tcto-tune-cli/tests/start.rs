//! The process start the binary does itself (`src/start.rs`, issue 15)
//! behaves as std's: closed standard descriptors are reopened on
//! `/dev/null`, a closed pipe ends the process quietly by SIGPIPE, stdout
//! is complete at exit, and the exit codes are the command's.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tcto-tune");

/// Run the binary through `sh -c 'exec BIN ARGS REDIRECTION'`, so the
/// redirection (`<&-`, `>&-`) applies to the binary itself.
fn with_redirection(redirection: &str, args: &str) -> Output {
    Command::new("sh")
        .args(["-c", &format!("exec \"$0\" {args} {redirection}"), BIN])
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A profile read from `/dev/stdin` with stdin closed is `/dev/null` (not
/// a regular file), as under std, not a missing file: fd 0 was reopened.
/// The same for stdout and `/dev/stdout`, and stderr.
#[test]
fn closed_standard_descriptors_are_dev_null() {
    let null = text(&with_redirection("", "plan -p /dev/null"));
    assert_eq!(null.0, Some(1));
    assert!(null.2.contains("not a regular file"), "{}", null.2);
    for (fd, redirection) in [("stdin", "<&-"), ("stdout", ">&-")] {
        let (code, _, err) = text(&with_redirection(
            redirection,
            &format!("plan -p /dev/{fd}"),
        ));
        assert_eq!(code, Some(1), "{fd}: {err}");
        assert_eq!(
            err,
            null.2.replace("/dev/null", &format!("/dev/{fd}")),
            "{fd} closed"
        );
    }
    // stderr closed: the error goes nowhere, the exit code stays.
    let o = with_redirection("2>&-", "plan -p /dev/stderr");
    assert_eq!(o.status.code(), Some(1));
    // Everything closed, a command that prints: it succeeds silently.
    let o = with_redirection("<&- >&- 2>&-", "profiles list");
    assert_eq!(o.status.code(), Some(0));
}

/// Writing into a pipe nobody reads ends the process by SIGPIPE, with
/// nothing on stderr (no panic, no "Broken pipe" error), as
/// `tcto-tune plan | head -1` expects.
#[test]
fn a_closed_pipe_ends_the_process_quietly() {
    // A stream whose reading end is closed before the process starts (a
    // socket pair: std has no pipe constructor in this crate's MSRV), so
    // the first write fails whatever the timing.
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(reader);
    let o = Command::new(BIN)
        .args(["completions", "bash"])
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(writer)))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{:?}", o.status);
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    // Through a shell pipeline: `head -1` gets its line and the pipeline succeeds.
    let o = Command::new("sh")
        .args(["-c", "\"$0\" completions bash | head -1", BIN])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
}

/// Stdout is complete at exit, whether it is a pipe or a file.
#[test]
fn stdout_is_complete_at_exit() {
    let piped = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert!(piped.stdout.len() > 16 * 1024, "{}", piped.stdout.len());
    let file = std::env::temp_dir().join(format!("tcto-start-{}", std::process::id()));
    let o = with_redirection(&format!(">'{}'", file.display()), "completions bash");
    assert!(o.status.success());
    let written = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(written, piped.stdout);
    let (code, out, _) = text(&with_redirection("", "--version"));
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("tcto-tune ") && out.ends_with('\n'),
        "{out}"
    );
}

/// The exit codes are the command's: 0, 2 for usage, 1 for an error.
#[test]
fn exit_codes_are_the_command_s() {
    for (args, code) in [
        ("profiles list", 0),
        ("--help", 0),
        ("plan", 2),
        ("no-such-command", 2),
        ("plan -p /no/such/profile.toml", 1),
    ] {
        let (got, _, err) = text(&with_redirection("", args));
        assert_eq!(got, Some(code), "tcto-tune {args}: {err}");
    }
}
