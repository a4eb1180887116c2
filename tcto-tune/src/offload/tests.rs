//! Offload planning and checks from fixture states: every check triggered and not.

use super::*;
use crate::change::{ChangeKind, Target};
use crate::finding::Severity;
use crate::fix::OffloadFix;
use crate::kind::Plan;
use crate::names::IfName;
use crate::plan::{plan, plan_with, PlanOptions};
use crate::profile::Profile;
use crate::state::SystemState;
use crate::SysctlReading;

fn fix(iface: &str) -> OffloadFix {
    OffloadFix {
        iface: IfName::new(iface).unwrap(),
        tso: None,
        gso: None,
        gro: None,
        lro: None,
        reason: Some("experiment".into()),
    }
}

/// A veth as kernel 6.x shows it: tso members, gso on, gro off, lro fixed off.
fn veth() -> Features {
    let mut f = Features::new();
    for n in [
        "tx-tcp-segmentation",
        "tx-tcp-ecn-segmentation",
        "tx-tcp-mangleid-segmentation",
        "tx-tcp6-segmentation",
        "tx-tcp-accecn-segmentation",
    ] {
        f.insert(n.into(), FeatureState::changeable(true));
    }
    f.insert(
        "tx-generic-segmentation".into(),
        FeatureState::changeable(true),
    );
    f.insert("rx-gro".into(), FeatureState::changeable(false));
    f.insert("rx-lro".into(), FeatureState::fixed(false));
    f
}

fn state_with(iface: &str, features: Features) -> SystemState {
    let mut s = SystemState {
        interfaces: vec!["lo".into(), "a".into(), "b".into()],
        ..Default::default()
    };
    s.offloads.insert(iface.into(), features);
    s
}

/// Plan one `[[offload]]` entry against a state where its interface has `features`.
fn plan_one(o: OffloadFix, features: Features) -> Plan {
    let state = state_with(o.iface.as_str(), features);
    plan(&Profile::builder("t").offload(o).build(), &state)
}

