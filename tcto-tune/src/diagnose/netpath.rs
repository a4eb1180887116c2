//! The causes on the packet's path around TCP: per-CPU input-queue drops
//! (softnet), the SYN queue under a flood, SYN-ACKs lost on the way back,
//! and reverse-path filtering.
//!
//! Each one leaves a different trace, and none of them shows in the
//! listener's accept queue or in conntrack, which is why `diagnose` said
//! "no likely cause" for them: softnet drops count per CPU in
//! /proc/net/softnet_stat before any protocol sees the packet; a SYN flood
//! fills the request queue (TCPReqQFullDrop without cookies); a lost
//! SYN-ACK leaves request sockets in SYN-RECV that persist while the
//! kernel retransmits (TCPSynRetrans) and no drop counter moves; a strict
//! rp_filter drops the SYN at routing (IPReversePathFilter). Reports are
//! built here from the observation (pure), and so are the causes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::causes::{cause, moved, CauseCode};
use super::{wanted, Cause, CounterDelta, Diagnosis, Observation};
use crate::names::SysctlName;
use crate::system::{Backends, CounterSample};

/// Sysctls the path causes read besides each interface's `rp_filter`.
pub const PATH_SYSCTLS: &[&str] = &["net.ipv4.tcp_syncookies", "net.ipv4.conf.all.rp_filter"];

/// The fix profile of a SYN flood (syncookies on, a larger SYN queue).
pub const SYN_FLOOD_PROFILE: &str = "syn-flood";
/// The fix profile of strict reverse-path filtering on one interface.
pub const RP_LOOSE_PROFILE: &str = "rp-filter-loose";

/// Read [`PATH_SYSCTLS`] and `net.ipv4.conf.IFACE.rp_filter` of each
/// interface in `s` (best effort: an unreadable key is left out).
pub(super) fn read_sysctls(b: &Backends, s: &CounterSample) -> BTreeMap<String, String> {
    let keys = PATH_SYSCTLS.iter().map(|k| (*k).to_owned()).chain(
        s.interfaces
            .iter()
            .map(|i| format!("net.ipv4.conf.{}.rp_filter", i.iface)),
    );
    keys.filter_map(|k| {
        let name = SysctlName::new(&k).ok()?;
        let v = b.sysctls.read(&name).ok()??;
        Some((k, v.trim().to_owned()))
    })
    .collect()
}

/// One CPU's input-queue counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftnetReport {
    /// CPU id.
    pub cpu: u32,
    /// Packets dropped: the CPU's input queue (`netdev_max_backlog`) was full.
    pub dropped: CounterDelta,
    /// The receive softirq ran out of budget with packets left.
    pub time_squeeze: CounterDelta,
}

pub(super) fn softnet_report(
    before: &CounterSample,
    after: Option<&CounterSample>,
    ms: u64,
) -> Vec<SoftnetReport> {
    before
        .softnet
        .iter()
        .map(|b| {
            let a = after.and_then(|a| a.softnet.iter().find(|c| c.cpu == b.cpu));
            SoftnetReport {
                cpu: b.cpu,
                dropped: CounterDelta::new("dropped", b.dropped, a.map(|a| a.dropped), ms),
                time_squeeze: CounterDelta::new(
                    "time_squeeze",
                    b.time_squeeze,
                    a.map(|a| a.time_squeeze),
                    ms,
                ),
            }
        })
        .collect()
}

/// A client address and how many half-open connections it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCount {
    /// Client address.
    pub addr: IpAddr,
    /// Half-open connections from it.
    pub count: usize,
}

/// Half-open connections of one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynRecvReport {
    /// The listener.
    pub listener: SocketAddr,
    /// Request sockets in SYN-RECV now.
    pub half_open: usize,
    /// Of those, how many were there at the first sample too (`None`: one
    /// sample only).
    pub persisting: Option<usize>,
    /// Of those, how many had their SYN-ACK retransmitted.
    pub retransmitted: usize,
    /// Most retransmits of one request.
    pub max_retrans: u8,
    /// The clients holding the most (at most 5).
    pub top_clients: Vec<ClientCount>,
}

/// Clients listed per listener.
const TOP_CLIENTS: usize = 5;

