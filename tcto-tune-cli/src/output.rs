//! Output conventions: data on stdout, messages on stderr, one-line errors
//! with a `hint:` line, colour only on a terminal and never with NO_COLOR.
//! Every command prints through the one [`Printer`] `main` makes; the
//! errors it prints are [`CliError`]s with an [`Exit`] code.

use std::io::IsTerminal;

use tcto_tune::{escape_control, escape_lines};
use tcto_tune::{ProfileError, TextStyle};

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
        let hint = profile_err.and_then(|p| p.hint(&crate::words::CLI));
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

/// The one way the CLI prints, passed to every command (as uv's `Printer`).
///
/// It owns stdout and stderr, decides colour once for each (a terminal and
/// no `NO_COLOR`), and carries `--json`: data goes to stdout, as text or as
/// one JSON document, messages and errors to stderr (an error under
/// `--json` is a JSON document on stdout, so a script always gets JSON).
/// Text is printed as `print!` prints it; a JSON document is streamed.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
    color_stdout: bool,
    color_stderr: bool,
}

impl Printer {
    /// The printer for this process: `--json` as given, colour where the
    /// stream is a terminal and `NO_COLOR` is unset or empty.
    pub fn new(json: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            json,
            color_stdout: !no_color && std::io::stdout().is_terminal(),
            color_stderr: !no_color && std::io::stderr().is_terminal(),
        }
    }

    /// `--json`: data is printed as JSON, not text.
    pub fn json(&self) -> bool {
        self.json
    }

    /// How the library renders text for stdout (colour or not).
    pub fn style(&self) -> TextStyle {
        TextStyle {
            color: self.color_stdout,
        }
    }

    /// Text on stdout, as it is.
    pub fn out(&self, text: impl std::fmt::Display) {
        print!("{text}");
    }

    /// A line on stdout.
    pub fn line(&self, text: impl std::fmt::Display) {
        println!("{text}");
    }

    /// A whole text in one write on stdout, not one write per line (stdout
    /// is line buffered): a long report.
    pub fn out_whole(&self, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()?;
        Ok(())
    }

    /// A message line on stderr (a warning, progress).
    pub fn message(&self, text: impl std::fmt::Display) {
        eprintln!("{text}");
    }

    /// A value as pretty JSON on stdout.
    ///
    /// Streamed through a buffer rather than built as one string first: a
    /// `diagnose --json` of a busy host is hundreds of KiB, and growing the
    /// string copied it several times (and raised peak memory). The types
    /// printed are plain data, so serialising cannot fail half-way; only
    /// writing can.
    pub fn json_value<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, value)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }

    /// A JSON object on stdout with `"schema": 1` added when the value
    /// does not carry one itself: every `--json` document says its version.
    pub fn json_doc<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let mut v = serde_json::to_value(value)?;
        if let Some(map) = v.as_object_mut() {
            map.entry("schema").or_insert(serde_json::json!(1));
        }
        self.json_value(&v)
    }

    /// Print an error: under `--json` as one JSON object on stdout
    /// (`{"schema":1,"error":{"code","message","hint"}}`, so a script that
    /// parses stdout always gets JSON), else as text on stderr.
    pub fn error(&self, e: &CliError) {
        if self.json {
            let value = serde_json::json!({
                "schema": 1,
                "error": { "code": e.exit.code(), "message": e.message, "hint": e.hint },
            });
            if self.json_value(&value).is_ok() {
                return;
            }
        }
        let label = if self.color_stderr {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        // Messages quote paths, link targets, nft names and kernel errors: their
        // control characters are shown escaped, never sent to the terminal.
        eprintln!("{label}: {}", escape_lines(&e.message));
        if let Some(h) = &e.hint {
            let label = if self.color_stderr {
                "\x1b[1;36mhint\x1b[0m"
            } else {
                "hint"
            };
            eprintln!("{label}: {}", escape_control(h));
        }
    }
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
