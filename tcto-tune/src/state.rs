//! `SystemState`: what the planner knows about a host, as plain data.
//!
//! The planner never reads `/proc`; it reads this. Backends fill it from the
//! live system, tests build it from fixtures (it is plain serde data, so a
//! fixture is a JSON file), and dry-run seeds its simulated backends from it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use crate::names::{IfScope, NicId};
use crate::notrack::{FilterChain, NotrackTable};

/// One sysctl as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlReading {
    /// The value as the kernel prints it; `None` when the key does not exist.
    pub value: Option<String>,
    /// Whether this process may write it here (a global key inside a child
    /// network namespace is read-only).
    pub writable: bool,
}

impl SysctlReading {
    /// A present, writable key.
    pub fn rw(value: impl Into<String>) -> Self {
        Self {
            value: Some(value.into()),
            writable: true,
        }
    }
    /// A present, read-only key.
    pub fn ro(value: impl Into<String>) -> Self {
        Self {
            value: Some(value.into()),
            writable: false,
        }
    }
    /// A missing key.
    pub fn missing() -> Self {
        Self {
            value: None,
            writable: false,
        }
    }
}

/// A listening TCP socket, as sock_diag (and `ss -tln`) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenSocket {
    /// Local address.
    pub addr: IpAddr,
    /// Local port.
    pub port: u16,
    /// Current accept queue length (`ss` Recv-Q).
    pub queue: u32,
    /// Maximum accept queue, the effective backlog (`ss` Send-Q).
    pub backlog: u32,
    /// Socket inode, to find the owning process.
    pub inode: u32,
}

/// One NIC feature as the kernel reports it (`ethtool -k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureState {
    /// Active now.
    pub on: bool,
    /// The driver does not let it change (`[fixed]` in `ethtool -k`).
    pub fixed: bool,
    /// The kernel holds a request for the other value that it cannot meet
    /// now, e.g. TSO with scatter-gather off (`off [requested on]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wish: bool,
}

impl FeatureState {
    /// A changeable feature.
    pub fn changeable(on: bool) -> Self {
        Self {
            on,
            fixed: false,
            wish: false,
        }
    }
    /// A feature the driver does not let change.
    pub fn fixed(on: bool) -> Self {
        Self {
            on,
            fixed: true,
            wish: false,
        }
    }
}

/// Kernel feature name (`tx-tcp-segmentation`) to its state.
pub type Features = BTreeMap<String, FeatureState>;

/// Everything the planner and the checks look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemState {
    /// Whether this process runs in the initial network namespace.
    pub in_initial_netns: bool,
    /// Sysctls read, by dotted key.
    pub sysctls: BTreeMap<String, SysctlReading>,
    /// Listening TCP sockets (IPv4 and IPv6).
    pub listeners: Vec<ListenSocket>,
    /// `MemTotal` from /proc/meminfo, bytes.
    pub mem_total_bytes: Option<u64>,
    /// Network interfaces of this namespace (read when the profile has
    /// offload fixes, for the `offload-unknown-interface` hint).
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Offload features of each existing interface the profile names, by
    /// interface, then kernel feature name (only the features behind
    /// `tso`, `gso`, `gro`, `lro`, and those they depend on). A named
    /// interface that does not exist has no entry.
    #[serde(default)]
    pub offloads: BTreeMap<String, Features>,
    /// Which device each name in `offloads` is, so that the journal and
    /// rollback follow the device, not the name (see [`NicId`]).
    #[serde(default)]
    pub nics: BTreeMap<String, NicId>,
    /// The `inet tcto_tune` table as it is now (`None`: absent, or not read
    /// because the profile has no NOTRACK flow).
    #[serde(default)]
    pub notrack_table: Option<NotrackTable>,
    /// Base filter chains (hook input, forward, output) of every other
    /// `ip`, `ip6` and `inet` table, decoded (read only for NOTRACK plans).
    #[serde(default)]
    pub filter_chains: Vec<FilterChain>,
}

impl SystemState {
    /// The value of `key` if present.
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls.get(key).and_then(|r| r.value.as_deref())
    }

    /// The integer value of `key` if present and numeric.
    pub fn sysctl_int(&self, key: &str) -> Option<i64> {
        self.sysctl(key).and_then(|v| v.trim().parse().ok())
    }

    /// Listening sockets on `port`.
    pub fn listeners_on(&self, port: u16) -> impl Iterator<Item = &ListenSocket> {
        self.listeners.iter().filter(move |l| l.port == port)
    }
}
