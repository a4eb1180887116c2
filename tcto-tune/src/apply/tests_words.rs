//! What the journal stores names no front end; a report or record is
//! worded by its reader, and records written before the typed remedy read
//! as they always did.

use super::*;
use crate::change::{Change, ChangeKind};
use crate::journal::Journal;
use crate::words::{Action, Remedy, Words};

/// Words that mark where each action goes.
#[derive(Debug)]
struct Marked;

impl Words for Marked {
    fn instruct(&self, a: &Action) -> String {
        format!("<do {}>", self.name(a))
    }
    fn name(&self, a: &Action) -> String {
        match a {
            Action::Force => "<force>".into(),
            Action::ForceAfterCrash => "<force-after-crash>".into(),
            Action::Rollback => "<rollback>".into(),
            other => format!("<{other:?}>"),
        }
    }
}

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn journal(tag: &str) -> (Dir, Journal) {
    let p = std::env::temp_dir().join(format!("tcto-w-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    let j = Journal::open_or_create(&p).unwrap();
    (Dir(p), j)
}

fn plan() -> Plan {
    let c = Change::sysctl(
        &"net.core.somaxconn".parse().unwrap(),
        Some("1024"),
        "4096",
        crate::fix::Intent::Exact,
        None,
    );
    Plan {
        schema: crate::plan::PLAN_SCHEMA,
        profile: "t".into(),
        initial_netns: true,
        changes: vec![c],
        unchanged: vec![],
        skipped: vec![],
        findings: vec![],
    }
}

fn opts(force_after_crash: bool) -> ApplyOptions {
    ApplyOptions {
        command: "apply".into(),
        force_after_crash,
    }
}

/// The journal's records, as text.
fn files(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir.join("tx")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    assert!(out.contains("net.core.somaxconn"), "no record read");
    out
}

#[test]
fn a_drifted_and_a_forced_step_are_journaled_typed_and_worded_by_the_reader() {
    let plan = plan();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let (d, j) = journal("drift");
    apply(
        &plan,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        &opts(false),
    )
    .unwrap();
    sim.values
        .insert(plan.changes[0].target.clone(), Value::Text("9999".into()));
    let mut rec = j.load("000001").unwrap();
    let r = undo(
        &mut rec,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(r.steps[0].status, StepStatus::Drifted);
    let stored = j.load("000001").unwrap();
    assert_eq!(stored.steps[0].remedy, Some(Remedy::ForceRestores));
    assert_eq!(
        stored.steps[0].error.as_deref(),
        Some("now `9999`, set by someone else since; left alone")
    );
    let text = files(&d.0);
    assert!(
        !text.contains("--force") && !text.contains("tcto-tune"),
        "{text}"
    );
    // The library's own Display: the neutral words.
    assert!(
        r.to_string()
            .contains("left alone (use force to restore `1024`)"),
        "{r}"
    );
    // A reader's words, in the step, the failure and the JSON.
    let w = r.with_words(&Marked);
    let want = "now `9999`, set by someone else since; left alone (use <force> to restore `1024`)";
    assert_eq!(w.steps[0].error.as_deref(), Some(want));
    assert_eq!(w.steps[0].remedy, None);
    assert!(w.failure.as_deref().unwrap().ends_with(want), "{w:?}");
    let json = serde_json::to_string(&w).unwrap();
    assert!(!json.contains("remedy"), "{json}");
    assert_eq!(
        stored.with_words(&Marked).steps[0].error.as_deref(),
        Some(want)
    );
    // Forced: what force replaced, said with the reader's word for it.
    let mut rec = j.load("000001").unwrap();
    let r = undo(&mut rec, Run::Journaled(&mut sim, &j.lock().unwrap()), true).unwrap();
    assert_eq!(r.outcome, Outcome::Undone);
    assert_eq!(r.steps[0].remedy, Some(Remedy::Forced));
    assert_eq!(
        r.with_words(&Marked).steps[0].error.as_deref(),
        Some("<force>: replaced `9999`, set by someone else")
    );
    let text = files(&d.0);
    assert!(
        !text.contains("--force") && !text.contains("tcto-tune"),
        "{text}"
    );
}

#[test]
fn going_ahead_after_a_crash_is_noted_neutrally_and_worded_by_the_reader() {
    let plan = plan();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let (d, j) = journal("crash");
    let r = apply(
        &plan,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        &opts(false),
    )
    .unwrap();
    // Make it look interrupted: open, its step in flight.
    let mut rec = j.load(r.id.as_deref().unwrap()).unwrap();
    rec.state = TxState::Open;
    rec.steps[0].status = StepStatus::Writing;
    j.replace(&rec).unwrap();
    sim.values
        .insert(plan.changes[0].target.clone(), Value::Text("1024".into()));
    let r = apply(
        &plan,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        &opts(true),
    )
    .unwrap();
    assert_eq!(
        r.notes,
        ["went ahead after interrupted transaction 000001 (forced past the crash)"]
    );
    let text = files(&d.0);
    assert!(
        !text.contains("--force") && !text.contains("tcto-tune"),
        "{text}"
    );
    assert_eq!(
        r.with_words(&Marked).notes,
        ["went ahead after interrupted transaction 000001 (<force-after-crash>)"]
    );
    let stored = j.load(r.id.as_deref().unwrap()).unwrap();
    assert_eq!(
        stored.with_words(&Marked).notes,
        ["went ahead after interrupted transaction 000001 (<force-after-crash>)"]
    );
}

#[test]
fn another_namespace_s_step_says_the_facts_and_the_reader_adds_where_to_roll_back() {
    let e = crate::system::SystemError::OtherNamespace {
        iface: "a".into(),
        was: 4026531840,
        now: 4026532000,
    };
    let fact = format!("cannot find it: {e}");
    assert!(!fact.contains("rollback"), "{fact}");
    let mut step = Step {
        kind: ChangeKind::Offload,
        key: "a:tso".into(),
        target: plan().changes[0].target.clone(),
        before: Value::Text("on".into()),
        after: Value::Text("off".into()),
        status: StepStatus::RevertFailed,
        error: Some(fact),
        remedy: Some(Remedy::RollbackInItsNamespace),
        note: None,
    };
    let rec = TxRecord {
        format: crate::journal::JOURNAL_FORMAT,
        id: "000002".into(),
        command: "apply".into(),
        profile: "offload-off".into(),
        started: now_rfc3339(),
        updated: now_rfc3339(),
        state: TxState::UndoIncomplete,
        steps: vec![step.clone()],
        boot_id: None,
        notes: vec![],
    };
    assert_eq!(
        rec.with_words(&Marked).steps[0].error.as_deref(),
        Some("cannot find it: `a` was changed in network namespace net:[4026531840] and this is net:[4026532000]: its ifindex means nothing here; run <rollback> inside that namespace (`ip netns identify` names the current one)")
    );
    // Without a remedy (an older record) the text is shown as it is.
    step.remedy = None;
    let old = TxRecord {
        steps: vec![step.clone()],
        ..rec
    };
    assert_eq!(old.with_words(&Marked).steps[0].error, step.error);
}

/// A record written before the typed remedy: its text carries the CLI's
/// words and no `remedy`; it loads, and every reader shows it as it is.
#[test]
fn a_record_of_the_old_format_reads_and_shows_as_it_always_did() {
    let plan = plan();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let (d, j) = journal("old");
    apply(
        &plan,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        &opts(false),
    )
    .unwrap();
    let path = std::fs::read_dir(d.0.join("tx"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let old_error =
        "now `9999`, set by someone else since; left alone (use --force to restore `1024`)";
    let old_note = "went ahead after interrupted transaction 000000 (--force-after-crash)";
    v["state"] = "undo_incomplete".into();
    v["steps"][0]["status"] = "drifted".into();
    v["steps"][0]["error"] = old_error.into();
    v["notes"] = serde_json::json!([old_note]);
    assert!(v["steps"][0].get("remedy").is_none());
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let rec = j.load("000001").unwrap();
    assert_eq!(rec.steps[0].remedy, None);
    // A remedy a newer version wrote: the record stays readable, the error
    // is shown as it is.
    v["steps"][0]["remedy"] = "ask-the-oracle".into();
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let newer = j.load("000001").unwrap();
    assert_eq!(
        newer.steps[0].remedy,
        Some(Remedy::Unknown("ask-the-oracle".into()))
    );
    assert_eq!(
        newer.with_words(&Marked).steps[0].error.as_deref(),
        Some(old_error)
    );
    for shown in [
        rec.with_words(&Marked),
        rec.with_words(&crate::words::NEUTRAL),
    ] {
        assert_eq!(shown.steps[0].error.as_deref(), Some(old_error));
        assert_eq!(shown.notes, [old_note]);
    }
}

#[test]
fn the_failure_is_worded_with_the_failing_steps_prior_value_when_two_steps_read_alike() {
    // Two steps drifted to the same value have the same error text; the
    // failure quotes the last one undone (undo runs backwards), and must
    // say that step's prior value, not the first step's.
    let mut plan = plan();
    plan.changes.push(Change::sysctl(
        &"net.ipv4.tcp_max_syn_backlog".parse().unwrap(),
        Some("2048"),
        "8192",
        crate::fix::Intent::Exact,
        None,
    ));
    let mut sim = SimEffects::from_changes(&plan.changes);
    let (_d, j) = journal("alike");
    apply(
        &plan,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        &opts(false),
    )
    .unwrap();
    for c in &plan.changes {
        sim.values
            .insert(c.target.clone(), Value::Text("3000".into()));
    }
    let mut rec = j.load("000001").unwrap();
    let r = undo(
        &mut rec,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    let w = r.with_words(&Marked);
    let f = w.failure.as_deref().unwrap();
    assert!(f.contains("tcp_max_syn_backlog"), "{f}");
    assert!(f.ends_with("(use <force> to restore `2048`)"), "{f}");
    assert!(!f.contains("1024"), "{f}");
    // The Display (neutral words) alike.
    let shown = r.to_string();
    assert!(shown.contains("restore `2048`)"), "{shown}");
}
