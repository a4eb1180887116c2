//! Ranking: evidence in, likely root causes out, each with the plan
//! command that addresses it.
//!
//! Scores are deliberately simple and explainable: a counter growing *now*
//! outweighs a total since boot, a full queue or table right now outweighs
//! a risk. Each cause lists its evidence in the words an operator would
//! use in an incident channel.

use serde::{Deserialize, Serialize};

use super::{CounterDelta, Diagnosis, LimitedBy, CONNTRACK_DROP_COLUMNS};
use crate::words::{Action, PlanCommand, Words};

/// A likely root cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// 1 is the most likely.
    pub rank: usize,
    /// Stable kebab-case code.
    pub code: CauseCode,
    /// One line.
    pub title: String,
    /// `active` (drops happening now) or `risk` (no drops seen during the
    /// interval, but the evidence points there).
    pub status: String,
    /// Ranking score (higher first).
    pub score: u32,
    /// The evidence, one fact a line.
    pub evidence: Vec<String>,
    /// The command that plans the fix, when a profile addresses it.
    pub plan: Option<String>,
    /// A fix that only the host (the initial network namespace) can apply,
    /// when diagnosing from a child namespace (a container): global keys
    /// such as `nf_conntrack_max` are read-only here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_plan: Option<String>,
    /// What else to do (application settings, restarts, alternatives).
    pub notes: Vec<String>,
}

crate::finding::code_enum! {
    /// Every cause code, in the order the docs and the Prometheus series
    /// list them. The JSON and text name is the kebab-case string
    /// ([`CauseCode::as_str`]); docs/diagnose.md's "Causes" table lists
    /// each, and a test holds the two equal.
    pub enum CauseCode {
        ConntrackTableFull = "conntrack-table-full",
            "the conntrack table is (nearly) full or dropping: new flows cannot be tracked and their SYNs are dropped";
        AcceptQueueFull = "accept-queue-full",
            "a listener's accept queue is at its backlog: the kernel drops new handshakes (ListenOverflows)";
        ListenOverflows = "listen-overflows",
            "ListenOverflows/ListenDrops grow but no listener shown is full right now";
        SynQueueFull = "syn-queue-full",
            "the SYN queue overflows (TCPReqQFullDrop) or SYN cookies are sent";
        NoListener = "no-listener",
            "nothing listens on a port you named: clients get refused, or time out behind a firewall";
        NicDrops = "nic-drops",
            "an interface drops received packets before TCP sees them";
        NicErrors = "nic-errors",
            "an interface reports receive errors (frame/CRC): suspect the NIC, its driver or an offload";
        FirewallDrop = "firewall-drop",
            "a netfilter rule or a base chain's policy drops, rejects or rate-limits new connections to the port (named by family, table, chain and handle, with its counter)";
        SynFlood = "syn-flood",
            "the SYN queue is full: TCPReqQFullDrop grows with tcp_syncookies = 0, or TCPReqQFullDoCookies grows";
        SynackLost = "synack-lost",
            "half-open connections (SYN-RECV) persist while SYN-ACKs are retransmitted (TCPSynRetrans): the answer is lost on the way back";
        RpFilter = "rp-filter",
            "reverse-path filtering drops packets (IPReversePathFilter grows) on an interface in strict mode";
        SoftnetDrops = "softnet-drops",
            "a CPU's input queue (netdev_max_backlog) overflows: /proc/net/softnet_stat drops grow";
    }
}

/// Every cause code, for the docs and the fixed set of Prometheus series.
pub const CAUSE_CODES: &[CauseCode] = CauseCode::ALL;

pub(super) fn moved(c: &CounterDelta, interval_ms: u64) -> String {
    match (c.delta, c.per_min) {
        (Some(d), Some(r)) => format!(
            "{} +{d} in {:.1} s ({r}/min), {} in total",
            c.name,
            interval_ms as f64 / 1000.0,
            c.total
        ),
        _ => format!("{} {} in total (not growing now)", c.name, c.total),
    }
}

/// The next step that plans `c`, in the caller's words.
pub(super) fn plan(w: &dyn Words, c: PlanCommand) -> String {
    w.instruct(&Action::Plan(c))
}

