//! Typed fixes: what a profile asks of the kernel, one type per remedy.
//!
//! The runbook's remedies are not a bag of `key = value` strings: the
//! conntrack table, the listen backlog, client-side TCP knobs, NOTRACK rules
//! and NIC offloads each have their own meaning, bounds and safety rules.
//! Modelling them as types lets the planner and the checks reason about
//! them (somaxconn versus the application's backlog, conntrack size versus
//! RAM), and keeps the raw `[sysctl]` escape hatch visibly separate.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{Cidr, IfName, SysctlName};

/// How a desired value relates to the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Set exactly this value whenever the current one differs.
    #[default]
    Exact,
    /// Only raise: leave a current value that is already at least this.
    AtLeast,
    /// Only lower: leave a current value that is already at most this.
    AtMost,
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Intent::Exact => "exact",
            Intent::AtLeast => "at least",
            Intent::AtMost => "at most",
        })
    }
}

/// A sysctl value: most are integers, a few are text (`tcp_rmem` triples,
/// `tcp_congestion_control`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SysctlValue {
    /// An integer.
    Int(i64),
    /// Text, written as is (validated: one line, printable).
    Text(String),
}

impl SysctlValue {
    /// The value as the kernel prints it.
    pub fn render(&self) -> String {
        match self {
            SysctlValue::Int(n) => n.to_string(),
            SysctlValue::Text(s) => s.clone(),
        }
    }

    /// Parse what the kernel printed: an integer when it is one.
    pub fn parse_kernel(text: &str) -> Self {
        let t = text.trim();
        t.parse::<i64>()
            .map(SysctlValue::Int)
            .unwrap_or_else(|_| SysctlValue::Text(normalize(t)))
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            SysctlValue::Int(n) => Some(*n),
            SysctlValue::Text(s) => s.trim().parse().ok(),
        }
    }
}

impl fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Collapse runs of whitespace (the kernel prints multi-value sysctls with
/// tabs; users write spaces).
pub fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A desired value with its intent and the reason shown in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired<T> {
    /// The value.
    pub value: T,
    /// Exact, at least or at most.
    pub intent: Intent,
    /// One line that says why; shown in the plan and the sysctl.d file.
    pub reason: Option<String>,
}

impl<T> Desired<T> {
    /// Exactly `value`.
    pub fn exact(value: T) -> Self {
        Self {
            value,
            intent: Intent::Exact,
            reason: None,
        }
    }
    /// At least `value` (only raise).
    pub fn at_least(value: T) -> Self {
        Self {
            value,
            intent: Intent::AtLeast,
            reason: None,
        }
    }
    /// At most `value` (only lower).
    pub fn at_most(value: T) -> Self {
        Self {
            value,
            intent: Intent::AtMost,
            reason: None,
        }
    }
    /// Attach the reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Whether a key can be changed from a child network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Each network namespace has its own value.
    PerNetns,
    /// One value for the machine, writable only from the initial namespace.
    Global,
}

/// What the crate knows about a sysctl it models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Dotted name.
    pub name: &'static str,
    /// Per-namespace or global.
    pub scope: Scope,
    /// Smallest value the kernel accepts (or that makes sense).
    pub min: i64,
    /// Largest value the kernel accepts.
    pub max: i64,
    /// Kernel module that must be loaded for the key to exist.
    pub module: Option<&'static str>,
}

const INT_MAX: i64 = i32::MAX as i64;

macro_rules! key {
    ($name:expr, $scope:ident, $min:expr, $max:expr, $module:expr) => {
        KeyInfo {
            name: $name,
            scope: Scope::$scope,
            min: $min,
            max: $max,
            module: $module,
        }
    };
}