pub(super) fn syn_recv_report(
    obs: &Observation,
    ports: &[u16],
    two_samples: bool,
) -> Vec<SynRecvReport> {
    let mut by_listener: BTreeMap<SocketAddr, Vec<&crate::system::SynRecv>> = BTreeMap::new();
    for s in obs
        .syn_recv
        .iter()
        .filter(|s| wanted(ports, s.local.port()))
    {
        by_listener.entry(s.local).or_default().push(s);
    }
    by_listener
        .into_iter()
        .map(|(listener, reqs)| {
            let mut clients: BTreeMap<IpAddr, usize> = BTreeMap::new();
            for r in &reqs {
                *clients.entry(r.remote.ip()).or_default() += 1;
            }
            let mut top: Vec<ClientCount> = clients
                .into_iter()
                .map(|(addr, count)| ClientCount { addr, count })
                .collect();
            top.sort_by(|a, b| b.count.cmp(&a.count).then(a.addr.cmp(&b.addr)));
            top.truncate(TOP_CLIENTS);
            SynRecvReport {
                listener,
                half_open: reqs.len(),
                persisting: two_samples.then(|| {
                    reqs.iter()
                        .filter(|r| {
                            obs.syn_recv_before
                                .iter()
                                .any(|b| b.local == r.local && b.remote == r.remote)
                        })
                        .count()
                }),
                retransmitted: reqs.iter().filter(|r| r.retrans > 0).count(),
                max_retrans: reqs.iter().map(|r| r.retrans).max().unwrap_or(0),
                top_clients: top,
            }
        })
        .collect()
}

/// One interface's reverse-path filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpFilterIface {
    /// Interface.
    pub iface: String,
    /// `net.ipv4.conf.IFACE.rp_filter`.
    pub own: Option<u8>,
    /// What the kernel applies: the larger of `all` and the interface's own
    /// (0 off, 1 strict, 2 loose).
    pub effective: Option<u8>,
    /// Packets received during the interval.
    pub rx_delta: Option<u64>,
}

/// Reverse-path filtering as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpFilterReport {
    /// `net.ipv4.conf.all.rp_filter`.
    pub all: Option<u8>,
    /// Each interface.
    pub interfaces: Vec<RpFilterIface>,
}

/// The word for an rp_filter mode.
pub fn rp_mode(v: u8) -> &'static str {
    match v {
        0 => "off",
        1 => "strict",
        2 => "loose",
        _ => "unknown",
    }
}

pub(super) fn rp_filter_report(
    sysctls: &BTreeMap<String, String>,
    before: &CounterSample,
    after: Option<&CounterSample>,
) -> RpFilterReport {
    let get = |k: &str| sysctls.get(k).and_then(|v| v.parse::<u8>().ok());
    let all = get("net.ipv4.conf.all.rp_filter");
    let interfaces = before
        .interfaces
        .iter()
        .map(|i| {
            let own = get(&format!("net.ipv4.conf.{}.rp_filter", i.iface));
            let rx_delta = after
                .and_then(|a| a.interfaces.iter().find(|x| x.iface == i.iface))
                .map(|a| a.rx_packets.saturating_sub(i.rx_packets));
            RpFilterIface {
                iface: i.iface.clone(),
                own,
                effective: match (own, all) {
                    (Some(o), Some(a)) => Some(o.max(a)),
                    (o, a) => o.or(a),
                },
                rx_delta,
            }
        })
        .collect();
    RpFilterReport { all, interfaces }
}

fn tcp<'a>(d: &'a Diagnosis, name: &str) -> Option<&'a CounterDelta> {
    d.tcp_ext.iter().find(|t| t.name == name)
}

