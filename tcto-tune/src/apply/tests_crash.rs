//! Crashes, reboots and repeated rollbacks: what the record says after a
//! process dies mid-apply or mid-rollback, what a reboot unblocks, and
//! that a rollback reports `already at` wherever it wrote nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;
use crate::change::Change;
use crate::fix::Intent;
use crate::journal::Journal;
use crate::system::{SimEffects, SystemError};

const BOOT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const BOOT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn plan_with_file() -> Plan {
    let mut changes: Vec<Change> = [
        ("net.core.somaxconn", "1024", "4096"),
        ("net.ipv4.tcp_max_syn_backlog", "512", "8192"),
    ]
    .iter()
    .map(|(k, a, b)| Change::sysctl(&k.parse().unwrap(), Some(a), b, Intent::Exact, None))
    .collect();
    let file = Target::File {
        path: "/etc/sysctl.d/99-tcto-tune.conf".into(),
    };
    changes.push(Change {
        current: None,
        desired: "x".into(),
        intent: Intent::Exact,
        reason: None,
        target: file,
        before: Value::Absent,
        after: Value::Bytes(b"net.core.somaxconn = 4096\n".to_vec()),
    });
    Plan {
        schema: 1,
        profile: "t".into(),
        initial_netns: true,
        changes,
        unchanged: vec![],
        skipped: vec![],
        findings: vec![],
    }
}

fn sysctls_only() -> Plan {
    let mut p = plan_with_file();
    p.changes.pop();
    p
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        command: "apply".into(),
        force_after_crash: false,
    }
}

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn journal(tag: &str, boot: &str) -> (Dir, Journal) {
    let p = std::env::temp_dir().join(format!("tcto-c-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    let j = Journal::open_or_create(&p)
        .unwrap()
        .with_boot_id(Some(boot.into()));
    (Dir(p), j)
}

/// Simulated effects that die (panic) right after the `at`th write.
struct Crashy {
    sim: SimEffects,
    at: usize,
    writes: usize,
}
impl Effects for Crashy {
    fn read(&mut self, t: &Target) -> Result<Value, SystemError> {
        self.sim.read(t)
    }
    fn write(&mut self, t: &Target, v: &Value) -> Result<(), SystemError> {
        self.sim.write(t, v)?;
        self.writes += 1;
        if self.writes == self.at {
            // An unwind that skips the panic hook: nothing printed.
            std::panic::resume_unwind(Box::new("simulated crash"));
        }
        Ok(())
    }
}

/// Run `f`, which is to die of a simulated crash.
fn quiet<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
}

fn statuses(r: &TxRecord) -> Vec<StepStatus> {
    r.steps.iter().map(|s| s.status).collect()
}

#[test]
fn a_crashed_apply_records_which_steps_were_written() {
    let plan = plan_with_file();
    let (_d, j) = journal("steps", BOOT_A);
    let mut fx = Crashy {
        sim: SimEffects::from_changes(&plan.changes),
        at: 2,
        writes: 0,
    };
    assert!(quiet(|| apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts())).is_err());
    let rec = j.load("000001").unwrap();
    assert_eq!(rec.state, TxState::Open);
    assert_eq!(rec.boot_id.as_deref(), Some(BOOT_A));
    // Step 1 written and read back, step 2 in flight (it did land), step 3
    // never reached.
    assert_eq!(
        statuses(&rec),
        [
            StepStatus::Applied,
            StepStatus::Writing,
            StepStatus::Pending
        ]
    );
    assert_eq!(rec.steps[0].status.label(), "written");
}