fn codes(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn user_names_map_to_kernel_features_as_ethtool_does() {
    let tso = group("tso").unwrap();
    for n in [
        "tx-tcp-segmentation",
        "tx-tcp-ecn-segmentation",
        "tx-tcp-mangleid-segmentation",
        "tx-tcp6-segmentation",
        "tx-tcp-accecn-segmentation",
    ] {
        assert_eq!(group_of(n), Some(tso), "{n}");
    }
    assert_eq!(group_of("tx-generic-segmentation").unwrap().user, "gso");
    assert_eq!(group_of("rx-gro").unwrap().user, "gro");
    assert_eq!(group_of("rx-lro").unwrap().user, "lro");
    for n in [
        "rx-gro-hw",
        "rx-gro-list",
        "tx-udp-segmentation",
        "tx-gre-segmentation",
        "tx-tcp",
        "tx-tcp-segmentationx",
    ] {
        assert_eq!(group_of(n), None, "{n}");
    }
    assert_eq!(tso.long_name, "tcp-segmentation-offload");
    assert!(pattern_matches(
        "tx-tcp*-segmentation",
        "tx-tcp-segmentation"
    ));
    // The prefix and the suffix may not overlap.
    assert!(!pattern_matches("ab*ba", "aba"));
    assert!(group("ufo").is_none());
}

#[test]
fn relevant_keeps_the_four_groups_and_their_dependencies() {
    let mut f = veth();
    f.insert("rx-gro-hw".into(), FeatureState::fixed(false));
    f.insert("tx-checksum-sctp".into(), FeatureState::fixed(false));
    assert_eq!(relevant(&f), veth());
    f.insert("tx-scatter-gather".into(), FeatureState::fixed(false));
    f.insert("tx-checksum-ipv4".into(), FeatureState::fixed(false));
    assert_eq!(relevant(&f).len(), veth().len() + 2);
}

#[test]
fn a_group_reads_on_only_when_every_changeable_member_is_on() {
    let mut f = veth();
    let tso = group("tso").unwrap();
    for (n, s) in f.iter_mut() {
        if n != "tx-tcp-accecn-segmentation" {
            s.on = false;
        }
    }
    let st = GroupState::of(tso, &f);
    // `ethtool -k` prints the group line `on`: one member is.
    assert!(st.on);
    let Reading::Mixed { on, off } = st.reading() else {
        panic!("{:?}", st.reading())
    };
    assert_eq!(on, vec!["tx-tcp-accecn-segmentation"]);
    assert_eq!(off.len(), 4);
    assert_eq!(st.writes(false).len(), 1);
    assert_eq!(st.writes(true).len(), 4);
    let v = st.reading().value();
    assert_eq!(
        v,
        Value::Text("mixed (on: tx-tcp-accecn-segmentation)".into())
    );
    assert_eq!(
        Reading::parse(&v),
        Some(Reading::Mixed {
            on: vec!["tx-tcp-accecn-segmentation".into()],
            off: vec![]
        })
    );
    for bad in [
        "mixed (on: )",
        "mixed (up: a)",
        "mixed (on: a b)",
        "mixed on: a",
    ] {
        assert_eq!(Reading::parse(&Value::Text(bad.into())), None, "{bad}");
    }
    assert_eq!(GroupState::of(tso, &veth()).reading(), Reading::On);
    assert_eq!(
        GroupState::of(group("gro").unwrap(), &f).reading(),
        Reading::Off
    );
    // A fixed member that is off does not keep a group from reading on.
    let mut g = veth();
    g.insert("tx-tcp-ecn-segmentation".into(), FeatureState::fixed(false));
    assert_eq!(GroupState::of(tso, &g).reading(), Reading::On);
}

#[test]
fn a_member_held_against_a_request_is_written_again() {
    let mut f = veth();
    // `off [requested on]`: the kernel keeps it off (sg is off).
    f.insert(
        "tx-tcp-segmentation".into(),
        FeatureState {
            on: false,
            fixed: false,
            wish: true,
        },
    );
    let st = GroupState::of(group("tso").unwrap(), &f);
    // Turning the group off also withdraws the pending request.
    assert!(st
        .writes(false)
        .contains(&("tx-tcp-segmentation".to_string(), false)));
    assert!(st
        .writes(true)
        .contains(&("tx-tcp-segmentation".to_string(), true)));
}

#[test]
fn fixed_members_block_only_the_values_they_prevent() {
    let mut f = veth();
    f.insert("tx-tcp-ecn-segmentation".into(), FeatureState::fixed(true));
    let tso = GroupState::of(group("tso").unwrap(), &f);
    assert_eq!(tso.blockers(false), vec!["tx-tcp-ecn-segmentation"]);
    assert!(tso.blockers(true).is_empty());
    let lro = GroupState::of(group("lro").unwrap(), &f);
    assert_eq!(lro.blockers(true), vec!["rx-lro"]);
    assert!(lro.blockers(false).is_empty());
    // A kernel without the feature at all: off, and nothing can turn it on.
    let none = GroupState::of(group("lro").unwrap(), &Features::new());
    assert_eq!(none.reading(), Reading::Off);
    assert!(!none.reachable(true) && none.writes(true).is_empty());
    assert!(none.reachable(false));
    assert!(tso.reachable(true) && !tso.reachable(false));
    assert!(lro.reachable(false) && !lro.reachable(true));
}

#[test]
fn a_feature_the_kernel_lacks_is_refused_as_fixed() {
    let mut f = veth();
    f.remove("rx-lro");
    let mut o = fix("a");
    o.lro = Some(true);
    let p = plan_one(o, f);
    assert_eq!(codes(&p), vec!["offload-fixed"]);
    assert!(
        p.findings[0]
            .message
            .contains("this kernel has no `rx-lro` feature"),
        "{p}"
    );
}

#[test]
fn plans_changes_and_unchanged_entries_with_ethtool_values() {
    let mut o = fix("a");
    o.tso = Some(false);
    o.gro = Some(true);
    o.gso = Some(true);
    o.lro = Some(false);
    let p = plan_one(o, veth());
    let keys: Vec<String> = p.changes.iter().map(|c| c.key()).collect();
    let changes: Vec<_> = p
        .changes
        .iter()
        .zip(&keys)
        .map(|(c, k)| (k.as_str(), c.current.as_deref(), c.desired.as_str()))
        .collect();
    assert_eq!(
        changes,
        vec![("a tso", Some("on"), "off"), ("a gro", Some("off"), "on")]
    );
    let c = &p.changes[0];
    assert_eq!(c.kind(), ChangeKind::Offload);
    assert_eq!(
        c.target,
        Target::Offload {
            iface: "a".into(),
            feature: "tso".into(),
            ifindex: None,
            perm_addr: None,
            scope: None,
        }
    );
    assert_eq!(
        (&c.before, &c.after),
        (&Value::Bool(true), &Value::Bool(false))
    );
    let unchanged: Vec<_> = p
        .unchanged
        .iter()
        .map(|u| (u.key.as_str(), u.current.as_str()))
        .collect();
    assert_eq!(unchanged, vec![("a gso", "on"), ("a lro", "off")]);
    assert!(p.skipped.is_empty());
    assert!(p.refusals().is_empty(), "{p}");
    let text = p.to_string();
    assert!(text.contains("change  a tso  on -> off"), "{text}");
    assert!(text.contains("ok      a lro  off (wanted off)"), "{text}");
}

#[test]
fn a_later_entry_for_the_same_toggle_wins() {
    let mut first = fix("a");
    first.tso = Some(true);
    let mut second = fix("a");
    second.tso = Some(false);
    let p = plan(
        &Profile::builder("t").offload(first).offload(second).build(),
        &state_with("a", veth()),
    );
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].desired, "off");
    assert!(p.unchanged.is_empty());
}

