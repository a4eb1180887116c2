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
use crate::words::{Action, PlanCommand, Words};

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
    /// The clients seen (and given with `--client`), the route back to
    /// each and, on each strict interface, the kernel's reverse-path check.
    #[serde(default)]
    pub clients: Vec<RpClient>,
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
    RpFilterReport {
        all,
        interfaces,
        clients: vec![],
    }
}

fn tcp<'a>(d: &'a Diagnosis, name: &str) -> Option<&'a CounterDelta> {
    d.tcp_ext.iter().find(|t| t.name == name)
}

/// `softnet-drops`: a CPU's input queue overflowed.
pub(super) fn softnet_drops(d: &Diagnosis, w: &dyn Words) -> Option<Cause> {
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
    let plan = super::causes::plan(w, PlanCommand::new("high-conn"));
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
pub(super) fn syn_flood(d: &Diagnosis, w: &dyn Words) -> Option<Cause> {
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
    c.plan = Some(super::causes::plan(w, PlanCommand::new(SYN_FLOOD_PROFILE)));
    if off {
        c.notes.push("SYN cookies let the kernel answer when the SYN queue is full instead of dropping: the plan sets net.ipv4.tcp_syncookies = 1 and raises net.ipv4.tcp_max_syn_backlog".into());
    }
    for p in &full_ports {
        c.notes.push(format!(
            "the SYN queue of a listener is bounded by its listen() backlog: for port {p} raise it too, {}",
            super::causes::plan(w, PlanCommand::new("backlog-overflow").ports(&[*p]))
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
pub(super) fn synack_lost(d: &Diagnosis, w: &dyn Words) -> Vec<Cause> {
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
            "then run there: {}",
            w.name(&Action::Probe {
                target: r.listener.to_string(),
                count: 20
            })
        ));
        out.push(c);
    }
    out
}

/// `rp-filter`: reverse-path filtering drops packets (the counter grows),
/// or would drop a client's (the kernel's own check refuses a packet from
/// it on a strict interface while the route back leaves elsewhere).
pub(super) fn rp_filter(d: &Diagnosis, w: &dyn Words) -> Option<Cause> {
    let t = tcp(d, "IPReversePathFilter").filter(|t| t.grew());
    let rp = &d.rp_filter;
    let dropping = dropping_ifaces(&rp.clients);
    let mut c = match (t, dropping.first()) {
        (Some(_), _) => cause(
            CauseCode::RpFilter,
            "reverse-path filtering drops incoming packets".into(),
            90,
            true,
        ),
        (None, Some(_)) => cause(
            CauseCode::RpFilter,
            "strict reverse-path filtering would drop packets from clients whose route back leaves through another interface".into(),
            50,
            false,
        ),
        (None, None) => return None,
    };
    if let Some(t) = t {
        c.evidence.push(moved(t, d.interval_ms));
    }
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
    c.evidence.extend(rp.clients.iter().map(client_line));
    // The strict interface the kernel's own check refuses clients on;
    // else the one that received the most (the dropped packets came in
    // there).
    let target = dropping
        .first()
        .and_then(|(name, _)| strict.iter().find(|i| &i.iface == name))
        .or_else(|| {
            strict
                .iter()
                .max_by_key(|i| (i.rx_delta.unwrap_or(0), std::cmp::Reverse(i.iface.clone())))
        });
    match target {
        Some(i) => {
            c.plan = Some(super::causes::plan(
                w,
                PlanCommand::new(RP_LOOSE_PROFILE).set("iface", &i.iface),
            ));
            if rp.all == Some(1) {
                c.notes.push("net.ipv4.conf.all.rp_filter is 1: loose mode on the interface still works (the kernel applies the larger value, 2)".into());
            }
            for o in strict.iter().filter(|o| o.iface != i.iface) {
                c.notes.push(format!(
                    "{} is strict too: {}",
                    o.iface,
                    super::causes::plan(w, PlanCommand::new(RP_LOOSE_PROFILE).set("iface", &o.iface))
                ));
            }
        }
        None => c.notes.push(
            "no interface reads as strict here: check the interfaces whose rp_filter could not be read".into(),
        ),
    }
    c.notes.push("strict mode drops a packet when the route back to its source leaves through another interface (asymmetric routing); loose mode only asks that some route back exists".into());
    if rp.clients.is_empty() {
        c.notes.push("a client dropped here leaves no socket and no conntrack entry: name one with --client ADDR to have the kernel check the route back to it".into());
    }
    Some(c)
}

/// Most clients whose route back is looked up (`--client` ones first).
pub const MAX_RP_CLIENTS: usize = 16;
/// Most strict interfaces each client is checked against (those that
/// received the most first).
pub const MAX_RP_IFACES: usize = 4;

/// Where a client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSeen {
    /// Given with `--client`.
    Option,
    /// A half-open (SYN-RECV) connection to a watched port.
    HalfOpen,
    /// An established connection to a watched port.
    Established,
    /// The first source of a conntrack group to a watched port.
    Conntrack,
}

/// What the kernel's reverse-path check does with a client's packet on
/// one strict interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpVerdict {
    /// Routed: the check passes.
    Passes,
    /// Refused, and the route back leaves elsewhere (or there is none):
    /// reverse-path filtering drops it.
    Dropped,
    /// Refused although the route back uses this interface: another
    /// reason (a martian source, say).
    Refused,
}

