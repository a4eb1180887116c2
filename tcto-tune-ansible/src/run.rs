//! The three states, each the library call the CLI command makes.
//!
//! `applied` is `tcto-tune apply`, `persisted` is `tcto-tune persist`,
//! `rolled_back` is `tcto-tune rollback`: the same plan, the same journaled
//! transaction, the same lock, linked in rather than run as a subprocess.
//! Check mode is the CLI's `--dry-run`: the same transaction against the
//! simulated host seeded from the live state, so `changed` and `diff` are
//! what the real run would report, and nothing is written or journaled.
//!
//! Journal records the module writes are named `ansible` (apply) and
//! `ansible-persist`, so `tcto-tune history` shows where a change came
//! from and `state: rolled_back` undoes the module's own newest
//! transaction, not one an operator made by hand since.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tcto_tune::apply::{
    apply, blocked_by, error_chain, select_for_rollback, undo, ApplyError, ApplyOptions, Outcome,
    Run, TxReport,
};
use tcto_tune::journal::{Journal, JournalError, StepStatus, TxRecord};
use tcto_tune::persist::sysctl_d;
use tcto_tune::persist::{self, PersistFacts, PersistOptions, SYSCTL_D_PATH};
use tcto_tune::read_state;
use tcto_tune::system::{
    has_net_admin, read_persist_facts, Backends, Effects, LinuxEffects, SimEffects, SystemError,
};
use tcto_tune::{Plan, PlanOptions, Profile, Severity, SystemState, Target, Value};

use crate::args::{Args, State};
use crate::diff::{self, DiffEntry};
use crate::words::{shell_word, Module};
use tcto_tune::words::Words as _;

/// Journal command of an apply made by the module.
pub const TX_APPLY: &str = "ansible";
/// Journal command of a persist made by the module.
pub const TX_PERSIST: &str = "ansible-persist";

/// The JSON object the module prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModuleResult {
    /// Whether the host changed (or, in check mode, would).
    pub changed: bool,
    /// Whether the task failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// One line for the user.
    pub msg: String,
    /// `--diff`: one entry per target that changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Vec<DiffEntry>>,
    /// The plan, as `tcto-tune plan --json` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<serde_json::Value>,
    /// The journal id of the transaction made (applied, persisted).
    pub transaction: Option<String>,
    /// The ids undone (rolled_back), newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undone: Vec<String>,
    /// The transaction reports: every step with before, after, status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<TxReport>,
    /// Findings of severity warn, shown by Ansible as warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

type Failed = Box<ModuleResult>;

fn fail(mut res: ModuleResult, msg: impl Into<String>) -> Failed {
    res.failed = true;
    res.msg = msg.into();
    Box::new(res)
}

/// Run the task. Never panics on bad input: every error is a failed result.
pub fn run(args: &Args) -> ModuleResult {
    let r = match &args.state {
        State::Applied => applied(args),
        State::Persisted => persisted(args),
        State::RolledBack { to } => rolled_back(args, to.as_deref()),
    };
    r.unwrap_or_else(|f| *f)
}

fn with_hint(msg: String, hint: Option<String>) -> String {
    match hint {
        Some(h) => format!("{msg}; hint: {h}"),
        None => msg,
    }
}

/// The real transaction: open (or create) the journal, take its lock and
/// apply `plan` to the live host. A journal that cannot be opened or locked
/// fails the task with `res`; the transaction's own outcome is returned.
fn apply_journaled(
    args: &Args,
    res: &ModuleResult,
    plan: &Plan,
    aopts: &ApplyOptions,
) -> Result<Result<TxReport, ApplyError>, Failed> {
    let journal = Journal::open_or_create(&args.state_dir)
        .map_err(|e| fail(res.clone(), journal_msg(&e, &args.state_dir)))?;
    let locked = journal
        .lock()
        .map_err(|e| fail(res.clone(), journal_msg(&e, &args.state_dir)))?;
    Ok(apply(
        plan,
        Run::Journaled(&mut LinuxEffects::default(), &locked),
        aopts,
    ))
}

