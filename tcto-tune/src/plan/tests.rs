//! Planner and safety-check tests from fixture states. Every check has a
//! case that triggers it and one that does not.

use super::*;
use crate::fix::{Desired, RawSysctl, SysctlValue};
use std::collections::BTreeSet;

use crate::finding::{Finding, FindingCode, Severity};
use crate::names::SysctlName;
use crate::state::SystemState;
use crate::state::{ListenSocket, SysctlReading};

const GIB: u64 = 1 << 30;

/// A host in its initial namespace with typical Debian values.
fn host() -> SystemState {
    let mut s = SystemState {
        in_initial_netns: true,
        mem_total_bytes: Some(16 * GIB),
        ..Default::default()
    };
    for (k, v) in [
        ("net.core.somaxconn", "1024"),
        ("net.ipv4.tcp_max_syn_backlog", "2048"),
        ("net.core.netdev_max_backlog", "1000"),
        ("net.netfilter.nf_conntrack_max", "65536"),
        ("net.netfilter.nf_conntrack_count", "1200"),
        ("net.netfilter.nf_conntrack_buckets", "16384"),
        (
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            "432000",
        ),
        ("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "120"),
        ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "60"),
        ("net.ipv4.tcp_keepalive_time", "7200"),
        ("net.ipv4.tcp_tw_reuse", "2"),
        ("net.ipv4.tcp_syn_retries", "6"),
        ("net.ipv4.tcp_fin_timeout", "60"),
        ("net.ipv4.tcp_rmem", "4096\t131072\t6291456"),
    ] {
        s.sysctls.insert(k.into(), SysctlReading::rw(v));
    }
    s
}

fn listener(port: u16, backlog: u32) -> ListenSocket {
    ListenSocket {
        addr: "0.0.0.0".parse().unwrap(),
        port,
        queue: 0,
        backlog,
        inode: 1,
    }
}

/// A profile that raises somaxconn to at least `somaxconn`, with one listener.
fn somaxconn_with_listener(somaxconn: i64, port: u16, backlog: Option<u32>) -> Profile {
    Profile::builder("t")
        .somaxconn(Desired::at_least(somaxconn))
        .listener(port, backlog)
        .build()
}

fn codes(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.code.as_str()).collect()
}

fn builtin(name: &str) -> Profile {
    crate::profile::load(name, &Default::default()).unwrap()
}

#[test]
fn intents_raise_lower_or_set() {
    let p = Profile::builder("t")
        .somaxconn(Desired::at_least(4096))
        .tcp_max_syn_backlog(Desired::at_least(1024))
        .conntrack_timeout_established(Desired::at_most(600))
        .build();
    let plan = plan(&p, &host());
    let names: Vec<String> = plan.changes.iter().map(|c| c.key()).collect();
    let keys: Vec<_> = plan
        .changes
        .iter()
        .zip(&names)
        .map(|(c, k)| (k.as_str(), c.current.as_deref(), c.desired.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("net.core.somaxconn", Some("1024"), "4096"),
            (
                "net.netfilter.nf_conntrack_tcp_timeout_established",
                Some("432000"),
                "600"
            ),
        ]
    );
    assert_eq!(
        plan.unchanged[0].key, "net.ipv4.tcp_max_syn_backlog",
        "2048 is already at least 1024"
    );
}

#[test]
fn exact_text_values_compare_whitespace_folded() {
    let raw = |v: &str| RawSysctl {
        key: SysctlName::new("net.ipv4.tcp_rmem").unwrap(),
        desired: Desired::exact(SysctlValue::Text(v.into())),
    };
    let same = plan(
        &Profile::builder("t")
            .sysctl(raw("4096 131072  6291456"))
            .build(),
        &host(),
    );
    assert!(same.changes.is_empty() && same.unchanged.len() == 1);
    let diff = plan(
        &Profile::builder("t")
            .sysctl(raw("4096 262144 6291456"))
            .build(),
        &host(),
    );
    assert_eq!(
        diff.changes[0].current.as_deref(),
        Some("4096 131072 6291456")
    );
}