/// One input route lookup: a packet from the client arriving on `iface`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpCheck {
    /// The strict interface.
    pub iface: String,
    /// The errno the kernel refused the lookup with (`None`: routed).
    pub errno: Option<i32>,
    /// The judgement (set by the analysis).
    #[serde(default)]
    pub verdict: Option<RpVerdict>,
}

/// A client and the route back to it, as the kernel answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpClient {
    /// The client.
    pub addr: IpAddr,
    /// Where it was seen.
    pub seen: ClientSeen,
    /// The local address its packets go to (the input lookups' destination).
    pub local: Option<IpAddr>,
    /// The interface the route back to it leaves through.
    pub route_back: Option<String>,
    /// The route back's next hop.
    pub via: Option<IpAddr>,
    /// Why there is no route back (the kernel's error), or why it was not
    /// looked up.
    pub route_error: Option<String>,
    /// The address is local to this host.
    #[serde(default)]
    pub is_local: bool,
    /// A packet from it on each strict interface (IPv4 only: rp_filter
    /// does not apply to IPv6).
    pub checks: Vec<RpCheck>,
}

fn errno_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

/// The strict interfaces to check, busiest first (at most [`MAX_RP_IFACES`]).
fn strict_ifaces(rp: &RpFilterReport) -> Vec<&RpFilterIface> {
    let mut v: Vec<&RpFilterIface> = rp
        .interfaces
        .iter()
        .filter(|i| i.iface != "lo" && i.effective == Some(1))
        .collect();
    v.sort_by(|a, b| {
        b.rx_delta
            .unwrap_or(0)
            .cmp(&a.rx_delta.unwrap_or(0))
            .then(a.iface.cmp(&b.iface))
    });
    v.truncate(MAX_RP_IFACES);
    v
}