/// Rank the likely causes in a diagnosis (its `causes` field is ignored),
/// their next steps in the caller's words.
pub fn rank_causes(d: &Diagnosis, somaxconn: Option<i64>, w: &dyn Words) -> Vec<Cause> {
    let mut out = Vec::new();
    out.extend(conntrack_full(d, w));
    out.extend(accept_queue(d, somaxconn, w));
    // A full SYN queue without cookies (or with them answering) is the
    // syn-flood cause; syn-queue-full covers the rest.
    match super::netpath::syn_flood(d, w) {
        Some(c) => out.push(c),
        None => out.extend(syn_queue(d, w)),
    }
    out.extend(super::netpath::synack_lost(d, w));
    out.extend(super::netpath::rp_filter(d, w));
    out.extend(super::netpath::softnet_drops(d, w));
    out.extend(super::firewall::firewall_drop(d));
    out.extend(no_listener(d));
    out.extend(nic(d, w));
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.code.cmp(&b.code)));
    for (i, c) in out.iter_mut().enumerate() {
        c.rank = i + 1;
    }
    out
}

pub(super) fn cause(code: CauseCode, title: String, score: u32, active: bool) -> Cause {
    Cause {
        rank: 0,
        code,
        title,
        status: if active { "active" } else { "risk" }.into(),
        score,
        evidence: vec![],
        plan: None,
        host_plan: None,
        notes: vec![],
    }
}

fn conntrack_full(d: &Diagnosis, w: &dyn Words) -> Option<Cause> {
    let ct = &d.conntrack;
    if !ct.loaded {
        return None;
    }
    let mut score = 0;
    let mut active = false;
    let mut evidence = Vec::new();
    if let (Some(count), Some(max), Some(pct)) = (ct.count, ct.max, ct.use_pct) {
        if pct >= 80.0 {
            score += if pct >= 95.0 { 120 } else { 40 };
            active |= pct >= 95.0;
        }
        evidence.push(format!("count {count} of {max} ({pct}% used)"));
    }
    let drops: Vec<&CounterDelta> = ct
        .stats
        .iter()
        .filter(|s| CONNTRACK_DROP_COLUMNS.contains(&s.name.as_str()))
        .collect();
    for s in &drops {
        if s.grew() {
            score += 100;
            active = true;
            evidence.push(moved(s, d.interval_ms));
        } else if s.total > 0 {
            score += 5;
            evidence.push(moved(s, d.interval_ms));
        }
    }
    let k = &d.kernel_log;
    if k.recent_lines > 0 && k.counters_agree {
        score += 30;
        evidence.push(format!(
            "kernel log: {} \"nf_conntrack: table full, dropping packet\" line(s) in the last {} s, the last {} s ago{}",
            k.recent_lines,
            k.recent_bound_s,
            k.last_age_s.map_or("?".into(), |a| a.to_string()),
            k.last
                .last()
                .map(|l| format!(", last: {l}"))
                .unwrap_or_default()
        ));
    }
    if score == 0 {
        return None;
    }
    let unused = k.table_full_lines - if k.counters_agree { k.recent_lines } else { 0 };
    if unused > 0 {
        evidence.push(format!(
            "kernel log: {unused} older or unconfirmed \"table full\" line(s), history only (not counted)"
        ));
    }
    let mut c = cause(
        CauseCode::ConntrackTableFull,
        "conntrack table full or dropping new flows".into(),
        score,
        active,
    );
    c.evidence = evidence;
    let notrack = notrack_command(d, w);
    if d.in_initial_netns {
        c.plan = Some(plan(w, PlanCommand::new(CONNTRACK_PROFILE)));
        c.notes.push(format!(
            "if the tracked flows are trusted subnet-to-subnet traffic, exempt them instead (the lasting fix): {notrack}"
        ));
    } else {
        // Issue 16 item 5: the table's limit is global. From a container
        // the sizing plan skips it, and the drops go on: the fix that works
        // here is NOTRACK, the sizing is the host's to do.
        c.plan = Some(notrack);
        c.host_plan = Some(plan(w, PlanCommand::new(CONNTRACK_PROFILE)));
        c.notes.push(
            "this is a child network namespace (a container): net.netfilter.nf_conntrack_max is global and can only be raised from the host; run the host fix there, in its initial network namespace. Here, exempt trusted flows from tracking (the fix above)".into(),
        );
    }
    Some(c)
}