#[test]
fn global_keys_in_a_child_namespace_are_skipped_unless_allowed() {
    let mut s = host();
    s.in_initial_netns = false;
    s.sysctls.insert(
        "net.netfilter.nf_conntrack_max".into(),
        SysctlReading::ro("65536"),
    );
    let p = builtin("conntrack-exhaustion");
    let plain = plan(&p, &s);
    let skip = plain
        .skipped
        .iter()
        .find(|k| k.key == "net.netfilter.nf_conntrack_max")
        .unwrap();
    assert_eq!(skip.code, "key-host-wide");
    assert!(skip.why.contains("change the host's value"), "{}", skip.why);
    assert!(!plain
        .changes
        .iter()
        .any(|c| c.key() == "net.netfilter.nf_conntrack_max"));
    let allow = |codes: &[&str]| PlanOptions {
        allow: codes.iter().map(|c| (*c).to_owned()).collect(),
        ..Default::default()
    };
    // Allowed as host-wide, it is still read-only here.
    let host_wide = plan_with(&p, &s, &allow(&["key-host-wide"]));
    let skip = host_wide
        .skipped
        .iter()
        .find(|k| k.key == "net.netfilter.nf_conntrack_max")
        .unwrap();
    assert_eq!(skip.code, "not-writable-here");
    assert!(skip.why.contains("initial network namespace"));
    let forced = plan_with(&p, &s, &allow(&["key-host-wide", "not-writable-here"]));
    assert!(forced
        .changes
        .iter()
        .any(|c| c.key() == "net.netfilter.nf_conntrack_max"));
}

fn raw(key: &str, value: SysctlValue) -> RawSysctl {
    RawSysctl {
        key: SysctlName::new(key).unwrap(),
        desired: Desired::exact(value),
    }
}

/// A child namespace where, as in a container, `vm.swappiness` is writable
/// (mode 0644) but the host's, and `net.core.rmem_max` is absent.
fn container() -> SystemState {
    let mut s = host();
    s.in_initial_netns = false;
    s.sysctls
        .insert("vm.swappiness".into(), SysctlReading::rw("60"));
    s.sysctls
        .insert("net.core.rmem_max".into(), SysctlReading::missing());
    s.sysctls
        .insert("kernel.core_pattern".into(), SysctlReading::rw("core"));
    s
}

#[test]
fn a_host_wide_key_is_skipped_from_a_child_namespace_even_when_writable() {
    let p = Profile::builder("t")
        .sysctl(raw("vm.swappiness", SysctlValue::Int(59)))
        .sysctl(raw("net.core.rmem_max", SysctlValue::Int(1 << 20)))
        .sysctl(raw("net.ipv4.tcp_fin_timeout", SysctlValue::Int(30)))
        .build();
    let opts = |codes: &[&str]| PlanOptions {
        allow: codes.iter().map(|c| (*c).to_owned()).collect(),
        ..Default::default()
    };
    let plain = plan_with(&p, &container(), &opts(&["key-outside-scope"]));
    let skipped: Vec<_> = plain
        .skipped
        .iter()
        .map(|k| (k.key.as_str(), k.code.as_str()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("net.core.rmem_max", "key-host-wide"),
            ("vm.swappiness", "key-host-wide")
        ]
    );
    assert!(plain.skipped[0]
        .why
        .contains("absent in this child network namespace"));
    // The per-namespace key is planned; nothing refuses.
    assert_eq!(plain.changes.len(), 1);
    assert_eq!(plain.changes[0].key(), "net.ipv4.tcp_fin_timeout");
    assert!(plain.refusals().is_empty(), "{:?}", plain.findings);
    // Without the allowance, the key outside `net.` also refuses.
    let strict = plan(&p, &container());
    assert_eq!(
        strict
            .refusals()
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>(),
        vec!["key-outside-scope"]
    );
    // Both allowed: the write is planned (the operator said so twice).
    let both = plan_with(
        &p,
        &container(),
        &opts(&["key-outside-scope", "key-host-wide"]),
    );
    assert!(both.changes.iter().any(|c| c.key() == "vm.swappiness"));
    // The absent key then counts as unknown here, and says where.
    assert_eq!(
        both.refusals()
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>(),
        vec!["unknown-sysctl"]
    );
    assert!(both.refusals()[0]
        .message
        .contains("does not exist in this network namespace"));
}

