//! `diagnose`: the runbook's "first ten minutes" as a function.
//!
//! During a connect-timeout incident the evidence is scattered: conntrack
//! stats in hex per CPU, TcpExt counters since boot, accept queues in
//! `ss`, a line in the kernel log. This module gathers it in one pass
//! ([`observe`], the only part that reads the system, through the backend
//! traits), then [`analyze`] (pure) turns two samples a short interval
//! apart into rates, ranks the likely root causes with their evidence and
//! names the `tcto-tune plan` command that addresses each. Sampling twice
//! matters: counters since boot say what happened once, deltas say what is
//! happening now.

mod causes;
mod ctgroups;
mod firewall;
mod netpath;
mod prometheus;
mod text;
mod trace;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::plan;
use crate::procfs::NetDevStats;
use crate::profile::Profile;
use crate::state::{ListenSocket, SystemState};
use crate::system::{
    read_state, Backends, CounterSample, KernelLog, Process, SynRecv, SystemError,
};

pub use causes::{rank_causes, Cause, CAUSE_CODES};
pub use ctgroups::{
    parse_ct_entry, source_subnet, ConntrackGroups, CtAggregator, CtEntry, CtGroup, IDLE_S,
};
pub use firewall::{find_drops, FirewallDrop, FirewallReport, FwChain, FwLimit, FwRule};
pub use netpath::{RpFilterIface, RpFilterReport, SoftnetReport, SynRecvReport};
pub use text::TEXT_LISTENER_ROWS;
pub use trace::{
    aggregate as aggregate_trace, kfree_skb_filter, parse_reason_names, parse_trace_line,
    TraceDrop, TraceEvent, TraceReport,
};

/// Version of the JSON diagnosis.
pub const DIAGNOSE_SCHEMA: u32 = 1;

/// The TcpExt counters diagnose and verify watch: each one grows when the
/// kernel drops or shortcuts a connection attempt at the listener.
pub const WATCHED_TCP_EXT: &[&str] = &[
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "SyncookiesSent",
    "SyncookiesFailed",
    "TCPBacklogDrop",
];

/// TcpExt counters only `diagnose` reads (verify does not judge them):
/// SYN-ACK retransmits (the answer is lost on the way back) and
/// reverse-path filter drops.
pub const DIAGNOSE_TCP_EXT: &[&str] = &["TCPSynRetrans", "IPReversePathFilter"];

/// Conntrack stat columns that count connections lost to a full table.
pub const CONNTRACK_DROP_COLUMNS: &[&str] = &["insert_failed", "drop", "early_drop"];

/// The built-in profile whose values `diagnose` recommends for sysctls.
pub const ADVICE_PROFILE: &str = "high-conn";

/// Why diagnose could not gather its evidence.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    /// A backend read failed.
    #[error("cannot read {what}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// Cause.
        #[source]
        source: SystemError,
    },
}

/// How to diagnose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnoseOptions {
    /// Time between the two samples; zero takes one sample (no rates).
    pub interval: Duration,
    /// Ports to focus on; empty means every listener.
    pub ports: Vec<u16>,
    /// Look up the owning process of only the N fullest listeners (`None`:
    /// all). Finding owners means reading every socket link under
    /// /proc/PID/fd, the slowest part of a diagnosis on a busy host, so a
    /// caller that shows only the top rows can skip the rest.
    pub owners_limit: Option<usize>,
    /// Dump and group the conntrack table even below
    /// [`CONNTRACK_TOP_PCT`] (`--conntrack-top`).
    pub conntrack_top: bool,
}

/// The table is grouped by who fills it from this use, percent.
pub const CONNTRACK_TOP_PCT: f64 = 50.0;

/// A group holding this share of the table gets the NOTRACK command.
pub const NOTRACK_SHARE_PCT: f64 = 30.0;

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            interval: Duration::from_secs(1),
            ports: vec![],
            owners_limit: None,
            conntrack_top: false,
        }
    }
}

