//! The path causes (softnet, syn-flood, synack-lost, rp-filter) from
//! fixture observations.

use super::*;
use crate::procfs::{NetDevStats, SoftnetCpu};
use crate::state::SysctlReading;

fn sample(at_ms: u64, tcp: &[(&str, u64)]) -> CounterSample {
    CounterSample {
        at_ms,
        tcp_ext: WATCHED_TCP_EXT
            .iter()
            .chain(DIAGNOSE_TCP_EXT)
            .map(|n| ((*n).to_owned(), 0))
            .chain(tcp.iter().map(|(k, v)| ((*k).to_owned(), *v)))
            .collect(),
        interfaces: ["lo", "veth0", "veth1"]
            .iter()
            .map(|i| NetDevStats {
                iface: (*i).into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn obs(before: CounterSample, after: CounterSample) -> Observation {
    let mut state = SystemState {
        in_initial_netns: true,
        ..Default::default()
    };
    state
        .sysctls
        .insert("net.core.somaxconn".into(), SysctlReading::rw("4096"));
    Observation {
        before,
        after: Some(after),
        state,
        ..Default::default()
    }
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

fn cpu(cpu: u32, dropped: u64, squeeze: u64) -> SoftnetCpu {
    SoftnetCpu {
        cpu,
        processed: 100,
        dropped,
        time_squeeze: squeeze,
        flow_limit: 0,
    }
}

#[test]
fn softnet_drops_name_the_cpu_and_the_backlog_profile() {
    let mut b = sample(0, &[]);
    let mut a = sample(1_000, &[]);
    b.softnet = vec![cpu(0, 3, 0), cpu(1, 10, 2)];
    a.softnet = vec![cpu(0, 3, 0), cpu(1, 15, 4)];
    let mut o = obs(b, a);
    let d = analyze(&o, &opts(&[]));
    let c = &d.causes[0];
    assert_eq!(
        (c.code.as_str(), c.status.as_str()),
        ("softnet-drops", "active"),
        "{d}"
    );
    assert_eq!(
        c.evidence,
        vec!["cpu 1: dropped +5 in 1.0 s (300/min), 15 in total; time_squeeze +2 in 1.0 s (120/min), 4 in total"]
    );
    assert_eq!(c.plan.as_deref(), Some("plan profile `high-conn`"));
    // Global: from a container, the host raises netdev_max_backlog.
    o.state.in_initial_netns = false;
    let d = analyze(&o, &opts(&[]));
    assert_eq!(d.causes[0].plan, None);
    assert_eq!(
        d.causes[0].host_plan.as_deref(),
        Some("plan profile `high-conn`")
    );
    // Drops since boot only (the file is host-wide): no cause.
    let mut b = sample(0, &[]);
    b.softnet = vec![cpu(0, 3, 0)];
    let d = analyze(&obs(b.clone(), b), &opts(&[]));
    assert!(d.causes.is_empty(), "{d}");
}

fn syn(local: &str, remote: &str, retrans: u8) -> SynRecv {
    SynRecv {
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        retrans,
    }
}

#[test]
fn a_full_syn_queue_without_cookies_is_a_syn_flood() {
    let b = sample(0, &[("TCPReqQFullDrop", 10)]);
    let a = sample(1_000, &[("TCPReqQFullDrop", 40)]);
    let mut o = obs(b, a);
    o.net_sysctls
        .insert("net.ipv4.tcp_syncookies".into(), "0".into());
    o.state.listeners = vec![ListenSocket {
        addr: "10.0.1.1".parse().unwrap(),
        port: 8080,
        queue: 0,
        backlog: 8,
        inode: 7,
    }];
    o.syn_recv = (0..8)
        .map(|i| syn("10.0.1.1:8080", &format!("10.0.1.2:{}", 40000 + i), 1))
        .collect();
    o.syn_recv_before = o.syn_recv.clone();
    let d = analyze(&o, &opts(&[]));
    let c = &d.causes[0];
    assert_eq!(c.code, "syn-flood", "{d}");
    assert!(c.title.contains("SYN cookies are off"));
    assert_eq!(c.plan.as_deref(), Some("plan profile `syn-flood`"));
    let ev = c.evidence.join("\n");
    assert!(ev.contains("TCPReqQFullDrop +30 in 1.0 s"), "{ev}");
    assert!(ev.contains("net.ipv4.tcp_syncookies = 0"), "{ev}");
    assert!(
        ev.contains("listener 10.0.1.1:8080: 8 half-open connection(s) (the SYN queue is bounded by the backlog, 8), top clients: 10.0.1.2 (8)"),
        "{ev}"
    );
    assert!(c
        .notes
        .iter()
        .any(|n| n.contains("plan profile `backlog-overflow` with port 8080")));
    assert!(!d.causes.iter().any(|c| c.code == "syn-queue-full"));
    // Cookies on and answering: still a syn-flood, lower.
    let mut on = o.clone();
    on.net_sysctls
        .insert("net.ipv4.tcp_syncookies".into(), "1".into());
    on.before = sample(0, &[("TCPReqQFullDoCookies", 1)]);
    on.after = Some(sample(1_000, &[("TCPReqQFullDoCookies", 9)]));
    let d = analyze(&on, &opts(&[]));
    let c = d.causes.iter().find(|c| c.code == "syn-flood").unwrap();
    assert_eq!(c.score, 70);
    // Drops with cookies on (the kernel's other drop paths): the older
    // syn-queue-full cause.
    on.before = sample(0, &[("TCPReqQFullDrop", 1)]);
    on.after = Some(sample(1_000, &[("TCPReqQFullDrop", 9)]));
    let d = analyze(&on, &opts(&[]));
    assert!(d.causes.iter().any(|c| c.code == "syn-queue-full"), "{d}");
    assert!(!d.causes.iter().any(|c| c.code == "syn-flood"), "{d}");
}

#[test]
fn persisting_half_open_connections_with_retransmits_are_lost_syn_acks() {
    let b = sample(0, &[("TCPSynRetrans", 100)]);
    let a = sample(1_000, &[("TCPSynRetrans", 130)]);
    let mut o = obs(b, a);
    let reqs: Vec<SynRecv> = (0..30)
        .map(|i| {
            let client = if i < 20 { "10.0.1.2" } else { "10.0.1.3" };
            syn("10.0.1.1:8080", &format!("{client}:{}", 40000 + i), 2)
        })
        .collect();
    o.syn_recv_before = reqs.clone();
    o.syn_recv = reqs;
    let d = analyze(&o, &opts(&[8080]));
    let c = &d.causes[0];
    assert_eq!(
        (c.code.as_str(), c.status.as_str()),
        ("synack-lost", "active"),
        "{d}"
    );
    assert_eq!(c.plan, None, "never a backlog for a lost answer");
    assert_eq!(
        c.evidence,
        vec![
            "listener 10.0.1.1:8080: 30 half-open connection(s) in SYN-RECV, 30 held across both samples, 30 with SYN-ACKs retransmitted (up to 2 time(s))".to_owned(),
            "top clients: 10.0.1.2 (20), 10.0.1.3 (10)".into(),
            "TCPSynRetrans +30 in 1.0 s (1800/min), 130 in total".into(),
        ]
    );
    assert!(c.notes.iter().any(|n| n.contains(
        "tcpdump -ni any 'host 10.0.1.1 and tcp port 8080 and tcp[tcpflags] & (tcp-syn|tcp-ack) != 0'"
    )));
    assert!(c
        .notes
        .iter()
        .any(|n| n.ends_with("run there: a probe of 20 connects to 10.0.1.1:8080")));
    assert!(!c.notes.iter().any(|n| n.contains("backlog")));
    // New requests each sample (a busy, healthy listener): nothing.
    let mut busy = o.clone();
    busy.syn_recv_before = vec![syn("10.0.1.1:8080", "10.0.1.9:1", 0)];
    busy.syn_recv = vec![syn("10.0.1.1:8080", "10.0.1.9:2", 0)];
    busy.after = Some(sample(1_000, &[("TCPSynRetrans", 100)]));
    let d = analyze(&busy, &opts(&[]));
    assert!(d.causes.is_empty(), "{d}");
    // Another port than the one asked for: not listed.
    let d = analyze(&o, &opts(&[9090]));
    assert!(!d.causes.iter().any(|c| c.code == "synack-lost"));
}

#[test]
fn rp_filter_drops_name_the_strict_interface_that_received() {
    let b = sample(0, &[("IPReversePathFilter", 0)]);
    let mut a = sample(1_000, &[("IPReversePathFilter", 12)]);
    a.interfaces[1].rx_packets = 40;
    a.interfaces[2].rx_packets = 2;
    let mut o = obs(b, a);
    for (k, v) in [
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.lo.rp_filter", "0"),
        ("net.ipv4.conf.veth0.rp_filter", "1"),
        ("net.ipv4.conf.veth1.rp_filter", "1"),
    ] {
        o.net_sysctls.insert(k.into(), v.into());
    }
    let d = analyze(&o, &opts(&[]));
    let c = &d.causes[0];
    assert_eq!(c.code, "rp-filter", "{d}");
    assert_eq!(
        c.plan.as_deref(),
        Some("plan profile `rp-filter-loose` with iface=veth0")
    );
    let ev = c.evidence.join("\n");
    assert!(ev.contains("IPReversePathFilter +12 in 1.0 s"), "{ev}");
    assert!(ev.contains("veth0: rp_filter 1 (effective strict, the larger of all and the interface), 40 packet(s) received in the interval"), "{ev}");
    assert!(c.notes.iter().any(|n| n.contains("veth1 is strict too")));
    // `all` strict wins over an interface's 0.
    o.net_sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
    o.net_sysctls
        .insert("net.ipv4.conf.veth0.rp_filter".into(), "0".into());
    let d = analyze(&o, &opts(&[]));
    assert_eq!(d.rp_filter.interfaces[1].effective, Some(1));
    assert!(d.causes[0].notes[0].contains("all.rp_filter is 1"));
    // The counter standing still: no cause, whatever the modes.
    let still = obs(
        sample(0, &[("IPReversePathFilter", 5)]),
        sample(1_000, &[("IPReversePathFilter", 5)]),
    );
    assert!(analyze(&still, &opts(&[])).causes.is_empty());
}

#[test]
fn rp_filter_loose_refuses_a_missing_interface_and_warns_on_strict_all() {
    let load = |iface: &str| {
        crate::profile::load(
            "rp-filter-loose",
            &[("iface".to_owned(), iface.to_owned())]
                .into_iter()
                .collect(),
        )
        .unwrap()
    };
    let mut st = SystemState {
        in_initial_netns: true,
        ..Default::default()
    };
    for (k, v) in [
        ("net.ipv4.conf.all.rp_filter", "1"),
        ("net.ipv4.conf.veth0.rp_filter", "1"),
    ] {
        st.sysctls.insert(k.into(), SysctlReading::rw(v));
    }
    let p = crate::plan::plan(&load("veth0"), &st);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].key(), "net.ipv4.conf.veth0.rp_filter");
    assert_eq!(p.changes[0].desired, "2");
    let warn = p
        .findings
        .iter()
        .find(|f| f.code == "rp-filter-all-strict")
        .expect("warns when all is 1");
    assert!(warn
        .message
        .contains("on `veth0` the larger value, 2, applies"));
    let p = crate::plan::plan(&load("nosuch0"), &st);
    assert!(p.changes.is_empty());
    assert!(p
        .findings
        .iter()
        .any(|f| f.code == "rp-filter-unknown-interface"
            && f.message == "interface `nosuch0` does not exist in this network namespace"));
    // `all` at 0: no warning.
    st.sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), SysctlReading::rw("0"));
    let p = crate::plan::plan(&load("veth0"), &st);
    assert!(p
        .findings
        .iter()
        .all(|f| !f.code.as_str().starts_with("rp-filter")));
    // A variable that smuggles a path is a profile error naming it, the
    // caller's input at fault, with a hint to give it another value.
    let err = crate::profile::load(
        "rp-filter-loose",
        &[("iface".to_owned(), "a/b".to_owned())]
            .into_iter()
            .collect(),
    )
    .unwrap_err();
    let e = err.to_string();
    assert!(
        e.contains("contains `/`") && e.contains("(the value of variable `iface`)"),
        "{e}"
    );
    assert!(err.is_usage(), "{e}");
    assert_eq!(
        err.hint(&crate::words::NEUTRAL).as_deref(),
        Some("check the variable `iface=...`")
    );
}

fn strict_lab() -> Observation {
    let mut a = sample(1_000, &[]);
    a.interfaces[1].rx_packets = 40;
    let mut o = obs(sample(0, &[]), a);
    for (k, v) in [
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.lo.rp_filter", "0"),
        ("net.ipv4.conf.veth0.rp_filter", "1"),
        ("net.ipv4.conf.veth1.rp_filter", "0"),
    ] {
        o.net_sysctls.insert(k.into(), v.into());
    }
    o
}

/// The kernel's own answers, through simulated routes: the clients given
/// and seen, the route back to each, and the input check on the strict
/// interface with the right local address.
#[test]
fn the_route_back_to_each_client_is_asked_of_the_kernel() {
    use crate::system::{RouteQuery, RouteReply, SimOffloads, SimRoutes};
    let mut o = strict_lab();
    // Dropped before, not during the interval: the established peers are
    // read (the counter is above 0), the cause stays a risk.
    for s in [&mut o.before, o.after.as_mut().unwrap()] {
        s.tcp_ext.insert("IPReversePathFilter".into(), 3);
    }
    o.syn_recv = vec![syn("10.0.1.1:8080", "10.0.1.7:40000", 0)];
    let mut b = Backends::simulated(&o.state);
    b.offloads = Box::new(SimOffloads {
        interfaces: vec!["lo".into(), "veth0".into(), "veth1".into()],
        ..Default::default()
    });
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let via = |oif: u32, gw: Option<&str>| {
        Ok(RouteReply {
            kind: 1,
            oif: Some(oif),
            gateway: gw.map(ip),
            prefsrc: Some(ip("10.0.2.1")),
        })
    };
    let input = |src: &str, dst: &str| RouteQuery::Input {
        src: ip(src),
        dst: ip(dst),
        iif: 2,
    };
    b.routes = Box::new(SimRoutes {
        answers: vec![
            (RouteQuery::To(ip("10.0.1.5")), via(3, Some("10.0.2.2"))),
            (RouteQuery::To(ip("10.0.1.7")), via(2, None)),
            (RouteQuery::To(ip("10.0.1.9")), via(2, None)),
            (input("10.0.1.5", "10.0.2.1"), Err(libc::EINVAL)),
            (input("10.0.1.7", "10.0.1.1"), via(1, None)),
            (input("10.0.1.9", "10.0.1.1"), via(1, None)),
        ],
        peers: vec![
            (ip("10.0.1.9"), ip("10.0.1.1"), 8080),
            (ip("10.0.1.8"), ip("10.0.1.1"), 22),
        ],
    });
    let opts = DiagnoseOptions {
        clients: vec![ip("10.0.1.5"), ip("2001:db8::5")],
        ..opts(&[8080])
    };
    o.rp_clients = netpath::observe_clients(&b, &o, &opts);
    let seen: Vec<(String, ClientSeen)> = o
        .rp_clients
        .iter()
        .map(|c| (c.addr.to_string(), c.seen))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("10.0.1.5".into(), ClientSeen::Option),
            ("2001:db8::5".into(), ClientSeen::Option),
            ("10.0.1.7".into(), ClientSeen::HalfOpen),
            ("10.0.1.9".into(), ClientSeen::Established),
        ],
        "port 22's peer is not a client of the watched port"
    );
    let d = analyze(&o, &opts);
    // (Nothing listens on 8080 in this fixture: that is a cause too.)
    let c = d
        .causes
        .iter()
        .find(|c| c.code == "rp-filter")
        .expect("rp-filter");
    assert_eq!(c.status, "risk", "the counter did not move: {d}");
    let ev = c.evidence.join("\n");
    assert!(ev.contains("client 10.0.1.5: route back via veth1 (next hop 10.0.2.2); a packet from it on veth0 (strict) is dropped by reverse-path filtering"), "{ev}");
    assert!(ev.contains("client 10.0.1.7: route back via veth0; a packet from it on veth0 (strict) passes the reverse-path check"), "{ev}");
    assert!(ev.contains("client 2001:db8::5: no route back (Network is unreachable (os error 101)); reverse-path filtering (net.ipv4.conf.*.rp_filter) applies to IPv4 only"), "{ev}");
    assert_eq!(
        c.plan.as_deref(),
        Some("plan profile `rp-filter-loose` with iface=veth0")
    );
    let j = serde_json::to_value(&d.rp_filter.clients[0]).unwrap();
    assert_eq!(j["checks"][0]["verdict"], "dropped");
    assert_eq!(j["checks"][0]["errno"], libc::EINVAL);
    assert_eq!(j["route_back"], "veth1");
}

#[test]
fn a_refused_check_on_the_route_back_interface_is_not_reverse_path_filtering() {
    let mut o = strict_lab();
    o.rp_clients = vec![RpClient {
        addr: "10.0.1.5".parse().unwrap(),
        seen: ClientSeen::Option,
        local: None,
        route_back: Some("veth0".into()),
        via: None,
        route_error: None,
        is_local: false,
        checks: vec![RpCheck {
            iface: "veth0".into(),
            errno: Some(libc::EINVAL),
            verdict: None,
        }],
    }];
    let d = analyze(&o, &opts(&[]));
    assert!(d.causes.is_empty(), "{d}");
    assert_eq!(
        d.rp_filter.clients[0].checks[0].verdict,
        Some(RpVerdict::Refused)
    );
    assert!(client_line(&d.rp_filter.clients[0]).contains("refused by the kernel"));
    // No clients, no strict interface asked about: nothing is looked up.
    let b = Backends::simulated(&o.state);
    let mut quiet = strict_lab();
    quiet
        .net_sysctls
        .insert("net.ipv4.conf.veth0.rp_filter".into(), "0".into());
    assert!(netpath::observe_clients(&b, &quiet, &opts(&[])).is_empty());
}
