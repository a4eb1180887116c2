//! Diagnoses of replayed incidents (fixture observations).

use std::collections::BTreeMap;

use super::*;
use crate::procfs::{parse_conntrack_stat, ConntrackStat, KmsgRecord, NetDevStats};
use crate::state::SysctlReading;
use crate::system::{Backends, SimCounters};

fn ct(text: &str) -> ConntrackStat {
    parse_conntrack_stat(text).unwrap()
}

const CT_HEAD: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n";

fn ct_row(entries: u64, drop: u64) -> String {
    format!(
        "{CT_HEAD}{entries:08x}  00000000 00000002 00000000 00000000 00000000 00000000 00000003 00000000 {drop:08x} {drop:08x} 00000000 00000000  00000000 00000000 00000000 00000000\n"
    )
}

fn sample(at_ms: u64, overflows: u64, ct_entries: u64, ct_drop: u64) -> CounterSample {
    let tcp_ext: BTreeMap<String, u64> = WATCHED_TCP_EXT
        .iter()
        .map(|n| ((*n).to_owned(), 0))
        .chain([
            ("ListenOverflows".to_owned(), overflows),
            ("ListenDrops".to_owned(), overflows),
        ])
        .collect();
    CounterSample {
        at_ms,
        tcp_ext,
        conntrack: Some(ct(&ct_row(ct_entries, ct_drop))),
        conntrack_count: Some(ct_entries),
        conntrack_max: Some(65536),
        interfaces: vec![NetDevStats {
            iface: "eth0".into(),
            rx_packets: 1000,
            ..Default::default()
        }],
        softnet: vec![],
    }
}

fn listener(port: u16, queue: u32, backlog: u32, inode: u32) -> ListenSocket {
    ListenSocket {
        addr: "0.0.0.0".parse().unwrap(),
        port,
        queue,
        backlog,
        inode,
    }
}

fn state(listeners: Vec<ListenSocket>, somaxconn: &str) -> SystemState {
    let mut s = SystemState {
        listeners,
        in_initial_netns: true,
        ..Default::default()
    };
    for (k, v) in [
        ("net.core.somaxconn", somaxconn),
        ("net.ipv4.tcp_max_syn_backlog", "512"),
        ("net.netfilter.nf_conntrack_max", "65536"),
    ] {
        s.sysctls.insert(k.into(), SysctlReading::rw(v));
    }
    s
}

fn opts(ports: &[u16]) -> DiagnoseOptions {
    DiagnoseOptions {
        interval: Duration::from_secs(1),
        ports: ports.to_vec(),
        owners_limit: None,
        conntrack_top: false,
        clients: vec![],
        words: Default::default(),
    }
}

fn backlog_incident() -> Observation {
    let stuck = listener(8080, 9, 8, 111);
    let idle = listener(22, 0, 4096, 222);
    Observation {
        before: sample(10_000, 40, 2, 0),
        after: Some(sample(11_000, 52, 2, 0)),
        listeners_before: vec![stuck.clone(), idle.clone()],
        state: state(vec![stuck, idle], "4096"),
        owners: BTreeMap::from([(
            111,
            Process {
                pid: 4242,
                name: "tcto-lab".into(),
            },
        )]),
        kernel_log: KernelLog {
            readable: true,
            ..Default::default()
        },
        offloads: vec![],
        ..Default::default()
    }
}

#[test]
fn full_accept_queue_with_overflows_ranks_first_with_its_plan() {
    let d = analyze(&backlog_incident(), &opts(&[8080]));
    let top = &d.causes[0];
    assert_eq!(top.code, "accept-queue-full", "{d}");
    assert_eq!(top.rank, 1);
    assert_eq!(top.status, "active");
    assert_eq!(
        top.plan.as_deref(),
        Some("plan profile `backlog-overflow` with port 8080")
    );
    let ev = top.evidence.join("\n");
    assert!(
        ev.contains(
            "listener 0.0.0.0:8080 (tcto-lab pid 4242): accept queue 9 of backlog 8 (112.5%)"
        ),
        "{ev}"
    );
    assert!(
        ev.contains("ListenOverflows +12 in 1.0 s (720/min), 52 in total"),
        "{ev}"
    );
    assert!(top
        .notes
        .iter()
        .any(|n| n.contains("declare backlog N for port 8080")));
    assert!(!top.notes.iter().any(|n| n.contains("somaxconn is only")));
    // Under a low somaxconn, raising the app's backlog alone is not enough.
    let mut low = backlog_incident();
    low.state
        .sysctls
        .insert("net.core.somaxconn".into(), SysctlReading::rw("64"));
    let d2 = analyze(&low, &opts(&[8080]));
    assert!(d2.causes[0]
        .notes
        .iter()
        .any(|n| n.contains("net.core.somaxconn is only 64")));
    // Only the named port is listed.
    assert_eq!(d.listeners.len(), 1);
    assert_eq!(d.listeners[0].limited_by, LimitedBy::App);
}