/// `softnet-drops`: a CPU's input queue overflowed.
pub(super) fn softnet_drops(d: &Diagnosis) -> Option<Cause> {
    // softnet_stat is host-wide: drops since boot say nothing about this
    // namespace's clients, only drops during the interval make a cause.
    let grew: Vec<&SoftnetReport> = d.softnet.iter().filter(|c| c.dropped.grew()).collect();
    if grew.is_empty() {
        return None;
    }
    let mut c = cause(
        CauseCode::SoftnetDrops,
        "packets dropped at a CPU's input queue before TCP sees them".into(),
        60,
        true,
    );
    for s in grew {
        c.evidence.push(format!(
            "cpu {}: {}; {}",
            s.cpu,
            moved(&s.dropped, d.interval_ms),
            moved(&s.time_squeeze, d.interval_ms)
        ));
    }
    c.notes.push("the per-CPU input queue is net.core.netdev_max_backlog (global); time_squeeze growing too means the softirq lacks CPU time (net.core.netdev_budget), RPS/RSS can spread the load".into());
    let plan = "tcto-tune plan --profile high-conn".to_owned();
    if d.in_initial_netns {
        c.plan = Some(plan);
    } else {
        c.host_plan = Some(plan);
        c.notes.push("this is a child network namespace: net.core.netdev_max_backlog is global and absent here; raise it from the host".into());
    }
    Some(c)
}

/// `syn-flood`: the SYN queue is full and SYNs are dropped (cookies off) or
/// answered with cookies.
pub(super) fn syn_flood(d: &Diagnosis) -> Option<Cause> {
    let drop = tcp(d, "TCPReqQFullDrop").filter(|t| t.grew());
    let cookies = tcp(d, "TCPReqQFullDoCookies").filter(|t| t.grew());
    let off = d.syncookies == Some(0);
    let (score, title) = match (drop, cookies) {
        (Some(_), _) if off => (
            110,
            "the SYN queue is full and SYN cookies are off: new SYNs are dropped",
        ),
        (_, Some(_)) => (
            70,
            "the SYN queue is full: the kernel answers with SYN cookies (a flood, or a listener too small)",
        ),
        _ => return None,
    };
    let mut c = cause(CauseCode::SynFlood, title.into(), score, true);
    c.evidence.extend(
        [drop, cookies]
            .into_iter()
            .flatten()
            .map(|t| moved(t, d.interval_ms)),
    );
    c.evidence.push(match d.syncookies {
        Some(v) => format!("net.ipv4.tcp_syncookies = {v}"),
        None => "net.ipv4.tcp_syncookies unreadable".into(),
    });
    let mut full_ports = Vec::new();
    for r in &d.syn_recv {
        let backlog = d
            .listeners
            .iter()
            .find(|l| {
                l.port == r.listener.port()
                    && (l.addr == r.listener.ip() || l.addr.is_unspecified())
            })
            .map(|l| l.backlog);
        c.evidence.push(format!(
            "listener {}: {} half-open connection(s){}, top clients: {}",
            r.listener,
            r.half_open,
            backlog.map_or(String::new(), |b| format!(
                " (the SYN queue is bounded by the backlog, {b})"
            )),
            clients(r)
        ));
        full_ports.push(r.listener.port());
    }
    full_ports.sort_unstable();
    full_ports.dedup();
    c.plan = Some(format!("tcto-tune plan --profile {SYN_FLOOD_PROFILE}"));
    if off {
        c.notes.push("SYN cookies let the kernel answer when the SYN queue is full instead of dropping: the plan sets net.ipv4.tcp_syncookies = 1 and raises net.ipv4.tcp_max_syn_backlog".into());
    }
    for p in &full_ports {
        c.notes.push(format!(
            "the SYN queue of a listener is bounded by its listen() backlog: for port {p} raise it too, tcto-tune plan --profile backlog-overflow --port {p}"
        ));
    }
    c.notes
        .push("if the sources are not your clients, it is a flood: filter it upstream".into());
    Some(c)
}

