//! The firewall walk from fixture rulesets (no kernel).

use std::collections::BTreeSet;

use super::*;
use crate::notrack::expr::{DecodedRule, RuleMatch, Verdict, CT_ESTABLISHED, CT_NEW, CT_RELATED};

fn rule(handle: u64, dport: Option<u16>, ct: Option<u32>, verdict: Verdict) -> FwRule {
    FwRule {
        handle,
        rule: DecodedRule {
            matches: RuleMatch {
                l4proto: dport.map(|_| 6),
                dport,
                ct_states: ct,
                ..Default::default()
            },
            verdict,
        },
        packets: None,
        limit: None,
    }
}

fn chain(name: &str, hook: Option<&str>, policy: &str, rules: Vec<FwRule>) -> FwChain {
    FwChain {
        family: "inet".into(),
        table: "filter".into(),
        name: name.into(),
        hook: hook.map(Into::into),
        priority: 0,
        policy: hook.map(|_| policy.into()),
        rules,
    }
}

fn ports(p: &[u16]) -> BTreeSet<u16> {
    p.iter().copied().collect()
}

fn rate_limited(packets: u64) -> Vec<FwChain> {
    let mut limit = rule(2, Some(8080), Some(CT_NEW), Verdict::Accept);
    limit.limit = Some(FwLimit {
        rate: 5,
        per: "second".into(),
        burst: 2,
        bytes: false,
        over: false,
    });
    limit.rule.matches.unknown.push("limit".into());
    let mut drop = rule(3, Some(8080), Some(CT_NEW), Verdict::Drop);
    drop.packets = Some(packets);
    vec![chain("input", Some("input"), "accept", vec![limit, drop])]
}

#[test]
fn a_rate_limit_and_its_drop_are_named_with_handle_counter_and_delta() {
    let drops = find_drops(&rate_limited(10), &rate_limited(55), &ports(&[8080]));
    assert_eq!(drops.len(), 1, "{drops:?}");
    let x = &drops[0];
    assert_eq!(
        (x.handle, x.packets, x.delta),
        (Some(3), Some(55), Some(45))
    );
    assert_eq!(
        x.rule,
        "tcp dport 8080 ct state new counter packets 55 drop # handle 3"
    );
    assert_eq!(
        x.rate_limit.as_deref(),
        Some("limit rate 5/second burst 2 packets (handle 2)")
    );
    assert_eq!(x.base, "inet filter input (hook input, policy accept)");
    // Another port: nothing on the way.
    assert!(find_drops(&[], &rate_limited(55), &ports(&[22])).is_empty());
}

#[test]
fn the_cause_ranks_a_growing_counter_first_and_names_the_rule() {
    let mut d = Diagnosis {
        schema: DIAGNOSE_SCHEMA,
        interval_ms: 1000,
        ports: vec![8080],
        in_initial_netns: true,
        causes: vec![],
        conntrack: Default::default(),
        tcp_ext: vec![],
        softnet: vec![],
        syn_recv: vec![],
        syncookies: None,
        rp_filter: Default::default(),
        firewall: FirewallReport {
            read: true,
            drops: find_drops(&rate_limited(10), &rate_limited(55), &ports(&[8080])),
            legacy_tables: vec!["iptables filter".into()],
            ..Default::default()
        },
        trace: None,
        listeners: vec![],
        missing_ports: vec![],
        sysctls: vec![],
        interfaces: vec![],
        offloads: vec![],
        kernel_log: KernelLogReport {
            readable: true,
            error: None,
            table_full_lines: 0,
            table_full_elsewhere: 0,
            last_age_s: None,
            last: vec![],
            recent_bound_s: 61,
            counters_agree: false,
            recent_lines: 0,
            history_lines: 0,
        },
        checked: vec![],
    };
    d.causes = rank_causes(&d, None, &crate::words::NEUTRAL);
    let c = &d.causes[0];
    assert_eq!(
        (c.code.as_str(), c.status.as_str()),
        ("firewall-drop", "active")
    );
    assert_eq!(
        c.title,
        "inet filter input rate-limits new connections to port 8080"
    );
    assert_eq!(
        c.plan, None,
        "a sentence naming the rule, never a guessed command"
    );
    assert!(c
        .evidence
        .contains(&"counter +45 packets in 1.0 s, 55 in total".to_owned()));
    assert!(c
        .notes
        .iter()
        .any(|n| n.contains("iptables-legacy -L -n -v")));
}