#[test]
fn a_key_outside_net_refuses_on_the_host_too_unless_allowed() {
    let mut s = host();
    s.sysctls
        .insert("vm.swappiness".into(), SysctlReading::rw("60"));
    let p = Profile::builder("t")
        .sysctl(raw("vm.swappiness", SysctlValue::Int(59)))
        .build();
    let refused = plan(&p, &s);
    assert_eq!(codes(&refused), vec!["key-outside-scope"]);
    assert!(refused.findings[0].blocks());
    assert_eq!(
        refused.findings[0].hint.as_deref(),
        Some("if this change is deliberate, allow `key-outside-scope`")
    );
    // On the host it is planned (and shown) all the same: only apply stops.
    assert_eq!(refused.changes.len(), 1);
    let allowed = plan_with(
        &p,
        &s,
        &PlanOptions {
            allow: ["key-outside-scope".to_owned()].into(),
            ..Default::default()
        },
    );
    assert!(allowed.refusals().is_empty());
    // A per-namespace key alone raises nothing.
    let net = Profile::builder("t")
        .sysctl(raw("net.ipv4.tcp_fin_timeout", SysctlValue::Int(30)))
        .build();
    assert!(plan(&net, &s).findings.is_empty());
}

#[test]
fn a_key_that_runs_a_program_is_refused_whatever_is_allowed() {
    let every: BTreeSet<String> = crate::finding::FindingCode::ALL
        .iter()
        .map(|c| c.to_string())
        .chain(["key-runs-program".to_owned()])
        .collect();
    for state in [host(), container()] {
        for (key, value) in [
            ("kernel.core_pattern", "|/tmp/evil %p"),
            ("kernel.modprobe", "/tmp/evil"),
            ("kernel.hotplug", "/tmp/evil"),
            ("kernel.poweroff_cmd", "/tmp/evil"),
            ("kernel.usermodehelper.bset", "4294967295 4294967295"),
            ("fs.binfmt_misc.register", ":evil:E::evil::/tmp/evil:"),
        ] {
            let mut p = Profile::builder("t")
                .sysctl(raw(key, SysctlValue::Text(value.into())))
                .build();
            // A library caller can put any code in the profile's list.
            p.allow.insert("key-runs-program".into());
            let planned = plan_with(
                &p,
                &state,
                &PlanOptions {
                    allow: every.clone(),
                    ..Default::default()
                },
            );
            assert!(planned.changes.is_empty(), "{key}: {:?}", planned.changes);
            assert!(planned.unchanged.is_empty());
            assert_eq!(planned.skipped[0].code, "key-runs-program");
            let refusals = planned.refusals();
            assert_eq!(refusals.len(), 1, "{key}: {:?}", planned.findings);
            assert_eq!(refusals[0].code, "key-runs-program");
            assert!(!refusals[0].allowed);
            assert!(!refusals[0].to_string().contains("(allowed)"));
        }
    }
    // Already the value on the host: still refused, so `persist` never
    // copies it into sysctl.d as "unchanged".
    let mut s = host();
    s.sysctls.insert(
        "kernel.core_pattern".into(),
        SysctlReading::rw("|/usr/lib/systemd/systemd-coredump %P"),
    );
    let same = Profile::builder("t")
        .sysctl(raw(
            "kernel.core_pattern",
            SysctlValue::Text("|/usr/lib/systemd/systemd-coredump %P".into()),
        ))
        .build();
    let p = plan(&same, &s);
    assert!(p.unchanged.is_empty() && p.changes.is_empty());
    assert_eq!(codes(&p), vec!["key-runs-program"]);
    // Replacing a pipe is refused too: its rollback would write one.
    let away = Profile::builder("t")
        .sysctl(raw("kernel.core_pattern", SysctlValue::Text("core".into())))
        .build();
    let p = plan(&away, &s);
    assert_eq!(codes(&p), vec!["key-runs-program"]);
    assert!(p.findings[0]
        .message
        .contains("replacing it would make its rollback"));
    s.sysctls
        .insert("kernel.core_pattern".into(), SysctlReading::rw("core"));
    // A plain core file path is only outside the scope.
    let plain = Profile::builder("t")
        .sysctl(raw(
            "kernel.core_pattern",
            SysctlValue::Text("core.%p".into()),
        ))
        .build();
    assert_eq!(codes(&plan(&plain, &s)), vec!["key-outside-scope"]);
}

