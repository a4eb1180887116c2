//! Transaction tests against the simulated system: every fault point of a
//! plan leaves the system exactly where it started.

use super::*;
use crate::change::Change;
use crate::fix::Intent;
use crate::journal::Journal;
use crate::system::{SimEffects, SimFault};

fn plan_of(changes: &[(&str, &str, &str)]) -> Plan {
    Plan {
        schema: 1,
        profile: "t".into(),
        initial_netns: true,
        changes: changes
            .iter()
            .map(|(k, a, b)| Change::sysctl(&k.parse().unwrap(), Some(a), b, Intent::Exact, None))
            .collect(),
        unchanged: vec![],
        skipped: vec![],
        findings: vec![],
    }
}

fn three() -> Plan {
    plan_of(&[
        ("net.core.somaxconn", "1024", "4096"),
        ("net.ipv4.tcp_max_syn_backlog", "512", "8192"),
        ("net.ipv4.tcp_tw_reuse", "2", "1"),
    ])
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
fn journal(tag: &str) -> (Dir, Journal) {
    let p = std::env::temp_dir().join(format!("tcto-a-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    let j = Journal::open_or_create(&p).unwrap();
    (Dir(p), j)
}

#[test]
fn applies_in_order_and_journals() {
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let (_d, j) = journal("ok");
    let r = apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied);
    assert_eq!(sim.writes.len(), 3);
    assert_eq!(
        sim.writes[0].0,
        Target::Sysctl {
            key: "net.core.somaxconn".parse().unwrap()
        }
    );
    let rec = j.load("000001").unwrap();
    assert_eq!(rec.state, TxState::Applied);
    assert!(rec.steps.iter().all(|s| s.status == StepStatus::Applied));
}

#[test]
fn only_what_differs_is_written() {
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    sim.values.insert(
        Target::Sysctl {
            key: "net.ipv4.tcp_max_syn_backlog".parse().unwrap(),
        },
        Value::Text("8192".into()),
    );
    let r = apply(&plan, Run::DryRun(&mut sim), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::WouldApply);
    assert_eq!(r.steps[1].status, StepStatus::Unchanged);
    assert_eq!(sim.writes.len(), 2);
    let again = apply(&plan, Run::DryRun(&mut sim), &opts()).unwrap();
    assert_eq!(again.outcome, Outcome::Noop);
}

#[test]
fn every_fault_point_restores_the_start() {
    for faulty in 0..3 {
        for fault in [
            SimFault::Refuse(libc::EACCES),
            SimFault::Refuse(libc::EINVAL),
            SimFault::Store(Value::Text("7".into())),
        ] {
            let plan = three();
            let mut sim = SimEffects::from_changes(&plan.changes);
            let start = sim.values.clone();
            sim.faults
                .insert(plan.changes[faulty].target.clone(), fault.clone());
            let (_d, j) = journal(&format!("f{faulty}"));
            let r = apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
            // A store-fault target also refuses its revert writes: count on
            // the others being restored and that one being named.
            if let SimFault::Store(_) = fault {
                assert_eq!(r.outcome, Outcome::RollbackIncomplete, "{faulty}");
                assert!(r.to_string().contains(&plan.changes[faulty].key()));
                for (t, v) in &start {
                    if *t != plan.changes[faulty].target {
                        assert_eq!(sim.values[t], *v);
                    }
                }
                continue;
            }
            assert_eq!(r.outcome, Outcome::RolledBack, "fault at {faulty}");
            assert_eq!(
                sim.values, start,
                "fault at {faulty}: state equals the start"
            );
            assert_eq!(r.steps[faulty].status, StepStatus::Failed);
            assert!(r
                .failure
                .as_ref()
                .unwrap()
                .contains(&plan.changes[faulty].key()));
            assert_eq!(j.load("000001").unwrap().state, TxState::RolledBack);
        }
    }
}

#[test]
fn a_silent_clamp_is_a_failure() {
    let plan = plan_of(&[
        ("net.core.somaxconn", "1024", "4096"),
        ("net.ipv4.tcp_tw_reuse", "2", "1"),
    ]);
    let mut sim = SimEffects::from_changes(&plan.changes);
    sim.faults.insert(
        plan.changes[1].target.clone(),
        SimFault::Store(Value::Text("2".into())),
    );
    let r = apply(&plan, Run::DryRun(&mut sim), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::RolledBack);
    assert!(r.steps[1]
        .error
        .as_ref()
        .unwrap()
        .contains("kept `2` instead of `1`"));
    assert_eq!(
        sim.values[&plan.changes[0].target],
        Value::Text("1024".into())
    );
}

#[test]
fn refusals_stop_before_any_write() {
    let mut plan = three();
    plan.findings.push(crate::check::Finding::new(
        crate::finding::FindingCode::ConntrackMemory,
        crate::check::Severity::Refuse,
        "m",
    ));
    let mut sim = SimEffects::from_changes(&plan.changes);
    assert!(matches!(
        apply(&plan, Run::DryRun(&mut sim), &opts()),
        Err(ApplyError::Refused { .. })
    ));
    assert!(sim.writes.is_empty());
}

#[test]
fn an_open_record_blocks_until_forced_or_undone() {
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let start = sim.values.clone();
    let (_d, j) = journal("open");
    // Simulate a crash: prior values journaled, two changes made, no end.
    let mut rec = TxRecord {
        format: crate::journal::JOURNAL_FORMAT,
        id: "000001".into(),
        command: "apply".into(),
        profile: "t".into(),
        started: now_rfc3339(),
        updated: now_rfc3339(),
        state: TxState::Open,
        steps: apply(
            &plan,
            Run::DryRun(&mut SimEffects::from_changes(&plan.changes)),
            &opts(),
        )
        .unwrap()
        .steps,
        boot_id: j.boot_id().map(str::to_owned),
        notes: vec![],
    };
    for s in &mut rec.steps {
        s.status = StepStatus::Pending;
    }
    j.write(&rec).unwrap();
    for c in &plan.changes[..2] {
        sim.values.insert(c.target.clone(), c.after.clone());
    }
    assert!(matches!(
        apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()),
        Err(ApplyError::Interrupted { .. })
    ));
    let mut chosen = select_for_rollback(&j.list().unwrap(), None).unwrap();
    assert_eq!(chosen.len(), 1);
    let r = undo(
        &mut chosen[0],
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(r.outcome, Outcome::Undone);
    assert_eq!(sim.values, start);
    assert_eq!(j.load("000001").unwrap().state, TxState::Undone);
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
}

#[test]
fn undo_leaves_drifted_values_alone_unless_forced() {
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let (_d, j) = journal("drift");
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    sim.values
        .insert(plan.changes[0].target.clone(), Value::Text("9999".into()));
    let mut rec = j.load("000001").unwrap();
    let r = undo(
        &mut rec,
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(r.outcome, Outcome::UndoIncomplete);
    assert_eq!(r.steps[0].status, StepStatus::Drifted);
    assert_eq!(
        sim.values[&plan.changes[0].target],
        Value::Text("9999".into())
    );
    assert_eq!(
        sim.values[&plan.changes[1].target],
        Value::Text("512".into())
    );
    let mut rec = j.load("000001").unwrap();
    assert_eq!(rec.state, TxState::UndoIncomplete);
    let r = undo(&mut rec, Run::Journaled(&mut sim, &j.lock().unwrap()), true).unwrap();
    assert_eq!(r.outcome, Outcome::Undone);
    assert_eq!(
        sim.values[&plan.changes[0].target],
        Value::Text("1024".into())
    );
}

#[test]
fn rollback_to_undoes_newest_first() {
    let (_d, j) = journal("to");
    let mut sim = SimEffects::default();
    for (i, v) in ["2000", "3000", "4000"].iter().enumerate() {
        let prev = ["1000", "2000", "3000"][i];
        let plan = plan_of(&[("net.core.somaxconn", prev, v)]);
        sim.values
            .insert(plan.changes[0].target.clone(), Value::Text(prev.into()));
        apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    }
    let chosen = select_for_rollback(&j.list().unwrap(), Some("000002")).unwrap();
    assert_eq!(
        chosen.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["000003", "000002"]
    );
    for mut r in chosen {
        undo(&mut r, Run::Journaled(&mut sim, &j.lock().unwrap()), false).unwrap();
    }
    assert_eq!(
        sim.values[&Target::Sysctl {
            key: "net.core.somaxconn".parse().unwrap()
        }],
        Value::Text("2000".into())
    );
    assert!(matches!(
        select_for_rollback(&j.list().unwrap(), Some("000009")),
        Err(JournalError::UnknownTx { .. })
    ));
}

#[test]
fn a_failed_revert_can_be_rolled_back_later_and_blocks_apply() {
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let start = sim.values.clone();
    let (_d, j) = journal("incomplete");
    // Step 2 fails; reverting step 0 fails too (a sticky fault on it).
    sim.faults.insert(
        plan.changes[2].target.clone(),
        SimFault::Refuse(libc::EINVAL),
    );
    sim.faults.insert(
        plan.changes[0].target.clone(),
        SimFault::Store(Value::Text("4096".into())),
    );
    let r = apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::RollbackIncomplete, "{r}");
    assert!(
        r.to_string()
            .contains("COULD NOT RESTORE: net.core.somaxconn"),
        "{r}"
    );
    // The next apply is blocked, naming the transaction.
    sim.faults.clear();
    let e = apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap_err();
    assert!(
        matches!(e, ApplyError::Incomplete { ref id } if id == "000001"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("000001"), "{e}");
    // Once the cause is gone, rollback restores everything.
    let mut chosen = select_for_rollback(&j.list().unwrap(), None).unwrap();
    assert_eq!(chosen[0].id, "000001");
    let u = undo(
        &mut chosen[0],
        Run::Journaled(&mut sim, &j.lock().unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(u.outcome, Outcome::Undone, "{u}");
    assert_eq!(sim.values, start);
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
}

#[test]
fn a_value_raised_since_the_plan_is_not_lowered() {
    let mut plan = plan_of(&[("net.core.somaxconn", "1024", "4096")]);
    plan.changes[0].intent = Intent::AtLeast;
    let mut sim = SimEffects::from_changes(&plan.changes);
    sim.values
        .insert(plan.changes[0].target.clone(), Value::Text("8192".into()));
    let r = apply(&plan, Run::DryRun(&mut sim), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::Noop);
    assert_eq!(
        sim.values[&plan.changes[0].target],
        Value::Text("8192".into())
    );
    // An exact intent still sets it.
    plan.changes[0].intent = Intent::Exact;
    assert_eq!(
        apply(&plan, Run::DryRun(&mut sim), &opts())
            .unwrap()
            .outcome,
        Outcome::WouldApply
    );
}

#[test]
fn past_the_last_id_apply_refuses_before_any_write() {
    let (d, j) = journal("lastid");
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    let mut last = j.load("000001").unwrap();
    last.id = "999999999999".into();
    j.write(&last).unwrap();
    let mut sim = SimEffects::from_changes(&plan.changes);
    let files = || std::fs::read_dir(d.0.join("tx")).unwrap().count();
    let n = files();
    let e = apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap_err();
    assert!(
        matches!(e, ApplyError::Journal(JournalError::IdsExhausted { .. })),
        "{e}"
    );
    assert!(sim.writes.is_empty(), "nothing written to the system");
    assert_eq!(files(), n, "nothing written to the journal");
}

#[test]
fn rollback_to_accepts_unpadded_ids() {
    let (_d, j) = journal("unpadded");
    let plan = three();
    let mut sim = SimEffects::from_changes(&plan.changes);
    apply(&plan, Run::Journaled(&mut sim, &j.lock().unwrap()), &opts()).unwrap();
    let chosen = select_for_rollback(&j.list().unwrap(), Some("1")).unwrap();
    assert_eq!(chosen[0].id, "000001");
}

#[test]
fn dry_run_refuses_what_the_kernel_would() {
    use crate::state::{SysctlReading, SystemState};
    let plan = plan_of(&[
        ("net.core.somaxconn", "1024", "4096"),
        ("net.netfilter.nf_conntrack_max", "65536", "300000"),
    ]);
    let mut state = SystemState::default();
    state
        .sysctls
        .insert("net.core.somaxconn".into(), SysctlReading::rw("1024"));
    state.sysctls.insert(
        "net.netfilter.nf_conntrack_max".into(),
        SysctlReading::ro("65536"),
    );
    let mut sim = SimEffects::from_changes_and_state(&plan.changes, &state);
    let r = apply(&plan, Run::DryRun(&mut sim), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::RolledBack, "{r}");
    assert!(r.failure.unwrap().contains("Permission denied"));
}