/// Sysctls the typed fixes use, with the kernel's bounds.
pub const KNOWN_KEYS: &[KeyInfo] = &[
    key!(
        "net.netfilter.nf_conntrack_max",
        Global,
        0,
        INT_MAX,
        Some("nf_conntrack")
    ),
    key!(
        "net.netfilter.nf_conntrack_buckets",
        Global,
        1,
        1 << 30,
        Some("nf_conntrack")
    ),
    key!(
        "net.netfilter.nf_conntrack_tcp_timeout_established",
        PerNetns,
        1,
        INT_MAX / 1000,
        Some("nf_conntrack")
    ),
    key!(
        "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
        PerNetns,
        1,
        INT_MAX / 1000,
        Some("nf_conntrack")
    ),
    key!(
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
        PerNetns,
        1,
        INT_MAX / 1000,
        Some("nf_conntrack")
    ),
    key!("net.core.somaxconn", PerNetns, 0, INT_MAX, None),
    key!("net.ipv4.tcp_max_syn_backlog", PerNetns, 0, INT_MAX, None),
    key!("net.core.netdev_max_backlog", Global, 1, INT_MAX, None),
    key!("net.ipv4.tcp_tw_reuse", PerNetns, 0, 2, None),
    key!("net.ipv4.tcp_syn_retries", PerNetns, 1, 127, None),
];

/// Keys that older guides still recommend but the kernel removed.
pub const REMOVED_KEYS: &[(&str, &str)] = &[
    (
        "net.ipv4.tcp_tw_recycle",
        "removed in Linux 4.12: it broke clients behind NAT; use net.ipv4.tcp_tw_reuse",
    ),
    (
        "net.ipv4.tcp_fack",
        "removed in Linux 4.15 (superseded by RACK)",
    ),
    ("net.ipv4.tcp_low_latency", "a no-op since Linux 4.14"),
    (
        "net.ipv4.ip_conntrack_max",
        "the pre-2.6.20 name: use net.netfilter.nf_conntrack_max",
    ),
];

/// Look a key up in [`KNOWN_KEYS`].
pub fn key_info(name: &str) -> Option<&'static KeyInfo> {
    KNOWN_KEYS.iter().find(|k| k.name == name)
}

/// Which remedy a planned sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// Conntrack table size and timeouts.
    Conntrack,
    /// Listen backlog sysctls.
    Backlog,
    /// Client-side TCP sysctls.
    Client,
    /// The raw `[sysctl]` escape hatch.
    Sysctl,
}

/// Conntrack sizing and TCP timeouts (`[conntrack]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConntrackFix {
    /// `net.netfilter.nf_conntrack_max`.
    pub max: Option<Desired<i64>>,
    /// `net.netfilter.nf_conntrack_buckets` (also the `hashsize` module parameter).
    pub buckets: Option<Desired<i64>>,
    /// `nf_conntrack_tcp_timeout_established`, seconds.
    pub tcp_timeout_established: Option<Desired<i64>>,
    /// `nf_conntrack_tcp_timeout_time_wait`, seconds.
    pub tcp_timeout_time_wait: Option<Desired<i64>>,
    /// `nf_conntrack_tcp_timeout_close_wait`, seconds.
    pub tcp_timeout_close_wait: Option<Desired<i64>>,
}

/// Listen backlog sysctls (`[backlog]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogFix {
    /// `net.core.somaxconn`: the clamp on every listen() backlog.
    pub somaxconn: Option<Desired<i64>>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open (SYN_RECV) queue.
    pub tcp_max_syn_backlog: Option<Desired<i64>>,
    /// `net.core.netdev_max_backlog`: per-CPU input packet queue.
    pub netdev_max_backlog: Option<Desired<i64>>,
}

/// Client-side TCP sysctls (`[client]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFix {
    /// `net.ipv4.tcp_tw_reuse`: reuse TIME_WAIT sockets for new outgoing connections.
    pub tcp_tw_reuse: Option<Desired<i64>>,
    /// `net.ipv4.tcp_syn_retries`: how many SYNs before connect() gives up.
    pub tcp_syn_retries: Option<Desired<i64>>,
}

/// One entry of the raw `[sysctl]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSysctl {
    /// The key.
    pub key: SysctlName,
    /// The value wanted.
    pub desired: Desired<SysctlValue>,
}

