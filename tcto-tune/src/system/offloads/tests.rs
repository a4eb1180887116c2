//! Group reads and writes against simulated NICs, and rollback of offload
//! steps through the real transaction engine after the NIC was renamed,
//! replaced under its name, or removed.

use super::*;
use crate::apply::{apply, undo, ApplyOptions, Outcome, Run};
use crate::journal::{Journal, StepStatus, TxState};
use crate::plan::Plan;
use crate::state::FeatureState;
use crate::system::Effects;

fn features() -> Features {
    let mut f = Features::new();
    for n in [
        "tx-tcp-segmentation",
        "tx-tcp-ecn-segmentation",
        "tx-tcp6-segmentation",
    ] {
        f.insert(n.into(), FeatureState::changeable(true));
    }
    f.insert("rx-gro".into(), FeatureState::changeable(false));
    f.insert("rx-lro".into(), FeatureState::fixed(false));
    f.insert(
        "tx-tcp-mangleid-segmentation".into(),
        FeatureState::changeable(true),
    );
    f
}

/// `lo` (ifindex 1), `a` (2), `b` (3); `a` and `b` have features.
fn sim() -> SimOffloads {
    SimOffloads {
        interfaces: vec!["lo".into(), "a".into(), "b".into()],
        features: BTreeMap::from([("a".into(), features()), ("b".into(), features())]),
        nics: BTreeMap::new(),
        scope: None,
    }
}

fn target(iface: &str, feature: &str, ifindex: Option<u32>) -> Target {
    Target::Offload {
        iface: iface.into(),
        feature: feature.into(),
        ifindex,
        perm_addr: None,
        scope: None,
    }
}

#[test]
fn writing_a_group_sets_every_changeable_member_and_reads_back() {
    let mut s = sim();
    let tso = target("a", "tso", Some(2));
    write_group(&mut s, &tso, &Value::Bool(false)).unwrap();
    assert_eq!(read_group(&s, &tso).unwrap(), Value::Bool(false));
    assert!(s.features["a"]
        .iter()
        .filter(|(n, _)| n.starts_with("tx-tcp"))
        .all(|(_, st)| !st.on));
    let gro = target("a", "gro", Some(2));
    write_group(&mut s, &gro, &Value::Bool(true)).unwrap();
    assert_eq!(read_group(&s, &gro).unwrap(), Value::Bool(true));
    // Writing the value it already has is a no-op that succeeds.
    write_group(&mut s, &gro, &Value::Bool(true)).unwrap();
    // `b` was never touched.
    assert_eq!(s.features["b"], features());
}

#[test]
fn a_mixed_group_reads_as_its_members_and_is_restored_exactly() {
    let mut s = sim();
    s.features.get_mut("a").unwrap().insert(
        "tx-tcp-mangleid-segmentation".into(),
        FeatureState::changeable(false),
    );
    let tso = target("a", "tso", Some(2));
    let mixed = read_group(&s, &tso).unwrap();
    assert_eq!(
        mixed,
        Value::Text("mixed (off: tx-tcp-mangleid-segmentation)".into())
    );
    write_group(&mut s, &tso, &Value::Bool(true)).unwrap();
    assert_eq!(read_group(&s, &tso).unwrap(), Value::Bool(true));
    // Rollback writes the journaled mixed reading: mangleid goes off again.
    write_group(&mut s, &tso, &mixed).unwrap();
    assert_eq!(read_group(&s, &tso).unwrap(), mixed);
    assert!(!s.features["a"]["tx-tcp-mangleid-segmentation"].on);
    // Text that is not a reading is refused before any write.
    let e = write_group(&mut s, &tso, &Value::Text("mixed (on: x".into())).unwrap_err();
    assert!(matches!(e, SystemError::Unsupported { .. }), "{e}");
}

#[test]
fn a_fixed_feature_that_did_not_change_is_an_error() {
    let mut s = sim();
    let e = write_group(&mut s, &target("a", "lro", Some(2)), &Value::Bool(true)).unwrap_err();
    assert!(matches!(e, SystemError::OffloadNotTaken { .. }), "{e}");
    assert!(e.to_string().contains("`a lro` is still not on"), "{e}");
    assert!(e.to_string().contains("fixes rx-lro"), "{e}");
}