fn journal_msg(e: &JournalError, state_dir: &std::path::Path) -> String {
    let hint = match e {
        JournalError::Unsafe { .. } => {
            Some("use a root-owned directory with mode 0700 (option `state_dir`)".to_owned())
        }
        JournalError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Some(
                "run the task as root (`become: true`), or set `state_dir` to a directory you own"
                    .to_owned(),
            )
        }
        JournalError::UnknownTx { .. } => Some(format!(
            "`tcto-tune history --state-dir {}` lists the transactions",
            shell_word(&state_dir.display().to_string())
        )),
        JournalError::MissingParent { parent, .. } => Some(format!(
            "check the task's `state_dir` for a typo, or create the parent first (`mkdir -p {}`)",
            shell_word(&parent.display().to_string())
        )),
        // The module has no option to wait for the lock: Ansible retries.
        JournalError::Locked { .. } => Some("wait for the other run to finish and run the task again, or let Ansible retry it (`register: r`, `until: r is not failed`, `retries: 5`, `delay: 10`); tcto-tune never interleaves transactions".into()),
        other => other.hint(),
    };
    with_hint(error_chain(e), hint)
}

fn apply_msg(e: &ApplyError, args: &Args) -> String {
    let state_dir = &args.state_dir;
    let hint = match e {
        ApplyError::Interrupted { id } | ApplyError::Incomplete { id } => Some(format!(
            "run the task with `state: rolled_back` to restore the values journaled by {id} (what `tcto-tune rollback` does)"
        )),
        ApplyError::InterruptedFiles { id, .. } => {
            let words = Module::of_task(args);
            Some(format!(
                "run `{}` to restore the files journaled by {id}, or {} to keep them",
                words.command("rollback", false),
                words.name(&tcto_tune::words::Action::ForceAfterCrash)
            ))
        }
        ApplyError::Refused { codes } if codes.iter().all(|c| tcto_tune::allowable(c)) => {
            Some(format!(
                "the findings say why and what to do; to proceed anyway add {} to the task's `allow` list",
                codes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        ApplyError::Journal(j) => return journal_msg(j, state_dir),
        other => other.hint(),
    };
    with_hint(error_chain(e), hint)
}

fn need_privileges(args: &Args, res: &ModuleResult, what: &str) -> Result<(), Failed> {
    if args.check_mode || has_net_admin() {
        return Ok(());
    }
    Err(fail(
        res.clone(),
        format!("`state: {what}` needs root or CAP_NET_ADMIN; nothing was changed; hint: add `become: true` to the task, or run it in check mode, which needs neither"),
    ))
}

/// The profile with the task's listeners, and the plan options.
fn load(args: &Args) -> Result<(Profile, PlanOptions), Failed> {
    let name = args.profile.as_deref().unwrap_or_default();
    let mut profile = tcto_tune::profile::load(name, &args.set).map_err(|e| {
        let hint = e.hint(crate::words::Module::for_task(args));
        fail(
            ModuleResult::default(),
            with_hint(
                format!("cannot load profile `{name}`: {}", error_chain(&e)),
                hint,
            ),
        )
    })?;
    for port in &args.ports {
        profile.add_listener(*port, None);
    }
    for (port, backlog) in &args.app_backlog {
        profile.add_listener(*port, Some(*backlog));
    }
    // NOTRACK flows of this profile are added to what other profiles
    // applied; replacing an earlier apply's flows is the CLI's `--replace`.
    let opts = PlanOptions {
        allow: args.allow.iter().cloned().collect(),
        words: crate::words::module_words(args),
        ..Default::default()
    };
    Ok((profile, opts))
}

fn read_host(profile: &Profile) -> Result<SystemState, Failed> {
    read_state(profile, &Backends::linux()).map_err(|e| {
        fail(
            ModuleResult::default(),
            format!("cannot read the system state: {}", error_chain(&e)),
        )
    })
}

/// The document `tcto-tune plan --json` prints: the plan, and the diff of
/// the sysctl.d file `persist` would write under `facts`' root (the task's
/// `root`, or the host's when persist's facts are not read: an apply).
pub fn plan_doc(profile: &Profile, plan: &Plan, facts: Option<&PersistFacts>) -> serde_json::Value {
    let host;
    let facts = match facts {
        Some(f) => Some(f),
        None => {
            host = read_persist_facts(Path::new("/")).ok();
            host.as_ref()
        }
    };
    let diff = match facts {
        Some(f) => persist::sysctl_d_diff(profile, plan, f),
        // Persist's facts unreadable (check mode as a user): the file
        // as it reads, never through a symbolic link.
        None if sysctl_d::entries(profile, plan).is_empty() => String::new(),
        None => {
            let old = std::fs::symlink_metadata(SYSCTL_D_PATH)
                .ok()
                .filter(|m| m.is_file())
                .and_then(|_| std::fs::read_to_string(SYSCTL_D_PATH).ok());
            let new = sysctl_d::render(&profile.name, &sysctl_d::entries(profile, plan));
            sysctl_d::unified_diff(SYSCTL_D_PATH, old.as_deref(), Some(&new))
        }
    };
    let mut doc = serde_json::to_value(plan).expect("a plan serializes");
    doc["sysctl_d"] = serde_json::json!({ "path": SYSCTL_D_PATH, "diff": diff });
    // As `plan --json`: while a persisted entry cannot be read, persist
    // refuses and the diff is empty; these say why.
    let unreadable = facts.map(persist::unreadable_entries).unwrap_or_default();
    if !unreadable.is_empty() {
        doc["sysctl_d"]["unreadable"] = serde_json::json!(unreadable);
    }
    doc
}

/// Findings of severity warn, one line each, for Ansible's `warnings`.
pub fn warnings(plan: &Plan) -> Vec<String> {
    plan.findings
        .iter()
        .filter(|f| f.severity == Severity::Warn)
        .map(|f| with_hint(format!("[{}] {}", f.code, f.message), f.hint.clone()))
        .collect()
}

/// The message of a plan a safety check refuses: every refusing finding
/// with its code and hint.
pub fn refusal_msg(plan: &Plan) -> String {
    let refusals = plan.refusals();
    let each: Vec<String> = refusals
        .iter()
        .map(|f| with_hint(format!("[{}] {}", f.code, f.message), f.hint.clone()))
        .collect();
    // Only codes an allowance lifts are offered: adding another to
    // `allow` would fail the task again.
    let liftable = |f: &&&tcto_tune::Finding| {
        f.code.allowable() && !persist::NEVER_ALLOWED.contains(&f.code.as_str())
    };
    let codes: Vec<&str> = refusals
        .iter()
        .filter(liftable)
        .map(|f| f.code.as_str())
        .collect();
    let next = if codes.len() == refusals.len() {
        format!("to proceed anyway, add {} to `allow`", codes.join(", "))
    } else {
        let never: Vec<String> = refusals
            .iter()
            .filter(|f| !liftable(f))
            .map(|f| format!("`{}`", f.code))
            .collect();
        format!(
            "{} cannot be allowed: fix what the finding says",
            never.join(", ")
        )
    };
    format!(
        "refused by safety check(s): {}; nothing was changed ({next})",
        each.join(" | ")
    )
}

fn changed_steps(report: &TxReport) -> usize {
    report
        .steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Applied | StepStatus::WouldApply))
        .count()
}

/// Fill the result from a finished transaction.
fn finish(mut res: ModuleResult, report: TxReport, args: &Args, what: &str) -> ModuleResult {
    let n = changed_steps(&report);
    let id = report.id.clone().unwrap_or_else(|| "-".into());
    let profile = &report.profile;
    res.transaction = report.id.clone();
    res.changed = n > 0;
    if args.diff {
        res.diff = Some(diff::of_report(&report));
    }
    match report.outcome {
        Outcome::Noop => res.msg = format!("profile `{profile}` is already {what}"),
        Outcome::WouldApply => res.msg = format!("would make {n} change(s) for profile `{profile}`"),
        Outcome::Applied => {
            res.msg = format!(
                "made {n} change(s) for profile `{profile}`; transaction {id}, undo with `state: rolled_back`"
            )
        }
        Outcome::RolledBack => {
            res.changed = false;
            res.diff = args.diff.then(Vec::new);
            res.failed = true;
            res.msg = format!(
                "failed: {}; every change was reverted: the system is as it was before (transaction {id})",
                report.failure.as_deref().unwrap_or("?")
            );
        }
        _ => {
            let keys: Vec<&str> = report
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::RevertFailed)
                .map(|s| s.key.as_str())
                .collect();
            res.changed = true;
            res.failed = true;
            res.msg = format!(
                "failed: {}; COULD NOT RESTORE: {} (transaction {id}); hint: fix the cause, then run the task with `state: rolled_back`",
                report.failure.as_deref().unwrap_or("?"),
                keys.join(", ")
            );
        }
    }
    res.reports.push(report);
    res
}

