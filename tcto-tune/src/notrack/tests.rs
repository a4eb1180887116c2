//! Planner and check tests for NOTRACK, from fixture states.

use super::expr::{decode, CT_ESTABLISHED, CT_RELATED};
use super::fixtures::{ct_accept, inet_filter_input};
use super::*;
use crate::change::{ChangeKind, Value};
use crate::fix::NotrackFlow;
use crate::kind::Plan;
use crate::plan::{plan_with, PlanOptions};
use crate::profile::Profile;
use crate::state::SystemState;

fn flow(from: &str, to: &str, port: Option<u16>) -> NotrackFlow {
    NotrackFlow {
        from: Some(from.parse().unwrap()),
        to: Some(to.parse().unwrap()),
        port,
        reason: Some("trusted".into()),
    }
}

fn profile(flows: Vec<NotrackFlow>) -> Profile {
    let mut b = Profile::builder("trusted-notrack");
    for f in flows {
        b = b.notrack(f);
    }
    b.build()
}

fn trusted() -> Profile {
    profile(vec![flow("10.0.1.0/24", "10.0.2.0/24", Some(8080))])
}

fn codes(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.code.as_str()).collect()
}

fn stateful_input(untracked_too: bool) -> FilterChain {
    let ct = |bits: u32| decode(1, &ct_accept(bits));
    let mut rules = vec![ct(CT_ESTABLISHED | CT_RELATED)];
    if untracked_too {
        rules.push(ct(expr::CT_UNTRACKED));
    }
    inet_filter_input(rules)
}

#[test]
fn plans_one_table_change_with_the_rules_as_nft_prints_them() {
    let p = plan_with(&trusted(), &SystemState::default(), &PlanOptions::default());
    assert_eq!(p.changes.len(), 1, "{p}");
    let c = &p.changes[0];
    assert_eq!(c.kind(), ChangeKind::Notrack);
    assert_eq!(c.target, crate::Target::notrack_table());
    assert_eq!(c.before, Value::Absent);
    assert!(c
        .desired
        .contains("ip saddr 10.0.1.0/24 ip daddr 10.0.2.0/24 tcp dport 8080 notrack"));
    assert!(p.refusals().is_empty(), "{p}");
    assert!(codes(&p).contains(&"notrack-bypasses-conntrack"));
    let text = p.to_string();
    assert!(
        text.contains("inet tcto_tune  (absent) -> 2 rules"),
        "{text}"
    );
    assert!(
        text.contains("+\t\tip saddr 10.0.2.0/24 tcp sport 8080 ip daddr 10.0.1.0/24 notrack"),
        "{text}"
    );
}

#[test]
fn a_table_already_in_place_is_unchanged() {
    let state = SystemState {
        notrack_table: desired_table(&trusted()),
        ..Default::default()
    };
    let p = plan_with(&trusted(), &state, &PlanOptions::default());
    assert!(p.is_noop(), "{p}");
    assert_eq!(p.unchanged.len(), 1);
    assert!(p.to_string().contains("2 rules already in place"), "{p}");
}

#[test]
fn flows_in_place_are_kept_and_the_profile_added_with_the_old_table_as_before() {
    let old = NotrackTable::for_flows(&[ScopedFlow {
        from: "10.0.9.0/24".parse().unwrap(),
        to: "10.0.2.0/24".parse().unwrap(),
        port: 80,
    }]);
    let state = SystemState {
        notrack_table: Some(old.clone()),
        ..Default::default()
    };
    let p = plan_with(&trusted(), &state, &PlanOptions::default());
    assert_eq!(p.changes[0].before, Value::Table(old.clone()));
    let text = p.to_string();
    assert!(!text.contains("-\t\tip saddr 10.0.9.0/24"), "{text}");
    assert!(text.contains("+\t\tip saddr 10.0.1.0/24"), "{text}");
    assert!(text.contains("2 rules -> 4 rules"), "{text}");
    assert!(codes(&p).contains(&"notrack-flows-kept"), "{p}");
    assert!(text.contains("1 untagged"), "{text}");
}