#[test]
fn a_finding_marked_allowed_by_hand_still_blocks_when_never_allowable() {
    let mut f = Finding::new(FindingCode::KeyRunsProgram, Severity::Refuse, "x");
    f.allowed = true;
    assert!(f.blocks());
    let mut g = Finding::new(FindingCode::KeyOutsideScope, Severity::Refuse, "x");
    g.allowed = true;
    assert!(!g.blocks());
}

#[test]
fn missing_conntrack_keys_are_skipped_with_the_module_named() {
    let mut s = host();
    s.sysctls.insert(
        "net.netfilter.nf_conntrack_max".into(),
        SysctlReading::missing(),
    );
    let plan = plan(&builtin("conntrack-exhaustion"), &s);
    let skip = plan
        .skipped
        .iter()
        .find(|k| k.key == "net.netfilter.nf_conntrack_max")
        .unwrap();
    assert_eq!(skip.code, "key-missing");
    assert!(skip.why.contains("nf_conntrack"));
}

#[test]
fn somaxconn_above_app_backlog_refuses_for_an_app_limited_listener() {
    let mut s = host();
    s.listeners.push(listener(8080, 511));
    let p = somaxconn_with_listener(4096, 8080, None);
    let plan = plan(&p, &s);
    assert_eq!(codes(&plan), vec!["somaxconn-above-app-backlog"]);
    assert!(plan.findings[0].message.contains("min(511, 4096) = 511"));
    assert!(plan.findings[0].hint.as_ref().unwrap().contains("backlog="));
    assert_eq!(plan.refusals().len(), 1);
}

#[test]
fn a_declared_app_backlog_at_or_above_somaxconn_passes() {
    let mut s = host();
    s.listeners.push(listener(8080, 511));
    let p = somaxconn_with_listener(4096, 8080, Some(8192));
    // No refusal; but the running socket still has 511, below somaxconn:
    // the app was reconfigured and not restarted yet.
    let found = plan(&p, &s);
    assert_eq!(codes(&found), vec!["listener-needs-restart"]);
    assert!(found.findings[0]
        .message
        .contains("0.0.0.0:8080 has backlog 511"));
    assert!(found.refusals().is_empty());
    // Declared but not listening here: nothing to restart, nothing refused.
    assert!(plan(&p, &host()).findings.is_empty());
    // A declared backlog wins over the live one and can refuse too.
    let p = somaxconn_with_listener(4096, 9090, Some(2048));
    assert_eq!(codes(&plan(&p, &s)), vec!["somaxconn-above-app-backlog"]);
}

#[test]
fn a_clamped_listener_warns_app_backlog_unknown_and_needs_restart() {
    let mut s = host();
    s.listeners.push(listener(8080, 1024));
    let p = somaxconn_with_listener(4096, 8080, None);
    let plan = plan(&p, &s);
    assert_eq!(
        codes(&plan),
        vec!["app-backlog-unknown", "listener-needs-restart"]
    );
    assert!(plan.findings[0]
        .hint
        .as_ref()
        .unwrap()
        .contains("declare backlog N for port 8080"));
    assert!(plan.findings[1].message.contains("0.0.0.0:8080"));
    assert!(plan.refusals().is_empty());
}

#[test]
fn no_backlog_findings_when_somaxconn_is_not_raised() {
    let mut s = host();
    s.listeners.push(listener(8080, 1024));
    let p = somaxconn_with_listener(512, 8080, None);
    assert!(plan(&p, &s).findings.is_empty());
}

#[test]
fn a_named_port_with_nothing_listening_is_reported() {
    let p = somaxconn_with_listener(4096, 8080, None);
    assert_eq!(codes(&plan(&p, &host())), vec!["listener-not-found"]);
    // Issue 17: also when somaxconn does not change (512 is below the
    // host's value, so nothing is planned for it).
    let p = somaxconn_with_listener(512, 8080, None);
    let unchanged = plan(&p, &host());
    assert!(unchanged.changes.is_empty());
    assert_eq!(codes(&unchanged), vec!["listener-not-found"]);
}