fn applied(args: &Args) -> Result<ModuleResult, Failed> {
    let (profile, opts) = load(args)?;
    let state = read_host(&profile)?;
    let plan = tcto_tune::plan_with(&profile, &state, &opts);
    let res = ModuleResult {
        plan: Some(plan_doc(&profile, &plan, None)),
        warnings: warnings(&plan),
        ..Default::default()
    };
    if !plan.refusals().is_empty() {
        return Err(fail(res, refusal_msg(&plan)));
    }
    let aopts = ApplyOptions {
        command: TX_APPLY.into(),
        force_after_crash: false,
    };
    let report = if args.check_mode {
        // What would block the real apply blocks check mode too. A journal
        // this user cannot open (check mode needs no root; the state dir is
        // root's) is skipped, as `apply --dry-run` skips it.
        if let Ok(Some(j)) = Journal::open_existing(&args.state_dir) {
            if let Some(e) = j
                .newest()
                .ok()
                .flatten()
                .and_then(|r| blocked_by(&r, j.boot_id()))
            {
                return Err(fail(res, apply_msg(&e, args)));
            }
        }
        let mut sim = SimEffects::from_changes_and_state(&plan.changes, &state);
        apply(&plan, Run::DryRun(&mut sim), &aopts)
    } else {
        need_privileges(args, &res, "applied")?;
        apply_journaled(args, &res, &plan, &aopts)?
    };
    match report {
        Ok(r) => Ok(finish(
            res,
            r.with_words(Module::for_task(args)),
            args,
            "in effect",
        )),
        Err(e) => Err(fail(res, apply_msg(&e, args))),
    }
}