#[test]
fn unscoped_flows_are_refused_and_not_planned() {
    let p = plan_with(
        &profile(vec![flow("10.0.1.0/24", "10.0.2.0/24", None)]),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    assert!(p.changes.is_empty());
    assert_eq!(p.skipped[0].code, "notrack-unscoped");
    assert_eq!(p.refusals()[0].code, "notrack-unscoped");

    let p = plan_with(
        &profile(vec![flow("0.0.0.0/0", "10.0.2.0/24", Some(8080))]),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    assert_eq!(p.refusals()[0].code, "notrack-unscoped");

    let p = plan_with(&trusted(), &SystemState::default(), &PlanOptions::default());
    assert!(!codes(&p).contains(&"notrack-unscoped"));
}

#[test]
fn a_stateful_filter_without_untracked_accept_is_refused() {
    let state = SystemState {
        filter_chains: vec![stateful_input(false)],
        ..Default::default()
    };
    let p = plan_with(&trusted(), &state, &PlanOptions::default());
    let r = p.refusals();
    assert_eq!(r.len(), 1, "{p}");
    assert_eq!(r[0].code, "notrack-breaks-stateful-filter");
    assert!(r[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("nft insert rule inet filter input ct state untracked accept"));

    let allowed = PlanOptions {
        allow: ["notrack-breaks-stateful-filter".to_string()].into(),
        ..Default::default()
    };
    assert!(plan_with(&trusted(), &state, &allowed)
        .refusals()
        .is_empty());

    let state = SystemState {
        filter_chains: vec![stateful_input(true)],
        ..Default::default()
    };
    let p = plan_with(&trusted(), &state, &PlanOptions::default());
    assert!(p.refusals().is_empty(), "{p}");
}

#[test]
fn loopback_flows_warn() {
    let p = plan_with(
        &profile(vec![flow("127.0.0.0/8", "127.0.0.1/32", Some(8080))]),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    assert!(codes(&p).contains(&"notrack-loopback"), "{p}");
    let p = plan_with(&trusted(), &SystemState::default(), &PlanOptions::default());
    assert!(!codes(&p).contains(&"notrack-loopback"));
}

#[test]
fn many_flows_go_into_sets_and_keep_the_rule_count_constant() {
    let flows = |n: u16| -> Vec<_> {
        (0..n)
            .map(|i| flow("10.0.1.0/24", "10.0.2.0/24", Some(1000 + i)))
            .collect()
    };
    let small = desired_table(&profile(flows(MAX_RULE_FLOWS as u16))).unwrap();
    assert_eq!(small.rule_count(), 2 * MAX_RULE_FLOWS);
    assert!(small.sets.is_empty());
    let big = desired_table(&profile(flows(1000))).unwrap();
    assert_eq!(big.rule_count(), 2);
    assert_eq!(big.flow_count(), 1000);
    assert_eq!(big.sets[0].elements.len(), 1000);
    let p = plan_with(
        &profile(flows(1000)),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    assert!(p.refusals().is_empty(), "{p}");
    assert!(p.changes[0]
        .desired
        .contains("ip saddr . ip daddr . tcp dport @flows4-trusted-notrack notrack comment \"trusted-notrack\""));
}

#[test]
fn profiles_without_flows_plan_nothing() {
    let p = plan_with(
        &Profile::builder("x").build(),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    assert!(p.changes.is_empty() && p.findings.is_empty(), "{p}");
}

#[test]
fn set_keys_are_subnet_bounds_and_decode_back() {
    let el = |from: &str, to: &str, port| FlowElement {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        port,
    };
    let (lo, hi) = el("10.1.2.0/24", "192.168.0.0/16", 8080).key_range();
    assert_eq!(lo, [10, 1, 2, 0, 192, 168, 0, 0, 0x1f, 0x90, 0, 0]);
    assert_eq!(hi, [10, 1, 2, 255, 192, 168, 255, 255, 0x1f, 0x90, 0, 0]);
    let (lo, hi) = el("0.0.0.0/0", "10.0.0.1/32", 1).key_range();
    assert_eq!(lo, [0, 0, 0, 0, 10, 0, 0, 1, 0, 1, 0, 0]);
    assert_eq!(hi, [255, 255, 255, 255, 10, 0, 0, 1, 0, 1, 0, 0]);
    let mut reused = (vec![7; 40], vec![7; 40]);
    for (e, ipv4) in [
        (el("10.1.2.0/24", "192.168.0.0/16", 8080), true),
        (el("100.64.0.0/10", "10.200.0.128/25", 65535), true),
        (el("0.0.0.0/0", "10.0.0.1/32", 1), true),
        (el("2001:db8::/32", "fd00::1/128", 443), false),
        (el("::/0", "fd00:1::/63", 22), false),
    ] {
        e.key_range_into(&mut reused.0, &mut reused.1);
        assert_eq!(reused, e.key_range());
        assert_eq!(
            FlowElement::from_key_range(ipv4, &reused.0, &reused.1),
            Some(e)
        );
    }
    // Not a subnet: the range 10.0.0.1 - 10.0.0.2.
    let (mut lo, mut hi) = el("10.0.0.0/32", "10.0.0.0/32", 1).key_range();
    lo[3] = 1;
    hi[3] = 2;
    assert_eq!(FlowElement::from_key_range(true, &lo, &hi), None);
}

#[test]
fn halves_of_the_address_space_refuse_and_are_not_loopback() {
    let p = plan_with(
        &profile(vec![
            flow("0.0.0.0/1", "10.0.2.0/24", Some(8080)),
            flow("128.0.0.0/1", "10.0.2.0/24", Some(8080)),
        ]),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    let refused: Vec<&str> = p.refusals().iter().map(|f| f.code.as_str()).collect();
    assert_eq!(refused, ["notrack-unscoped"], "{p}");
    let p = plan_with(
        &profile(vec![flow("0.0.0.0/1", "128.0.0.0/1", Some(8080))]),
        &SystemState::default(),
        &PlanOptions::default(),
    );
    assert!(!codes(&p).contains(&"notrack-loopback"), "{p}");
    assert!(codes(&p).contains(&"notrack-unscoped"), "{p}");
}

#[test]
fn a_table_holding_foreign_content_is_not_planned_over() {
    let mut t = desired_table(&trusted()).unwrap();
    t.foreign.push(table::Foreign {
        what: "rule `tcp dport 22 accept` in chain prerouting (handle 4)".into(),
        remove: "nft delete rule inet tcto_tune prerouting handle 4".into(),
    });
    let state = SystemState {
        notrack_table: Some(t),
        ..Default::default()
    };
    let p = plan_with(&trusted(), &state, &PlanOptions::default());
    assert!(p.changes.is_empty() && p.unchanged.is_empty(), "{p}");
    let r = p.refusals();
    assert_eq!(r[0].code, "notrack-foreign-content");
    assert!(r[0]
        .message
        .contains("rule `tcp dport 22 accept` in chain prerouting (handle 4)"));
    assert!(r[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("`nft delete rule inet tcto_tune prerouting handle 4`"));
    // The rollback line names it too.
    let v = Value::notrack_table(state.notrack_table.as_ref());
    assert!(
        v.display()
            .ends_with("not ours: rule `tcp dport 22 accept` in chain prerouting (handle 4))"),
        "{}",
        v.display()
    );
}