/// An application listener the plan must respect (`[[listener]]` or `--port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// TCP port it listens on.
    pub port: u16,
    /// The backlog the application itself passes to listen(), if known.
    pub backlog: Option<u32>,
}

/// A trusted flow to exempt from connection tracking (`[[notrack]]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NotrackFlow {
    /// Client subnet (`None` when the profile left it out: refused by the
    /// `notrack-unscoped` check, never planned).
    pub from: Option<Cidr>,
    /// Server subnet (`None` when left out: refused, see `from`).
    pub to: Option<Cidr>,
    /// Server TCP port (`None` when left out: refused, see `from`).
    pub port: Option<u16>,
    /// Why.
    pub reason: Option<String>,
}

/// NIC offload toggles for one interface (`[[offload]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffloadFix {
    /// Interface.
    pub iface: IfName,
    /// TCP segmentation offload.
    pub tso: Option<bool>,
    /// Generic segmentation offload.
    pub gso: Option<bool>,
    /// Generic receive offload.
    pub gro: Option<bool>,
    /// Large receive offload.
    pub lro: Option<bool>,
    /// Why.
    pub reason: Option<String>,
}

impl OffloadFix {
    /// The toggles that are set, as `(user-facing name, on)`.
    pub fn toggles(&self) -> Vec<(&'static str, bool)> {
        toggles_set([self.tso, self.gso, self.gro, self.lro])
    }
}

/// Of tso, gso, gro and lro (in that order), the ones set, as
/// `(user-facing name, on)`.
pub(crate) fn toggles_set(tso_gso_gro_lro: [Option<bool>; 4]) -> Vec<(&'static str, bool)> {
    ["tso", "gso", "gro", "lro"]
        .into_iter()
        .zip(tso_gso_gro_lro)
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
}

/// A sysctl the profile wants, whichever fix it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlTarget {
    /// The key.
    pub key: SysctlName,
    /// The value wanted.
    pub desired: Desired<SysctlValue>,
    /// Which fix asked for it.
    pub fix: FixKind,
}

fn typed(fix: FixKind, key: &str, d: &Option<Desired<i64>>) -> Option<SysctlTarget> {
    d.as_ref().map(|d| SysctlTarget {
        key: SysctlName::new(key).expect("known key names are valid"),
        desired: Desired {
            value: SysctlValue::Int(d.value),
            intent: d.intent,
            reason: d.reason.clone(),
        },
        fix,
    })
}

impl BacklogFix {
    /// The sysctls this fix sets, in apply order.
    pub fn targets(&self) -> Vec<SysctlTarget> {
        use FixKind::Backlog as B;
        [
            typed(B, "net.core.somaxconn", &self.somaxconn),
            typed(B, "net.ipv4.tcp_max_syn_backlog", &self.tcp_max_syn_backlog),
            typed(B, "net.core.netdev_max_backlog", &self.netdev_max_backlog),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl ConntrackFix {
    /// The sysctls this fix sets, in apply order (buckets before max, so
    /// the table grows its hash before it grows its limit).
    pub fn targets(&self) -> Vec<SysctlTarget> {
        use FixKind::Conntrack as C;
        [
            typed(C, "net.netfilter.nf_conntrack_buckets", &self.buckets),
            typed(C, "net.netfilter.nf_conntrack_max", &self.max),
            typed(
                C,
                "net.netfilter.nf_conntrack_tcp_timeout_established",
                &self.tcp_timeout_established,
            ),
            typed(
                C,
                "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
                &self.tcp_timeout_time_wait,
            ),
            typed(
                C,
                "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
                &self.tcp_timeout_close_wait,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl ClientFix {
    /// The sysctls this fix sets, in apply order.
    pub fn targets(&self) -> Vec<SysctlTarget> {
        use FixKind::Client as C;
        [
            typed(C, "net.ipv4.tcp_tw_reuse", &self.tcp_tw_reuse),
            typed(C, "net.ipv4.tcp_syn_retries", &self.tcp_syn_retries),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}