#[test]
fn a_reboot_unblocks_runtime_changes_but_not_files() {
    // Interrupted in boot A after the first sysctl: only runtime state.
    let plan = sysctls_only();
    let (_d, j) = journal("reboot", BOOT_A);
    let mut fx = Crashy {
        sim: SimEffects::from_changes(&plan.changes),
        at: 1,
        writes: 0,
    };
    assert!(quiet(|| apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts())).is_err());
    let rec = j.load("000001").unwrap();
    // Same boot: it blocks.
    assert!(matches!(
        apply(
            &plan,
            Run::Journaled(&mut fx.sim.clone(), &j.lock().unwrap()),
            &opts()
        ),
        Err(ApplyError::Interrupted { .. })
    ));
    assert_eq!(rec.label(Some(BOOT_A)), "interrupted");
    assert_eq!(rec.label(Some(BOOT_B)), "interrupted (before reboot)");
    // After a reboot (boot B, values back to the boot's own): it goes ahead
    // and both records say so.
    let j = j.with_boot_id(Some(BOOT_B.into()));
    let mut sim = SimEffects::from_changes(&plan.changes);
    let r = apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied, "{r}");
    assert!(
        r.to_string().contains("interrupted before the reboot"),
        "{r}"
    );
    let old = j.load("000001").unwrap();
    assert_eq!(old.state, TxState::BeforeReboot);
    assert_eq!(old.label(Some(BOOT_B)), "interrupted (before reboot)");
    assert!(old.notes[0].contains("reset its runtime changes"));
    let new = j.load("000002").unwrap();
    assert_eq!(new.boot_id.as_deref(), Some(BOOT_B));
    assert!(new.notes[0].contains("000001"), "{:?}", new.notes);
    // Rolling the old one back later touches none of its runtime targets.
    let mut old = j.load("000001").unwrap();
    let before = sim.values.clone();
    let u = undo(
        &mut old,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(u.outcome, Outcome::Undone, "{u}");
    assert_eq!(sim.values, before);
    assert!(u.to_string().contains("reset by reboot"), "{u}");
}

#[test]
fn a_file_written_before_a_reboot_still_blocks() {
    let plan = plan_with_file();
    let (_d, j) = journal("rebootfile", BOOT_A);
    // Crash right after the file (the third write) landed.
    let mut fx = Crashy {
        sim: SimEffects::from_changes(&plan.changes),
        at: 3,
        writes: 0,
    };
    assert!(quiet(|| apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts())).is_err());
    let j = j.with_boot_id(Some(BOOT_B.into()));
    // The reboot reset the sysctls; the file is still there.
    let mut sim = fx.sim.clone();
    for c in &plan.changes[..2] {
        sim.values.insert(c.target.clone(), c.before.clone());
    }
    let e = apply(
        &plan,
        Run::Journaled(&mut sim.clone(), &j.lock().unwrap()),
        &opts(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ApplyError::InterruptedFiles { files, .. } if files == &["/etc/sysctl.d/99-tcto-tune.conf"]),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("000001"), "{e}");
    // rollback restores the file and leaves the runtime values alone.
    let mut rec = j.load("000001").unwrap();
    let u = undo(
        &mut rec,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(u.outcome, Outcome::Undone, "{u}");
    assert_eq!(sim.values[&plan.changes[2].target], Value::Absent);
    assert_eq!(
        u.steps.iter().map(|s| s.status).collect::<Vec<_>>(),
        [
            StepStatus::ResetByReboot,
            StepStatus::ResetByReboot,
            StepStatus::Reverted
        ]
    );
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
}

#[test]
fn a_record_without_a_boot_id_blocks_as_before() {
    let plan = sysctls_only();
    let (_d, j) = journal("noboot", BOOT_A);
    let j = j.with_boot_id(None);
    let mut fx = Crashy {
        sim: SimEffects::from_changes(&plan.changes),
        at: 1,
        writes: 0,
    };
    assert!(quiet(|| apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts())).is_err());
    assert_eq!(j.load("000001").unwrap().boot_id, None);
    let j = j.with_boot_id(Some(BOOT_B.into()));
    assert!(matches!(
        apply(
            &plan,
            Run::Journaled(&mut fx.sim, &j.lock().unwrap()),
            &opts()
        ),
        Err(ApplyError::Interrupted { .. })
    ));
}

#[test]
fn a_rollback_killed_at_every_step_is_completed_by_the_next() {
    let plan = plan_with_file();
    for at in 1..=plan.changes.len() {
        let (_d, j) = journal(&format!("undo{at}"), BOOT_A);
        let mut sim = SimEffects::from_changes(&plan.changes);
        let start = sim.values.clone();
        apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
        let mut fx = Crashy { sim, at, writes: 0 };
        let mut rec = j.load("000001").unwrap();
        assert!(
            quiet(|| undo(&mut rec, Run::Journaled(&mut fx, &j.lock().unwrap()), false)).is_err()
        );
        let rec = j.load("000001").unwrap();
        assert_eq!(rec.state, TxState::Undoing, "crash at revert {at}");
        assert_eq!(rec.label(Some(BOOT_A)), "rollback interrupted");
        // Reverted newest first: the step in flight is the at-th from the end.
        let n = plan.changes.len();
        assert_eq!(rec.steps[n - at].status, StepStatus::Reverting, "{at}");
        // The second rollback picks it and completes it, writing only what
        // the first did not restore.
        let mut chosen = select_for_rollback(&j.list().unwrap(), None).unwrap();
        let mut sim = fx.sim;
        let u = undo(
            &mut chosen[0],
            Run::Journaled(&mut sim, &j.lock().unwrap()),
            false,
        )
        .unwrap();
        assert_eq!(u.outcome, Outcome::Undone, "{u}");
        assert_eq!(sim.values, start, "crash at revert {at}");
        let text = u.to_string();
        assert_eq!(text.matches("already at").count(), at, "{text}");
        assert_eq!(text.matches("reverted").count(), n - at, "{text}");
        assert_eq!(j.load("000001").unwrap().state, TxState::Undone);
    }
}