fn persisted(args: &Args) -> Result<ModuleResult, Failed> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let facts = read_persist_facts(&root).map_err(|e| {
        let hint = (!root.is_dir()).then(|| {
            "`root` must be an existing directory (the root of an image or a chroot); it is never created".to_owned()
        });
        fail(ModuleResult::default(), with_hint(error_chain(&e), hint))
    })?;
    persist::check_exec(&args.exec).map_err(|e| {
        fail(
            ModuleResult::default(),
            format!("option `exec`: {}", error_chain(&e)),
        )
    })?;
    let (profile, opts) = load(args)?;
    let state = read_host(&profile)?;
    let runtime = tcto_tune::plan_with(&profile, &state, &opts);
    let popts = PersistOptions {
        allow: opts.allow.clone(),
        exec: args.exec.clone(),
        words: crate::words::module_words(args),
    };
    let plan = persist::plan_persist(&profile, &runtime, &facts, &popts);
    let res = ModuleResult {
        plan: Some(plan_doc(&profile, &runtime, Some(&facts))),
        warnings: warnings(&plan),
        ..Default::default()
    };
    if !plan.refusals().is_empty() {
        return Err(fail(res, refusal_msg(&plan)));
    }
    let aopts = ApplyOptions {
        command: TX_PERSIST.into(),
        force_after_crash: false,
    };
    let report = if args.check_mode {
        apply(
            &plan,
            Run::DryRun(&mut SimEffects::from_changes(&plan.changes)),
            &aopts,
        )
    } else {
        apply_journaled(args, &res, &plan, &aopts)?
    };
    match report {
        Ok(r) => Ok(finish(
            res,
            r.with_words(Module::for_task(args)),
            args,
            "persisted",
        )),
        Err(e) => Err(fail(res, apply_msg(&e, args))),
    }
}

/// An [`Effects`] that records every write with the value it replaced, so
/// a rollback reports exactly what it changed.
pub struct Recording<'a> {
    inner: &'a mut dyn Effects,
    /// Every write: target, prior value, written value.
    pub writes: Vec<(Target, Value, Value)>,
}

impl<'a> Recording<'a> {
    /// Wrap `inner`.
    pub fn new(inner: &'a mut dyn Effects) -> Self {
        Recording {
            inner,
            writes: Vec::new(),
        }
    }
}

impl Effects for Recording<'_> {
    fn read(&mut self, target: &Target) -> Result<Value, SystemError> {
        self.inner.read(target)
    }

    fn write(&mut self, target: &Target, value: &Value) -> Result<(), SystemError> {
        let prior = self.inner.read(target).unwrap_or(Value::Absent);
        self.inner.write(target, value)?;
        self.writes.push((target.clone(), prior, value.clone()));
        Ok(())
    }

    fn write_read_back(&mut self, target: &Target, value: &Value) -> Result<Value, SystemError> {
        let prior = self.inner.read(target).unwrap_or(Value::Absent);
        let back = self.inner.write_read_back(target, value)?;
        self.writes.push((target.clone(), prior, value.clone()));
        Ok(back)
    }
}