#[test]
fn clamped_listener_blames_somaxconn() {
    let mut obs = backlog_incident();
    obs.state = state(vec![listener(8080, 129, 128, 111)], "128");
    let d = analyze(&obs, &opts(&[8080]));
    assert_eq!(d.listeners[0].limited_by, LimitedBy::Somaxconn);
    assert!(d.causes[0].evidence[0].contains("clamped by net.core.somaxconn = 128"));
    assert!(d.causes[0].notes[0].contains("restart the service on port 8080"));
}

#[test]
fn conntrack_drops_rank_above_a_risk() {
    let obs = Observation {
        before: sample(0, 0, 65500, 100),
        after: Some(sample(2_000, 0, 65530, 160)),
        state: state(vec![], "4096"),
        kernel_log: KernelLog {
            readable: true,
            now_usec: 100_000_000,
            table_full: 3,
            table_full_usec: vec![93_000_000, 94_000_000, 95_000_000],
            last_table_full: vec![KmsgRecord {
                seq: 9,
                usec: 95_000_000,
                message: "nf_conntrack: table full in netns 1, dropping packet".into(),
            }],
            ..Default::default()
        },
        ..Default::default()
    };
    let d = analyze(&obs, &opts(&[]));
    let top = &d.causes[0];
    assert_eq!(top.code, "conntrack-table-full", "{d}");
    let ev = top.evidence.join("\n");
    assert!(ev.contains("count 65530 of 65536 (100% used)"), "{ev}");
    assert!(ev.contains("drop +60 in 2.0 s (1800/min)"), "{ev}");
    assert!(ev.contains("insert_failed +60"), "{ev}");
    assert!(
        ev.contains(
            "3 \"nf_conntrack: table full, dropping packet\" line(s) in the last 62 s, the last 5 s ago"
        ),
        "{ev}"
    );
    assert_eq!(
        top.plan.as_deref(),
        Some("plan profile `conntrack-exhaustion`")
    );
    assert!(top.notes[0].contains("trusted-notrack"));
    assert_eq!(d.conntrack.count, Some(65530));
    assert_eq!(d.conntrack.use_pct, Some(100.0));
}

