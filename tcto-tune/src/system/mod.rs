//! Backends: the only code that touches the operating system.
//!
//! Each concern is a small trait ([`Sysctls`], [`Sockets`], [`Host`],
//! [`Counters`], [`Connector`]) with a
//! Linux implementation and a simulated one. The simulated backends are not
//! test doubles bolted on the side: dry-run *is* a transaction run against
//! them, seeded from the live state, so what dry-run prints is what the
//! same code does for real.

mod connect;
mod counters;
mod ctnetlink;
mod effects;
mod ethtool;
mod faults;
mod files;
mod linux;
mod nft;
mod nldump;
mod offloads;
mod owners;
pub(crate) mod route;
mod sim;
mod sockdiag;
mod tracefs;

pub use connect::{Attempt, Connector, Outcome, TcpConnector};
pub use counters::{CounterSample, Counters, KernelLog, LinuxCounters, Process, SimCounters};
pub use effects::{Effects, LinuxEffects, Router, SimEffects, SimFault};
pub use ethtool::LinuxOffloads;
pub use faults::{Checkpoint, FaultPlan};
pub use files::read_persist_facts;
pub use linux::{has_net_admin, LinuxHost, LinuxSysctls};
pub use nft::Nft;
pub use offloads::{Located, Offloads, SetReport, SimOffloads};
pub use route::{RouteQuery, RouteReply, Routes, Rtnetlink, SimRoutes};
pub use sim::{SimFiles, SimFirewall, SimHost, SimSockets, SimSysctls};
pub use sockdiag::{SockDiag, SynRecv};
pub use tracefs::{TraceError, TraceSession};

// Internal helpers, shared with the rest of the crate only.
pub(crate) use connect::resolve;
pub(crate) use faults::refused;
pub(crate) use offloads::{locate, read_group, write_group};

use crate::change::Value;
use crate::names::SysctlName;
use crate::notrack::{FilterChain, NotrackTable};
use crate::state::{ListenSocket, SystemState};

/// The end of [`SystemError::OtherNamespace`]'s text: how to name the
/// namespace one is in. A front end's rollback words go before it.
pub(crate) const NETNS_IDENTIFY: &str = " (`ip netns identify` names the current one)";

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
        /// `on`, `off`, or a journaled mixed reading.
        wanted: String,
        /// What kept it.
        why: String,
    },
    /// The device an offload target was planned on is no longer in this
    /// namespace (deleted, or moved away); a device now holding its name
    /// is another one and is never touched in its place.
    #[error("{why}")]
    InterfaceGone {
        /// The interface name the target was planned with.
        iface: String,
        /// What was found instead, in one line.
        why: String,
    },
    /// An offload step was journaled in another network namespace: its
    /// ifindex names nothing (or something else) here.
    ///
    /// The text states the facts; a front end adds how to roll back there
    /// (a step's [`crate::words::Remedy::RollbackInItsNamespace`]).
    #[error("`{iface}` was changed in network namespace net:[{was}] and this is net:[{now}]: its ifindex means nothing here{NETNS_IDENTIFY}")]
    OtherNamespace {
        /// The interface name the target was planned with.
        iface: String,
        /// The namespace inode it was planned in.
        was: u64,
        /// This namespace's inode.
        now: u64,
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
    /// An nftables netlink step failed (EPERM: not root; EOPNOTSUPP:
    /// no nf_tables; any other: the kernel refused that message, and the
    /// batch as a whole).
    #[error("nftables: cannot {step}{}", nft_why(.source))]
    Nftables {
        /// The step or the batch message, e.g. `add rule to chain output: ...`.
        step: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// libnftnl or libmnl could not be loaded (they load when nftables is
    /// first used, not at start).
    #[error("nftables: {why}")]
    NftLibrary {
        /// What dlopen or dlsym said, naming the library.
        why: String,
    },
    /// The `inet tcto_tune` table holds something tcto-tune did not write.
    #[error("table inet tcto_tune holds content tcto-tune did not write: {what}")]
    NftContent {
        /// What.
        what: String,
    },
    /// After the batch, the table does not hold what was written.
    #[error("table inet tcto_tune read back after the write differs from what was written:\nwanted:\n{wanted}got:\n{got}")]
    NftReadBack {
        /// What was written, as nft prints it.
        wanted: String,
        /// What was read back.
        got: String,
    },
    /// A fault a [`FaultPlan`] injected (tests only).
    #[error("injected fault: {what}")]
    Injected {
        /// What the fault was.
        what: &'static str,
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
            | SystemError::Nftables { source, .. }
            | SystemError::File { source, .. } => source.raw_os_error(),
            SystemError::FileIsSymlink { .. } => Some(libc::ELOOP),
            SystemError::InterfaceGone { .. } => Some(libc::ENODEV),
            SystemError::Unsupported { .. }
            | SystemError::NftLibrary { .. }
            | SystemError::Injected { .. }
            | SystemError::OffloadNotTaken { .. }
            | SystemError::OtherNamespace { .. }
            | SystemError::NftContent { .. }
            | SystemError::NftReadBack { .. } => None,
        }
    }
}

fn nft_why(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => " (permission denied: needs root or CAP_NET_ADMIN)",
        Some(libc::EOPNOTSUPP | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT) => {
            " (is the nf_tables kernel module available?)"
        }
        _ => "",
    }
}