#[test]
fn a_member_the_kernel_keeps_off_fails_and_names_the_dependency() {
    let mut s = sim();
    let f = s.features.get_mut("a").unwrap();
    f.insert("tx-scatter-gather".into(), FeatureState::changeable(false));
    for (n, st) in f.iter_mut() {
        if n.starts_with("tx-tcp") {
            st.on = false;
        }
    }
    let tso = target("a", "tso", Some(2));
    assert_eq!(read_group(&s, &tso).unwrap(), Value::Bool(false));
    let e = write_group(&mut s, &tso, &Value::Bool(true)).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`a tso` is still not on"), "{text}");
    assert!(text.contains("`sg` is off"), "{text}");
    // The requests are recorded; turning the group off withdraws them.
    assert!(s.features["a"]["tx-tcp-segmentation"].wish);
    write_group(&mut s, &tso, &Value::Bool(false)).unwrap();
    assert!(s.features["a"].values().all(|st| !st.wish));
}

#[test]
fn a_missing_interface_is_gone_not_absent() {
    let mut s = sim();
    for t in [target("eth9", "tso", None), target("eth9", "tso", Some(9))] {
        let e = read_group(&s, &t).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
        assert!(e.to_string().contains("`eth9`"), "{e}");
        let e = write_group(&mut s, &t, &Value::Bool(false)).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
        assert!(matches!(locate(&s, &t).unwrap(), Located::Gone { .. }));
    }
}

#[test]
fn bad_names_are_refused_before_any_backend_call() {
    let mut s = sim();
    assert!(read_group(&s, &target("a/../b", "tso", None)).is_err());
    assert!(write_group(&mut s, &target("a", "ufo", None), &Value::Bool(false)).is_err());
}

#[test]
fn a_renamed_device_is_followed_and_the_new_holder_of_its_name_left_alone() {
    let mut s = sim();
    let tso = target("a", "tso", Some(2));
    write_group(&mut s, &tso, &Value::Bool(false)).unwrap();
    // ip link set dev a name aold; ip link set dev b name a
    s.rename("a", "aold");
    s.rename("b", "a");
    let Located::Moved { to, note } = locate(&s, &tso).unwrap() else {
        panic!("not moved")
    };
    assert_eq!(to, target("aold", "tso", Some(2)));
    assert!(
        note.contains("`a` (ifindex 2) is now named `aold`"),
        "{note}"
    );
    assert!(
        note.contains("the `a` here now is another device (ifindex 3), left alone"),
        "{note}"
    );
    // Reads and writes by the old target act on `aold`, never on the new `a`.
    assert_eq!(read_group(&s, &tso).unwrap(), Value::Bool(false));
    write_group(&mut s, &tso, &Value::Bool(true)).unwrap();
    assert_eq!(s.features["aold"], features());
    assert_eq!(s.features["a"], features(), "the new `a` is untouched");
    // A record without ifindex (written before it was recorded) goes by name.
    assert_eq!(
        locate(&s, &target("a", "tso", None)).unwrap(),
        Located::Here
    );
}

#[test]
fn a_different_device_under_the_same_name_is_gone_not_reverted() {
    let mut s = sim();
    let tso = target("a", "tso", Some(2));
    s.remove("a");
    s.rename("b", "a");
    let Located::Gone { why } = locate(&s, &tso).unwrap() else {
        panic!("not gone")
    };
    assert!(
        why.contains("interface `a` (ifindex 2) is gone; the `a` here now is another device (ifindex 3), left alone"),
        "{why}"
    );
    assert!(write_group(&mut s, &tso, &Value::Bool(true)).is_err());
    assert_eq!(s.features["a"], features());
}

#[test]
fn a_permanent_address_finds_the_nic_under_a_new_ifindex_and_rejects_an_impostor() {
    let mut s = sim();
    let mac = "02:00:00:00:00:0a";
    s.nics.insert(
        "a".into(),
        NicId {
            ifindex: 2,
            perm_addr: Some(mac.into()),
            scope: None,
        },
    );
    let tso = Target::Offload {
        iface: "a".into(),
        feature: "tso".into(),
        ifindex: Some(2),
        perm_addr: Some(mac.into()),
        scope: None,
    };
    assert_eq!(locate(&s, &tso).unwrap(), Located::Here);
    // A driver reload: same NIC, new ifindex 7; ifindex 2 reused by `b`.
    s.nics.insert(
        "a".into(),
        NicId {
            ifindex: 7,
            perm_addr: Some(mac.into()),
            scope: None,
        },
    );
    s.nics.insert(
        "b".into(),
        NicId {
            ifindex: 2,
            perm_addr: Some("02:00:00:00:00:0b".into()),
            scope: None,
        },
    );
    let Located::Moved { to, note } = locate(&s, &tso).unwrap() else {
        panic!("not moved")
    };
    assert!(matches!(to, Target::Offload { ref iface, ifindex: Some(7), .. } if iface == "a"));
    assert!(note.contains("came back as `a` (ifindex 7"), "{note}");
    s.remove("a");
    assert!(matches!(locate(&s, &tso).unwrap(), Located::Gone { .. }));
}

