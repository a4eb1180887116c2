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
//!   for; `apply --persisted` at boot fails on such an entry);
//! - `interrupted`: a value an interrupted transaction (or an interrupted
//!   rollback) may have left: the transaction blocks the next apply until
//!   `rollback` finishes it or `apply --force-after-crash` keeps it (the
//!   rollback blocks nothing; the next `rollback`, or `rollback --to ID`
//!   past newer transactions, completes it). One interrupted before the
//!   last reboot that touched only runtime state blocks nothing and is left
//!   out, as once the next transaction passes it;
//!   beside a running one (the newest open or undoing record), an older
//!   one is interrupted, not in progress;
//! - `in progress`: the same record while the process writing it still
//!   runs (the state-dir lock is held, probed without taking it).
//!
//! A transaction the user went ahead past (`--force-after-crash`) kept
//! what it set: its values are checked like an applied one's.
//!
//! Only reads: no lock, no root needed for sysctls (the NOTRACK table and
//! the journal may need it). `--exit-code` exits 4 when anything is not in
//! effect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use tcto_tune::escape_control as esc;
use tcto_tune::journal::{Journal, Step, StepStatus, TxRecord, TxState};
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
    /// Left by a transaction or rollback that was interrupted (a crash, a
    /// kill): it may or may not hold the value, and blocks the next apply.
    Interrupted,
    /// Being written by a transaction or rollback running now (the
    /// state-dir lock is held): not vouched for until it ends.
    InProgress,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::InEffect => "in effect",
            State::Drifted => "drifted",
            State::Lost => "lost",
            State::PersistedNotActive => "persisted, not yet active",
            State::Unreadable => "UNREADABLE",
            State::Interrupted => "interrupted",
            State::InProgress => "in progress",
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
    // Interrupted records that left no value: they still block the next apply.
    let mut blocked = Vec::new();
    // An apply or rollback running now holds the lock (unknown: not
    // running). Read from the kernel's lock table, never by taking the
    // lock, and only when a record may be being written.
    let busy = if scan
        .records
        .iter()
        .any(|r| matches!(r.state, TxState::Open | TxState::Undoing))
    {
        journal.lock_holder().ok().flatten()
    } else {
        None
    };
    let writing = scan
        .records
        .iter()
        .rev()
        .find(|r| matches!(r.state, TxState::Open | TxState::Undoing))
        .map(|r| &r.id);
    for rec in &scan.records {
        match rec.state {
            TxState::Applied
            | TxState::RollbackIncomplete
            | TxState::UndoIncomplete
            | TxState::Abandoned => {}
            // Interrupted before the last reboot, it touched only runtime
            // state (the reboot reset it): it blocks nothing, the next
            // transaction passes it (`before reboot`, then left out here).
            TxState::Open | TxState::Undoing
                if rec.from_earlier_boot(boot) && rec.files_it_may_have_written().is_empty() =>
            {
                continue
            }
            TxState::Open | TxState::Undoing => {
                // The one being written is the newest open or undoing
                // record (a `rollback --to` reverts older ones too); an
                // older one was interrupted.
                let running = busy.as_deref().filter(|_| Some(&rec.id) == writing);
                // A newer transaction still to undo: `rollback` alone
                // would undo that one, not complete this.
                let newer = scan
                    .records
                    .iter()
                    .any(|r| r.id > rec.id && r.state.undoable());
                blocked.extend(interrupted(rec, running, newer, live, &mut newest));
                continue;
            }
            _ => continue,
        }
        let earlier_boot = rec.from_earlier_boot(boot);
        for step in &rec.steps {
            let now = live.read(&step.target);
            match step.status {
                StepStatus::Applied | StepStatus::RevertFailed => {}
                // Gone past a crash, a step in flight was kept when it was
                // written: the live value says which.
                StepStatus::Writing
                    if rec.state == TxState::Abandoned
                        && now.as_ref().is_ok_and(|v| v.matches(&step.after)) => {}
                _ => continue,
            }
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
            newest.insert(step.target.clone(), step_row(rec, step, state, now, why));
        }
    }
    let mut rows: Vec<Row> = newest.into_values().collect();
    rows.extend(blocked);
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

/// A journaled step's row: what it wrote against what the host holds.
fn step_row<E>(
    rec: &TxRecord,
    step: &Step,
    state: State,
    now: Result<Value, E>,
    why: Option<String>,
) -> Row {
    Row {
        source: format!("transaction {}", rec.id),
        key: step.key.clone(),
        state,
        wanted: step.after.display(),
        live: now.ok().map(|v| v.display()),
        why,
    }
}

/// The values an interrupted transaction (`Open`) or rollback (`Undoing`)
/// may have left: every step that may hold what it wrote, or one row for
/// the record when none does (it still blocks the next apply). `running`:
/// the lock holder (" (pid N)") when the process writing it still runs;
/// `newer`: a later transaction is still to undo (then `rollback --to`
/// completes an interrupted rollback, `rollback` would undo that one).
fn interrupted(
    rec: &TxRecord,
    running: Option<&str>,
    newer: bool,
    live: &mut dyn Effects,
    rows: &mut BTreeMap<Target, Row>,
) -> Option<Row> {
    let state = if running.is_some() {
        State::InProgress
    } else {
        State::Interrupted
    };
    let why = if let Some(pid) = running {
        format!(
            "{} is being written by another tcto-tune{pid}: run status again when it ends",
            rec.id
        )
    } else if rec.state == TxState::Undoing && newer {
        format!(
            "the rollback of {id} was interrupted, and newer transactions were applied since: `tcto-tune rollback --to {id}` undoes them and completes it",
            id = rec.id
        )
    } else if rec.state == TxState::Undoing {
        format!(
            "the rollback of {} was interrupted: `tcto-tune rollback` completes it",
            rec.id
        )
    } else {
        format!(
            "{} was interrupted: `tcto-tune rollback` restores what it journaled; its command run again with `--force-after-crash` keeps it",
            rec.id
        )
    };
    let mut any = false;
    for step in rec.steps.iter().filter(|s| s.status.may_hold_new_value()) {
        // Someone else's value since: not this transaction's to report.
        if step.status == StepStatus::Drifted {
            continue;
        }
        any = true;
        let now = live.read(&step.target);
        rows.insert(
            step.target.clone(),
            step_row(rec, step, state, now, Some(why.clone())),
        );
    }
    (!any).then(|| Row {
        source: format!("transaction {}", rec.id),
        key: "(nothing written)".to_owned(),
        state,
        wanted: String::new(),
        live: None,
        why: Some(why),
    })
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
