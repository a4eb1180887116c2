//! Counters for `diagnose` and `verify`: TcpExt, conntrack stats, interface
//! drops, socket owners and the kernel log.
//!
//! Everything here is read from files the current network namespace sees:
//! /proc/net/* is per network namespace (of the reading process), which is
//! why interface counters come from /proc/net/dev and not /sys/class/net
//! (that shows the namespace /sys was mounted in). The parsing is in
//! [`crate::procfs`]; this module only reads and hands text over.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::OnceLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::SystemError;
use crate::observed::{ConntrackGroups, CtAggregator};
use crate::procfs::{self, ConntrackStat, KmsgRecord, NetDevStats, SoftnetCpu};

/// One reading of the counters `diagnose` and `verify` compare over time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSample {
    /// Milliseconds on a monotonic clock (only differences mean anything).
    pub at_ms: u64,
    /// The `TcpExt` section of /proc/net/netstat, by name.
    pub tcp_ext: BTreeMap<String, u64>,
    /// /proc/net/stat/nf_conntrack summed over CPUs; `None` when
    /// nf_conntrack is not loaded.
    pub conntrack: Option<ConntrackStat>,
    /// `net.netfilter.nf_conntrack_count`, when present.
    pub conntrack_count: Option<u64>,
    /// `net.netfilter.nf_conntrack_max`, when present.
    pub conntrack_max: Option<u64>,
    /// Interface counters from /proc/net/dev.
    pub interfaces: Vec<NetDevStats>,
    /// Per-CPU input-queue counters from /proc/net/softnet_stat (global:
    /// every namespace sees the host's).
    #[serde(default)]
    pub softnet: Vec<SoftnetCpu>,
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Command name (/proc/PID/comm).
    pub name: String,
}

/// What the kernel log says about conntrack, when it can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLog {
    /// Whether /dev/kmsg could be read.
    pub readable: bool,
    /// Why not, when it could not.
    pub error: Option<String>,
    /// Records read.
    pub records: u64,
    /// Our network namespace's inode number (as the kernel names it in
    /// "table full in netns N").
    pub netns: Option<u64>,
    /// The kernel's clock (microseconds since boot) when the log was read.
    pub now_usec: u64,
    /// "nf_conntrack: table full" records about this namespace (or not
    /// naming one: older kernels).
    pub table_full: u64,
    /// Such records naming other namespaces.
    pub table_full_elsewhere: u64,
    /// The last few of ours.
    pub last_table_full: Vec<KmsgRecord>,
    /// When each of ours was logged (microseconds since boot, oldest
    /// first; the newest `KMSG_KEEP_TIMES` only), so a diagnosis can
    /// tell lines of the sampling window from history.
    #[serde(default)]
    pub table_full_usec: Vec<u64>,
}

/// Reads the counters. Linux reads /proc; the simulated one replays samples.
pub trait Counters {
    /// Take one sample now.
    fn sample(&self) -> Result<CounterSample, SystemError>;
    /// The processes owning these socket inodes, where readable (best effort:
    /// other users' processes need root).
    fn owners(&self, inodes: &BTreeSet<u32>) -> BTreeMap<u32, Process>;
    /// The conntrack "table full" lines of the kernel log.
    fn kernel_log(&self) -> KernelLog;
    /// The conntrack table grouped by who fills it (a streamed dump).
    /// `established_timeout_s` tells idle entries apart.
    fn conntrack_groups(&self, established_timeout_s: Option<u32>) -> ConntrackGroups {
        let _ = established_timeout_s;
        ConntrackGroups {
            error: Some("not available from this backend".into()),
            ..Default::default()
        }
    }
    /// This namespace's interface addresses with their prefix lengths.
    fn local_subnets(&self) -> Vec<(std::net::IpAddr, u8)> {
        vec![]
    }
}

/// Most reads of /dev/kmsg (one record each; the ring buffer holds far fewer).
const KMSG_MAX_RECORDS: u64 = 200_000;
/// How many "table full" records to keep.
const KMSG_KEEP: usize = 5;
/// How many "table full" timestamps to keep (the kernel rate-limits the
/// line, so a few thousand cover any ring buffer).
pub const KMSG_KEEP_TIMES: usize = 4096;