/// Everything read from the system, before any judgement (plain data, so
/// fixtures can replay an incident).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// First sample.
    pub before: CounterSample,
    /// Second sample, `interval` later; `None` with a zero interval.
    pub after: Option<CounterSample>,
    /// Listeners at the first sample.
    pub listeners_before: Vec<ListenSocket>,
    /// Sysctls and listeners at the second sample.
    pub state: SystemState,
    /// Owners of the listeners' sockets, where readable.
    pub owners: BTreeMap<u32, Process>,
    /// Conntrack lines of the kernel log.
    pub kernel_log: KernelLog,
    /// Offload toggles (`tso`, `gso`, `gro`, `lro`) of each interface.
    #[serde(default)]
    pub offloads: Vec<InterfaceOffloads>,
    /// Half-open (SYN-RECV) request sockets at the first sample.
    #[serde(default)]
    pub syn_recv_before: Vec<SynRecv>,
    /// Half-open request sockets at the second sample (or the only one).
    #[serde(default)]
    pub syn_recv: Vec<SynRecv>,
    /// The sysctls the path causes read ([`netpath::PATH_SYSCTLS`] and
    /// each interface's `rp_filter`), where present.
    #[serde(default)]
    pub net_sysctls: BTreeMap<String, String>,
    /// The nftables ruleset at the first sample (empty with one sample).
    #[serde(default)]
    pub ruleset_before: Vec<FwChain>,
    /// The ruleset at the second sample (or the only one).
    #[serde(default)]
    pub ruleset: Vec<FwChain>,
    /// Why the ruleset could not be read.
    #[serde(default)]
    pub ruleset_error: Option<String>,
    /// Legacy iptables tables present.
    #[serde(default)]
    pub legacy_tables: Vec<String>,
    /// The conntrack table grouped (when it was dumped).
    #[serde(default)]
    pub conntrack_groups: Option<ConntrackGroups>,
    /// Local addresses with prefix, `10.0.2.1/24`.
    #[serde(default)]
    pub local_subnets: Vec<String>,
}

/// The offload toggles of one interface, as `ethtool -k` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceOffloads {
    /// Interface name.
    pub iface: String,
    /// `tso`, `gso`, `gro`, `lro` -> on (a group is on when any member is).
    pub features: BTreeMap<String, bool>,
    /// Why they could not be read.
    pub error: Option<String>,
}