/// The live effects over simulated NICs (sysctls kept in memory), as
/// `LinuxEffects` routes them.
struct Nics {
    nics: SimOffloads,
    sysctls: BTreeMap<Target, Value>,
}

impl Effects for Nics {
    fn read(&mut self, t: &Target) -> Result<Value, SystemError> {
        match t {
            Target::Offload { .. } => read_group(&self.nics, t),
            _ => Ok(self.sysctls.get(t).cloned().unwrap_or(Value::Absent)),
        }
    }
    fn write(&mut self, t: &Target, v: &Value) -> Result<(), SystemError> {
        match t {
            Target::Offload { .. } => write_group(&mut self.nics, t, v),
            _ => {
                self.sysctls.insert(t.clone(), v.clone());
                Ok(())
            }
        }
    }
    fn locate(&mut self, t: &Target) -> Result<Located, SystemError> {
        match t {
            Target::Offload { .. } => locate(&self.nics, t),
            _ => Ok(Located::Here),
        }
    }
}

fn offload_plan(state: &SystemState, iface: &str) -> Plan {
    let mut o = crate::fix::OffloadFix {
        iface: crate::names::IfName::new(iface).unwrap(),
        tso: Some(false),
        gso: None,
        gro: Some(true),
        lro: None,
        reason: None,
    };
    o.reason = None;
    let mut p = crate::plan::plan(
        &crate::profile::Profile::builder("offload-off")
            .offload(o)
            .build(),
        state,
    );
    p.changes.insert(
        0,
        crate::change::Change::sysctl(
            &"net.core.somaxconn".parse().unwrap(),
            Some("1024"),
            "4096",
            crate::fix::Intent::Exact,
            None,
        ),
    );
    p
}