/// The writes a simulated host logged, each with the value it replaced
/// (what [`Recording`] records of a live one), from the values it started
/// with.
fn replayed(
    mut values: BTreeMap<Target, Value>,
    writes: &[(Target, Value)],
) -> Vec<(Target, Value, Value)> {
    writes
        .iter()
        .map(|(t, v)| {
            let prior = values.insert(t.clone(), v.clone()).unwrap_or(Value::Absent);
            (t.clone(), prior, v.clone())
        })
        .collect()
}

/// The transactions to undo: with `to`, every undoable one from `to` on
/// (as `tcto-tune rollback --to`); without, the module's own newest
/// undoable one.
pub fn choose(records: &[TxRecord], to: Option<&str>) -> Result<Vec<TxRecord>, JournalError> {
    match to {
        Some(_) => select_for_rollback(records, to),
        None => Ok(records
            .iter()
            .rev()
            .find(|r| (r.command == TX_APPLY || r.command == TX_PERSIST) && r.state.undoable())
            .cloned()
            .into_iter()
            .collect()),
    }
}

/// A simulated host holding what the live one holds for every target of
/// `record`: check mode undoes the record against it.
fn simulate(record: &TxRecord) -> Result<SimEffects, String> {
    SimEffects::mirror(
        &mut LinuxEffects::default(),
        record.steps.iter().map(|s| &s.target),
    )
    .map_err(|b| format!("cannot read {}: {}", b.0, error_chain(&b.1)))
}

