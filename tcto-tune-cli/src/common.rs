//! Arguments shared by the commands that take a profile, resolved in one place.

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Args;
use tcto_tune::names::parse_port;
use tcto_tune::{PlanOptions, Profile};

use crate::output::{CliError, Exit};

/// `--profile`, `--set`, `--port`, `--app-backlog`, `--allow`.
#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// Built-in profile name (see `tcto-tune profiles list`) or a path to a TOML file.
    #[arg(long, short = 'p', value_name = "NAME|PATH")]
    pub profile: String,

    /// Fill a variable the profile declares, e.g. `--set backend=10.0.2.0/24`.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub set: Vec<(String, String)>,

    /// An application port whose listener the plan must respect (repeatable).
    #[arg(long = "port", value_name = "PORT", value_parser = parse_port_arg)]
    pub ports: Vec<u16>,

    /// The backlog the application on PORT asks for in listen(), e.g. `8080=4096`.
    #[arg(long = "app-backlog", value_name = "PORT=N", value_parser = parse_app_backlog)]
    pub app_backlogs: Vec<(u16, u32)>,

    /// Allow a refusing finding or a skip code, by its code (repeatable).
    #[arg(long = "allow", value_name = "CODE", value_parser = parse_code)]
    pub allow: Vec<String>,

    /// NOTRACK: replace the flows this profile applied earlier instead of
    /// adding to them (other profiles' flows stay).
    #[arg(long)]
    pub replace: bool,
}

impl ProfileArgs {
    /// Load the profile, add the listeners named on the command line, and
    /// build the plan options.
    pub fn resolve(&self) -> anyhow::Result<(Profile, PlanOptions)> {
        let vars = variables(&self.set)?;
        let mut profile = tcto_tune::profile::load(&self.profile, &vars)
            .with_context(|| format!("cannot load profile `{}`", self.profile))?;
        for port in &self.ports {
            profile.add_listener(*port, None);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (port, backlog) in &self.app_backlogs {
            if !seen.insert(*port) {
                return Err(CliError::new(
                    format!("`--app-backlog {port}=...` given twice"),
                    Some("give one backlog per port".into()),
                    Exit::Usage,
                )
                .into());
            }
            profile.add_listener(*port, Some(*backlog));
        }
        let opts = PlanOptions {
            allow: self.allow.iter().cloned().collect(),
            notrack_replace: self.replace,
        };
        Ok((profile, opts))
    }
}

/// The `--set` pairs as a map; a variable given twice is a usage error.
pub fn variables(set: &[(String, String)]) -> Result<BTreeMap<String, String>, CliError> {
    let mut vars = BTreeMap::new();
    for (k, v) in set {
        if vars.insert(k.clone(), v.clone()).is_some() {
            return Err(CliError::new(
                format!("`--set {k}` given twice"),
                None,
                Exit::Usage,
            ));
        }
    }
    Ok(vars)
}

/// clap parser for `NAME=VALUE`.
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    if k.is_empty() {
        return Err("the variable name is empty".into());
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// clap parser for a port.
pub fn parse_port_arg(s: &str) -> Result<u16, String> {
    parse_port(s).map_err(|e| e.to_string())
}

fn parse_app_backlog(s: &str) -> Result<(u16, u32), String> {
    let (p, n) = s.split_once('=').ok_or("expected PORT=N, e.g. 8080=4096")?;
    let port = parse_port(p).map_err(|e| e.to_string())?;
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=i32::MAX as u32).contains(n))
        .ok_or_else(|| format!("backlog `{n}` is not an integer from 1 to {}", i32::MAX))?;
    Ok((port, n))
}

fn parse_code(s: &str) -> Result<String, String> {
    if !tcto_tune::check::allowable(s) {
        return Err(format!(
            "`{s}` can never be allowed: the key makes the kernel run a program or load code as root; remove it from the profile"
        ));
    }
    let known = tcto_tune::check::CODES.iter().any(|(c, _, _)| *c == s);
    if known {
        Ok(s.to_owned())
    } else {
        let codes: Vec<_> = tcto_tune::check::CODES.iter().map(|(c, _, _)| *c).collect();
        Err(format!("unknown code; known codes: {}", codes.join(", ")))
    }
}

/// clap parser for a duration (`500ms`, `3s`, `1m`).
pub fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    tcto_tune::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// `--wait DURATION` of the commands that take the state-dir lock.
#[derive(Debug, Clone, Args)]
pub struct WaitArg {
    /// Wait up to DURATION for the state-dir lock held by another tcto-tune
    /// (a provisioning run overlapping a cron'd one) instead of failing at
    /// once, e.g. `--wait 30s`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub wait: Option<std::time::Duration>,
}

/// Take the journal's lock, waiting up to `wait` while another process
/// holds it, with the holder's pid in a progress line on stderr (once, then
/// every 10 s). Without `--wait` a held lock fails at once, as before.
pub fn lock_journal<'j>(
    journal: &'j tcto_tune::journal::Journal,
    wait: &WaitArg,
) -> Result<tcto_tune::journal::Locked<'j>, tcto_tune::journal::JournalError> {
    use tcto_tune::journal::JournalError;
    let start = std::time::Instant::now();
    let mut said: Option<std::time::Instant> = None;
    loop {
        match journal.lock() {
            Err(JournalError::Locked { holder, .. })
                if wait.wait.is_some_and(|w| start.elapsed() < w) =>
            {
                if said.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)) {
                    eprintln!(
                        "waiting for the state-dir lock held by another tcto-tune{holder} ({} of {} waited)",
                        tcto_tune::duration::format_duration(std::time::Duration::from_secs(start.elapsed().as_secs())),
                        tcto_tune::duration::format_duration(wait.wait.unwrap_or_default())
                    );
                    said = Some(std::time::Instant::now());
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}