/// `tso on, gso on, gro on, lro off`, or why it is unknown.
pub fn offload_summary(o: &InterfaceOffloads) -> String {
    match &o.error {
        Some(e) => format!("unknown ({e})"),
        None => crate::offload::GROUPS
            .iter()
            .filter_map(|g| {
                let on = o.features.get(g.user)?;
                Some(format!("{} {}", g.user, if *on { "on" } else { "off" }))
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn read_offloads(b: &Backends, ifaces: &[String]) -> Vec<InterfaceOffloads> {
    ifaces
        .iter()
        .map(|iface| {
            let mut out = InterfaceOffloads {
                iface: iface.clone(),
                ..Default::default()
            };
            let features = crate::names::IfName::new(iface)
                .map_err(|e| e.to_string())
                .and_then(|n| b.offloads.features(&n).map_err(|e| e.to_string()));
            match features {
                Ok(Some(f)) => {
                    for g in crate::offload::GROUPS {
                        let state = crate::offload::GroupState::of(g, &f);
                        out.features.insert(g.user.to_owned(), state.on);
                    }
                }
                Ok(None) => out.error = Some("interface vanished".into()),
                Err(e) => out.error = Some(e),
            }
            out
        })
        .collect()
}

fn read<T>(what: &'static str, r: Result<T, SystemError>) -> Result<T, DiagnoseError> {
    r.map_err(|source| DiagnoseError::Read { what, source })
}

/// The profile whose values are recommended ([`ADVICE_PROFILE`]).
pub fn advice_profile() -> Profile {
    crate::profile::load(ADVICE_PROFILE, &BTreeMap::new()).expect("the built-in profile loads")
}

/// Gather the evidence: sample, wait `interval`, sample again.
pub fn observe(b: &Backends, opts: &DiagnoseOptions) -> Result<Observation, DiagnoseError> {
    let before = read("counters", b.counters.sample())?;
    // With one sample the listeners are read once, by read_state below.
    // The ruleset is read with the samples (its counters make rates), but
    // a host without nf_tables or CAP_NET_ADMIN still gets a diagnosis.
    let mut ruleset_error = None;
    let ruleset = |error: &mut Option<String>| match b.firewall.ruleset() {
        Ok(r) => r,
        Err(e) => {
            *error = Some(crate::apply::error_chain(&e));
            vec![]
        }
    };
    let (listeners_before, syn_recv_before, ruleset_before) = if opts.interval.is_zero() {
        (vec![], vec![], vec![])
    } else {
        (
            read("listening sockets", b.sockets.listeners())?,
            read("half-open sockets", b.sockets.syn_recv())?,
            ruleset(&mut ruleset_error),
        )
    };
    let after = if opts.interval.is_zero() {
        None
    } else {
        std::thread::sleep(opts.interval);
        Some(read("counters", b.counters.sample())?)
    };
    let state = read("sysctls and listeners", read_state(&advice_profile(), b))?;
    let syn_recv = read("half-open sockets", b.sockets.syn_recv())?;
    let ruleset_after = ruleset(&mut ruleset_error);
    let net_sysctls = netpath::read_sysctls(b, &before);
    let mut obs = Observation {
        syn_recv_before,
        syn_recv,
        net_sysctls,
        ruleset_before,
        ruleset: ruleset_after,
        ruleset_error,
        legacy_tables: b.firewall.legacy_tables(),
        conntrack_groups: None,
        local_subnets: vec![],
        before,
        after,
        listeners_before,
        state,
        owners: BTreeMap::new(),
        kernel_log: b.counters.kernel_log(),
        offloads: vec![],
    };
    let last = obs.after.as_ref().unwrap_or(&obs.before);
    let count = last
        .conntrack_count
        .or(last.conntrack.as_ref().and_then(|c| c.entries));
    let full_pct = match (count, last.conntrack_max) {
        (Some(c), Some(m)) if m > 0 => c as f64 * 100.0 / m as f64,
        _ => 0.0,
    };
    if last.conntrack.is_some() && (opts.conntrack_top || full_pct >= CONNTRACK_TOP_PCT) {
        let est = obs
            .state
            .sysctl_int("net.netfilter.nf_conntrack_tcp_timeout_established")
            .and_then(|v| u32::try_from(v).ok());
        obs.conntrack_groups = Some(b.counters.conntrack_groups(est));
        obs.local_subnets = b
            .counters
            .local_subnets()
            .iter()
            .map(|(a, p)| format!("{a}/{p}"))
            .collect();
    }
    let ifaces: Vec<String> = obs
        .before
        .interfaces
        .iter()
        .map(|i| i.iface.clone())
        .collect();
    obs.offloads = read_offloads(b, &ifaces);
    // The same order the report uses: fullest first.
    let somaxconn = obs.state.sysctl_int("net.core.somaxconn");
    let inodes: BTreeSet<u32> = listener_reports(&obs, &opts.ports, somaxconn)
        .iter()
        .take(opts.owners_limit.unwrap_or(usize::MAX))
        .map(|l| l.inode)
        .collect();
    obs.owners = b.counters.owners(&inodes);
    Ok(obs)
}

/// Observe and analyze.
pub fn diagnose(b: &Backends, opts: &DiagnoseOptions) -> Result<Diagnosis, DiagnoseError> {
    Ok(analyze(&observe(b, opts)?, opts))
}

/// Whether `port` is watched: `ports` empty means every port. Shared with
/// `verify`.
pub(crate) fn wanted(ports: &[u16], port: u16) -> bool {
    ports.is_empty() || ports.contains(&port)
}

/// A counter's total and how it moved between the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterDelta {
    /// Counter name as the kernel spells it.
    pub name: String,
    /// Value at the last sample.
    pub total: u64,
    /// Growth between the samples (`None`: one sample only).
    pub delta: Option<u64>,
    /// Growth per minute.
    pub per_min: Option<f64>,
}

impl CounterDelta {
    /// From two readings `ms` apart.
    pub fn new(name: &str, before: u64, after: Option<u64>, ms: u64) -> Self {
        let delta = after.map(|a| a.saturating_sub(before));
        CounterDelta {
            name: name.to_owned(),
            total: after.unwrap_or(before),
            delta,
            per_min: delta
                .filter(|_| ms > 0)
                .map(|d| (d as f64 * 60_000.0 / ms as f64 * 10.0).round() / 10.0),
        }
    }
    /// Whether it grew between the samples.
    pub fn grew(&self) -> bool {
        self.delta.is_some_and(|d| d > 0)
    }
}

/// Conntrack as seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConntrackReport {
    /// Whether nf_conntrack is loaded (its stats file exists).
    pub loaded: bool,
    /// Entries in the table.
    pub count: Option<u64>,
    /// The table's limit.
    pub max: Option<u64>,
    /// count / max, percent.
    pub use_pct: Option<f64>,
    /// Every stat column, summed over CPUs, by the kernel's name.
    pub stats: Vec<CounterDelta>,
    /// Who fills the table (dumped above [`CONNTRACK_TOP_PCT`] or with
    /// `--conntrack-top`).
    #[serde(default)]
    pub groups: Option<ConntrackGroups>,
    /// The runbook's lasting fix for the largest group of TCP flows to a
    /// local listener, when it holds [`NOTRACK_SHARE_PCT`] or more.
    #[serde(default)]
    pub notrack_command: Option<String>,
}

/// What limits a listener's backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedBy {
    /// The application's own listen() backlog (below somaxconn).
    App,
    /// `net.core.somaxconn` clamped it (backlog equals somaxconn).
    Somaxconn,
    /// somaxconn could not be read.
    Unknown,
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerReport {
    /// Local address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Accept queue now (`ss` Recv-Q).
    pub queue: u32,
    /// Largest queue seen in either sample.
    pub peak_queue: u32,
    /// Effective backlog (`ss` Send-Q).
    pub backlog: u32,
    /// peak_queue / backlog, percent (above 100: full).
    pub full_pct: f64,
    /// What limits the backlog.
    pub limited_by: LimitedBy,
    /// Owning process, if readable.
    pub process: Option<Process>,
    /// Socket inode.
    pub inode: u32,
}

/// Whether an accept queue that peaked at `peak_queue` reached `backlog`.
/// The kernel drops new handshakes when the queue exceeds the backlog; a
/// queue at the backlog is one connection from it. An empty queue never
/// reached anything, even a backlog of 0. Shared with `verify`.
pub fn queue_reached_backlog(peak_queue: u32, backlog: u32) -> bool {
    peak_queue > 0 && peak_queue >= backlog
}

impl ListenerReport {
    /// Whether the queue reached the backlog ([`queue_reached_backlog`]).
    pub fn is_full(&self) -> bool {
        queue_reached_backlog(self.peak_queue, self.backlog)
    }
}

/// A sysctl and the value the advice profile recommends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlAdvice {
    /// Key.
    pub key: String,
    /// Current value (`None`: absent here).
    pub value: Option<String>,
    /// Recommended, e.g. `>= 4096`.
    pub recommended: String,
    /// `Some(true)` when the value satisfies it; `None` when it cannot be
    /// judged (absent, or read-only here).
    pub ok: Option<bool>,
    /// Why this value.
    pub reason: Option<String>,
}

/// One interface's drop and error counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceReport {
    /// Interface name.
    pub iface: String,
    /// rx_dropped, rx_fifo, rx_errors, rx_frame, tx_dropped, tx_errors.
    pub counters: Vec<CounterDelta>,
}

