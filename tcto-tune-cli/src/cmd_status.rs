//! `tcto-tune status`: is what was applied and persisted still in effect?
//!
//! The check a fleet runs from cron (or the Ansible module's caller):
//! for every target of every transaction that is applied and not undone,
//! the journaled value against the live one, and for every persisted
//! profile, whether its values are live. Each target gets one state:
//!
//! - `in effect`: the live value is the one applied (or persisted);
//! - `drifted`: someone changed it since (neither the applied nor the
//!   prior value, or the prior value within the same boot);
//! - `lost`: a runtime value (sysctl, table, offload) applied in an earlier
//!   boot, reset by the reboot and not persisted;
//! - `persisted, not yet active`: a persisted value the host does not
//!   hold now (it takes effect at the next boot, or `apply --persisted`);
//! - `UNREADABLE`: a journal file or a persisted entry that cannot be
//!   read, so what it applied or persists is not checked (never vouched
//!   for; `apply --persisted` at boot fails on such an entry).
//!
//! Only reads: no lock, no root needed for sysctls (the NOTRACK table and
//! the journal may need it). `--exit-code` exits 4 when anything is not in
//! effect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use tcto_tune::escape_control as esc;
use tcto_tune::journal::{Journal, StepStatus, TxState};
use tcto_tune::persist;
use tcto_tune::system::{read_persist_facts, Effects, LinuxEffects};
use tcto_tune::{Target, Value};

use crate::common::{apply_error, flag_hint, shell_quote, user_flags};
use crate::output::{CliError, Exit, Printer};
use crate::Global;

// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 4 when anything applied or persisted is not in effect
    /// (drifted, lost, or persisted but not yet active).
    #[arg(long)]
    exit_code: bool,

    /// Read the persisted profiles under DIR instead of `/`.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum State {
    InEffect,
    Drifted,
    Lost,
    PersistedNotActive,
    /// A journal file or persisted entry that cannot be read: what it
    /// applied or persists is not checked.
    Unreadable,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::InEffect => "in effect",
            State::Drifted => "drifted",
            State::Lost => "lost",
            State::PersistedNotActive => "persisted, not yet active",
            State::Unreadable => "UNREADABLE",
        }
    }
}

/// One target's state.
#[derive(Debug, Serialize)]
struct Row {
    /// `transaction 000003` or `persisted high-conn`.
    source: String,
    key: String,
    state: State,
    /// The value applied or persisted.
    wanted: String,
    /// The live value (`null` when it cannot be read).
    live: Option<String>,
    /// Why, when not in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

#[derive(Serialize)]
struct Doc<'a> {
    state_dir: String,
    rows: &'a [Row],
    in_effect: bool,
}

/// Run `status`.
pub fn run(g: &Global, p: &Printer, args: StatusArgs) -> anyhow::Result<Exit> {
    let mut live = LinuxEffects::default();
    let mut rows = transactions(g, &mut live)?;
    rows.extend(persisted(g, args.root.as_deref(), &mut live)?);
    // The commands the reasons name run with the user's state dir.
    for r in &mut rows {
        r.why = r.why.take().map(|w| user_flags(g, &w));
    }
    let all_in_effect = rows.iter().all(|r| r.state == State::InEffect);
    if p.json() {
        p.json_doc(&Doc {
            state_dir: g.state_dir.display().to_string(),
            rows: &rows,
            in_effect: all_in_effect,
        })?;
    } else {
        p.out(render(&rows));
    }
    Ok(if args.exit_code && !all_in_effect {
        Exit::Pending
    } else {
        Exit::Ok
    })
}

/// The newest applied value of each target, from every transaction that
/// is applied and not undone, against the live value.
fn transactions(g: &Global, live: &mut dyn Effects) -> anyhow::Result<Vec<Row>> {
    let Some(journal) = Journal::open_existing(&g.state_dir).map_err(|e| apply_error(e.into()))?
    else {
        return Ok(Vec::new());
    };
    let scan = journal.scan().map_err(|e| apply_error(e.into()))?;
    let boot = journal.boot_id();
    // Oldest first, so a later transaction's value for a target wins.
    let mut newest: BTreeMap<Target, Row> = BTreeMap::new();
    for rec in &scan.records {
        if !matches!(
            rec.state,
            TxState::Applied | TxState::RollbackIncomplete | TxState::UndoIncomplete
        ) {
            continue;
        }
        let earlier_boot = rec.from_earlier_boot(boot);
        for step in &rec.steps {
            if !matches!(step.status, StepStatus::Applied | StepStatus::RevertFailed) {
                continue;
            }
            let now = live.read(&step.target);
            let (state, why) = match &now {
                Ok(v) if v.matches(&step.after) => (State::InEffect, None),
                Ok(_) if earlier_boot && !matches!(step.target, Target::File { .. }) => (
                    State::Lost,
                    Some("applied before the last reboot and not persisted".to_owned()),
                ),
                Ok(v) => (
                    State::Drifted,
                    Some(format!("now `{}`, set by someone else since", v.display())),
                ),
                Err(e) => (
                    State::Drifted,
                    Some(format!(
                        "cannot read it: {}",
                        tcto_tune::apply::error_chain(e)
                    )),
                ),
            };
            newest.insert(
                step.target.clone(),
                Row {
                    source: format!("transaction {}", rec.id),
                    key: step.key.clone(),
                    state,
                    wanted: step.after.display(),
                    live: now.ok().map(|v| v.display()),
                    why,
                },
            );
        }
    }
    let mut rows: Vec<Row> = newest.into_values().collect();
    // An unreadable record could be an applied transaction: say that its
    // values are not checked, rather than vouch for a partial journal.
    for u in &scan.unreadable {
        rows.push(Row {
            source: format!("transaction {}", u.id),
            key: u.path.display().to_string(),
            state: State::Unreadable,
            wanted: String::new(),
            live: None,
            why: Some(format!(
                "{}: what it applied is not checked (`tcto-tune history` names it too)",
                u.error
            )),
        });
    }
    Ok(rows)
}