#[test]
fn a_repeated_rollback_says_already_at_and_writes_nothing() {
    let plan = sysctls_only();
    let (_d, j) = journal("again", BOOT_A);
    let mut sim = SimEffects::from_changes(&plan.changes);
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    // Someone changes the first key: the rollback is incomplete.
    sim.values
        .insert(plan.changes[0].target.clone(), Value::Text("9".into()));
    let mut rec = j.load("000001").unwrap();
    let u = undo(
        &mut rec,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(u.outcome, Outcome::UndoIncomplete);
    assert!(u.to_string().contains("reverted"), "{u}");
    // They put it back; the second rollback writes nothing at all.
    sim.values
        .insert(plan.changes[0].target.clone(), Value::Text("1024".into()));
    let writes = sim.writes.len();
    let mut rec = j.load("000001").unwrap();
    let u = undo(
        &mut rec,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(u.outcome, Outcome::Undone, "{u}");
    assert_eq!(sim.writes.len(), writes);
    let text = u.to_string();
    assert!(!text.contains("reverted "), "{text}");
    assert_eq!(text.matches("already at").count(), 2, "{text}");
    assert!(
        text.contains("already at  net.core.somaxconn            1024"),
        "{text}"
    );
}

#[test]
fn rollback_of_steps_that_never_ran_says_already_at() {
    let plan = plan_with_file();
    let (_d, j) = journal("neverran", BOOT_A);
    let mut fx = Crashy {
        sim: SimEffects::from_changes(&plan.changes),
        at: 1,
        writes: 0,
    };
    assert!(quiet(|| apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts())).is_err());
    let mut rec = j.load("000001").unwrap();
    let u = undo(
        &mut rec,
        Run::Journaled(&mut fx.sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(u.outcome, Outcome::Undone, "{u}");
    let verbs: Vec<_> = u.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        verbs,
        [
            StepStatus::Reverted,
            StepStatus::AlreadyAt,
            StepStatus::AlreadyAt
        ]
    );
}

#[test]
fn an_unreadable_newer_file_stops_rollback_and_an_older_one_does_not() {
    let plan = sysctls_only();
    let (d, j) = journal("scan", BOOT_A);
    let mut sim = SimEffects::from_changes(&plan.changes);
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    let mut again = plan.clone();
    for c in &mut again.changes {
        c.after = Value::Text("5000".into());
    }
    apply(
        &again,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        &opts(),
    )
    .unwrap();
    // An empty newest file: it could be the one to undo first.
    std::fs::write(d.0.join("tx/000003.json"), b"").unwrap();
    let scan = j.scan().unwrap();
    assert_eq!(scan.records.len(), 2);
    assert_eq!(scan.unreadable[0].id, "000003");
    let e = select_from_scan(&scan, None).unwrap_err();
    assert!(e.to_string().contains("000003.json"), "{e}");
    assert!(e.hint().unwrap().contains("mv "), "{e:?}");
    let e = select_from_scan(&scan, Some("1")).unwrap_err();
    assert!(e.to_string().contains("000003.json"), "{e}");
    // apply reads the newest, which it cannot: refused, naming it.
    let e = apply(
        &plan,
        Run::Journaled(&mut sim.clone(), &j.lock().unwrap()),
        &opts(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("000003.json"), "{e}");
    // An unreadable older file does not stop either.
    std::fs::rename(d.0.join("tx/000003.json"), d.0.join("tx/000001.json")).unwrap();
    let scan = j.scan().unwrap();
    let chosen = select_from_scan(&scan, None).unwrap();
    assert_eq!(chosen[0].id, "000002");
    assert!(select_from_scan(&scan, Some("2")).is_ok());
    assert!(select_from_scan(&scan, Some("1")).is_err());
    assert!(d.0.join("tx/000001.json").exists(), "nothing is deleted");
}