#[test]
fn unknown_interface_refuses_and_lists_the_interfaces_that_exist() {
    let mut o = fix("eth0");
    o.tso = Some(false);
    let p = plan(
        &Profile::builder("t").offload(o).build(),
        &state_with("a", veth()),
    );
    assert!(p.changes.is_empty());
    assert_eq!(p.skipped[0].code, "offload-unknown-interface");
    assert_eq!(p.skipped[0].key, "eth0 tso");
    let f = &p.refusals()[0];
    assert_eq!(f.code, "offload-unknown-interface");
    assert!(f.message.contains("`eth0`"), "{f}");
    assert!(f.hint.as_deref().unwrap().contains("lo, a, b"), "{f}");
}

#[test]
fn a_known_interface_does_not_trigger_unknown_interface() {
    let mut o = fix("a");
    o.lro = Some(false);
    let p = plan_one(o, veth());
    assert!(codes(&p).is_empty(), "{p}");
}

#[test]
fn a_fixed_feature_refuses_and_an_allowed_one_is_still_planned() {
    let mut o = fix("a");
    o.lro = Some(true);
    let profile = Profile::builder("t").offload(o).build();
    let p = plan(&profile, &state_with("a", veth()));
    assert_eq!(codes(&p), vec!["offload-fixed"]);
    let f = &p.refusals()[0];
    assert!(
        f.message.contains("`a lro` cannot be turned on")
            && f.message.contains("rx-lro: off [fixed]"),
        "{f}"
    );
    let opts = PlanOptions {
        allow: ["offload-fixed".to_string()].into(),
        ..Default::default()
    };
    let p = plan_with(&profile, &state_with("a", veth()), &opts);
    assert_eq!(p.changes.len(), 1);
    assert!(p.refusals().is_empty());
}

#[test]
fn a_changeable_feature_does_not_trigger_fixed() {
    let mut o = fix("a");
    o.gro = Some(true);
    let p = plan_one(o, veth());
    assert_eq!(p.changes.len(), 1);
    assert!(codes(&p).is_empty(), "{p}");
}