#[test]
fn conntrack_max_below_count_refuses() {
    let mut s = host();
    s.sysctls.insert(
        "net.netfilter.nf_conntrack_count".into(),
        SysctlReading::rw("70000"),
    );
    let below = Profile::builder("t")
        .conntrack_max(Desired::exact(65000))
        .build();
    assert!(codes(&plan(&below, &s)).contains(&"conntrack-max-below-count"));
    let above = Profile::builder("t")
        .conntrack_max(Desired::exact(80000))
        .build();
    assert!(!codes(&plan(&above, &s)).contains(&"conntrack-max-below-count"));
}

#[test]
fn conntrack_memory_warns_then_refuses() {
    let mut s = host();
    s.mem_total_bytes = Some(GIB);
    // 262144 x 350 B = 87.5 MiB: 8.5% of 1 GiB -> warn.
    let warn = plan(
        &Profile::builder("t")
            .conntrack_max(Desired::at_least(262_144))
            .build(),
        &s,
    );
    assert_eq!(warn.findings[0].code, "conntrack-memory");
    assert_eq!(warn.findings[0].severity, Severity::Warn);
    // 1M x 350 B = 334 MiB: 32% -> refuse.
    let refuse = plan(
        &Profile::builder("t")
            .conntrack_max(Desired::at_least(1_000_000))
            .build(),
        &s,
    );
    assert_eq!(refuse.findings[0].severity, Severity::Refuse);
    // 16 GiB host: 0.5% -> nothing.
    assert!(plan(
        &Profile::builder("t")
            .conntrack_max(Desired::at_least(262_144))
            .build(),
        &host()
    )
    .findings
    .is_empty());
}

#[test]
fn conntrack_timeouts_must_be_sane() {
    let t = |v: i64| {
        Profile::builder("t")
            .conntrack_timeout_established(Desired::exact(v))
            .build()
    };
    for bad in [0, -5, 10_000_000] {
        let p = plan(&t(bad), &host());
        assert!(
            p.findings
                .iter()
                .any(|f| f.code == "conntrack-timeout-range" && f.severity == Severity::Refuse),
            "{bad}"
        );
    }
    // Issue 17: one bad value gives one finding, not a second
    // `value-out-of-range` for the same key.
    for bad in [0, -5] {
        assert_eq!(
            codes(&plan(&t(bad), &host())),
            vec!["conntrack-timeout-range"],
            "{bad}"
        );
    }
    let short = plan(&t(600), &host());
    assert_eq!(codes(&short), vec!["conntrack-timeout-range"]);
    assert_eq!(
        short.findings[0].severity,
        Severity::Warn,
        "600 < tcp_keepalive_time 7200"
    );
    assert!(plan(&t(7440), &host()).findings.is_empty());
}

#[test]
fn kernel_bounds_and_removed_keys() {
    let p = Profile::builder("t")
        .client(crate::fix::ClientFix {
            tcp_syn_retries: Some(Desired::exact(200)),
            ..Default::default()
        })
        .build();
    assert_eq!(codes(&plan(&p, &host())), vec!["value-out-of-range"]);
    let p = Profile::builder("t")
        .client(crate::fix::ClientFix {
            tcp_syn_retries: Some(Desired::exact(8)),
            ..Default::default()
        })
        .build();
    assert!(plan(&p, &host()).findings.is_empty());
    let recycle = RawSysctl {
        key: SysctlName::new("net.ipv4.tcp_tw_recycle").unwrap(),
        desired: Desired::exact(SysctlValue::Int(1)),
    };
    let p = plan(&Profile::builder("t").sysctl(recycle).build(), &host());
    assert_eq!(codes(&p), vec!["removed-key"]);
    assert!(p.findings[0].message.contains("4.12"));
    let fin = RawSysctl {
        key: SysctlName::new("net.ipv4.tcp_fin_timeout").unwrap(),
        desired: Desired::exact(SysctlValue::Int(30)),
    };
    assert!(plan(&Profile::builder("t").sysctl(fin).build(), &host())
        .findings
        .is_empty());
}

#[test]
fn raw_keys_must_exist() {
    let raw = RawSysctl {
        key: SysctlName::new("net.ipv4.no_such_knob").unwrap(),
        desired: Desired::exact(SysctlValue::Int(1)),
    };
    let profile = Profile::builder("t").sysctl(raw).build();
    let p = plan(&profile, &host());
    assert_eq!(codes(&p), vec!["unknown-sysctl"]);
    assert_eq!(p.refusals().len(), 1);
    // `--allow unknown-sysctl` is accepted on the command line, so it must
    // take effect: the finding stops blocking, the key stays skipped.
    let opts = PlanOptions {
        allow: ["unknown-sysctl".to_owned()].into(),
        ..Default::default()
    };
    let allowed = plan_with(&profile, &host(), &opts);
    assert!(allowed.findings[0].allowed, "{allowed}");
    assert!(allowed.refusals().is_empty());
    assert!(allowed.changes.is_empty());
    assert_eq!(allowed.skipped[0].code, "unknown-sysctl");
}