/// The kernel log as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLogReport {
    /// Whether /dev/kmsg was readable.
    pub readable: bool,
    /// Why not.
    pub error: Option<String>,
    /// "nf_conntrack: table full" lines about this network namespace (or
    /// naming none: older kernels) in the buffer.
    pub table_full_lines: u64,
    /// Such lines about other network namespaces (not counted as evidence).
    pub table_full_elsewhere: u64,
    /// Seconds since the last of ours.
    pub last_age_s: Option<u64>,
    /// The last few of ours.
    pub last: Vec<String>,
    /// A line counts as evidence only when it is younger than this many
    /// seconds (the sampling window included) ...
    pub recent_bound_s: u64,
    /// ... and this namespace's own conntrack counters agree (a `drop`,
    /// `early_drop` or `insert_failed` total above 0, or the table at 95 %
    /// or more): the kernel names a namespace by its inode number, which
    /// it reuses, so an old line can be about a deleted namespace.
    pub counters_agree: bool,
    /// Our lines younger than `recent_bound_s`.
    pub recent_lines: u64,
    /// Our older lines: history, never a cause on their own.
    pub history_lines: u64,
}

/// Kernel-log lines younger than this many seconds (plus the sampling
/// interval) are recent; older ones are history.
pub const KMSG_RECENT_S: u64 = 60;