#[test]
fn quiet_host_says_nothing_found_and_what_it_checked() {
    let obs = Observation {
        before: sample(0, 0, 10, 0),
        after: Some(sample(1_000, 0, 10, 0)),
        listeners_before: vec![listener(80, 0, 4096, 1)],
        state: state(vec![listener(80, 0, 4096, 1)], "4096"),
        kernel_log: KernelLog {
            readable: false,
            error: Some("/dev/kmsg: Permission denied (os error 13)".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let d = analyze(&obs, &opts(&[]));
    assert!(d.causes.is_empty(), "{:?}", d.causes);
    let text = d.to_string();
    assert!(
        text.starts_with("No likely cause of connect timeouts found"),
        "{text}"
    );
    for part in [
        "conntrack table: 10 of 65536 entries",
        "TcpExt counters: ListenOverflows",
        "1 listening sockets",
        "interface(s) from /proc/net/dev",
        "kernel log: not readable (/dev/kmsg: Permission denied",
    ] {
        assert!(text.contains(part), "missing {part:?} in\n{text}");
    }
}

#[test]
fn counters_since_boot_alone_are_only_a_risk() {
    let obs = Observation {
        before: sample(0, 7, 10, 0),
        after: Some(sample(1_000, 7, 10, 0)),
        state: state(vec![], "4096"),
        ..Default::default()
    };
    let d = analyze(&obs, &opts(&[]));
    assert_eq!(d.causes.len(), 1);
    assert_eq!(d.causes[0].code, "listen-overflows");
    assert_eq!(d.causes[0].status, "risk");
}

#[test]
fn named_port_without_listener() {
    let obs = Observation {
        before: sample(0, 0, 0, 0),
        state: state(vec![], "4096"),
        ..Default::default()
    };
    let d = analyze(&obs, &opts(&[9000]));
    assert_eq!(d.missing_ports, vec![9000]);
    assert_eq!(d.causes[0].code, "no-listener");
    assert_eq!(d.causes[0].plan, None);
    // One sample: totals, no rates.
    assert_eq!(d.interval_ms, 0);
    assert!(d.tcp_ext.iter().all(|t| t.delta.is_none()));
}

#[test]
fn nic_errors_suggest_the_offload_experiment() {
    let mut after = sample(1_000, 0, 0, 0);
    after.interfaces[0].rx_frame = 5;
    after.interfaces[0].rx_dropped = 3;
    let obs = Observation {
        before: sample(0, 0, 0, 0),
        after: Some(after),
        state: state(vec![], "4096"),
        ..Default::default()
    };
    let mut obs = obs;
    obs.offloads = vec![InterfaceOffloads {
        iface: "eth0".into(),
        features: [("tso", true), ("gso", true), ("gro", true), ("lro", false)]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        error: None,
    }];
    let d = analyze(&obs, &opts(&[]));
    let codes: Vec<&str> = d.causes.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, vec!["nic-drops", "nic-errors"]);
    assert_eq!(
        d.causes[1].plan.as_deref(),
        Some("plan profile `offload-off` with iface=eth0")
    );
    assert!(d.causes[1]
        .evidence
        .contains(&"offloads: tso on, gso on, gro on, lro off".to_owned()));
    // With TSO and GRO already off, the experiment is pointless.
    obs.offloads[0].features.insert("tso".into(), false);
    obs.offloads[0].features.insert("gro".into(), false);
    let d = analyze(&obs, &opts(&[]));
    assert_eq!(d.causes[1].plan, None);
    assert!(d.causes[1].notes[0].contains("already off"));
}

#[test]
fn sysctl_advice_follows_the_high_conn_profile() {
    let d = analyze(&backlog_incident(), &opts(&[]));
    let s = d
        .sysctls
        .iter()
        .find(|s| s.key == "net.ipv4.tcp_max_syn_backlog")
        .unwrap();
    assert_eq!(s.value.as_deref(), Some("512"));
    assert_eq!(s.recommended, ">= 8192");
    assert_eq!(s.ok, Some(false));
    let s = d
        .sysctls
        .iter()
        .find(|s| s.key == "net.core.somaxconn")
        .unwrap();
    assert_eq!(s.ok, Some(true));
}

#[test]
fn a_value_above_an_exact_recommendation_is_not_called_below_it() {
    let mut obs = backlog_incident();
    for (k, v) in [
        (
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            "432000",
        ),
        ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "60"),
    ] {
        obs.state.sysctls.insert(k.into(), SysctlReading::rw(v));
    }
    let text = analyze(&obs, &opts(&[])).to_string();
    assert!(
        text.contains("nf_conntrack_tcp_timeout_established = 432000 (recommended 7440): not the recommended value"),
        "{text}"
    );
    assert!(
        text.contains("nf_conntrack_tcp_timeout_close_wait = 60 (recommended 60): ok"),
        "{text}"
    );
    assert!(
        text.contains("tcp_max_syn_backlog = 512 (recommended >= 8192): below recommendation"),
        "{text}"
    );
}

#[test]
fn prometheus_text_has_help_type_and_labels() {
    let d = analyze(&backlog_incident(), &opts(&[]));
    let p = d.to_prometheus();
    // Issue 17: only tcto-tune's own view. The raw counters are
    // node_exporter's (node_nf_conntrack_*, node_netstat_TcpExt_*):
    // repeating them makes every scrape fail with duplicate metrics.
    for line in [
        "# TYPE tcto_cause_found gauge",
        "tcto_cause_found{code=\"accept-queue-full\"} 1",
        "tcto_cause_found{code=\"nic-errors\"} 0",
        "tcto_cause_active{code=\"accept-queue-full\"} 1",
        "tcto_cause_rank{code=\"accept-queue-full\"} 1",
        "tcto_conntrack_usage_ratio 0.000030517578125",
        "tcto_listen_queue{address=\"0.0.0.0\",port=\"8080\"} 9",
        "tcto_listen_backlog{address=\"0.0.0.0\",port=\"22\"} 4096",
        "tcto_diagnose_interval_seconds 1",
    ] {
        assert!(p.lines().any(|l| l == line), "missing {line:?} in\n{p}");
    }
    assert!(!p.contains("node_"), "{p}");
    let found = p
        .lines()
        .filter(|l| l.starts_with("tcto_cause_found{"))
        .count();
    assert_eq!(found, CAUSE_CODES.len(), "one series per known cause:\n{p}");
    // Every sample line belongs to a metric announced with HELP and TYPE.
    for l in p.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(p.contains(&format!("# TYPE {name} ")), "{name}");
        assert!(p.contains(&format!("# HELP {name} ")), "{name}");
    }
}