/// Every persisted profile's sysctls against the live values. (Its NOTRACK
/// flows and offloads are applied at boot by a journaled transaction, so
/// they are covered by the transactions above.)
fn persisted(g: &Global, root: Option<&Path>, live: &mut dyn Effects) -> anyhow::Result<Vec<Row>> {
    // `persist --remove NAME` is said with the user's state dir and root.
    let mut prefix = format!(
        "tcto-tune --state-dir {} persist",
        shell_quote(&g.state_dir.display().to_string())
    );
    if let Some(r) = root {
        prefix.push_str(&format!(
            " --root {}",
            shell_quote(&r.display().to_string())
        ));
    }
    let root = root.unwrap_or(Path::new("/"));
    let facts = read_persist_facts(root).map_err(|e| {
        CliError::new(
            format!(
                "cannot read the persisted profiles: {}",
                tcto_tune::apply::error_chain(&e)
            ),
            (!root.is_dir()).then(|| "`--root` must be an existing directory".to_owned()),
            Exit::Error,
        )
    })?;
    let (entries, unreadable) = persist::persisted(&facts, &crate::words::CLI);
    let mut rows = Vec::new();
    // An entry that cannot be read fails `apply --persisted` at boot: its
    // values are not checked, and never vouched for.
    for f in &unreadable {
        let mut f = f.clone();
        flag_hint(&mut f, &prefix);
        let rest = f
            .message
            .strip_prefix("cannot read the persisted entry ")
            .unwrap_or(&f.message);
        let key = facts
            .entry_files
            .keys()
            .find(|k| rest.starts_with(&format!("{k}: ")))
            .cloned()
            .unwrap_or_else(|| "persisted entry".to_owned());
        // The parser's first line says what is wrong; the rest is a
        // drawing of the line, left to `apply --persisted`.
        let why = match (rest.lines().next(), &f.hint) {
            (Some(l), Some(h)) if key != "persisted entry" => {
                format!("{}; {h}", &l[key.len() + 2..])
            }
            (_, Some(h)) => format!("{}; {h}", f.message),
            (_, None) => f.message.clone(),
        };
        rows.push(Row {
            source: "persisted".to_owned(),
            key,
            state: State::Unreadable,
            wanted: String::new(),
            live: None,
            why: Some(why),
        });
    }
    for p in &entries {
        for s in &p.sysctls {
            let Ok(name) = tcto_tune::SysctlName::new(&s.key) else {
                continue;
            };
            let target = Target::Sysctl { key: name.clone() };
            let now = live.read(&target);
            let wanted = Value::Text(s.value.clone());
            let (state, why) = match &now {
                Ok(v) if v.matches(&wanted) => (State::InEffect, None),
                Ok(Value::Absent) => (
                    State::PersistedNotActive,
                    Some("the key does not exist here (a host-wide key in a container, or its module not loaded)".into()),
                ),
                Ok(_) => (
                    State::PersistedNotActive,
                    Some("systemd-sysctl sets it at the next boot (`sysctl --system` now)".into()),
                ),
                Err(e) => (
                    State::PersistedNotActive,
                    Some(format!("cannot read it: {}", tcto_tune::apply::error_chain(e))),
                ),
            };
            rows.push(Row {
                source: format!("persisted {}", p.name),
                key: s.key.clone(),
                state,
                wanted: s.value.clone(),
                live: now.ok().map(|v| v.display()),
                why,
            });
        }
    }
    Ok(rows)
}

fn render(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "nothing applied or persisted\n".into();
    }
    let w_state = rows
        .iter()
        .map(|r| r.state.label().len())
        .max()
        .unwrap_or(0);
    let w_key = rows
        .iter()
        .map(|r| r.key.chars().count())
        .max()
        .unwrap_or(0);
    let w_src = rows.iter().map(|r| r.source.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in rows {
        let value = match (&r.live, r.state) {
            (Some(l), State::InEffect) => l.clone(),
            (_, State::Unreadable) => String::new(),
            (l, _) => format!("{} (wanted {})", l.as_deref().unwrap_or("?"), r.wanted),
        };
        out.push_str(&format!(
            "{:<w_state$}  {:<w_src$}  {:<w_key$}  {}\n",
            r.state.label(),
            esc(&r.source),
            esc(&r.key),
            esc(&value)
        ));
        if let Some(why) = &r.why {
            out.push_str(&format!("{:<w_state$}  {}\n", "", esc(why)));
        }
    }
    let bad = rows.iter().filter(|r| r.state != State::InEffect).count();
    if bad == 0 {
        out.push_str(&format!("all {} value(s) in effect\n", rows.len()));
    } else {
        out.push_str(&format!("{bad} of {} value(s) not in effect\n", rows.len()));
    }
    out
}
