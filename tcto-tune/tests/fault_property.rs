//! Property: for random plans and a fault injected at every step (a write
//! the kernel refuses, a write that reads back different, a crash), the
//! system ends exactly where it started: through the automatic rollback,
//! or, after a crash, through the user's `rollback` from the journal.
//!
//! Runs the real transaction engine and journal (on disk) against the
//! simulated system. The counts of plans and fault points run are printed
//! (`cargo test -p tcto-tune --test fault_property -- --nocapture`).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use proptest::prelude::*;
use tcto_tune::apply::{apply, select_for_rollback, undo, ApplyOptions, Outcome};
use tcto_tune::change::{Target, Value};
use tcto_tune::journal::Journal;
use tcto_tune::system::{Effects, SimEffects, SystemError};
use tcto_tune::Plan;

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
                    panic!("{}", common::SIMULATED_CRASH);
                }
            }
        }
        self.sim.write(t, v)
    }
}

fn target(kind: u8, i: usize) -> Target {
    match kind % 4 {
        0 => Target::Sysctl {
            key: format!("net.test.key{i}"),
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
        _ => Value::Json(serde_json::json!({ "rules": seed })),
    }
}

fn plan_from(spec: &[(u8, u16, u16)]) -> Plan {
    common::plan_of(
        spec.iter()
            .enumerate()
            .map(|(i, (kind, a, b))| {
                let (before, mut after) = (value(*kind, *a), value(*kind, *b));
                if after == before {
                    after = value(*kind, b.wrapping_add(1));
                }
                common::exact_change(target(*kind, i), before, after)
            })
            .collect(),
    )
}

static PLANS: AtomicUsize = AtomicUsize::new(0);
static FAULT_POINTS: AtomicUsize = AtomicUsize::new(0);

fn run_case(plan: &Plan, at: usize, fault: Fault) {
    let dir = std::env::temp_dir().join(format!(
        "tcto-prop-{}-{at}-{}",
        std::process::id(),
        FAULT_POINTS.fetch_add(1, Ordering::Relaxed)
    ));
    let journal = Journal::open_or_create(&dir).unwrap();
    let mut fx = Faulty {
        sim: SimEffects::from_plan(plan),
        at,
        fault,
        writes: 0,
    };
    let start: BTreeMap<Target, Value> = fx.sim.values.clone();
    let opts = ApplyOptions {
        command: "apply".into(),
        ..Default::default()
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        apply(plan, &mut fx, Some(&journal), &opts)
    }));
    match (fault, result) {
        (Fault::Crash, Err(_)) => {
            // The user's rollback, from the journal alone.
            let mut fx2 = fx.sim.clone();
            let records = journal.list().unwrap();
            let mut chosen = select_for_rollback(&records, None).unwrap();
            assert_eq!(chosen.len(), 1, "the crashed transaction is undoable");
            let report = undo(&mut chosen[0], &mut fx2, Some(&journal), false).unwrap();
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
    // A simulated crash is a panic; keep its message out of the output.
    common::hide_simulated_crashes();
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
            }
            Ok(())
        })
        .unwrap();
    let (plans, points) = (
        PLANS.load(Ordering::Relaxed),
        FAULT_POINTS.load(Ordering::Relaxed),
    );
    eprintln!("fault property: {plans} random plans, {points} fault points, every one ended where it started");
    assert!(plans >= 100 && points >= plans * 5);
}