#[test]
fn observe_reads_through_the_backends() {
    let mut b = Backends::simulated(&state(vec![listener(8080, 9, 8, 111)], "4096"));
    b.counters = Box::new(SimCounters::new([sample(0, 1, 0, 0), sample(25, 5, 0, 0)]));
    let o = DiagnoseOptions {
        interval: Duration::from_millis(10),
        ports: vec![8080],
        owners_limit: None,
        conntrack_top: false,
        clients: vec![],
        words: Default::default(),
    };
    let d = diagnose(&b, &o).unwrap();
    assert_eq!(d.interval_ms, 25);
    assert_eq!(d.causes[0].code, "accept-queue-full");
    assert!(d.causes[0]
        .evidence
        .iter()
        .any(|e| e.contains("ListenOverflows +4")));
}

#[test]
fn text_snapshot_of_the_backlog_incident() {
    let d = analyze(&backlog_incident(), &opts(&[8080]));
    insta::assert_snapshot!(d.to_string());
}

#[test]
fn owners_are_looked_up_for_the_fullest_listeners_only_when_limited() {
    let listeners = vec![
        listener(80, 0, 100, 1),
        listener(81, 90, 100, 2),
        listener(82, 50, 100, 3),
    ];
    let mut b = Backends::simulated(&state(listeners, "4096"));
    let mut sim = SimCounters::new([sample(0, 0, 0, 0)]);
    for i in 1..=3 {
        sim.owners.insert(
            i,
            Process {
                pid: 100 + i,
                name: format!("p{i}"),
            },
        );
    }
    b.counters = Box::new(sim);
    let o = DiagnoseOptions {
        interval: Duration::ZERO,
        ports: vec![],
        owners_limit: Some(2),
        conntrack_top: false,
        clients: vec![],
        words: Default::default(),
    };
    let d = diagnose(&b, &o).unwrap();
    let owned: Vec<(u16, bool)> = d
        .listeners
        .iter()
        .map(|l| (l.port, l.process.is_some()))
        .collect();
    assert_eq!(owned, vec![(81, true), (82, true), (80, false)]);
    let all = diagnose(
        &b,
        &DiagnoseOptions {
            owners_limit: None,
            ..o
        },
    )
    .unwrap();
    assert!(all.listeners.iter().all(|l| l.process.is_some()));
}