fn rolled_back(args: &Args, to: Option<&str>) -> Result<ModuleResult, Failed> {
    let mut res = ModuleResult::default();
    need_privileges(args, &res, "rolled_back")?;
    let journal = match Journal::open_existing(&args.state_dir) {
        Ok(Some(j)) => j,
        Ok(None) if to.is_none() => {
            res.msg = format!(
                "nothing to roll back: no journal in `{}`",
                args.state_dir.display()
            );
            return Ok(res);
        }
        Ok(None) => {
            return Err(fail(
                res,
                format!(
                    "no journal in `{}`, so no transaction {}",
                    args.state_dir.display(),
                    to.unwrap_or_default()
                ),
            ))
        }
        Err(e) => return Err(fail(res, journal_msg(&e, &args.state_dir))),
    };
    let locked = if args.check_mode {
        None
    } else {
        Some(
            journal
                .lock()
                .map_err(|e| fail(res.clone(), journal_msg(&e, &args.state_dir)))?,
        )
    };
    let records = journal
        .list()
        .map_err(|e| fail(res.clone(), journal_msg(&e, &args.state_dir)))?;
    let chosen =
        choose(&records, to).map_err(|e| fail(res.clone(), journal_msg(&e, &args.state_dir)))?;
    if chosen.is_empty() {
        res.msg = "nothing to roll back".into();
        return Ok(res);
    }
    let mut diffs: BTreeMap<Target, DiffEntry> = BTreeMap::new();
    let mut order = Vec::new();
    for mut record in chosen {
        let (report, writes) = if args.check_mode {
            let mut sim = simulate(&record).map_err(|m| fail(res.clone(), m))?;
            let start = sim.values.clone();
            let r = undo(&mut record, Run::DryRun(&mut sim), false);
            (r, replayed(start, &sim.writes))
        } else {
            let mut live = LinuxEffects::default();
            let mut rec = Recording::new(&mut live);
            let locked = locked.as_ref().expect("locked unless check mode");
            let r = undo(&mut record, Run::Journaled(&mut rec, locked), false);
            (r, rec.writes)
        };
        // Its remedies (a drifted step's) in the module's words.
        let report = report
            .map_err(|e| fail(res.clone(), journal_msg(&e, &args.state_dir)))?
            .with_words(Module::for_task(args));
        for (target, prior, value) in writes {
            // Undoing several transactions may touch a target twice: the
            // diff goes from the first value seen to the last written.
            match diffs.get_mut(&target) {
                Some(d) => d.after = diff::render(&target, &value),
                None => {
                    order.push(target.clone());
                    diffs.insert(target.clone(), diff::entry(&target, &prior, &value));
                }
            }
        }
        if let Some(id) = &report.id {
            res.undone.push(id.clone());
        }
        res.reports.push(report);
    }
    res.changed = !order.is_empty();
    if args.diff {
        res.diff = Some(order.iter().filter_map(|t| diffs.remove(t)).collect());
    }
    let ids = res.undone.join(", ");
    let failures: Vec<String> = res
        .reports
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| {
            format!(
                "transaction {}: {}",
                r.id.as_deref().unwrap_or("-"),
                r.failure.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !failures.is_empty() {
        return Err(fail(
            res,
            format!(
                "rollback incomplete: {}; hint: `tcto-tune history -v --state-dir {dir}` shows each step; `tcto-tune rollback --force --state-dir {dir}` also restores values changed since",
                failures.join(" | "),
                dir = shell_word(&args.state_dir.display().to_string())
            ),
        ));
    }
    res.msg = if args.check_mode {
        format!("would roll back transaction(s) {ids}")
    } else {
        format!("rolled back transaction(s) {ids}")
    };
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcto_tune::system::SimFault;
    use tcto_tune::{Change, Finding, FindingCode, Intent};

    fn refusing(codes: &[FindingCode]) -> Plan {
        let mut plan = tcto_tune::plan(
            &Profile::builder("p").build(),
            &tcto_tune::SystemState::default(),
        );
        plan.findings = codes
            .iter()
            .map(|c| Finding::new(*c, Severity::Refuse, "bad"))
            .collect();
        plan
    }

    #[test]
    fn refusal_offers_allow_only_for_codes_an_allowance_lifts() {
        let m = refusal_msg(&refusing(&[FindingCode::PersistForeignFile]));
        assert!(
            m.ends_with("(to proceed anyway, add persist-foreign-file to `allow`)"),
            "{m}"
        );
        for never in [
            FindingCode::PersistEntryUnreadable,
            FindingCode::KeyRunsProgram,
        ] {
            let m = refusal_msg(&refusing(&[FindingCode::PersistForeignFile, never]));
            assert!(!m.contains("to `allow`"), "{m}");
            assert!(
                m.ends_with(&format!(
                    "(`{never}` cannot be allowed: fix what the finding says)"
                )),
                "{m}"
            );
        }
    }

    #[test]
    fn journal_hints_name_the_module_s_options() {
        let locked = JournalError::Locked {
            path: "/s/lock".into(),
            holder: String::new(),
        };
        let m = journal_msg(&locked, std::path::Path::new("/s"));
        assert!(!m.contains("--wait"), "{m}");
        assert!(
            m.contains("`retries: 5`") && m.contains("`until: r is not failed`"),
            "{m}"
        );
        let missing = JournalError::MissingParent {
            path: "/no such/s".into(),
            parent: "/no such".into(),
            why: "does not exist",
        };
        let m = journal_msg(&missing, std::path::Path::new("/no such/s"));
        assert!(!m.contains("--state-dir"), "{m}");
        assert!(m.contains("the task's `state_dir`"), "{m}");
        assert!(m.contains("`mkdir -p '/no such'`"), "{m}");
    }

    #[test]
    fn interrupted_files_hint_names_the_task_s_state_dir() {
        let e = ApplyError::InterruptedFiles {
            id: "000002".into(),
            files: vec![],
        };
        let obj = serde_json::json!({
            "profile": "trusted-notrack",
            "set": {"frontend": "10.0.1.0/24"},
            "ports": [443],
            "state_dir": "/tmp/my state",
        });
        let a = crate::args::parse(obj.as_object().unwrap()).unwrap();
        let m = apply_msg(&e, &a);
        assert!(
            m.contains("run `tcto-tune --state-dir '/tmp/my state' rollback` to restore"),
            "{m}"
        );
        assert!(
            m.contains("`tcto-tune --state-dir '/tmp/my state' apply --profile trusted-notrack --set frontend=10.0.1.0/24 --port 443 --force-after-crash` to keep them"),
            "{m}"
        );
    }

    /// A profile error's hint names the module's `set` option, not `--set`.
    #[test]
    fn profile_error_hints_name_the_set_option() {
        let msg = |obj: serde_json::Value| {
            let a = crate::args::parse(obj.as_object().unwrap()).unwrap();
            load(&a).expect_err("the profile must not load").msg.clone()
        };
        let m = msg(serde_json::json!({"profile": "trusted-notrack", "set": {"port": "80"}}));
        assert!(
            m.ends_with("; hint: run the task with `set: {backend: VALUE, frontend: VALUE}`"),
            "{m}"
        );
        let m = msg(serde_json::json!({
            "profile": "trusted-notrack",
            "set": {"port": "80", "frontend": "10.0.1.5", "backend": "10.0.2.0/24"},
        }));
        assert!(
            m.ends_with("(the value of variable `frontend`); hint: check `set: {frontend: ...}`"),
            "{m}"
        );
        let m = msg(serde_json::json!({"profile": "high-conn", "set": {"x": "1"}}));
        assert!(
            m.ends_with("; hint: this profile declares no variables; drop the task's `set` option"),
            "{m}"
        );
        assert!(!m.contains("--set"), "{m}");
    }

    /// The diff shown for `state: persisted` with `root` is the image's
    /// file against what persist would write there; a symbolic link there
    /// is shown as a link, and what it points at is never read.
    #[test]
    fn persist_diff_reads_the_image_s_file_and_never_follows_a_link() {
        let root = std::env::temp_dir().join(format!("tcto-ansible-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("etc/sysctl.d");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("99-tcto-tune.conf");
        std::fs::write(&file, "net.core.somaxconn = 1234\n").unwrap();
        let profile = Profile::builder("p")
            .somaxconn(tcto_tune::Desired::at_least(4096))
            .build();
        let mut state = tcto_tune::SystemState::default();
        state.sysctls.insert(
            "net.core.somaxconn".into(),
            tcto_tune::SysctlReading::rw("128"),
        );
        let plan = tcto_tune::plan(&profile, &state);
        let diff = |root: &Path| {
            let facts = read_persist_facts(root).unwrap();
            plan_doc(&profile, &plan, Some(&facts))["sysctl_d"]["diff"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let d = diff(&root);
        assert!(d.contains("-net.core.somaxconn = 1234"), "{d}");
        assert!(d.contains("+net.core.somaxconn = 4096"), "{d}");
        let secret = root.join("secret");
        std::fs::write(&secret, "TOP SECRET\n").unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&secret, &file).unwrap();
        let d = diff(&root);
        assert!(!d.contains("TOP SECRET"), "{d}");
        assert!(
            d.contains(&format!("-symbolic link to {}", secret.display())),
            "{d}"
        );
        assert!(
            plan_doc(&profile, &plan, Some(&read_persist_facts(&root).unwrap()))["sysctl_d"]
                .get("unreadable")
                .is_none()
        );
        // A persisted entry that cannot be read: persist would refuse and
        // write nothing, so no diff, and the entry named as `plan --json`
        // names it.
        let entries = root.join("etc/tcto-tune/persisted.d");
        std::fs::create_dir_all(&entries).unwrap();
        std::fs::write(entries.join("broken.toml"), "not = [toml").unwrap();
        let doc = plan_doc(&profile, &plan, Some(&read_persist_facts(&root).unwrap()));
        assert_eq!(doc["sysctl_d"]["diff"], "", "{doc}");
        let unreadable = doc["sysctl_d"]["unreadable"].as_array().unwrap();
        assert_eq!(unreadable.len(), 1, "{doc}");
        assert!(
            unreadable[0].as_str().unwrap().contains("broken.toml"),
            "{doc}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A `state: persisted` task's way past a crash is its persist again
    /// (same profile, variables, root and exec), not an apply.
    #[test]
    fn interrupted_files_hint_of_a_persist_task_names_persist() {
        let e = ApplyError::InterruptedFiles {
            id: "000002".into(),
            files: vec![],
        };
        let obj = serde_json::json!({
            "profile": "trusted-notrack",
            "state": "persisted",
            "set": {"frontend": "10.0.1.0/24"},
            "root": "/tmp/an image",
            "state_dir": "/tmp/my state",
        });
        let a = crate::args::parse(obj.as_object().unwrap()).unwrap();
        let m = apply_msg(&e, &a);
        assert!(
            m.contains("`tcto-tune --state-dir '/tmp/my state' persist --profile trusted-notrack --set frontend=10.0.1.0/24 --exec /usr/local/bin/tcto-tune --force-after-crash --root '/tmp/an image'` to keep them"),
            "{m}"
        );
    }

    fn args(diff: bool) -> Args {
        let obj = serde_json::json!({"profile": "p", "_ansible_diff": diff});
        crate::args::parse(obj.as_object().unwrap()).unwrap()
    }

    fn two_changes() -> Plan {
        let mut plan = tcto_tune::plan(
            &Profile::builder("p").build(),
            &tcto_tune::SystemState::default(),
        );
        plan.changes = vec![
            Change::sysctl(
                &"net.core.somaxconn".parse().unwrap(),
                Some("1024"),
                "4096",
                Intent::AtLeast,
                None,
            ),
            Change::sysctl(
                &"net.ipv4.tcp_max_syn_backlog".parse().unwrap(),
                Some("2048"),
                "8192",
                Intent::AtLeast,
                None,
            ),
        ];
        plan
    }

    #[test]
    fn failed_apply_fails_the_task_and_says_it_rolled_back() {
        let plan = two_changes();
        let mut sim = SimEffects::from_changes(&plan.changes);
        sim.faults.insert(
            plan.changes[1].target.clone(),
            SimFault::Refuse(libc_einval()),
        );
        let report = apply(&plan, Run::DryRun(&mut sim), &ApplyOptions::default()).unwrap();
        let res = finish(ModuleResult::default(), report, &args(true), "in effect");
        assert!(res.failed && !res.changed, "{res:?}");
        assert!(res.msg.contains("tcp_max_syn_backlog"), "{}", res.msg);
        assert!(res.msg.contains("every change was reverted"), "{}", res.msg);
        assert_eq!(res.diff, Some(vec![]));
        assert_eq!(
            sim.values[&plan.changes[0].target],
            Value::Text("1024".into())
        );
    }

    #[test]
    fn a_revert_that_fails_names_what_is_not_restored() {
        let plan = two_changes();
        let mut sim = SimEffects::from_changes(&plan.changes);
        // The first write lands, the second is refused, and the first then
        // cannot be written back.
        sim.faults.insert(
            plan.changes[1].target.clone(),
            SimFault::Refuse(libc_einval()),
        );
        // Write 1 lands, write 2 is refused, write 3 (the revert) too.
        sim.plan.refuse_at = Some(3);
        let report = apply(&plan, Run::DryRun(&mut sim), &ApplyOptions::default()).unwrap();
        let res = finish(ModuleResult::default(), report, &args(false), "in effect");
        assert!(res.failed && res.changed, "{res:?}");
        assert!(
            res.msg.contains("COULD NOT RESTORE: net.core.somaxconn"),
            "{}",
            res.msg
        );
        assert!(res.msg.contains("state: rolled_back"), "{}", res.msg);
    }

    #[test]
    fn warn_findings_become_warnings_and_refusals_name_code_and_hint() {
        let mut plan = two_changes();
        plan.findings = vec![
            tcto_tune::Finding::new(
                tcto_tune::FindingCode::ListenerNeedsRestart,
                Severity::Warn,
                "restart it",
            )
            .hint("systemctl restart app"),
            tcto_tune::Finding::new(
                tcto_tune::FindingCode::SomaxconnAboveAppBacklog,
                Severity::Refuse,
                "too high",
            )
            .hint("raise the app's backlog"),
            tcto_tune::Finding::new(
                tcto_tune::FindingCode::ListenerNotFound,
                Severity::Info,
                "no listener",
            ),
        ];
        assert_eq!(
            warnings(&plan),
            vec!["[listener-needs-restart] restart it; hint: systemctl restart app"]
        );
        let msg = refusal_msg(&plan);
        assert!(
            msg.contains("[somaxconn-above-app-backlog] too high; hint: raise the app's backlog"),
            "{msg}"
        );
        assert!(
            msg.contains("add somaxconn-above-app-backlog to `allow`"),
            "{msg}"
        );
    }

    fn record(id: &str, command: &str, state: tcto_tune::journal::TxState) -> TxRecord {
        TxRecord {
            format: tcto_tune::journal::JOURNAL_FORMAT,
            id: id.into(),
            command: command.into(),
            profile: "p".into(),
            started: String::new(),
            updated: String::new(),
            state,
            steps: vec![],
            boot_id: None,
            notes: vec![],
        }
    }

    #[test]
    fn rolled_back_picks_the_modules_newest_undoable_transaction() {
        use tcto_tune::journal::TxState::*;
        let records = vec![
            record("000001", TX_APPLY, Applied),
            record("000002", TX_PERSIST, Applied),
            record("000003", TX_APPLY, Undone),
            record("000004", "apply", Applied),
        ];
        let ids = |v: Vec<TxRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        // Not the operator's 000004, not the undone 000003.
        assert_eq!(ids(choose(&records, None).unwrap()), ["000002"]);
        // `to` is `tcto-tune rollback --to`: every undoable one, newest first.
        assert_eq!(
            ids(choose(&records, Some("2")).unwrap()),
            ["000004", "000002"]
        );
        assert!(choose(&records[2..], None).unwrap().is_empty());
        assert!(choose(&records, Some("9")).is_err());
    }

    fn libc_einval() -> i32 {
        22
    }
}