/// The live counters of this process's network namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxCounters;

fn read(path: &str) -> Result<Option<String>, SystemError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SystemError::Proc {
            path: path.into(),
            source,
        }),
    }
}

fn parse_err(path: &str) -> impl Fn(procfs::ParseError) -> SystemError + '_ {
    move |e| SystemError::Proc {
        path: path.into(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    }
}

fn monotonic_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Counters for LinuxCounters {
    fn conntrack_groups(&self, established_timeout_s: Option<u32>) -> ConntrackGroups {
        let mut agg = CtAggregator::new(established_timeout_s);
        match super::ctnetlink::dump_conntrack(|e| agg.add(e)) {
            Ok(()) => agg.finish(),
            Err(e) => ConntrackGroups {
                error: Some(crate::error_chain::error_chain(&e)),
                ..Default::default()
            },
        }
    }

    fn local_subnets(&self) -> Vec<(std::net::IpAddr, u8)> {
        super::ctnetlink::local_subnets()
    }

    fn sample(&self) -> Result<CounterSample, SystemError> {
        let at_ms = monotonic_ms();
        let netstat = "/proc/net/netstat";
        let tcp_ext = match read(netstat)? {
            Some(t) => procfs::parse_netstat(&t)
                .map_err(parse_err(netstat))?
                .remove("TcpExt")
                .unwrap_or_default(),
            None => BTreeMap::new(),
        };
        let ct = "/proc/net/stat/nf_conntrack";
        let conntrack = read(ct)?
            .map(|t| procfs::parse_conntrack_stat(&t).map_err(parse_err(ct)))
            .transpose()?;
        let int = |path: &str| -> Result<Option<u64>, SystemError> {
            Ok(read(path)?.and_then(|t| t.trim().parse().ok()))
        };
        let dev = "/proc/net/dev";
        let interfaces = match read(dev)? {
            Some(t) => procfs::parse_net_dev(&t).map_err(parse_err(dev))?,
            None => vec![],
        };
        let sn = "/proc/net/softnet_stat";
        let softnet = match read(sn)? {
            Some(t) => procfs::parse_softnet_stat(&t).map_err(parse_err(sn))?,
            None => vec![],
        };
        Ok(CounterSample {
            softnet,
            at_ms,
            tcp_ext,
            conntrack,
            conntrack_count: int("/proc/sys/net/netfilter/nf_conntrack_count")?,
            conntrack_max: int("/proc/sys/net/netfilter/nf_conntrack_max")?,
            interfaces,
        })
    }

    fn owners(&self, inodes: &BTreeSet<u32>) -> BTreeMap<u32, Process> {
        super::owners::socket_owners(inodes)
    }

    fn kernel_log(&self) -> KernelLog {
        let mut log = KernelLog::default();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg");
        let mut file = match file {
            Ok(f) => f,
            Err(e) => {
                log.error = Some(format!("/dev/kmsg: {e}"));
                return log;
            }
        };
        log.readable = true;
        log.netns = std::fs::read_link("/proc/thread-self/ns/net")
            .ok()
            .and_then(|l| {
                let l = l.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?;
                l.parse().ok()
            });
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        log.now_usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
        // One read returns one record; 8 KiB is the kernel's record limit.
        let mut buf = vec![0u8; 8192];
        let mut last = VecDeque::new();
        let mut times = VecDeque::new();
        let mut pending = String::new();
        let mut reads = 0u64;
        while reads < KMSG_MAX_RECORDS {
            reads += 1;
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // /dev/kmsg returns one record per read; a file standing
                    // in for it (a test's bind mount) returns many, maybe
                    // with a record cut at the buffer's end.
                    pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                    let complete = pending.rfind('\n').map_or(0, |i| i + 1);
                    let text: String = pending.drain(..complete).collect();
                    for line in text.lines().filter(|l| !l.starts_with(' ')) {
                        log.records += 1;
                        let Some(r) = procfs::parse_kmsg_record(line) else {
                            continue;
                        };
                        if !procfs::is_conntrack_table_full(&r.message) {
                            continue;
                        }
                        let theirs = procfs::table_full_netns(&r.message);
                        if theirs.is_some() && log.netns.is_some() && theirs != log.netns {
                            log.table_full_elsewhere += 1;
                        } else {
                            log.table_full += 1;
                            if last.len() == KMSG_KEEP {
                                last.pop_front();
                            }
                            if times.len() == KMSG_KEEP_TIMES {
                                times.pop_front();
                            }
                            times.push_back(r.usec);
                            last.push_back(r);
                        }
                    }
                }
                // EPIPE: the record was overwritten while we read; go on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log.error = Some(format!("/dev/kmsg: {e}"));
                    break;
                }
            }
        }
        log.last_table_full = last.into();
        log.table_full_usec = times.into();
        log
    }
}