/// The immediate fix of a full table (sizing and faster ageing).
const CONNTRACK_PROFILE: &str = "conntrack-exhaustion";

/// The lasting fix: NOTRACK for the flows that fill the table (with the
/// subnets filled in when the table was grouped).
fn notrack_command(d: &Diagnosis, w: &dyn Words) -> String {
    if let Some(c) = &d.conntrack.notrack_command {
        return c.clone();
    }
    let port = d.ports.first().map_or("PORT".into(), |p| p.to_string());
    plan(
        w,
        PlanCommand::new("trusted-notrack")
            .set("frontend", "CIDR")
            .set("backend", "CIDR")
            .set("port", port),
    )
}

fn accept_queue(d: &Diagnosis, somaxconn: Option<i64>, w: &dyn Words) -> Vec<Cause> {
    let overflow: Vec<&CounterDelta> = d
        .tcp_ext
        .iter()
        .filter(|t| t.name == "ListenOverflows" || t.name == "ListenDrops")
        .collect();
    let growing = overflow.iter().any(|t| t.grew());
    let mut ports: Vec<u16> = d
        .listeners
        .iter()
        .filter(|l| l.is_full())
        .map(|l| l.port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let mut out = Vec::new();
    for port in &ports {
        let mut c = cause(
            CauseCode::AcceptQueueFull,
            format!("accept queue full on port {port}"),
            100 + if growing { 100 } else { 0 },
            true,
        );
        for l in d
            .listeners
            .iter()
            .filter(|l| l.port == *port && l.is_full())
        {
            let who = l
                .process
                .as_ref()
                .map(|p| format!(" ({} pid {})", p.name, p.pid))
                .unwrap_or_default();
            let limit = match (l.limited_by, somaxconn) {
                (LimitedBy::Somaxconn, Some(s)) => {
                    format!("backlog clamped by net.core.somaxconn = {s}")
                }
                (LimitedBy::App, Some(s)) => {
                    format!("backlog set by the application (somaxconn is {s})")
                }
                _ => "backlog limit unknown".into(),
            };
            c.evidence.push(format!(
                "listener {}{who}: accept queue {} of backlog {} ({}%), {limit}",
                sock(l.addr, l.port),
                l.peak_queue,
                l.backlog,
                l.full_pct
            ));
            match l.limited_by {
                LimitedBy::Somaxconn => c.notes.push(format!(
                    "the kernel cap is the limit: the plan raises somaxconn; restart the service on port {port} so its listen() picks it up"
                )),
                _ => {
                    c.notes.push(format!(
                        "the application asked for backlog {}: raise it in the application (nginx `listen ... backlog=N`, gunicorn `--backlog N`, Java `ServerSocket(port, N)`) and {} to plan",
                        l.backlog,
                        w.instruct(&Action::AppBacklog { port: *port, backlog: None })
                    ));
                    if let Some(s) = somaxconn.filter(|s| *s < 4096) {
                        c.notes.push(format!(
                            "net.core.somaxconn is only {s}: a larger application backlog is clamped to it until it is raised (the plan raises it)"
                        ));
                    }
                }
            }
        }
        c.evidence
            .extend(overflow.iter().map(|t| moved(t, d.interval_ms)));
        c.notes.push(
            "a queue that stays full means the application is not calling accept() fast enough: a bigger backlog buys time, the application must keep up".into(),
        );
        c.notes.dedup();
        c.plan = Some(plan(
            w,
            PlanCommand::new("backlog-overflow").ports(&[*port]),
        ));
        out.push(c);
    }
    if ports.is_empty() && (growing || overflow.iter().any(|t| t.total > 0)) {
        let mut c = cause(
            CauseCode::ListenOverflows,
            "listen queues overflowed, but no listener shown is full now".into(),
            if growing { 90 } else { 5 },
            growing,
        );
        c.evidence = overflow.iter().map(|t| moved(t, d.interval_ms)).collect();
        c.notes.push(format!(
            "bursts fill accept queues between samples; run {} during the burst, or {} to watch the queues",
            w.name(&Action::Diagnose {
                interval: Some("5s".into())
            }),
            w.name(&Action::Verify {
                duration: "60s".into()
            })
        ));
        c.plan = Some(plan(
            w,
            PlanCommand::new("backlog-overflow").ports(&d.ports),
        ));
        out.push(c);
    }
    out
}

fn sock(addr: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(addr, port).to_string()
}

fn syn_queue(d: &Diagnosis, w: &dyn Words) -> Option<Cause> {
    let get = |n: &str| d.tcp_ext.iter().find(|t| t.name == n);
    let drop = get("TCPReqQFullDrop");
    let cookies = get("SyncookiesSent");
    let mut score = 0;
    let mut evidence = Vec::new();
    if let Some(t) = drop.filter(|t| t.grew()) {
        score += 80;
        evidence.push(moved(t, d.interval_ms));
    }
    if let Some(t) = cookies.filter(|t| t.grew()) {
        score += 40;
        evidence.push(moved(t, d.interval_ms));
    }
    if score == 0 {
        return None;
    }
    let mut c = cause(
        CauseCode::SynQueueFull,
        "the SYN queue overflows (half-open connections)".into(),
        score,
        true,
    );
    c.evidence = evidence;
    c.notes.push("net.ipv4.tcp_max_syn_backlog bounds the SYN queue; a SYN flood shows the same counters (check the sources with `ss -tn state syn-recv`)".into());
    c.plan = Some(plan(
        w,
        PlanCommand::new("backlog-overflow").ports(&d.ports),
    ));
    Some(c)
}

fn no_listener(d: &Diagnosis) -> Vec<Cause> {
    d.missing_ports
        .iter()
        .map(|p| {
            let mut c = cause(
                CauseCode::NoListener,
                format!("nothing listens on port {p}"),
                60,
                true,
            );
            c.evidence
                .push(format!("no listening TCP socket on port {p} in this network namespace"));
            c.notes.push("start the service, or check its bind address; connects get RST (refused) unless a firewall drops them (timeouts)".into());
            c
        })
        .collect()
}

fn nic(d: &Diagnosis, w: &dyn Words) -> Vec<Cause> {
    let mut out = Vec::new();
    for i in &d.interfaces {
        let grew = |names: &[&str]| -> Vec<&CounterDelta> {
            i.counters
                .iter()
                .filter(|c| names.contains(&c.name.as_str()) && c.grew())
                .collect()
        };
        let drops = grew(&["rx_dropped", "rx_fifo"]);
        if !drops.is_empty() {
            let mut c = cause(
                CauseCode::NicDrops,
                format!("{} drops received packets", i.iface),
                30,
                true,
            );
            c.evidence = drops.iter().map(|t| moved(t, d.interval_ms)).collect();
            c.notes.push("rx_dropped also counts frames of protocols nobody handles; it matters when it moves with TCP retransmits and timeouts. high-conn raises net.core.netdev_max_backlog (among others)".into());
            c.plan = Some(plan(w, PlanCommand::new("high-conn")));
            out.push(c);
        }
        let errors = grew(&["rx_errors", "rx_frame"]);
        if !errors.is_empty() {
            let mut c = cause(
                CauseCode::NicErrors,
                format!("{} reports receive errors", i.iface),
                20,
                true,
            );
            c.evidence = errors.iter().map(|t| moved(t, d.interval_ms)).collect();
            let offloads = d.offloads.iter().find(|o| o.iface == i.iface);
            if let Some(o) = offloads {
                c.evidence
                    .push(format!("offloads: {}", super::offload_summary(o)));
            }
            let already_off = offloads.is_some_and(|o| {
                o.error.is_none()
                    && ["tso", "gro"]
                        .iter()
                        .all(|g| o.features.get(*g) == Some(&false))
            });
            if already_off {
                c.notes.push(
                    "TSO and GRO are already off: suspect the NIC, its cable or its driver".into(),
                );
            } else {
                c.notes.push(
                    "rule out an offload bug by turning TSO/GRO off for a while, then roll back"
                        .into(),
                );
                c.plan = Some(plan(
                    w,
                    PlanCommand::new("offload-off").set("iface", &i.iface),
                ));
            }
            out.push(c);
        }
    }
    out
}