fn clients(r: &SynRecvReport) -> String {
    r.top_clients
        .iter()
        .map(|c| format!("{} ({})", c.addr, c.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `synack-lost`: half-open connections persist while SYN-ACKs are
/// retransmitted: this host answers, the answer does not arrive.
pub(super) fn synack_lost(d: &Diagnosis) -> Vec<Cause> {
    let retrans = tcp(d, "TCPSynRetrans");
    let growing = retrans.is_some_and(CounterDelta::grew);
    let mut out = Vec::new();
    for r in &d.syn_recv {
        // Two samples: the same requests must be in both; one sample: they
        // must at least have been retransmitted.
        let stuck = match r.persisting {
            Some(p) => p > 0 && (growing || r.retransmitted > 0),
            None => r.retransmitted > 0,
        };
        if !stuck {
            continue;
        }
        let active = r.persisting.is_some() && growing;
        let mut c = cause(
            CauseCode::SynackLost,
            format!("SYN-ACKs from {} are lost on the way back", r.listener),
            if active { 70 } else { 20 },
            active,
        );
        c.evidence.push(format!(
            "listener {}: {} half-open connection(s) in SYN-RECV{}, {} with SYN-ACKs retransmitted (up to {} time(s))",
            r.listener,
            r.half_open,
            r.persisting
                .map_or(String::new(), |p| format!(", {p} held across both samples")),
            r.retransmitted,
            r.max_retrans
        ));
        c.evidence.push(format!("top clients: {}", clients(r)));
        if let Some(t) = retrans {
            c.evidence.push(moved(t, d.interval_ms));
        }
        let client = r
            .top_clients
            .first()
            .map_or("CLIENT".into(), |c| c.addr.to_string());
        c.notes.push("this host received the SYNs and answers them; the SYN-ACKs or the clients' ACKs are lost in between: a stateful firewall or security group on the return path, or asymmetric routing".into());
        c.notes.push(format!(
            "on a client ({client}), capture while connecting: tcpdump -ni any 'host {} and tcp port {} and tcp[tcpflags] & (tcp-syn|tcp-ack) != 0'; a SYN with no SYN-ACK back confirms it",
            r.listener.ip(),
            r.listener.port()
        ));
        c.notes.push(format!(
            "then run there: tcto-tune probe {} --count 20",
            r.listener
        ));
        out.push(c);
    }
    out
}

/// `rp-filter`: reverse-path filtering drops packets.
pub(super) fn rp_filter(d: &Diagnosis) -> Option<Cause> {
    let t = tcp(d, "IPReversePathFilter")?;
    if !t.grew() {
        return None;
    }
    let mut c = cause(
        CauseCode::RpFilter,
        "reverse-path filtering drops incoming packets".into(),
        90,
        true,
    );
    c.evidence.push(moved(t, d.interval_ms));
    let rp = &d.rp_filter;
    c.evidence.push(format!(
        "net.ipv4.conf.all.rp_filter = {}",
        rp.all
            .map_or("?".into(), |a| format!("{a} ({})", rp_mode(a)))
    ));
    let strict: Vec<&RpFilterIface> = rp
        .interfaces
        .iter()
        .filter(|i| i.iface != "lo" && i.effective == Some(1))
        .collect();
    for i in &rp.interfaces {
        if i.iface == "lo" {
            continue;
        }
        c.evidence.push(format!(
            "{}: rp_filter {} (effective {}, the larger of all and the interface){}",
            i.iface,
            i.own.map_or("?".into(), |v| v.to_string()),
            i.effective.map_or("?".into(), |v| rp_mode(v).to_owned()),
            i.rx_delta.map_or(String::new(), |r| format!(
                ", {r} packet(s) received in the interval"
            ))
        ));
    }
    // The strict interface that received the most is the one the dropped
    // packets came in on.
    let target = strict
        .iter()
        .max_by_key(|i| (i.rx_delta.unwrap_or(0), std::cmp::Reverse(i.iface.clone())));
    match target {
        Some(i) => {
            c.plan = Some(format!(
                "tcto-tune plan --profile {RP_LOOSE_PROFILE} --set iface={}",
                i.iface
            ));
            if rp.all == Some(1) {
                c.notes.push("net.ipv4.conf.all.rp_filter is 1: loose mode on the interface still works (the kernel applies the larger value, 2)".into());
            }
            for o in strict.iter().filter(|o| o.iface != i.iface) {
                c.notes.push(format!(
                    "{} is strict too: tcto-tune plan --profile {RP_LOOSE_PROFILE} --set iface={}",
                    o.iface, o.iface
                ));
            }
        }
        None => c.notes.push(
            "no interface reads as strict here: check the interfaces whose rp_filter could not be read".into(),
        ),
    }
    c.notes.push("strict mode drops a packet when the route back to its source leaves through another interface (asymmetric routing); loose mode only asks that some route back exists".into());
    Some(c)
}
