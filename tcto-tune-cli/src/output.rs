//! Output conventions: data on stdout, messages on stderr, one-line errors
//! with a `hint:` line, colour only on a terminal and never with NO_COLOR.

use std::io::IsTerminal;

use tcto_tune::escape::{escape_control, escape_lines};
use tcto_tune::ProfileError;

/// Process exit codes (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// An error: bad input, a failed or rolled-back change.
    Error = 1,
    /// Command-line usage error.
    Usage = 2,
    /// A safety check refused the plan.
    Refused = 3,
    /// `plan --exit-code`: changes are pending.
    Pending = 4,
}

/// An error on its way to the user.
#[derive(Debug)]
pub struct CliError {
    /// The message, one line.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Exit code.
    pub exit: Exit,
}

impl CliError {
    /// An error with a hint and exit code.
    pub fn new(message: impl Into<String>, hint: Option<String>, exit: Exit) -> Self {
        Self {
            message: message.into(),
            hint,
            exit,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        let e = match e.downcast::<CliError>() {
            Ok(c) => return c,
            Err(e) => e,
        };
        let profile_err = e.chain().find_map(|c| c.downcast_ref::<ProfileError>());
        let hint = profile_err.and_then(|p| p.hint());
        // A wrong `--set` is a usage error, like a wrong `--port`.
        // An unknown profile name or a wrong `--set` is a usage error, like
        // a wrong `--port`; a broken profile file is not.
        let exit = match profile_err {
            Some(p) if p.is_usage() => Exit::Usage,
            _ => Exit::Error,
        };
        // The whole cause chain on one line: "cannot write ...: Permission denied".
        let message = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        CliError {
            message,
            hint,
            exit,
        }
    }
}

impl Exit {
    /// The error's kind as `--json` reports it (`error.code`).
    pub fn code(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Error => "error",
            Exit::Usage => "usage",
            Exit::Refused => "refused",
            Exit::Pending => "pending",
        }
    }
}

/// Print an error: under `--json` as one JSON object on stdout
/// (`{"schema":1,"error":{"code","message","hint"}}`, so a script that
/// parses stdout always gets JSON), else as text on stderr.
pub fn print_error(e: &CliError, json: bool) {
    if json {
        let value = serde_json::json!({
            "schema": 1,
            "error": { "code": e.exit.code(), "message": e.message, "hint": e.hint },
        });
        if print_json(&value).is_ok() {
            return;
        }
    }
    let color = stderr_color();
    let label = if color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    // Messages quote paths, link targets, nft names and kernel errors: their
    // control characters are shown escaped, never sent to the terminal.
    eprintln!("{label}: {}", escape_lines(&e.message));
    if let Some(h) = &e.hint {
        let label = if color {
            "\x1b[1;36mhint\x1b[0m"
        } else {
            "hint"
        };
        eprintln!("{label}: {}", escape_control(h));
    }
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether to colour stdout.
pub fn stdout_color() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Whether to colour stderr.
pub fn stderr_color() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

/// Print a value as pretty JSON on stdout.
///
/// Streamed through a buffer rather than built as one string first: a
/// `diagnose --json` of a busy host is hundreds of KiB, and growing the
/// string copied it several times (and raised peak memory). The types
/// printed are plain data, so serialising cannot fail half-way; only
/// writing can.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Print a JSON object on stdout with `"schema": 1` added when the value
/// does not carry one itself: every `--json` document says its version.
pub fn print_json_doc<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(map) = v.as_object_mut() {
        map.entry("schema").or_insert(serde_json::json!(1));
    }
    print_json(&v)
}

/// Fail with a clear message unless this process may change network
/// settings (root, or CAP_NET_ADMIN).
pub fn require_privileges(command: &str) -> Result<(), CliError> {
    if tcto_tune::system::has_net_admin() {
        return Ok(());
    }
    Err(CliError::new(
        format!("`{command}` needs root or CAP_NET_ADMIN; nothing was changed"),
        Some(if command == "apply" {
            "run it with sudo, or try `apply --dry-run`, which needs neither".into()
        } else {
            "run it with sudo".into()
        }),
        Exit::Error,
    ))
}