fn setup(tag: &str) -> (std::path::PathBuf, Journal, Nics, Plan) {
    let dir = std::env::temp_dir().join(format!("tcto-nic-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let j = Journal::open_or_create(&dir).unwrap();
    let nics = sim();
    let mut state = SystemState {
        interfaces: nics.interfaces.clone(),
        ..Default::default()
    };
    for i in ["a", "b"] {
        state
            .offloads
            .insert(i.into(), crate::offload::relevant(&nics.features[i]));
        let id = nics.device(&IfName::new(i).unwrap()).unwrap().unwrap();
        state.nics.insert(i.into(), id);
    }
    let plan = offload_plan(&state, "a");
    let fx = Nics {
        nics,
        sysctls: BTreeMap::from([(
            Target::Sysctl {
                key: "net.core.somaxconn".parse().unwrap(),
            },
            Value::Text("1024".into()),
        )]),
    };
    (dir, j, fx, plan)
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        command: "apply".into(),
        force_after_crash: false,
    }
}

#[test]
fn the_journal_records_the_ifindex_and_old_records_still_load() {
    let (dir, j, mut fx, plan) = setup("record");
    assert_eq!(
        plan.changes[1].target,
        target("a", "tso", Some(2)),
        "the plan names the device"
    );
    apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts()).unwrap();
    let raw = std::fs::read_to_string(dir.join("tx/000001.json")).unwrap();
    assert!(
        raw.contains("\"ifindex\": 2") || raw.contains("\"ifindex\":2"),
        "{raw}"
    );
    // A target as journaled before this change (no ifindex) still parses.
    let old: Target =
        serde_json::from_str(r#"{"kind":"offload","iface":"a","feature":"tso"}"#).unwrap();
    assert_eq!(old, target("a", "tso", None));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rollback_follows_a_renamed_nic_and_leaves_the_new_holder_of_its_name_alone() {
    let (dir, j, mut fx, plan) = setup("rename");
    let r = apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied, "{r}");
    fx.nics.rename("a", "aold");
    fx.nics.rename("b", "a");
    let mut rec = j.newest().unwrap().unwrap();
    let r = undo(&mut rec, Run::Journaled(&mut fx, &j.lock().unwrap()), false).unwrap();
    assert_eq!(r.outcome, Outcome::Undone, "{r}");
    assert_eq!(
        fx.nics.features["aold"],
        features(),
        "the changed NIC is restored"
    );
    assert_eq!(
        fx.nics.features["a"],
        features(),
        "the impostor is untouched"
    );
    let text = r.to_string();
    assert!(text.contains("reverted  aold tso"), "{text}");
    assert!(text.contains("is now named `aold`"), "{text}");
    assert_eq!(j.newest().unwrap().unwrap().state, TxState::Undone);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rollback_closes_the_steps_of_a_removed_nic_as_gone_and_completes_the_rest() {
    for force in [false, true] {
        let (dir, j, mut fx, plan) = setup(&format!("gone-{force}"));
        apply(&plan, Run::Journaled(&mut fx, &j.lock().unwrap()), &opts()).unwrap();
        fx.nics.remove("a");
        let mut rec = j.newest().unwrap().unwrap();
        let r = undo(&mut rec, Run::Journaled(&mut fx, &j.lock().unwrap()), force).unwrap();
        assert_eq!(r.outcome, Outcome::Undone, "{r}");
        let statuses: Vec<_> = r.steps.iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            vec![StepStatus::Reverted, StepStatus::Gone, StepStatus::Gone],
            "{r}"
        );
        let text = r.to_string();
        assert!(text.contains("gone      a tso"), "{text}");
        assert!(!text.contains("drifted"), "{text}");
        assert_eq!(
            fx.sysctls.values().next(),
            Some(&Value::Text("1024".into()))
        );
        // The record is closed: nothing left for a later rollback.
        let rec = j.newest().unwrap().unwrap();
        assert_eq!(rec.state, TxState::Undone);
        assert!(!rec.state.undoable());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_nic_removed_mid_transaction_fails_it_and_the_rest_rolls_back() {
    let (dir, j, fx, plan) = setup("mid");
    // `ip link del a` between the tso step and the gro step.
    struct Vanish(Nics);
    impl Effects for Vanish {
        fn read(&mut self, t: &Target) -> Result<Value, SystemError> {
            self.0.read(t)
        }
        fn write(&mut self, t: &Target, v: &Value) -> Result<(), SystemError> {
            if matches!(t, Target::Offload { feature, .. } if feature == "gro") {
                self.0.nics.remove("a");
            }
            self.0.write(t, v)
        }
        fn locate(&mut self, t: &Target) -> Result<Located, SystemError> {
            self.0.locate(t)
        }
    }
    let mut v = Vanish(fx);
    let r = apply(&plan, Run::Journaled(&mut v, &j.lock().unwrap()), &opts()).unwrap();
    assert_eq!(r.outcome, Outcome::RolledBack, "{r}");
    let statuses: Vec<_> = r.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![StepStatus::Reverted, StepStatus::Gone, StepStatus::Gone],
        "{r}"
    );
    assert!(
        r.failure
            .as_deref()
            .unwrap()
            .contains("interface `a` (ifindex 2) is gone"),
        "{r}"
    );
    assert_eq!(
        v.0.sysctls.values().next(),
        Some(&Value::Text("1024".into()))
    );
    let rec = j.newest().unwrap().unwrap();
    assert_eq!(
        rec.state,
        TxState::RolledBack,
        "nothing blocks the next apply"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_ifindex_from_another_boot_is_gone_and_from_another_namespace_refused() {
    let here = IfScope {
        boot_id: "b1".into(),
        netns: 4026531840,
    };
    let mut s = sim();
    s.scope = Some(here.clone());
    let at = |scope: IfScope| Target::Offload {
        iface: "a".into(),
        feature: "tso".into(),
        ifindex: Some(2),
        perm_addr: None,
        scope: Some(scope),
    };
    assert_eq!(locate(&s, &at(here.clone())).unwrap(), Located::Here);
    let rebooted = IfScope {
        boot_id: "b0".into(),
        ..here.clone()
    };
    let Located::Gone { why } = locate(&s, &at(rebooted)).unwrap() else {
        panic!("not gone")
    };
    assert!(why.contains("before the last reboot"), "{why}");
    let elsewhere = IfScope {
        netns: 4026532000,
        ..here
    };
    let e = locate(&s, &at(elsewhere.clone())).unwrap_err();
    assert!(matches!(e, SystemError::OtherNamespace { .. }), "{e}");
    assert!(e.to_string().contains("net:[4026532000]"), "{e}");
    // Nothing is written through a target of another namespace.
    assert!(write_group(&mut s, &at(elsewhere), &Value::Bool(false)).is_err());
    assert_eq!(s.features["a"], features());
}