/// The diagnosis: causes first, then the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// JSON schema version ([`DIAGNOSE_SCHEMA`]).
    pub schema: u32,
    /// Milliseconds between the samples (0: one sample).
    pub interval_ms: u64,
    /// Ports focused on (empty: all).
    pub ports: Vec<u16>,
    /// Whether this runs in the host's initial network namespace (global
    /// keys are writable only there).
    #[serde(default = "yes")]
    pub in_initial_netns: bool,
    /// Likely root causes, most likely first.
    pub causes: Vec<Cause>,
    /// Conntrack table and stats.
    pub conntrack: ConntrackReport,
    /// The watched TcpExt counters ([`WATCHED_TCP_EXT`], then
    /// [`DIAGNOSE_TCP_EXT`]).
    pub tcp_ext: Vec<CounterDelta>,
    /// Per-CPU input-queue drops (/proc/net/softnet_stat).
    #[serde(default)]
    pub softnet: Vec<SoftnetReport>,
    /// Listeners with half-open connections.
    #[serde(default)]
    pub syn_recv: Vec<SynRecvReport>,
    /// `net.ipv4.tcp_syncookies` (`None`: unreadable).
    #[serde(default)]
    pub syncookies: Option<i64>,
    /// Reverse-path filtering of each interface.
    #[serde(default)]
    pub rp_filter: RpFilterReport,
    /// Firewall rules that can drop new connections to the watched ports.
    #[serde(default)]
    pub firewall: FirewallReport,
    /// What `--trace` saw (drop reasons are host-wide: every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceReport>,
    /// Listening sockets (on `ports` when given), fullest first.
    pub listeners: Vec<ListenerReport>,
    /// Ports asked for with nothing listening.
    pub missing_ports: Vec<u16>,
    /// Sysctls against the advice profile.
    pub sysctls: Vec<SysctlAdvice>,
    /// Interface drop and error counters.
    pub interfaces: Vec<InterfaceReport>,
    /// NIC offload toggles per interface.
    pub offloads: Vec<InterfaceOffloads>,
    /// Conntrack lines of the kernel log.
    pub kernel_log: KernelLogReport,
    /// What was checked, in words.
    pub checked: Vec<String>,
}

impl Diagnosis {
    /// Fold a trace into the diagnosis: each drop reason that supports a
    /// ranked cause becomes evidence of it; the rest is listed as seen.
    pub fn add_trace(&mut self, t: TraceReport) {
        let secs = t.duration_ms as f64 / 1000.0;
        let ct_dropping = self
            .conntrack
            .stats
            .iter()
            .any(|s| s.name == "drop" && s.grew());
        for x in &t.drops {
            let code = x.supports.as_deref().or_else(|| {
                (x.reason == "NETFILTER_DROP" && ct_dropping).then_some("conntrack-table-full")
            });
            let Some(code) = code else { continue };
            for c in self.causes.iter_mut().filter(|c| c.code == code) {
                c.evidence.push(format!(
                    "trace: {} packet(s) dropped with reason {} at {} in {secs:.1} s",
                    x.count, x.reason, x.location
                ));
            }
        }
        for (local, n) in &t.synack_retransmits {
            for c in self
                .causes
                .iter_mut()
                .filter(|c| c.code == "synack-lost" && c.title.contains(local.as_str()))
            {
                c.evidence.push(format!(
                    "trace: {n} SYN-ACK retransmit(s) from {local} in {secs:.1} s"
                ));
            }
        }
        self.checked.push(format!(
            "--trace: skb:kfree_skb and tcp:tcp_retransmit_synack for {secs:.1} s in a private tracefs instance (host-wide: every namespace's drops)"
        ));
        self.trace = Some(t);
    }
}

fn yes() -> bool {
    true
}

