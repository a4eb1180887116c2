//! `tcto-tune diagnose`: rank the likely causes of connect timeouts here.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tcto_tune::atomic_file;
use tcto_tune::diagnose::{aggregate_trace, diagnose, DiagnoseOptions, TEXT_LISTENER_ROWS};
use tcto_tune::system::Backends;
use tcto_tune::system::{TraceError, TraceSession};

use crate::common::{parse_duration_arg, parse_port_arg};
use crate::output::{CliError, Exit, Printer};

// Arguments of `diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Focus on the listener(s) on this port (repeatable).
    #[arg(long = "port", value_name = "PORT", value_parser = parse_port_arg)]
    ports: Vec<u16>,

    /// Time between the two samples that turn counters into rates (`0s`: one sample).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration_arg)]
    interval: std::time::Duration,

    /// Print node_exporter text-file metrics instead of the report; with
    /// FILE, write them there atomically (temp file + rename), for
    /// node_exporter's textfile collector.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    prometheus: Option<Option<PathBuf>>,

    /// Also record where the kernel drops packets (skb:kfree_skb drop
    /// reasons) for this long, in a private tracefs instance (root).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    trace: Option<std::time::Duration>,

    /// Group the conntrack table by who fills it even when it is below 50 %.
    #[arg(long)]
    conntrack_top: bool,

    /// Also check the route back to this client address, IPv4 or IPv6
    /// (repeatable): clients dropped by reverse-path filtering leave no
    /// socket to be seen in.
    #[arg(long = "client", value_name = "ADDR", value_parser = parse_client_arg)]
    clients: Vec<std::net::IpAddr>,
}

/// A client address: a unicast IPv4 or IPv6 address.
fn parse_client_arg(s: &str) -> Result<std::net::IpAddr, String> {
    let a: std::net::IpAddr = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address (no prefix, no port)"))?;
    if a.is_unspecified() || a.is_multicast() || a == std::net::IpAddr::from([255, 255, 255, 255]) {
        return Err(format!("`{s}` is not a unicast address"));
    }
    Ok(a)
}

/// Longest sampling interval.
const MAX_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Run `diagnose`.
pub fn run(p: &Printer, args: DiagnoseArgs) -> anyhow::Result<Exit> {
    if p.json() && args.prometheus.is_some() {
        return Err(CliError::new(
            "`--json` and `--prometheus` cannot be used together",
            Some("pick one output format".into()),
            Exit::Usage,
        )
        .into());
    }
    if args.interval > MAX_INTERVAL {
        return Err(CliError::new(
            format!(
                "`--interval` is at most 5m, got `{}`",
                tcto_tune::format_duration(args.interval)
            ),
            Some("a few seconds is enough to see rates".into()),
            Exit::Usage,
        )
        .into());
    }
    if let Some(t) = args.trace {
        if t.is_zero() || t > MAX_INTERVAL {
            return Err(CliError::new(
                format!(
                    "`--trace` must be longer than 0s and at most 5m, got `{}`",
                    tcto_tune::format_duration(t)
                ),
                Some("a few seconds during the incident is enough".into()),
                Exit::Usage,
            )
            .into());
        }
    }
    // Text shows the fullest listeners only (all of them with --port), the
    // metrics carry no process: look up only the owners that are printed.
    let owners_limit = if p.json() {
        None
    } else if args.prometheus.is_some() {
        Some(0)
    } else if args.ports.is_empty() {
        Some(TEXT_LISTENER_ROWS)
    } else {
        None
    };
    let opts = DiagnoseOptions {
        interval: args.interval,
        ports: args.ports,
        owners_limit,
        conntrack_top: args.conntrack_top,
        clients: args.clients,
        words: crate::words::cli_words(),
    };
    // The trace starts first, so it covers the sampling interval; its
    // instance is removed when the session drops, whatever happens.
    let session = match args.trace {
        Some(_) => Some(TraceSession::start().map_err(trace_error)?),
        None => None,
    };
    let mut d = diagnose(&Backends::linux(), &opts).context("cannot diagnose")?;
    let mut interrupted = false;
    if let (Some(s), Some(total)) = (session, args.trace) {
        let removed = s.removed_stale.clone();
        let text = s.finish(total).map_err(trace_error)?;
        interrupted = tcto_tune::system::TraceSession::was_interrupted();
        let mut report = aggregate_trace(text.lines(), total.as_millis() as u64);
        report.interrupted = interrupted;
        d.add_trace(report);
        for r in removed {
            d.checked.push(format!(
                "removed the stale tracefs instance `{r}` of a killed run"
            ));
        }
    }
    if let Some(Some(file)) = &args.prometheus {
        write_atomically(file, d.to_prometheus().as_bytes())?;
    } else if p.json() {
        p.json_value(&d)?;
    } else {
        // One write for the report, not one per line (stdout is line
        // buffered).
        let text = if args.prometheus.is_some() {
            d.to_prometheus()
        } else {
            d.text(&crate::words::CLI).to_string()
        };
        p.out_whole(text.as_bytes())?;
    }
    if interrupted {
        return Err(CliError::new(
            "`--trace` was interrupted by a signal: the report above covers the time traced",
            Some("the tracefs instance was removed".into()),
            Exit::Error,
        )
        .into());
    }
    Ok(Exit::Ok)
}

/// Write `bytes` to `file` so that a reader (node_exporter's textfile
/// collector, which reads only `*.prom`) sees the old file or the new one,
/// never half of one: a temp file beside it, fsynced, then renamed
/// (the library's atomic writer).
fn write_atomically(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = file.file_name().ok_or_else(|| {
        CliError::new(
            format!("`{}` names no file", file.display()),
            None,
            Exit::Usage,
        )
    })?;
    let dir = atomic_file::dir_of(file);
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = atomic_file::write(file, &tmp, bytes, atomic_file::Options::default());
    if let Err(e) = result {
        // Also a file of this name that was in the way (a crashed run of
        // the same pid): the next run starts clean.
        let _ = std::fs::remove_file(&tmp);
        let hint = (!dir.is_dir()).then(|| format!("`{}` is not a directory", dir.display()));
        return Err(CliError::new(
            format!("cannot write `{}`: {}", file.display(), e.source),
            hint,
            Exit::Error,
        )
        .into());
    }
    Ok(())
}

/// A tracing failure as one line with a hint (exit 1).
fn trace_error(e: TraceError) -> anyhow::Error {
    let hint = match &e {
        TraceError::NotRoot => "run it as root, or drop `--trace`".to_owned(),
        TraceError::NoTracefs(_) => {
            "the kernel needs CONFIG_TRACING (tracefs); drop `--trace` to diagnose without it".into()
        }
        TraceError::Io { .. } => format!(
            "{}; kernel lockdown (/sys/kernel/security/lockdown) forbids tracing; drop `--trace` to diagnose without it",
            std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
        ),
    };
    CliError::new(e.to_string(), Some(hint), Exit::Error).into()
}