/// Read nftables state.
pub trait Firewall {
    /// The `inet tcto_tune` table, or `None` when absent.
    fn notrack_table(&self) -> Result<Option<NotrackTable>, SystemError>;
    /// Base filter chains of the other tables (see [`SystemState::filter_chains`]).
    fn filter_chains(&self) -> Result<Vec<FilterChain>, SystemError>;
    /// Every chain of every table with its rules, handles, counters and
    /// limits (for `diagnose`; a backend without a ruleset has none).
    fn ruleset(&self) -> Result<Vec<crate::observed::FwChain>, SystemError> {
        Ok(vec![])
    }
    /// Legacy iptables tables present (`iptables filter`), whose rules are
    /// not nftables rules.
    fn legacy_tables(&self) -> Vec<String> {
        vec![]
    }
    /// Make the `inet tcto_tune` table hold `table` (`None`: delete it), in
    /// one atomic batch. A backend that cannot write refuses.
    fn write_table(&mut self, _table: Option<&NotrackTable>) -> Result<(), SystemError> {
        Err(SystemError::Unsupported {
            what: "writing the table inet tcto_tune".into(),
        })
    }
}

/// Read and write the files tcto-tune owns (persist).
pub trait Files {
    /// What `path` holds (`Value::Absent` when nothing), for a transaction
    /// about to change it.
    fn read(&mut self, path: &std::path::Path) -> Result<Value, SystemError>;
    /// Make `path` hold `value`: bytes, a symbolic link, or nothing.
    fn write(&mut self, path: &std::path::Path, value: &Value) -> Result<(), SystemError>;
}

/// The files of this host.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxFiles;

impl Files for LinuxFiles {
    fn read(&mut self, path: &std::path::Path) -> Result<Value, SystemError> {
        files::read_target(path)
    }
    fn write(&mut self, path: &std::path::Path, value: &Value) -> Result<(), SystemError> {
        files::write_file(path, value)
    }
}

/// Read and write sysctls.
pub trait Sysctls {
    /// The value, or `None` when the key does not exist.
    fn read(&self, key: &SysctlName) -> Result<Option<String>, SystemError>;
    /// Whether this process may write the key here.
    fn writable(&self, key: &SysctlName) -> bool;
    /// The value and whether the key is writable here ([`Sysctls::read`]
    /// and [`Sysctls::writable`] at once: a backend may answer both from
    /// one open file), or `None` when the key does not exist.
    fn read_with_writable(&self, key: &SysctlName) -> Result<Option<(String, bool)>, SystemError> {
        Ok(self.read(key)?.map(|v| (v, self.writable(key))))
    }
    /// Write the value (the caller reads it back).
    fn write(&mut self, key: &SysctlName, value: &str) -> Result<(), SystemError>;
    /// Write the value and return what the key holds afterwards, read from
    /// the system (a backend whose write already reads back saves a read).
    fn write_read_back(
        &mut self,
        key: &SysctlName,
        value: &str,
    ) -> Result<Option<String>, SystemError> {
        self.write(key, value)?;
        self.read(key)
    }
}

/// List listening sockets.
pub trait Sockets {
    /// Every listening TCP socket, IPv4 and IPv6.
    fn listeners(&self) -> Result<Vec<ListenSocket>, SystemError>;
    /// Every half-open (SYN-RECV) request socket, IPv4 and IPv6 (for
    /// `diagnose`; a backend without them has none).
    fn syn_recv(&self) -> Result<Vec<SynRecv>, SystemError> {
        Ok(vec![])
    }
}

/// Facts about the host.
pub trait Host {
    /// `MemTotal`, bytes.
    fn mem_total_bytes(&self) -> Result<Option<u64>, SystemError>;
    /// Whether we run in the initial network namespace.
    fn in_initial_netns(&self) -> Result<bool, SystemError>;
}

/// The backends a caller hands to [`read_state`](crate::read_state) and to the transaction.
pub struct Backends {
    /// Sysctls.
    pub sysctls: Box<dyn Sysctls>,
    /// Listening sockets.
    pub sockets: Box<dyn Sockets>,
    /// Host facts.
    pub host: Box<dyn Host>,
    /// NIC features.
    pub offloads: Box<dyn Offloads>,
    /// nftables.
    pub firewall: Box<dyn Firewall>,
    /// Counters for `diagnose` and `verify`.
    pub counters: Box<dyn Counters>,
    /// Persisted files.
    pub files: Box<dyn Files>,
    /// Route lookups for `diagnose`'s reverse-path evidence.
    pub routes: Box<dyn Routes>,
}

impl Backends {
    /// The live system.
    pub fn linux() -> Self {
        Backends {
            sysctls: Box::new(LinuxSysctls),
            sockets: Box::new(SockDiag),
            host: Box::new(LinuxHost),
            offloads: Box::new(LinuxOffloads),
            firewall: Box::new(Nft),
            counters: Box::new(LinuxCounters),
            files: Box::new(LinuxFiles),
            routes: Box::new(Rtnetlink),
        }
    }

    /// Simulated backends holding `state`: the read side of the one
    /// simulated host, [`SimEffects::from_state`]`(state).`[`backends`](SimEffects::backends)`()`.
    pub fn simulated(state: &SystemState) -> Self {
        SimEffects::from_state(state).backends()
    }

    /// The per-concern simulated backends over `state` (and `files`).
    fn of_state(state: &SystemState, files: SimFiles) -> Self {
        Backends {
            sysctls: Box::new(SimSysctls::from_state(state)),
            sockets: Box::new(SimSockets(state.listeners.clone())),
            host: Box::new(SimHost {
                mem_total_bytes: state.mem_total_bytes,
                in_initial_netns: state.in_initial_netns,
            }),
            offloads: Box::new(SimOffloads::from_state(state)),
            firewall: Box::new(SimFirewall {
                table: state.notrack_table.clone(),
                chains: state.filter_chains.clone(),
            }),
            counters: Box::new(SimCounters::default()),
            files: Box::new(files),
            routes: Box::new(SimRoutes::default()),
        }
    }
}