/// Turn an observation into a diagnosis (pure).
pub fn analyze(obs: &Observation, opts: &DiagnoseOptions) -> Diagnosis {
    let before = &obs.before;
    let after = obs.after.as_ref();
    let ms = after.map_or(0, |a| a.at_ms.saturating_sub(before.at_ms));

    let tcp_ext: Vec<CounterDelta> = WATCHED_TCP_EXT
        .iter()
        .chain(DIAGNOSE_TCP_EXT)
        .filter(|n| before.tcp_ext.contains_key(**n))
        .map(|n| {
            CounterDelta::new(
                n,
                before.tcp_ext[*n],
                after.and_then(|a| a.tcp_ext.get(*n).copied()),
                ms,
            )
        })
        .collect();

    let mut conntrack = conntrack_report(before, after, ms);
    conntrack.groups = obs.conntrack_groups.clone();
    conntrack.notrack_command = notrack_command(obs);
    let somaxconn = obs.state.sysctl_int("net.core.somaxconn");
    let listeners = listener_reports(obs, &opts.ports, somaxconn);
    let missing_ports: Vec<u16> = opts
        .ports
        .iter()
        .copied()
        .filter(|p| obs.state.listeners_on(*p).next().is_none())
        .collect();
    let sysctls = sysctl_advice(&obs.state);
    let interfaces = interface_reports(before, after, ms);
    let kernel_log = kernel_log_report(&obs.kernel_log, &conntrack, ms);
    let mut d = Diagnosis {
        schema: DIAGNOSE_SCHEMA,
        interval_ms: ms,
        ports: opts.ports.clone(),
        in_initial_netns: obs.state.in_initial_netns,
        causes: vec![],
        conntrack,
        tcp_ext,
        listeners,
        missing_ports,
        sysctls,
        interfaces,
        offloads: obs.offloads.clone(),
        softnet: netpath::softnet_report(before, after, ms),
        syn_recv: netpath::syn_recv_report(obs, &opts.ports, after.is_some()),
        syncookies: obs
            .net_sysctls
            .get("net.ipv4.tcp_syncookies")
            .and_then(|v| v.trim().parse().ok()),
        rp_filter: netpath::rp_filter_report(&obs.net_sysctls, before, after),
        firewall: firewall_report(obs, &opts.ports),
        trace: None,
        kernel_log,
        checked: vec![],
    };
    d.checked = checked(&d, obs.state.listeners.len());
    d.causes = rank_causes(&d, somaxconn);
    d
}

/// `tcto-tune plan --profile trusted-notrack ...` for the largest group of
/// TCP flows to a local listening port, with the backend subnet taken from
/// the local address's own interface (its connected subnet).
fn notrack_command(obs: &Observation) -> Option<String> {
    let g = obs.conntrack_groups.as_ref()?;
    let top =
        g.groups.iter().find(|g| {
            g.protocol == "tcp"
                && g.share_pct >= NOTRACK_SHARE_PCT
                && obs.state.listeners.iter().any(|l| {
                    l.port == g.port && (l.addr == g.destination || l.addr.is_unspecified())
                })
        })?;
    let backend = obs.local_subnets.iter().find_map(|s| {
        let (a, p) = s.split_once('/')?;
        (a.parse::<IpAddr>().ok()? == top.destination)
            .then(|| network(top.destination, p.parse().ok()?))
    })??;
    Some(format!(
        "tcto-tune plan --profile trusted-notrack --set frontend={} --set backend={backend} --set port={}",
        top.source, top.port
    ))
}

/// `10.0.2.1`, 24 -> `10.0.2.0/24`.
fn network(a: IpAddr, prefix: u8) -> Option<String> {
    match a {
        IpAddr::V4(v) if prefix <= 32 => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            Some(format!(
                "{}/{prefix}",
                std::net::Ipv4Addr::from(u32::from(v) & mask)
            ))
        }
        IpAddr::V6(v) if prefix <= 128 => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            Some(format!(
                "{}/{prefix}",
                std::net::Ipv6Addr::from(u128::from(v) & mask)
            ))
        }
        _ => None,
    }
}

fn firewall_report(obs: &Observation, ports: &[u16]) -> FirewallReport {
    let watched: BTreeSet<u16> = if ports.is_empty() {
        obs.state.listeners.iter().map(|l| l.port).collect()
    } else {
        ports.iter().copied().collect()
    };
    FirewallReport {
        read: obs.ruleset_error.is_none(),
        error: obs.ruleset_error.clone(),
        chains: obs.ruleset.len(),
        rules: obs.ruleset.iter().map(|c| c.rules.len()).sum(),
        // Without a port to watch, any drop would do: nothing to say.
        drops: if watched.is_empty() {
            vec![]
        } else {
            let mut d = find_drops(&obs.ruleset_before, &obs.ruleset, &watched);
            d.sort_by_key(|x| std::cmp::Reverse(x.delta.unwrap_or(0)));
            d
        },
        legacy_tables: obs.legacy_tables.clone(),
    }
}

