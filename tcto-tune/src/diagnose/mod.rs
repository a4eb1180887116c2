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
use report::{
    checked, conntrack_report, firewall_report, interface_reports, kernel_log_report,
    listener_reports, notrack_command, sysctl_advice,
};
mod firewall;
mod netpath;
mod prometheus;
mod report;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::profile::Profile;
use crate::snapshot::read_state;
use crate::state::{ListenSocket, SystemState};
use crate::system::{Backends, CounterSample, KernelLog, Process, SynRecv, SystemError};

pub use crate::observed::{aggregate_trace, TraceDrop, TraceEvent, TraceReport};
pub use crate::observed::{source_subnet, ConntrackGroups, CtAggregator, CtEntry, CtGroup, IDLE_S};
pub use causes::{rank_causes, Cause, CauseCode, CAUSE_CODES};
pub use firewall::{find_drops, FirewallDrop, FirewallReport, FwChain, FwLimit, FwRule};
pub use netpath::{
    client_line, ClientSeen, RpCheck, RpClient, RpFilterIface, RpFilterReport, RpVerdict,
    SoftnetReport, SynRecvReport, MAX_RP_CLIENTS,
};
pub use text::{DiagnosisText, TEXT_LISTENER_ROWS};

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
    /// Clients to check the route back to (`--client`), besides those
    /// seen in sockets and conntrack.
    pub clients: Vec<IpAddr>,
    /// How the caller names a cause's next step (`tcto-tune plan ...` for
    /// the CLI).
    pub words: crate::words::WordsRef,
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
            clients: vec![],
            words: Default::default(),
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
    /// The sysctls the path causes read (`PATH_SYSCTLS` and
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
    /// Clients and the kernel's answers about the route back to them.
    #[serde(default)]
    pub rp_clients: Vec<RpClient>,
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
        rp_clients: vec![],
        before,
        after,
        listeners_before,
        state,
        owners: BTreeMap::new(),
        kernel_log: b.counters.kernel_log(),
        offloads: vec![],
    };
    if wants_conntrack_groups(&obs, opts) {
        group_conntrack(b, &mut obs);
    }
    let ifaces: Vec<String> = obs
        .before
        .interfaces
        .iter()
        .map(|i| i.iface.clone())
        .collect();
    obs.offloads = read_offloads(b, &ifaces);
    obs.rp_clients = netpath::observe_clients(b, &obs, opts);
    obs.owners = listener_owners(b, &obs, opts);
    Ok(obs)
}

/// Whether to dump the conntrack table and group its entries: asked for,
/// or the table at least [`CONNTRACK_TOP_PCT`] full in the last sample.
fn wants_conntrack_groups(obs: &Observation, opts: &DiagnoseOptions) -> bool {
    let last = obs.after.as_ref().unwrap_or(&obs.before);
    let count = last
        .conntrack_count
        .or(last.conntrack.as_ref().and_then(|c| c.entries));
    let full_pct = match (count, last.conntrack_max) {
        (Some(c), Some(m)) if m > 0 => c as f64 * 100.0 / m as f64,
        _ => 0.0,
    };
    last.conntrack.is_some() && (opts.conntrack_top || full_pct >= CONNTRACK_TOP_PCT)
}

/// Dump the conntrack table grouped by flow, and read the host's local
/// subnets.
fn group_conntrack(b: &Backends, obs: &mut Observation) {
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

/// The processes owning the listeners the report shows, looked up in the
/// order it shows them (fullest first), at most `owners_limit` of them.
fn listener_owners(
    b: &Backends,
    obs: &Observation,
    opts: &DiagnoseOptions,
) -> BTreeMap<u32, Process> {
    let somaxconn = obs.state.sysctl_int("net.core.somaxconn");
    let inodes: BTreeSet<u32> = listener_reports(obs, &opts.ports, somaxconn)
        .iter()
        .take(opts.owners_limit.unwrap_or(usize::MAX))
        .map(|l| l.inode)
        .collect();
    b.counters.owners(&inodes)
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
    conntrack.notrack_command = notrack_command(obs, opts.words.get());
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
    d.rp_filter.clients = netpath::judge_clients(&obs.rp_clients);
    d.checked = checked(&d, obs.state.listeners.len());
    d.checked.extend(netpath::clients_checked(&d.rp_filter));
    d.causes = rank_causes(&d, somaxconn, opts.words.get());
    d
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_firewall;
#[cfg(test)]
mod tests_path;
