//! Property: only the newest journal record can block a new transaction.
//!
//! `apply` reads just the newest record to decide whether an interrupted or
//! half-reverted transaction blocks it (so its cost does not grow with the
//! history). That is sound only if no older record is ever `open` or
//! `rollback_incomplete`. Random sequences of applies (clean, crashed,
//! failed with a failed revert, forced past a crash), rollbacks (newest,
//! back to a random id, or killed half-way) and reboots (a new boot id,
//! runtime values reset) run against the real journal on disk; after every
//! step the whole journal is read and checked, and `apply`'s decision is
//! compared with the one the whole journal gives.

use std::panic::{catch_unwind, AssertUnwindSafe};

mod common;

use proptest::prelude::*;
use tcto_tune::apply::{apply, blocked_by, select_for_rollback, undo, ApplyOptions, Run};
use tcto_tune::journal::Journal;
use tcto_tune::system::{Effects, SimEffects, SystemError};
use tcto_tune::Plan;
use tcto_tune::{Target, Value};

const KEYS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Apply {
        values: [u16; KEYS],
    },
    ApplyCrash {
        values: [u16; KEYS],
    },
    ApplyRevertFails {
        values: [u16; KEYS],
    },
    ApplyForced {
        values: [u16; KEYS],
    },
    Rollback,
    RollbackTo(u8),
    /// A rollback whose every write is refused (`undo_incomplete`).
    RollbackRefused,
    /// A rollback killed right after its first restored value.
    RollbackCrash,
    /// A reboot: a new boot id, every runtime value back to the boot's own.
    Reboot,
}

fn op() -> impl Strategy<Value = Op> {
    let v = any::<[u16; KEYS]>();
    prop_oneof![
        v.prop_map(|values| Op::Apply { values }),
        v.prop_map(|values| Op::ApplyCrash { values }),
        v.prop_map(|values| Op::ApplyRevertFails { values }),
        v.prop_map(|values| Op::ApplyForced { values }),
        Just(Op::Rollback),
        any::<u8>().prop_map(Op::RollbackTo),
        Just(Op::RollbackRefused),
        Just(Op::RollbackCrash),
        Just(Op::Reboot),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Clean,
    /// Die right after the first write reached the system.
    Crash,
    /// The second write and every later one (the reverts too) are refused.
    RevertFails,
    /// Every write is refused.
    RefuseAll,
}

struct System {
    sim: SimEffects,
    mode: Mode,
    writes: usize,
}

impl Effects for System {
    fn read(&mut self, t: &Target) -> Result<Value, SystemError> {
        self.sim.read(t)
    }
    fn write(&mut self, t: &Target, v: &Value) -> Result<(), SystemError> {
        self.writes += 1;
        match self.mode {
            Mode::Crash if self.writes == 1 => {
                self.sim.write(t, v)?;
                common::crash();
            }
            Mode::RefuseAll | Mode::RevertFails
                if self.mode == Mode::RefuseAll || self.writes >= 2 =>
            {
                Err(common::refused(t, v, 13)) // EACCES
            }
            _ => self.sim.write(t, v),
        }
    }
}

fn key(i: usize) -> Target {
    Target::Sysctl {
        key: format!("net.test.key{i}").parse().unwrap(),
    }
}

/// A plan moving every key from its current value to a different one.
fn plan_to(sim: &SimEffects, values: &[u16; KEYS]) -> Plan {
    common::plan_of(
        (0..KEYS)
            .map(|i| {
                let before = sim.values.get(&key(i)).cloned().unwrap_or(Value::Absent);
                let mut after = Value::Text(values[i].to_string());
                if after == before {
                    after = Value::Text(values[i].wrapping_add(1).to_string());
                }
                common::exact_change(key(i), before, after)
            })
            .collect(),
    )
}

fn run(ops: &[Op], case: usize) {
    let dir = common::scratch_dir().join(format!("tcto-inv-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut boot = 0u32;
    let boot_id = |n: u32| Some(format!("00000000-0000-4000-8000-{n:012}"));
    let mut journal = Journal::open_or_create(&dir)
        .unwrap()
        .with_boot_id(boot_id(boot));
    let mut sim = SimEffects::default();
    for i in 0..KEYS {
        sim.values.insert(key(i), Value::Text("1".into()));
    }
    for op in ops {
        if let Op::Reboot = op {
            boot += 1;
            journal = journal.with_boot_id(boot_id(boot));
            for i in 0..KEYS {
                sim.values.insert(key(i), Value::Text("1".into()));
            }
            continue;
        }
        let (values, mode, force) = match op {
            Op::Apply { values } => (Some(values), Mode::Clean, false),
            Op::ApplyCrash { values } => (Some(values), Mode::Crash, false),
            Op::ApplyRevertFails { values } => (Some(values), Mode::RevertFails, false),
            Op::ApplyForced { values } => (Some(values), Mode::Clean, true),
            Op::Rollback | Op::RollbackTo(_) | Op::Reboot => (None, Mode::Clean, false),
            Op::RollbackRefused => (None, Mode::RefuseAll, false),
            Op::RollbackCrash => (None, Mode::Crash, false),
        };
        let before = journal.list().unwrap();
        let mut system = System {
            sim: sim.clone(),
            mode,
            writes: 0,
        };
        if let Some(values) = values {
            let plan = plan_to(&sim, values);
            let opts = ApplyOptions {
                command: "apply".into(),
                force_after_crash: force,
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                apply(
                    &plan,
                    Run::Journaled(&mut system, &journal.lock().unwrap()),
                    &opts,
                )
            }));
            if let Ok(Err(e)) = &result {
                // Refused for a blocker: the whole journal must agree.
                assert!(
                    before
                        .iter()
                        .any(|r| blocked_by(r, journal.boot_id()).is_some())
                        && !force,
                    "apply refused ({e}) but the whole journal has no blocker"
                );
            } else {
                assert!(
                    before
                        .iter()
                        .all(|r| blocked_by(r, journal.boot_id()).is_none())
                        || force,
                    "apply went ahead past a blocker in the whole journal"
                );
            }
        } else {
            let to = match op {
                Op::RollbackTo(n) if !before.is_empty() => {
                    Some(before[*n as usize % before.len()].id.clone())
                }
                _ => None,
            };
            for mut record in select_for_rollback(&before, to.as_deref()).unwrap() {
                let done = catch_unwind(AssertUnwindSafe(|| {
                    undo(
                        &mut record,
                        Run::Journaled(&mut system, &journal.lock().unwrap()),
                        true,
                    )
                    .unwrap()
                }));
                if done.is_err() {
                    break; // the crashed rollback's process is gone
                }
            }
        }
        sim = system.sim;
        let after = journal.list().unwrap();
        let newest = after.last().map(|r| r.id.clone());
        for r in &after {
            if r.state.blocks() {
                assert_eq!(
                    Some(&r.id),
                    newest.as_ref(),
                    "after {op:?}: record {} is {:?} but is not the newest",
                    r.id,
                    r.state
                );
            }
        }
        assert_eq!(
            journal.newest().unwrap().map(|r| r.id),
            newest,
            "newest() reads the last record"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_the_newest_record_can_block() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    });
    let case = std::cell::Cell::new(0);
    runner
        .run(&prop::collection::vec(op(), 1..24), |ops| {
            case.set(case.get() + 1);
            run(&ops, case.get());
            Ok(())
        })
        .unwrap();
    eprintln!(
        "journal invariant: {} random sequences of applies and rollbacks",
        case.get()
    );
}