#[test]
fn observe_reads_offload_toggles_of_each_interface() {
    use crate::state::FeatureState;
    let mut st = state(vec![], "4096");
    st.offloads.insert(
        "eth0".into(),
        [
            ("tx-tcp-segmentation", FeatureState::changeable(true)),
            ("tx-tcp6-segmentation", FeatureState::changeable(false)),
            ("rx-gro", FeatureState::changeable(false)),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect(),
    );
    let mut b = Backends::simulated(&st);
    let mut s = sample(0, 0, 0, 0);
    s.interfaces.push(NetDevStats {
        iface: "gone0".into(),
        ..Default::default()
    });
    b.counters = Box::new(SimCounters::new([s]));
    let o = DiagnoseOptions {
        interval: Duration::ZERO,
        ..opts(&[])
    };
    let d = diagnose(&b, &o).unwrap();
    let eth0 = d.offloads.iter().find(|o| o.iface == "eth0").unwrap();
    assert_eq!(offload_summary(eth0), "tso on, gso off, gro off, lro off");
    let gone = d.offloads.iter().find(|o| o.iface == "gone0").unwrap();
    assert!(gone.error.is_some());
    assert!(d
        .to_string()
        .contains("    offloads: tso on, gso off, gro off, lro off"));
}

#[test]
fn an_idle_listener_with_backlog_zero_is_not_full() {
    let idle = listener(9000, 0, 0, 5);
    let obs = Observation {
        before: sample(0, 0, 0, 0),
        after: Some(sample(1_000, 0, 0, 0)),
        listeners_before: vec![idle.clone()],
        state: state(vec![idle], "4096"),
        ..Default::default()
    };
    let d = analyze(&obs, &opts(&[]));
    assert!(d.causes.is_empty(), "{:?}", d.causes);
    assert_eq!(d.listeners[0].full_pct, 0.0);
}

fn stale_log(now_s: u64, line_s: &[u64]) -> KernelLog {
    KernelLog {
        readable: true,
        now_usec: now_s * 1_000_000,
        table_full: line_s.len() as u64,
        table_full_usec: line_s.iter().map(|s| s * 1_000_000).collect(),
        last_table_full: line_s
            .iter()
            .map(|s| KmsgRecord {
                seq: *s,
                usec: s * 1_000_000,
                message: "nf_conntrack: table full in netns 4026532312, dropping packet".into(),
            })
            .collect(),
        ..Default::default()
    }
}

/// Issue 18 item 14: a fresh namespace (0 entries, drop 0) whose inode
/// number the kernel reused reads old "table full" lines as its own.
#[test]
fn stale_table_full_lines_are_history_not_a_cause() {
    let obs = Observation {
        before: sample(0, 0, 0, 0),
        after: Some(sample(1_000, 0, 0, 0)),
        state: state(vec![], "4096"),
        // Lines from 2 s and 900 s ago: even the recent one is not ours,
        // since this namespace's own drop counters are 0.
        kernel_log: stale_log(1_000, &[100, 998]),
        ..Default::default()
    };
    let d = analyze(&obs, &opts(&[]));
    assert!(d.causes.is_empty(), "{d}");
    assert_eq!(d.kernel_log.recent_lines, 1);
    assert_eq!(d.kernel_log.history_lines, 1);
    assert_eq!(d.kernel_log.recent_bound_s, 61);
    assert!(!d.kernel_log.counters_agree);
    let text = d.to_string();
    assert!(
        text.contains("kernel log: 2 \"nf_conntrack: table full\" line(s) here (1 in the last 61 s, 1 older: history)"),
        "{text}"
    );
    assert!(text.contains("(not counted: this namespace's conntrack drop counters are 0"));

    // Old lines with counters that agree (drops once, long ago): still no
    // cause from the log, the drop total is only a risk of its own.
    let mut old = obs.clone();
    old.before = sample(0, 0, 0, 7);
    old.after = Some(sample(1_000, 0, 0, 7));
    old.kernel_log = stale_log(1_000, &[100, 200]);
    let d = analyze(&old, &opts(&[]));
    let c = &d.causes[0];
    assert_eq!(
        (c.code.as_str(), c.status.as_str(), c.score),
        ("conntrack-table-full", "risk", 10),
        "{d}"
    );
    assert!(!c.evidence.iter().any(|e| e.contains("in the last")), "{d}");
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("2 older or unconfirmed")),
        "{d}"
    );

    // Recent lines and counters that agree: evidence.
    let mut live = old.clone();
    live.kernel_log = stale_log(1_000, &[999]);
    let d = analyze(&live, &opts(&[]));
    assert!(
        d.causes[0].evidence.iter().any(|e| e
            .contains("1 \"nf_conntrack: table full, dropping packet\" line(s) in the last 61 s")),
        "{d}"
    );
    assert_eq!(d.causes[0].score, 40);
}

