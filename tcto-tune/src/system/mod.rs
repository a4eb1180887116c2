//! Backends: the only code that touches the operating system.
//!
//! Each concern is a small trait ([`Sysctls`], [`Sockets`], [`Host`]) with a
//! Linux implementation and a simulated one. The simulated backends are not
//! test doubles bolted on the side: dry-run *is* a transaction run against
//! them, seeded from the live state, so what dry-run prints is what the
//! same code does for real.

mod effects;
mod ethtool;
mod files;
mod linux;
mod offloads;
mod sim;
mod sockdiag;

use std::collections::BTreeSet;

pub use effects::{Effects, LinuxEffects, SimEffects, SimFault};
pub use ethtool::LinuxOffloads;
pub use files::{check_root, read_file, read_persist_facts, write_file, FILE_MODE};
pub use linux::{has_net_admin, LinuxHost, LinuxSysctls};
pub use offloads::{read_group, write_group, Offloads, SetReport, SimOffloads};
pub use sim::{SimHost, SimSockets, SimSysctls};
pub use sockdiag::SockDiag;

use crate::names::SysctlName;
use crate::profile::Profile;
use crate::state::{ListenSocket, SysctlReading, SystemState};

/// Why a backend call failed. Each variant names what it was working on.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// Reading a sysctl failed (other than "does not exist").
    #[error("cannot read sysctl `{key}`")]
    SysctlRead {
        /// Key.
        key: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a sysctl write.
    #[error("cannot write `{value}` to sysctl `{key}`")]
    SysctlWrite {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// Cause (EACCES: read-only here; EINVAL: value refused; ENOENT: missing).
        #[source]
        source: std::io::Error,
    },
    /// A netlink exchange failed.
    #[error("netlink {step} failed")]
    Netlink {
        /// Which step (open, send, receive, decode...).
        step: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading a file under /proc or /sys failed.
    #[error("cannot read `{path}`")]
    Proc {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An ethtool ioctl failed (ENODEV: no such interface; EPERM: not root).
    #[error("ethtool {step} on `{iface}` failed")]
    Ethtool {
        /// Interface.
        iface: String,
        /// Which step (GSSET_INFO, GSTRINGS, GFEATURES, SFEATURES...).
        step: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel accepted a feature change that did not take (a fixed
    /// feature, or one whose dependency is off).
    #[error("`{iface} {feature}` is still not {wanted} after setting it: {why}")]
    OffloadNotTaken {
        /// Interface.
        iface: String,
        /// User-facing feature (`tso`...).
        feature: String,
        /// `on` or `off`.
        wanted: &'static str,
        /// What kept it.
        why: String,
    },
    /// A file operation failed (persist).
    #[error("cannot {action} `{path}`")]
    File {
        /// What was being done.
        action: &'static str,
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link sits where tcto-tune writes a regular file.
    #[error("refusing to write `{path}`: it is a symbolic link to `{link}`, and tcto-tune never follows one at its target")]
    FileIsSymlink {
        /// Path.
        path: String,
        /// Where the link points.
        link: String,
    },
    /// This kind of change has no backend on this build.
    #[error("{what} is not supported by this backend")]
    Unsupported {
        /// What was asked.
        what: String,
    },
}

impl SystemError {
    /// The OS error number behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SystemError::SysctlRead { source, .. }
            | SystemError::SysctlWrite { source, .. }
            | SystemError::Netlink { source, .. }
            | SystemError::Proc { source, .. }
            | SystemError::Ethtool { source, .. }
            | SystemError::File { source, .. } => source.raw_os_error(),
            SystemError::FileIsSymlink { .. } => Some(libc::ELOOP),
            SystemError::Unsupported { .. } | SystemError::OffloadNotTaken { .. } => None,
        }
    }
}

/// Read and write sysctls.
pub trait Sysctls {
    /// The value, or `None` when the key does not exist.
    fn read(&self, key: &SysctlName) -> Result<Option<String>, SystemError>;
    /// Whether this process may write the key here.
    fn writable(&self, key: &SysctlName) -> bool;
    /// Write the value (the caller reads it back).
    fn write(&mut self, key: &SysctlName, value: &str) -> Result<(), SystemError>;
}

/// List listening sockets.
pub trait Sockets {
    /// Every listening TCP socket, IPv4 and IPv6.
    fn listeners(&self) -> Result<Vec<ListenSocket>, SystemError>;
}

/// Facts about the host.
pub trait Host {
    /// `MemTotal`, bytes.
    fn mem_total_bytes(&self) -> Result<Option<u64>, SystemError>;
    /// Whether we run in the initial network namespace.
    fn in_initial_netns(&self) -> Result<bool, SystemError>;
}

/// The backends a caller hands to [`read_state`] and to the transaction.
pub struct Backends {
    /// Sysctls.
    pub sysctls: Box<dyn Sysctls>,
    /// Listening sockets.
    pub sockets: Box<dyn Sockets>,
    /// Host facts.
    pub host: Box<dyn Host>,
    /// NIC features.
    pub offloads: Box<dyn Offloads>,
}

impl Backends {
    /// The live system.
    pub fn linux() -> Self {
        Backends {
            sysctls: Box::new(LinuxSysctls),
            sockets: Box::new(SockDiag),
            host: Box::new(LinuxHost),
            offloads: Box::new(LinuxOffloads),
        }
    }

    /// Simulated backends holding `state`: what dry-run and tests run against.
    pub fn simulated(state: &SystemState) -> Self {
        Backends {
            sysctls: Box::new(SimSysctls::from_state(state)),
            sockets: Box::new(SimSockets(state.listeners.clone())),
            host: Box::new(SimHost {
                mem_total_bytes: state.mem_total_bytes,
                in_initial_netns: state.in_initial_netns,
            }),
            offloads: Box::new(SimOffloads::from_state(state)),
        }
    }
}

/// Sysctls read for the checks even when the profile does not set them.
pub const CONTEXT_KEYS: &[&str] = &[
    "net.core.somaxconn",
    "net.netfilter.nf_conntrack_count",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.ipv4.tcp_keepalive_time",
];

/// Read everything the planner needs to plan `profile` on this host.
pub fn read_state(profile: &Profile, b: &Backends) -> Result<SystemState, SystemError> {
    let mut keys: BTreeSet<SysctlName> = profile
        .sysctl_targets()
        .into_iter()
        .map(|t| t.key)
        .collect();
    keys.extend(
        CONTEXT_KEYS
            .iter()
            .map(|k| SysctlName::new(k).expect("valid")),
    );
    let mut state = SystemState {
        in_initial_netns: b.host.in_initial_netns()?,
        mem_total_bytes: b.host.mem_total_bytes()?,
        listeners: b.sockets.listeners()?,
        ..Default::default()
    };
    for key in keys {
        let reading = match b.sysctls.read(&key)? {
            Some(v) => SysctlReading {
                writable: b.sysctls.writable(&key),
                value: Some(v),
            },
            None => SysctlReading::missing(),
        };
        state.sysctls.insert(key.as_str().to_owned(), reading);
    }
    if !profile.offloads.is_empty() {
        state.interfaces = b.offloads.interfaces()?;
        for o in &profile.offloads {
            if let Some(f) = b.offloads.features(&o.iface)? {
                state
                    .offloads
                    .insert(o.iface.to_string(), crate::offload::relevant(&f));
            }
        }
    }
    Ok(state)
}
