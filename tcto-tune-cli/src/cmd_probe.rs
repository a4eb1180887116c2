//! `tcto-tune probe HOST:PORT`: N connects, classified and timed.

use clap::Args;
use tcto_tune::probe::{parse_target, probe, ProbeError, ProbeOptions};
use tcto_tune::system::TcpConnector;

use crate::common::parse_duration_arg;
use crate::output::{CliError, Exit, Printer};

// Arguments of `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The one address to connect to: `10.0.2.5:8080`, `[fd00::5]:8080`, `name:port`.
    #[arg(value_name = "HOST:PORT")]
    target: String,

    /// Number of connects.
    #[arg(long, default_value_t = 200)]
    count: u32,

    /// Connects in flight at once.
    #[arg(long, default_value_t = 20)]
    concurrency: u32,

    /// Connect timeout, e.g. `500ms`, `3s`.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration_arg)]
    timeout: std::time::Duration,
}

/// Run `probe`. Exit 0 when every connect completed its handshake, 1 otherwise.
pub fn run(p: &Printer, args: ProbeArgs) -> anyhow::Result<Exit> {
    let usage = |e: tcto_tune::probe::ProbeError| {
        // The library names the setting; the CLI names its flag.
        let message = match &e {
            ProbeError::Range { what, range, got } => {
                format!("--{} must be {range}, got {got}", what.name())
            }
            other => other.to_string(),
        };
        CliError::new(
            message,
            Some(
                "e.g. `tcto-tune probe 10.0.2.5:8080 --count 200 --concurrency 20 --timeout 3s`"
                    .into(),
            ),
            Exit::Usage,
        )
    };
    let target = parse_target(&args.target).map_err(usage)?;
    let mut opts =
        ProbeOptions::new(target, args.count, args.concurrency, args.timeout).map_err(usage)?;
    opts.words = crate::words::cli_words();
    let report = probe(&TcpConnector, &opts);
    if p.json() {
        p.json_value(&report)?;
    } else {
        p.out(&report);
    }
    Ok(if report.all_established() {
        Exit::Ok
    } else {
        Exit::Error
    })
}