/// The clients seen (and given), at most [`MAX_RP_CLIENTS`], each once.
fn candidate_clients(
    b: &Backends,
    obs: &Observation,
    opts: &super::DiagnoseOptions,
    with_sockets: bool,
) -> Vec<(IpAddr, ClientSeen, Option<IpAddr>)> {
    type Client = (IpAddr, ClientSeen, Option<IpAddr>);
    fn push(out: &mut Vec<Client>, a: IpAddr, seen: ClientSeen, local: Option<IpAddr>) {
        if out.len() < MAX_RP_CLIENTS && !out.iter().any(|c| c.0 == a) {
            out.push((a, seen, local.filter(|l| !l.is_unspecified())));
        }
    }
    let mut out: Vec<Client> = Vec::new();
    for a in &opts.clients {
        push(&mut out, *a, ClientSeen::Option, None);
    }
    if !with_sockets {
        return out;
    }
    for s in obs
        .syn_recv
        .iter()
        .filter(|s| wanted(&opts.ports, s.local.port()))
    {
        push(
            &mut out,
            s.remote.ip(),
            ClientSeen::HalfOpen,
            Some(s.local.ip()),
        );
    }
    if let Some(g) = &obs.conntrack_groups {
        for g in g
            .groups
            .iter()
            .filter(|g| g.protocol == "tcp" && wanted(&opts.ports, g.port))
        {
            if let Some(e) = g.example {
                push(&mut out, e, ClientSeen::Conntrack, Some(g.destination));
            }
        }
    }
    // The established dump walks the kernel's whole socket hash: only
    // where reverse-path filtering has dropped something in this
    // namespace (the counter is above 0), so a host that is strict but
    // never dropped pays nothing for it.
    let last = obs.after.as_ref().unwrap_or(&obs.before);
    let dropped_ever = last
        .tcp_ext
        .get("IPReversePathFilter")
        .is_some_and(|v| *v > 0);
    let left = if dropped_ever {
        MAX_RP_CLIENTS.saturating_sub(out.len())
    } else {
        0
    };
    let ports: std::collections::BTreeSet<u16> = if opts.ports.is_empty() {
        obs.state.listeners.iter().map(|l| l.port).collect()
    } else {
        opts.ports.iter().copied().collect()
    };
    if left > 0 {
        // Best effort: a failed dump leaves the other sources.
        for (peer, local) in b.routes.established_peers(&ports, left).unwrap_or_default() {
            push(&mut out, peer, ClientSeen::Established, Some(local));
        }
    }
    out
}

/// Look up, for the clients seen and given, the route back and (IPv4)
/// whether a packet from each would pass the reverse-path check on each
/// strict interface. Nothing is looked up when no interface is strict and
/// no client was given, so a plain `diagnose` pays nothing for it.
pub(super) fn observe_clients(
    b: &Backends,
    obs: &Observation,
    opts: &super::DiagnoseOptions,
) -> Vec<RpClient> {
    use crate::system::RouteQuery;
    let rp = rp_filter_report(&obs.net_sysctls, &obs.before, obs.after.as_ref());
    let strict: Vec<(String, u32)> = strict_ifaces(&rp)
        .into_iter()
        .filter_map(|i| {
            let name = crate::names::IfName::new(&i.iface).ok()?;
            let id = b.offloads.device(&name).ok()??;
            Some((i.iface.clone(), id.ifindex))
        })
        .collect();
    if strict.is_empty() && opts.clients.is_empty() {
        return vec![];
    }
    let clients = candidate_clients(b, obs, opts, !strict.is_empty());
    let back: Vec<RouteQuery> = clients.iter().map(|c| RouteQuery::To(c.0)).collect();
    let answers = match b.routes.lookup(&back) {
        Ok(a) => a,
        Err(e) => {
            let why = crate::apply::error_chain(&e);
            return clients
                .into_iter()
                .map(|(addr, seen, local)| RpClient {
                    addr,
                    seen,
                    local,
                    route_back: None,
                    via: None,
                    route_error: Some(why.clone()),
                    is_local: false,
                    checks: vec![],
                })
                .collect();
        }
    };
    let mut names: BTreeMap<u32, Option<String>> = BTreeMap::new();
    let mut out: Vec<RpClient> = clients
        .into_iter()
        .zip(answers)
        .map(|((addr, seen, local), a)| {
            let mut c = RpClient {
                addr,
                seen,
                local,
                route_back: None,
                via: None,
                route_error: None,
                is_local: false,
                checks: vec![],
            };
            match a {
                Ok(r) => {
                    c.is_local = r.kind == 2; // RTN_LOCAL
                    c.via = r.gateway;
                    c.local = c.local.or(r.prefsrc);
                    c.route_back = r.oif.and_then(|i| {
                        names
                            .entry(i)
                            .or_insert_with(|| b.offloads.name_of(i).ok().flatten())
                            .clone()
                    });
                }
                Err(e) => c.route_error = Some(errno_text(e)),
            }
            c
        })
        .collect();
    // The input lookups need a local destination: the socket's local
    // address, else the source the kernel would answer from; lacking both,
    // any local IPv4 address of a strict interface's family will do, so
    // take a client's that has one.
    let fallback = out.iter().find_map(|c| c.local.filter(|l| l.is_ipv4()));
    let mut input = Vec::new();
    let mut slots = Vec::new();
    for (ci, c) in out.iter().enumerate() {
        let Some(local) = c.local.filter(|l| l.is_ipv4()).or(fallback) else {
            continue;
        };
        if !c.addr.is_ipv4() || c.is_local {
            continue;
        }
        for (iface, idx) in &strict {
            input.push(RouteQuery::Input {
                src: c.addr,
                dst: local,
                iif: *idx,
            });
            slots.push((ci, iface.clone()));
        }
    }
    if let Ok(answers) = b.routes.lookup(&input) {
        for ((ci, iface), a) in slots.into_iter().zip(answers) {
            out[ci].checks.push(RpCheck {
                iface,
                errno: a.err(),
                verdict: None,
            });
        }
    }
    out
}