fn kernel_log_report(log: &KernelLog, ct: &ConntrackReport, ms: u64) -> KernelLogReport {
    let recent_bound_s = KMSG_RECENT_S + ms.div_ceil(1000);
    // Records of an older observation carry no timestamp list: their
    // last few records stand in.
    let times: Vec<u64> = if log.table_full_usec.is_empty() {
        log.last_table_full.iter().map(|r| r.usec).collect()
    } else {
        log.table_full_usec.clone()
    };
    let cutoff = log.now_usec.saturating_sub(recent_bound_s * 1_000_000);
    let recent = times.iter().filter(|u| **u >= cutoff).count() as u64;
    let recent_lines = recent.min(log.table_full);
    let counters_agree = ct
        .stats
        .iter()
        .any(|s| CONNTRACK_DROP_COLUMNS.contains(&s.name.as_str()) && s.total > 0)
        || ct.use_pct.is_some_and(|p| p >= 95.0);
    KernelLogReport {
        readable: log.readable,
        error: log.error.clone(),
        table_full_lines: log.table_full,
        table_full_elsewhere: log.table_full_elsewhere,
        last_age_s: log
            .last_table_full
            .last()
            .map(|r| log.now_usec.saturating_sub(r.usec) / 1_000_000),
        last: log
            .last_table_full
            .iter()
            .map(|r| format!("[{:.1}s] {}", r.usec as f64 / 1e6, r.message))
            .collect(),
        recent_bound_s,
        counters_agree,
        recent_lines,
        history_lines: log.table_full - recent_lines,
    }
}

fn conntrack_report(
    before: &CounterSample,
    after: Option<&CounterSample>,
    ms: u64,
) -> ConntrackReport {
    let last = after.unwrap_or(before);
    let count = last
        .conntrack_count
        .or(last.conntrack.as_ref().and_then(|c| c.entries));
    let max = last.conntrack_max;
    let use_pct = match (count, max) {
        (Some(c), Some(m)) if m > 0 => Some((c as f64 * 1000.0 / m as f64).round() / 10.0),
        _ => None,
    };
    let stats = before
        .conntrack
        .as_ref()
        .map(|b| {
            b.columns
                .iter()
                .map(|(name, v)| {
                    let a = after
                        .and_then(|a| a.conntrack.as_ref())
                        .and_then(|c| c.columns.get(name).copied());
                    CounterDelta::new(name, *v, a, ms)
                })
                .collect()
        })
        .unwrap_or_default();
    ConntrackReport {
        loaded: before.conntrack.is_some(),
        count,
        max,
        use_pct,
        stats,
        groups: None,
        notrack_command: None,
    }
}