/// Replays prepared samples (the last one repeats): what tests and fixture
/// runs of `diagnose` and `verify` read.
#[derive(Debug, Default)]
pub struct SimCounters {
    samples: RefCell<VecDeque<CounterSample>>,
    last: RefCell<CounterSample>,
    /// Socket owners to report.
    pub owners: BTreeMap<u32, Process>,
    /// Kernel log to report.
    pub kernel_log: KernelLog,
    /// Conntrack groups to report.
    pub groups: ConntrackGroups,
    /// Local addresses to report.
    pub subnets: Vec<(std::net::IpAddr, u8)>,
}

impl SimCounters {
    /// Samples returned in order by [`Counters::sample`].
    pub fn new(samples: impl IntoIterator<Item = CounterSample>) -> Self {
        SimCounters {
            samples: RefCell::new(samples.into_iter().collect()),
            ..Default::default()
        }
    }
}

impl Counters for SimCounters {
    fn sample(&self) -> Result<CounterSample, SystemError> {
        if let Some(s) = self.samples.borrow_mut().pop_front() {
            *self.last.borrow_mut() = s;
        }
        Ok(self.last.borrow().clone())
    }
    fn owners(&self, inodes: &BTreeSet<u32>) -> BTreeMap<u32, Process> {
        self.owners
            .iter()
            .filter(|(i, _)| inodes.contains(i))
            .map(|(i, p)| (*i, p.clone()))
            .collect()
    }
    fn kernel_log(&self) -> KernelLog {
        self.kernel_log.clone()
    }
    fn conntrack_groups(&self, _: Option<u32>) -> ConntrackGroups {
        self.groups.clone()
    }
    fn local_subnets(&self) -> Vec<(std::net::IpAddr, u8)> {
        self.subnets.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_sample_has_tcp_ext_and_interfaces() {
        let s = LinuxCounters.sample().unwrap();
        assert!(s.tcp_ext.contains_key("ListenOverflows"));
        assert!(s.interfaces.iter().any(|i| i.iface == "lo"));
        if let (Some(ct), Some(count)) = (&s.conntrack, s.conntrack_count) {
            assert!(ct.cpus >= 1);
            // Both are the namespace's count; it may move between the reads.
            assert!(ct.entries.is_some(), "{count}");
        }
    }

    #[test]
    fn finds_the_owner_of_our_own_listener() {
        use std::os::unix::fs::MetadataExt as _;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&l);
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino() as u32;
        let owners = LinuxCounters.owners(&BTreeSet::from([inode]));
        assert_eq!(owners[&inode].pid, std::process::id());
        assert!(LinuxCounters.owners(&BTreeSet::new()).is_empty());
    }

    #[test]
    fn sim_replays_then_repeats() {
        let a = CounterSample {
            at_ms: 1,
            ..Default::default()
        };
        let b = CounterSample {
            at_ms: 2,
            ..Default::default()
        };
        let sim = SimCounters::new([a, b]);
        let got: Vec<u64> = (0..3).map(|_| sim.sample().unwrap().at_ms).collect();
        assert_eq!(got, vec![1, 2, 2]);
    }
}
