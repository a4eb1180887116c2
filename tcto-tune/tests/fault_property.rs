//! Property: for random plans and a fault injected at every step (a write
//! the kernel refuses, a write that reads back different, a crash), the
//! system ends exactly where it started: through the automatic rollback,
//! or, after a crash, through the user's `rollback` from the journal.
//!
//! The same for a crash at every step of the undo itself (of a clean apply
//! and of a crashed one): the record says `undoing`, and a second
//! `rollback` completes it. And for a reboot after a crash (a new boot id,
//! runtime values reset, files kept): the next apply is blocked exactly
//! when a file may hold what the crashed transaction wrote, and goes ahead
//! otherwise.
//!
//! Runs the real transaction engine and journal (on disk) against the
//! simulated system. The counts of plans and fault points run are printed
//! (`cargo test -p tcto-tune --test fault_property -- --nocapture`).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use proptest::prelude::*;
use tcto_tune::apply::{apply, select_for_rollback, undo, ApplyError, ApplyOptions, Outcome, Run};
use tcto_tune::journal::{Journal, TxState};
use tcto_tune::notrack::Foreign;
use tcto_tune::notrack::NotrackTable;
use tcto_tune::system::{Effects, SimEffects, SystemError};
use tcto_tune::Plan;
use tcto_tune::{Target, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Refuse(i32),
    ReadsBackDifferent,
    Crash,
}

/// SimEffects with one fault at the Nth write (0-based).
struct Faulty {
    sim: SimEffects,
    at: usize,
    fault: Fault,
    writes: usize,
}

impl Effects for Faulty {
    fn read(&mut self, t: &Target) -> Result<Value, SystemError> {
        self.sim.read(t)
    }
    fn write(&mut self, t: &Target, v: &Value) -> Result<(), SystemError> {
        let n = self.writes;
        self.writes += 1;
        if n == self.at {
            match self.fault {
                Fault::Refuse(errno) => return Err(common::refused(t, v, errno)),
                Fault::ReadsBackDifferent => {
                    self.sim
                        .values
                        .insert(t.clone(), Value::Text("clamped".into()));
                    return Ok(());
                }
                Fault::Crash => {
                    // The process dies right after this write reached the kernel.
                    self.sim.write(t, v)?;
                    common::crash();
                }
            }
        }
        self.sim.write(t, v)
    }
}

fn target(kind: u8, i: usize) -> Target {
    match kind % 4 {
        0 => Target::Sysctl {
            key: format!("net.test.key{i}").parse().unwrap(),
        },
        1 => Target::Offload {
            iface: format!("veth{i}"),
            feature: "tso".into(),
            ifindex: None,
            perm_addr: None,
            scope: None,
        },
        2 => Target::File {
            path: format!("/etc/sysctl.d/{i}.conf"),
        },
        _ => Target::NftTable {
            family: "inet".into(),
            name: format!("t{i}"),
        },
    }
}

fn value(kind: u8, seed: u16) -> Value {
    match kind % 4 {
        0 => Value::Text(seed.to_string()),
        1 => Value::Bool(seed % 2 == 0),
        2 if seed % 5 == 0 => Value::Absent,
        2 => Value::Bytes(seed.to_le_bytes().to_vec()),
        _ if seed % 3 == 0 => Value::Absent,
        // A table told apart by its one foreign entry.
        _ => Value::Table(NotrackTable {
            sets: vec![],
            chains: vec![],
            foreign: vec![Foreign {
                what: seed.to_string(),
                remove: String::new(),
            }],
        }),
    }
}

fn plan_from(spec: &[(u8, u16, u16)]) -> Plan {
    common::plan_of(
        spec.iter()
            .enumerate()
            .map(|(i, (kind, a, b))| {
                let (before, mut after) = (value(*kind, *a), value(*kind, *b));
                // A change must change something. One step past `b` is not
                // always enough: u16::MAX wraps to 0, and both can map to
                // `Absent` (seen once in CI: a no-op step, so the fault at
                // that step was never reached).
                let mut next = *b;
                while after == before {
                    next = next.wrapping_add(1);
                    after = value(*kind, next);
                }
                common::exact_change(target(*kind, i), before, after)
            })
            .collect(),
    )
}

static PLANS: AtomicUsize = AtomicUsize::new(0);
static FAULT_POINTS: AtomicUsize = AtomicUsize::new(0);
static DIRS: AtomicUsize = AtomicUsize::new(0);
static UNDO_CRASHES: AtomicUsize = AtomicUsize::new(0);
static REBOOTS: AtomicUsize = AtomicUsize::new(0);
static REBOOT_BLOCKED: AtomicUsize = AtomicUsize::new(0);