#[test]
fn allowed_findings_no_longer_block() {
    let mut s = host();
    s.listeners.push(listener(8080, 511));
    let p = somaxconn_with_listener(4096, 8080, None);
    let plan = plan_with(
        &p,
        &s,
        &PlanOptions {
            allow: ["somaxconn-above-app-backlog".to_owned()].into(),
            ..Default::default()
        },
    );
    assert!(plan.findings[0].allowed);
    assert!(plan.refusals().is_empty());
}

#[test]
fn planning_is_pure_and_repeatable() {
    let p = builtin("high-conn");
    assert_eq!(plan(&p, &host()), plan(&p, &host()));
}

#[test]
fn snapshot_text_plan() {
    let mut s = host();
    s.listeners.push(listener(8080, 1024));
    let mut p = builtin("high-conn");
    p.add_listener(8080, None);
    insta::assert_snapshot!(plan(&p, &s).to_string());
}

#[test]
fn snapshot_json_plan() {
    let mut s = host();
    s.in_initial_netns = false;
    s.sysctls.insert(
        "net.netfilter.nf_conntrack_max".into(),
        SysctlReading::ro("65536"),
    );
    insta::assert_json_snapshot!(plan(&builtin("backlog-overflow"), &s));
}

#[test]
fn a_profile_allow_list_allows_like_the_flag() {
    let mut s = host();
    s.listeners.push(listener(8080, 511));
    let mut p = somaxconn_with_listener(4096, 8080, None);
    assert_eq!(plan(&p, &s).refusals().len(), 1);
    p.allow.insert("somaxconn-above-app-backlog".into());
    let allowed = plan(&p, &s);
    assert!(allowed.refusals().is_empty() && allowed.findings[0].allowed);
}

#[test]
fn text_snapshot_of_a_container_plan_with_keys_out_of_scope() {
    let mut s = container();
    // A value someone set with an escape sequence in it.
    s.sysctls.insert(
        "kernel.core_pattern".into(),
        SysctlReading::rw("core\u{1b}]0;pwned\u{7}"),
    );
    s.sysctls.insert(
        "kernel.modprobe".into(),
        SysctlReading::rw("/sbin/modprobe"),
    );
    let p = Profile::builder("scope")
        .sysctl(raw("vm.swappiness", SysctlValue::Int(59)))
        .sysctl(raw("net.core.rmem_max", SysctlValue::Int(1 << 20)))
        .sysctl(raw("net.ipv4.tcp_fin_timeout", SysctlValue::Int(30)))
        .sysctl(raw(
            "kernel.modprobe",
            SysctlValue::Text("/tmp/evil".into()),
        ))
        .sysctl(raw(
            "kernel.core_pattern",
            SysctlValue::Text("/var/crash/core".into()),
        ))
        .build();
    let text = plan(&p, &s).to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// Issue 17: a skipped line keeps its intent (`wanted >= 16384`), as the
/// `ok` lines do; an exact one shows the bare value.
#[test]
fn skip_lines_keep_at_least_and_at_most() {
    let p = Profile::builder("t")
        .somaxconn(Desired::at_least(4096))
        .tcp_max_syn_backlog(Desired::at_most(100))
        .build();
    let mut s = host();
    s.sysctls.remove("net.core.somaxconn");
    s.sysctls.remove("net.ipv4.tcp_max_syn_backlog");
    let text = plan(&p, &s).render(crate::TextStyle { color: false });
    assert!(text.contains("(wanted >= 4096)"), "{text}");
    assert!(text.contains("(wanted <= 100)"), "{text}");
    let exact = Profile::builder("t")
        .somaxconn(Desired::exact(4096))
        .build();
    let text = plan(&exact, &s).render(crate::TextStyle { color: false });
    assert!(text.contains("(wanted 4096)"), "{text}");
}