#[test]
fn turning_tso_or_gro_off_warns_about_cpu_cost() {
    let mut f = veth();
    f.insert("rx-gro".into(), FeatureState::changeable(true));
    let mut o = fix("a");
    o.tso = Some(false);
    o.gro = Some(false);
    let p = plan_one(o, f);
    assert_eq!(codes(&p), vec!["offload-cpu-cost"]);
    let w = &p.findings[0];
    assert_eq!(w.severity, Severity::Warn);
    assert!(w.message.contains("`a tso`, `a gro`"), "{w}");
    assert!(
        w.hint.as_deref().unwrap().contains("diagnostic step"),
        "{w}"
    );
}

#[test]
fn turning_offloads_on_or_lro_off_costs_nothing() {
    let mut f = veth();
    f.insert("rx-lro".into(), FeatureState::changeable(true));
    let mut o = fix("a");
    o.gro = Some(true);
    o.lro = Some(false);
    let p = plan_one(o, f);
    assert_eq!(p.changes.len(), 2);
    assert!(codes(&p).is_empty(), "{p}");
}

#[test]
fn changing_loopback_refuses() {
    let mut o = fix("lo");
    o.gro = Some(true);
    let p = plan_one(o, veth());
    assert_eq!(codes(&p), vec!["offload-on-loopback"]);
    assert!(p.refusals()[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("ip route get"));
}

#[test]
fn loopback_already_as_wanted_does_not_refuse() {
    let mut o = fix("lo");
    o.gso = Some(true);
    let p = plan_one(o, veth());
    assert!(p.changes.is_empty());
    assert!(codes(&p).is_empty(), "{p}");
}

#[test]
fn a_planned_target_names_the_device_it_was_planned_on() {
    let mut o = fix("a");
    o.tso = Some(false);
    let mut s = state_with("a", veth());
    s.nics.insert(
        "a".into(),
        crate::state::NicId {
            ifindex: 7,
            perm_addr: Some("02:00:00:00:00:0a".into()),
            scope: None,
        },
    );
    let p = plan(&Profile::builder("t").offload(o).build(), &s);
    assert_eq!(
        p.changes[0].target,
        Target::Offload {
            iface: "a".into(),
            feature: "tso".into(),
            ifindex: Some(7),
            perm_addr: Some("02:00:00:00:00:0a".into()),
            scope: None,
        }
    );
    // The display key stays the name.
    assert_eq!(p.changes[0].key(), "a tso");
}

/// The kernel with `sg` off: IPv4/IPv6 TSO stay off, accecn stays on.
fn sg_off() -> Features {
    let mut f = veth();
    for n in [
        "tx-tcp-segmentation",
        "tx-tcp-ecn-segmentation",
        "tx-tcp-mangleid-segmentation",
        "tx-tcp6-segmentation",
    ] {
        f.insert(
            n.into(),
            FeatureState {
                on: false,
                fixed: false,
                wish: true,
            },
        );
    }
    f.insert("tx-scatter-gather".into(), FeatureState::changeable(false));
    f.insert(
        "tx-checksum-ip-generic".into(),
        FeatureState::changeable(true),
    );
    f.insert("tx-checksum-ipv4".into(), FeatureState::fixed(false));
    f
}

#[test]
fn a_partly_on_group_is_never_ok_on() {
    let mut o = fix("a");
    o.tso = Some(true);
    let p = plan_one(o, sg_off());
    assert!(p.unchanged.is_empty(), "{p}");
    let c = &p.changes[0];
    assert_eq!(
        c.current.as_deref(),
        Some("mixed (on: tx-tcp-accecn-segmentation)")
    );
    assert!(!p.to_string().contains("ok      a tso"), "{p}");
}

#[test]
fn turning_tso_on_with_sg_off_refuses_and_names_sg() {
    let mut o = fix("a");
    o.tso = Some(true);
    o.gso = Some(true);
    let mut f = sg_off();
    f.insert(
        "tx-generic-segmentation".into(),
        FeatureState::changeable(false),
    );
    let p = plan_one(o, f);
    assert_eq!(
        codes(&p),
        vec!["offload-dependency-off", "offload-dependency-off"],
        "{p}"
    );
    let f = &p.refusals()[0];
    assert!(
        f.message
            .starts_with("`a tso` cannot turn on while `sg` is off (tx-scatter-gather: off)"),
        "{f}"
    );
    assert_eq!(
        f.hint.as_deref(),
        Some("turn it on first: `ethtool -K a sg on`, then plan again")
    );
    assert!(p.refusals()[1].message.starts_with("`a gso`"), "{p}");
}

#[test]
fn turning_tso_on_without_checksum_offload_names_the_checksum() {
    let mut o = fix("a");
    o.tso = Some(true);
    let mut f = sg_off();
    f.insert("tx-scatter-gather".into(), FeatureState::changeable(true));
    f.insert(
        "tx-checksum-ip-generic".into(),
        FeatureState::changeable(false),
    );
    let p = plan_one(o, f);
    // IPv4 (no ipv4 checksum either) and IPv6 (the kernel has no ipv6 one).
    assert_eq!(codes(&p).len(), 2, "{p}");
    assert!(p.findings[0].message.contains("`tx-checksum-ip-generic` is off (tx-checksum-ip-generic: off, tx-checksum-ipv4: off [fixed])"), "{p}");
    assert!(p.findings[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("`ethtool -K a tx-checksum-ip-generic on`"));
}

#[test]
fn dependencies_that_are_on_or_unknown_do_not_refuse() {
    let mut o = fix("a");
    o.tso = Some(true);
    let mut f = sg_off();
    f.insert("tx-scatter-gather".into(), FeatureState::changeable(true));
    let p = plan_one(o.clone(), f);
    assert!(codes(&p).is_empty(), "{p}");
    // A kernel that does not report the dependency is not judged.
    let mut f = sg_off();
    f.remove("tx-scatter-gather");
    let p = plan_one(o, f);
    assert!(codes(&p).is_empty(), "{p}");
    // Turning tso off never needs sg.
    let mut off = fix("a");
    off.tso = Some(false);
    let p = plan_one(off, sg_off());
    assert!(!codes(&p).contains(&"offload-dependency-off"), "{p}");
}

#[test]
fn offload_codes_are_documented() {
    for code in [
        "offload-unknown-interface",
        "offload-fixed",
        "offload-cpu-cost",
        "offload-on-loopback",
        "offload-dependency-off",
    ] {
        assert!(
            code.parse::<crate::finding::FindingCode>().is_ok(),
            "{code}"
        );
    }
}

#[test]
fn sysctls_and_offloads_plan_together() {
    let mut o = fix("a");
    o.tso = Some(false);
    let mut s = state_with("a", veth());
    s.sysctls
        .insert("net.core.somaxconn".into(), SysctlReading::rw("128"));
    let p = plan(
        &Profile::builder("t")
            .somaxconn(crate::Desired::at_least(4096))
            .offload(o)
            .build(),
        &s,
    );
    let kinds: Vec<_> = p.changes.iter().map(|c| c.kind()).collect();
    assert_eq!(kinds, vec![ChangeKind::Sysctl, ChangeKind::Offload]);
}

/// What the operator reads for the built-in profile on a veth-like NIC
/// with a mixed tso group, plus an unknown interface.
#[test]
fn snapshot_text_plan() {
    let mut f = veth();
    f.insert(
        "tx-tcp-mangleid-segmentation".into(),
        FeatureState::changeable(false),
    );
    let mut o = fix("eth0");
    o.tso = Some(false);
    o.gro = Some(false);
    o.reason = Some("runbook: rule out TSO/GRO bugs".into());
    let mut missing = fix("eth9");
    missing.lro = Some(false);
    let p = plan(
        &Profile::builder("offload-off")
            .offload(o)
            .offload(missing)
            .build(),
        &state_with("eth0", f),
    );
    insta::assert_snapshot!(p.to_string());
}