fn listener_reports(
    obs: &Observation,
    ports: &[u16],
    somaxconn: Option<i64>,
) -> Vec<ListenerReport> {
    let mut out: Vec<ListenerReport> = obs
        .state
        .listeners
        .iter()
        .filter(|l| wanted(ports, l.port))
        .map(|l| {
            let earlier = obs
                .listeners_before
                .iter()
                .find(|b| b.inode == l.inode && b.port == l.port)
                .map_or(0, |b| b.queue);
            let peak_queue = l.queue.max(earlier);
            let full_pct = if l.backlog == 0 {
                if peak_queue > 0 {
                    100.0
                } else {
                    0.0
                }
            } else {
                (peak_queue as f64 * 1000.0 / l.backlog as f64).round() / 10.0
            };
            let limited_by = match somaxconn {
                Some(s) if i64::from(l.backlog) >= s => LimitedBy::Somaxconn,
                Some(_) => LimitedBy::App,
                None => LimitedBy::Unknown,
            };
            ListenerReport {
                addr: l.addr,
                port: l.port,
                queue: l.queue,
                peak_queue,
                backlog: l.backlog,
                full_pct,
                limited_by,
                process: obs.owners.get(&l.inode).cloned(),
                inode: l.inode,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.full_pct
            .total_cmp(&a.full_pct)
            .then((a.port, a.addr).cmp(&(b.port, b.addr)))
    });
    out
}

fn sysctl_advice(state: &SystemState) -> Vec<SysctlAdvice> {
    let profile = advice_profile();
    let p = plan(&profile, state);
    let word = |i: crate::Intent| match i {
        crate::Intent::Exact => "",
        crate::Intent::AtLeast => ">= ",
        crate::Intent::AtMost => "<= ",
    };
    let mut out = Vec::new();
    for c in &p.changes {
        out.push(SysctlAdvice {
            key: c.key.clone(),
            value: c.current.clone(),
            recommended: format!("{}{}", word(c.intent), c.desired),
            ok: Some(false),
            reason: c.reason.clone(),
        });
    }
    for u in &p.unchanged {
        out.push(SysctlAdvice {
            key: u.key.clone(),
            value: Some(u.current.clone()),
            recommended: format!("{}{}", word(u.intent), u.desired),
            ok: Some(true),
            reason: u.reason.clone(),
        });
    }
    let targets = profile.sysctl_targets();
    for s in &p.skipped {
        let intent = targets
            .iter()
            .find(|t| t.key.as_str() == s.key)
            .map_or(crate::Intent::Exact, |t| t.desired.intent);
        out.push(SysctlAdvice {
            key: s.key.clone(),
            value: s.current.clone(),
            recommended: format!("{}{}", word(intent), s.desired),
            ok: None,
            reason: Some(s.why.clone()),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn interface_reports(
    before: &CounterSample,
    after: Option<&CounterSample>,
    ms: u64,
) -> Vec<InterfaceReport> {
    type Pick = fn(&NetDevStats) -> u64;
    let fields: [(&str, Pick); 6] = [
        ("rx_dropped", |d| d.rx_dropped),
        ("rx_fifo", |d| d.rx_fifo),
        ("rx_errors", |d| d.rx_errors),
        ("rx_frame", |d| d.rx_frame),
        ("tx_dropped", |d| d.tx_dropped),
        ("tx_errors", |d| d.tx_errors),
    ];
    before
        .interfaces
        .iter()
        .map(|b| {
            let a = after.and_then(|a| a.interfaces.iter().find(|i| i.iface == b.iface));
            InterfaceReport {
                iface: b.iface.clone(),
                counters: fields
                    .iter()
                    .map(|(name, pick)| CounterDelta::new(name, pick(b), a.map(pick), ms))
                    .collect(),
            }
        })
        .collect()
}

fn checked(d: &Diagnosis, all_listeners: usize) -> Vec<String> {
    let mut out = Vec::new();
    let c = &d.conntrack;
    if c.loaded {
        out.push(format!(
            "conntrack table: {} of {} entries; {} stat columns from /proc/net/stat/nf_conntrack",
            c.count.map_or("?".into(), |n| n.to_string()),
            c.max.map_or("?".into(), |n| n.to_string()),
            c.stats.len()
        ));
    } else {
        out.push("conntrack: nf_conntrack is not loaded here (nothing is tracked)".into());
    }
    let names: Vec<&str> = d.tcp_ext.iter().map(|t| t.name.as_str()).collect();
    out.push(format!("TcpExt counters: {}", names.join(", ")));
    out.push(if d.ports.is_empty() {
        format!("{all_listeners} listening sockets (accept queue against backlog)")
    } else {
        format!(
            "{} listening sockets on port(s) {} (of {all_listeners})",
            d.listeners.len(),
            d.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    out.push(format!(
        "{} sysctls against the `{ADVICE_PROFILE}` profile",
        d.sysctls.len()
    ));
    out.push(format!(
        "drop and error counters of {} interface(s) from /proc/net/dev",
        d.interfaces.len()
    ));
    out.push(format!(
        "offload toggles (tso, gso, gro, lro) of {} interface(s) through SIOCETHTOOL{}",
        d.offloads.iter().filter(|o| o.error.is_none()).count(),
        match d.offloads.iter().filter(|o| o.error.is_some()).count() {
            0 => String::new(),
            n => format!(", {n} unreadable"),
        }
    ));
    let fw = &d.firewall;
    out.push(match &fw.error {
        None => format!(
            "nftables ruleset through netlink: {} chain(s), {} rule(s) of every table and family; {} drop(s) a new connection to the watched port(s) can meet",
            fw.chains,
            fw.rules,
            fw.drops.len()
        ),
        Some(e) => format!("nftables ruleset: not readable ({e})"),
    });
    if !fw.legacy_tables.is_empty() {
        out.push(format!(
            "legacy iptables tables not read: {} (`iptables-legacy -L -n -v` lists them)",
            fw.legacy_tables.join(", ")
        ));
    }
    out.push(if d.kernel_log.readable {
        format!(
            "kernel log: {} \"nf_conntrack: table full\" line(s); evidence only when younger than {} s and the conntrack counters agree",
            d.kernel_log.table_full_lines, d.kernel_log.recent_bound_s
        )
    } else {
        format!(
            "kernel log: not readable ({})",
            d.kernel_log.error.as_deref().unwrap_or("unknown")
        )
    });
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_firewall;
#[cfg(test)]
mod tests_path;