/// The clients with each check judged (pure): a refused input lookup is
/// reverse-path filtering when the route back leaves through another
/// interface, or there is none.
pub(super) fn judge_clients(clients: &[RpClient]) -> Vec<RpClient> {
    clients
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let back = c.route_back.clone();
            for k in &mut c.checks {
                k.verdict = Some(match k.errno {
                    None => RpVerdict::Passes,
                    Some(_) if back.as_deref() == Some(k.iface.as_str()) => RpVerdict::Refused,
                    Some(_) => RpVerdict::Dropped,
                });
            }
            c
        })
        .collect()
}

/// One evidence line per client:
/// `client 10.0.1.5: route back via eth1; a packet from it on eth0 (strict) is dropped by reverse-path filtering`.
pub fn client_line(c: &RpClient) -> String {
    let mut parts = vec![match (&c.route_back, &c.route_error) {
        _ if c.is_local => "a local address".to_owned(),
        (Some(i), _) => format!(
            "route back via {i}{}",
            c.via.map_or(String::new(), |v| format!(" (next hop {v})"))
        ),
        (None, Some(e)) => format!("no route back ({e})"),
        (None, None) => "route back unknown".to_owned(),
    }];
    for k in &c.checks {
        parts.push(match (k.verdict, k.errno) {
            (Some(RpVerdict::Passes), _) | (None, None) => format!(
                "a packet from it on {} (strict) passes the reverse-path check",
                k.iface
            ),
            (Some(RpVerdict::Dropped), _) => format!(
                "a packet from it on {} (strict) is dropped by reverse-path filtering",
                k.iface
            ),
            (_, e) => format!(
                "a packet from it on {} (strict) is refused by the kernel ({}), not by reverse-path filtering: the route back uses {}",
                k.iface,
                e.map_or("?".into(), errno_text),
                k.iface
            ),
        });
    }
    if c.addr.is_ipv6() {
        parts
            .push("reverse-path filtering (net.ipv4.conf.*.rp_filter) applies to IPv4 only".into());
    }
    format!("client {}: {}", c.addr, parts.join("; "))
}

/// Strict interfaces that drop packets from at least one client, with how
/// many clients each, most first.
fn dropping_ifaces(clients: &[RpClient]) -> Vec<(String, usize)> {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for k in clients.iter().flat_map(|c| &c.checks) {
        if k.verdict == Some(RpVerdict::Dropped) {
            *n.entry(k.iface.clone()).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = n.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// What `checked` says about the route lookups.
pub(super) fn clients_checked(rp: &RpFilterReport) -> Option<String> {
    if rp.clients.is_empty() {
        return None;
    }
    let checks: usize = rp.clients.iter().map(|c| c.checks.len()).sum();
    Some(format!(
        "the route back to {} client(s) and {checks} reverse-path check(s) on strict interfaces, asked of the kernel (RTM_GETROUTE)",
        rp.clients.len()
    ))
}