/// Issue 16 item 5: from a container the table's limit is the host's to
/// raise; the fix that works here (NOTRACK) comes first.
#[test]
fn a_full_table_seen_from_a_child_namespace_puts_notrack_first() {
    let mut obs = Observation {
        before: sample(0, 0, 100, 100),
        after: Some(sample(1_000, 0, 100, 160)),
        state: state(vec![], "4096"),
        ..Default::default()
    };
    obs.state.in_initial_netns = false;
    let d = analyze(&obs, &opts(&[8080]));
    let c = &d.causes[0];
    assert_eq!(c.code, "conntrack-table-full");
    assert!(
        c.plan
            .as_deref()
            .unwrap()
            .starts_with("plan profile `trusted-notrack`"),
        "{d}"
    );
    assert_eq!(
        c.host_plan.as_deref(),
        Some("plan profile `conntrack-exhaustion`")
    );
    assert!(c.notes[0].contains("nf_conntrack_max is global and can only be raised from the host"));
    let text = d.to_string();
    let fix = text.find("   fix: plan profile `trusted-notrack`").unwrap();
    let host = text
        .find("   fix on the host (not from this namespace): plan profile `conntrack-exhaustion`")
        .unwrap();
    assert!(fix < host, "{text}");
    // In the initial namespace the sizing plan is the fix, NOTRACK a note.
    obs.state.in_initial_netns = true;
    let d = analyze(&obs, &opts(&[8080]));
    assert_eq!(
        d.causes[0].plan.as_deref(),
        Some("plan profile `conntrack-exhaustion`")
    );
    assert_eq!(d.causes[0].host_plan, None);
}

/// The seed's incident from a fixture: the largest group of TCP flows to
/// a local listener gets the NOTRACK command with both subnets filled in.
#[test]
fn the_group_that_fills_the_table_gets_the_notrack_command() {
    let mut agg = CtAggregator::new(Some(432_000));
    let entry = |src: &str, port: u16| CtEntry {
        proto: 6,
        src: src.parse().unwrap(),
        dst: "10.0.2.1".parse().unwrap(),
        dport: port,
        tcp_state: Some(3),
        timeout_s: Some(400_000),
    };
    for i in 0..80 {
        agg.add(&entry(&format!("10.0.1.{i}"), 8080));
    }
    for i in 0..20 {
        agg.add(&entry(&format!("192.168.9.{i}"), 22));
    }
    let mut obs = Observation {
        before: sample(0, 0, 65500, 100),
        after: Some(sample(1_000, 0, 65530, 160)),
        state: state(
            vec![listener(8080, 0, 4096, 1), listener(22, 0, 128, 2)],
            "4096",
        ),
        conntrack_groups: Some(agg.finish()),
        local_subnets: vec!["127.0.0.1/8".into(), "10.0.2.1/24".into()],
        ..Default::default()
    };
    let want =
        "plan profile `trusted-notrack` with frontend=10.0.1.0/24, backend=10.0.2.0/24, port=8080";
    let d = analyze(&obs, &opts(&[]));
    assert_eq!(d.conntrack.notrack_command.as_deref(), Some(want));
    let c = &d.causes[0];
    assert_eq!(c.code, "conntrack-table-full");
    assert!(c.notes[0].ends_with(want), "{d}");
    let g = &d.conntrack.groups.as_ref().unwrap().groups[0];
    assert_eq!((g.count, g.share_pct, g.idle_established), (80, 80.0, 80));
    let text = d.to_string();
    assert!(
        text.contains(
            "     80.0%      80 tcp 10.0.1.0/24 -> 10.0.2.1:8080 ESTABLISHED (80 idle >= 60 s)"
        ),
        "{text}"
    );
    assert!(d
        .to_prometheus()
        .contains("tcto_conntrack_group_entries{source=\"10.0.1.0/24\",destination=\"10.0.2.1\",port=\"8080\",protocol=\"tcp\",state=\"ESTABLISHED\"} 80"));
    // No listener on the group's port (outgoing flows): no command.
    obs.state.listeners.retain(|l| l.port != 8080);
    assert_eq!(analyze(&obs, &opts(&[])).conntrack.notrack_command, None);
}