#[test]
fn an_accept_of_the_port_ends_the_walk_and_policy_drop_counts_otherwise() {
    // ufw-like: policy drop, jump to a chain that accepts established and
    // new to 8080.
    let accepts = chain(
        "ufw-before-input",
        None,
        "",
        vec![
            rule(5, None, Some(CT_ESTABLISHED | CT_RELATED), Verdict::Accept),
            rule(6, Some(8080), Some(CT_NEW), Verdict::Accept),
        ],
    );
    let input = chain(
        "input",
        Some("input"),
        "drop",
        vec![rule(
            1,
            None,
            None,
            Verdict::Jump("ufw-before-input".into()),
        )],
    );
    let rs = vec![input.clone(), accepts];
    assert!(find_drops(&rs, &rs, &ports(&[8080])).is_empty());
    // Port 9090 is accepted nowhere: the policy drops it.
    let d = find_drops(&rs, &rs, &ports(&[9090]));
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].handle, d[0].rule.as_str()), (None, "policy drop"));
    // A jump loop stays bounded.
    let looped = vec![chain(
        "input",
        Some("input"),
        "accept",
        vec![rule(1, None, None, Verdict::Jump("input".into()))],
    )];
    assert!(find_drops(&looped, &looped, &ports(&[80])).is_empty());
    // Established-only drops never meet a SYN.
    let est = vec![chain(
        "input",
        Some("input"),
        "accept",
        vec![rule(1, Some(80), Some(CT_ESTABLISHED), Verdict::Drop)],
    )];
    assert!(find_drops(&est, &est, &ports(&[80])).is_empty());
}

#[test]
fn ct_count_and_quota_drops_are_named_as_partial_limits() {
    let mut connlimit = rule(4, Some(8080), Some(CT_NEW), Verdict::Drop);
    connlimit.rule.matches.unknown.push("connlimit".into());
    let mut quota = rule(5, Some(8080), Some(CT_NEW), Verdict::Drop);
    quota.rule.matches.unknown.push("quota".into());
    let rs = vec![chain(
        "input",
        Some("input"),
        "accept",
        vec![connlimit, quota],
    )];
    let d = find_drops(&rs, &rs, &ports(&[8080]));
    let limits: Vec<Option<&str>> = d.iter().map(|x| x.rate_limit.as_deref()).collect();
    assert_eq!(
        limits,
        vec![
            Some("a `ct count` limit (handle 4)"),
            Some("a `quota` (handle 5)")
        ]
    );
}

/// The listener table shows the fullest rows only; its last line says how
/// to see them all in the caller's words (neutral by default).
#[test]
fn the_shortened_listener_table_names_the_way_to_all_rows_in_the_callers_words() {
    let mut d: Diagnosis = serde_json::from_value(serde_json::json!({
        "schema": DIAGNOSE_SCHEMA, "interval_ms": 0, "ports": [], "causes": [],
        "conntrack": ConntrackReport::default(), "tcp_ext": [], "listeners": [],
        "missing_ports": [], "sysctls": [], "interfaces": [], "offloads": [],
        "kernel_log": {
            "readable": true, "error": null, "table_full_lines": 0,
            "table_full_elsewhere": 0, "last_age_s": null, "last": [],
            "recent_bound_s": 61, "counters_agree": false, "recent_lines": 0,
            "history_lines": 0,
        },
        "checked": [],
    }))
    .unwrap();
    let row = |port: u16| ListenerReport {
        addr: "127.0.0.1".parse().unwrap(),
        port,
        queue: 0,
        peak_queue: 0,
        backlog: 4096,
        full_pct: 0.0,
        limited_by: LimitedBy::Somaxconn,
        process: None,
        inode: u32::from(port),
    };
    d.listeners = (1..=TEXT_LISTENER_ROWS as u16 + 3).map(row).collect();
    let neutral = d.to_string();
    assert!(
        neutral.contains("  ... 3 more (fullest shown; a port list or the JSON report for all)\n"),
        "{neutral}"
    );
    #[derive(Debug)]
    struct Flags;
    impl crate::words::Words for Flags {
        fn instruct(&self, a: &crate::words::Action) -> String {
            self.name(a)
        }
        fn name(&self, _: &crate::words::Action) -> String {
            "--port or --json".into()
        }
    }
    let cli = d.text(&Flags).to_string();
    assert!(
        cli.contains("  ... 3 more (fullest shown; --port or --json for all)\n"),
        "{cli}"
    );
    // Asked about ports: every row is shown, no such line.
    d.ports = vec![1];
    assert!(!d.to_string().contains("more (fullest shown"));
}
