//! `tcto-tune verify`: prove a fix held. Exit 0 only when nothing was
//! dropped and no watched queue reached its backlog during the window.

use anyhow::Context as _;
use clap::Args;
use tcto_tune::journal::Journal;
use tcto_tune::system::Backends;
use tcto_tune::verify::{old_somaxconn_from_journal, verify, VerifyOptions};

use crate::common::{parse_duration_arg, parse_port_arg};
use crate::output::{CliError, Exit, Printer};
use crate::Global;

// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// How long to watch, e.g. `60s`, `5m`.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration_arg)]
    window: std::time::Duration,

    /// Watch only the listener(s) on this port (repeatable); fails if nothing listens there.
    #[arg(long = "port", value_name = "PORT", value_parser = parse_port_arg)]
    ports: Vec<u16>,

    /// How often to look at the accept queues.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration_arg)]
    step: std::time::Duration,

    /// The somaxconn in force before the fix, to spot listeners still clamped by it
    /// (default: the value the newest `apply` replaced, from the journal in
    /// --state-dir; else the past kernel defaults 128 and 4096).
    #[arg(long, value_name = "N")]
    old_somaxconn: Option<u32>,
}

/// Run `verify`.
pub fn run(g: &Global, p: &Printer, args: VerifyArgs) -> anyhow::Result<Exit> {
    if let Some(opt) = [("--for", args.window), ("--step", args.step)]
        .into_iter()
        .find_map(|(opt, d)| d.is_zero().then_some(opt))
    {
        return Err(CliError::new(
            format!("`{opt}` must be longer than 0s"),
            Some("e.g. `tcto-tune verify --for 60s`".into()),
            Exit::Usage,
        )
        .into());
    }
    // The somaxconn an earlier `apply` replaced is the clamp to look for.
    let old_somaxconn = args.old_somaxconn.or_else(|| {
        let records = Journal::open_existing(&g.state_dir).and_then(|j| match j {
            Some(j) => j.list(),
            None => Ok(vec![]),
        });
        match records {
            Ok(r) => old_somaxconn_from_journal(&r),
            Err(e) => {
                p.message(format_args!(
                    "warning: cannot read the journal ({e}); guessing the old somaxconn"
                ));
                None
            }
        }
    });
    let opts = VerifyOptions {
        window: args.window,
        step: args.step,
        ports: args.ports,
        old_somaxconn,
    };
    let v = verify(&Backends::linux(), &opts).context("cannot verify")?;
    if p.json() {
        p.json_value(&v)?;
    } else {
        p.out(&v);
    }
    Ok(if v.passed { Exit::Ok } else { Exit::Error })
}