const BOOT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const BOOT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn state_dir(tag: &str) -> std::path::PathBuf {
    common::scratch_dir().join(format!(
        "tcto-prop-{tag}-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ))
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        command: "apply".into(),
        ..Default::default()
    }
}

/// Apply `plan` (crashing after write `apply_crash` if given), then undo it
/// with a crash at undo write `at`, then undo again: the second rollback
/// completes the first. Returns whether the undo crash happened (an undo
/// may make fewer writes than `at + 1`).
fn undo_crash_case(plan: &Plan, apply_crash: Option<usize>, at: usize) -> bool {
    let dir = state_dir("undo");
    let journal = Journal::open_or_create(&dir).unwrap();
    let mut fx = Faulty {
        sim: SimEffects::from_changes(&plan.changes),
        at: apply_crash.unwrap_or(usize::MAX),
        fault: Fault::Crash,
        writes: 0,
    };
    let start = fx.sim.values.clone();
    let applied = catch_unwind(AssertUnwindSafe(|| {
        apply(
            plan,
            Run::Journaled(&mut fx, &journal.lock().unwrap()),
            &opts(),
        )
    }));
    assert_eq!(applied.is_err(), apply_crash.is_some());
    let mut undoer = Faulty {
        sim: fx.sim,
        at,
        fault: Fault::Crash,
        writes: 0,
    };
    let mut chosen = select_for_rollback(&journal.list().unwrap(), None).unwrap();
    let first = catch_unwind(AssertUnwindSafe(|| {
        undo(
            &mut chosen[0],
            Run::Journaled(&mut undoer, &journal.lock().unwrap()),
            false,
        )
    }));
    let crashed = first.is_err();
    let mut sim = undoer.sim;
    if crashed {
        let records = journal.list().unwrap();
        assert_eq!(records[0].state, TxState::Undoing, "undo crash at {at}");
        let mut chosen = select_for_rollback(&records, None).unwrap();
        assert_eq!(chosen.len(), 1, "the interrupted rollback is picked again");
        let report = undo(
            &mut chosen[0],
            Run::Journaled(&mut sim, &journal.lock().unwrap()),
            false,
        )
        .unwrap();
        assert_eq!(report.outcome, Outcome::Undone, "{report}");
    }
    assert_eq!(
        sim.values, start,
        "undo crash at write {at}: every key restored"
    );
    let _ = std::fs::remove_dir_all(&dir);
    crashed
}

/// Crash after write `at` in boot A; reboot (runtime values back to their
/// start, files kept); apply again in boot B.
fn reboot_case(plan: &Plan, at: usize) {
    let dir = state_dir("reboot");
    let journal = Journal::open_or_create(&dir)
        .unwrap()
        .with_boot_id(Some(BOOT_A.into()));
    let mut fx = Faulty {
        sim: SimEffects::from_changes(&plan.changes),
        at,
        fault: Fault::Crash,
        writes: 0,
    };
    let start = fx.sim.values.clone();
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        apply(
            plan,
            Run::Journaled(&mut fx, &journal.lock().unwrap()),
            &opts(),
        )
    }));
    assert!(crashed.is_err());
    let mut sim = fx.sim;
    for (t, v) in &start {
        if !matches!(t, Target::File { .. }) {
            sim.values.insert(t.clone(), v.clone());
        }
    }
    let files_changed = start
        .iter()
        .any(|(t, v)| matches!(t, Target::File { .. }) && sim.values[t] != *v);
    let journal = journal.with_boot_id(Some(BOOT_B.into()));
    let applied = apply(
        plan,
        Run::Journaled(&mut sim.clone(), &journal.lock().unwrap()),
        &opts(),
    );
    match applied {
        Err(ApplyError::InterruptedFiles { .. }) => {
            REBOOT_BLOCKED.fetch_add(1, Ordering::Relaxed);
            // rollback restores the files, touches nothing else.
            let mut chosen = select_for_rollback(&journal.list().unwrap(), None).unwrap();
            let report = undo(
                &mut chosen[0],
                Run::Journaled(&mut sim, &journal.lock().unwrap()),
                false,
            )
            .unwrap();
            assert_eq!(report.outcome, Outcome::Undone, "{report}");
            assert_eq!(sim.values, start, "reboot after write {at}: files restored");
            apply(
                plan,
                Run::Journaled(&mut sim, &journal.lock().unwrap()),
                &opts(),
            )
            .unwrap();
        }
        Ok(report) => {
            assert!(
                !files_changed,
                "crash at {at}: apply went ahead although a file held what the crashed run wrote"
            );
            assert_eq!(report.outcome, Outcome::Applied, "{report}");
            assert_eq!(journal.load("000001").unwrap().state, TxState::BeforeReboot);
        }
        Err(e) => panic!("reboot after write {at}: unexpected {e}"),
    }
    REBOOTS.fetch_add(1, Ordering::Relaxed);
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_case(plan: &Plan, at: usize, fault: Fault) {
    FAULT_POINTS.fetch_add(1, Ordering::Relaxed);
    let dir = state_dir("apply");
    let journal = Journal::open_or_create(&dir).unwrap();
    let mut fx = Faulty {
        sim: SimEffects::from_changes(&plan.changes),
        at,
        fault,
        writes: 0,
    };
    let start: BTreeMap<Target, Value> = fx.sim.values.clone();
    let result = catch_unwind(AssertUnwindSafe(|| {
        apply(
            plan,
            Run::Journaled(&mut fx, &journal.lock().unwrap()),
            &opts(),
        )
    }));
    match (fault, result) {
        (Fault::Crash, Err(_)) => {
            // The user's rollback, from the journal alone.
            let mut fx2 = fx.sim.clone();
            let records = journal.list().unwrap();
            let mut chosen = select_for_rollback(&records, None).unwrap();
            assert_eq!(chosen.len(), 1, "the crashed transaction is undoable");
            let report = undo(
                &mut chosen[0],
                Run::Journaled(&mut fx2, &journal.lock().unwrap()),
                false,
            )
            .unwrap();
            assert_eq!(report.outcome, Outcome::Undone, "{report}");
            assert_eq!(
                fx2.values, start,
                "crash at write {at}: rollback restores every key"
            );
        }
        (_, Ok(Ok(report))) => {
            assert_eq!(
                report.outcome,
                Outcome::RolledBack,
                "fault {fault:?} at {at}: {report}"
            );
            assert_eq!(
                fx.sim.values, start,
                "fault {fault:?} at write {at}: every key restored"
            );
        }
        (f, other) => panic!(
            "fault {f:?} at {at}: unexpected {:?}",
            other.map(|r| r.map(|r| r.outcome))
        ),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_fault_point_ends_where_it_started() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 100,
        ..ProptestConfig::default()
    });
    let strategy = prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 1..8);
    runner
        .run(&strategy, |spec| {
            let plan = plan_from(&spec);
            PLANS.fetch_add(1, Ordering::Relaxed);
            for at in 0..plan.changes.len() {
                for fault in [
                    Fault::Refuse(13),
                    Fault::Refuse(22),
                    Fault::Refuse(2),
                    Fault::ReadsBackDifferent,
                    Fault::Crash,
                ] {
                    run_case(&plan, at, fault);
                }
                reboot_case(&plan, at);
                // An undo writes at most one value per step.
                for undo_at in 0..plan.changes.len() {
                    for apply_crash in [None, Some(at)] {
                        if undo_crash_case(&plan, apply_crash, undo_at) {
                            UNDO_CRASHES.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let (plans, points, undo_crashes, reboots, blocked) = (
        PLANS.load(Ordering::Relaxed),
        FAULT_POINTS.load(Ordering::Relaxed),
        UNDO_CRASHES.load(Ordering::Relaxed),
        REBOOTS.load(Ordering::Relaxed),
        REBOOT_BLOCKED.load(Ordering::Relaxed),
    );
    eprintln!(
        "fault property: {plans} random plans, {} fault points: {points} in apply \
         (refused, read back different, crash), {undo_crashes} crashes mid-rollback, \
         {reboots} reboots after a crash ({blocked} of them blocked by a file); \
         every one ended where it started",
        points + undo_crashes + reboots
    );
    assert!(plans >= 100 && points >= plans * 5);
    assert!(undo_crashes >= plans && reboots >= plans && blocked > 0 && blocked < reboots);
}

/// Regression (seen once in CI): `b = u16::MAX` wrapped to 0, and for a
/// file both map to `Absent`, so the generated "change" changed nothing
/// and the fault planned at that step was never reached.
#[test]
fn generated_changes_always_change_something() {
    for kind in 0..4u8 {
        for (a, b) in [(0, u16::MAX), (u16::MAX, u16::MAX), (0, 0), (15, 65_535)] {
            let plan = plan_from(&[(kind, a, b)]);
            let c = &plan.changes[0];
            assert_ne!(c.before, c.after, "kind {kind}, seeds {a} {b}");
        }
    }
}
