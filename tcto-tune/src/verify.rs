//! `verify`: close the loop after a fix. Watch the drop counters and the
//! accept queues for a window; pass only if nothing was dropped and no
//! watched listener's queue reached its backlog.
//!
//! A fix that looks right on paper (somaxconn raised) can leave the
//! incident running: the listener keeps its old clamp until it calls
//! listen() again. So besides counting, verify names listeners whose
//! backlog still looks like an old somaxconn.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::change::{Target, Value};
use crate::diagnose::{queue_reached_backlog, wanted, CONNTRACK_DROP_COLUMNS, WATCHED_TCP_EXT};
use crate::journal::{StepStatus, TxRecord, TxState};
use crate::state::ListenSocket;
use crate::system::{Backends, CounterSample, SystemError};

/// Version of the JSON verdict.
pub const VERIFY_SCHEMA: u32 = 1;

/// The TcpExt counters whose growth fails verify (the others in
/// [`WATCHED_TCP_EXT`] are reported only: SYN cookies are a mitigation,
/// not a drop).
pub const FAILING_TCP_EXT: &[&str] = &["ListenOverflows", "ListenDrops", "TCPReqQFullDrop"];

/// somaxconn defaults of past kernels (128 before 5.4, 4096 since): a
/// listener stuck at one of these below today's somaxconn was probably
/// clamped when it started.
pub const OLD_SOMAXCONN_DEFAULTS: &[u32] = &[128, 4096];

/// Why verify could not watch.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
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

/// How to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How long to watch.
    pub window: Duration,
    /// How often to look at the accept queues within the window.
    pub step: Duration,
    /// Ports to watch; empty means every listener.
    pub ports: Vec<u16>,
    /// The somaxconn in force before the fix, when known.
    pub old_somaxconn: Option<u32>,
}

/// What was watched (plain data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Counters at the start.
    pub first: CounterSample,
    /// Counters at the end.
    pub last: CounterSample,
    /// Listener snapshots through the window.
    pub snapshots: Vec<Vec<ListenSocket>>,
    /// net.core.somaxconn at the end.
    pub somaxconn: Option<u32>,
}

/// A counter over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterCheck {
    /// `TcpExt` or `conntrack`.
    pub source: String,
    /// Counter name.
    pub name: String,
    /// At the start.
    pub before: u64,
    /// At the end.
    pub after: u64,
    /// Growth.
    pub delta: u64,
    /// Whether growth fails verify.
    pub fails: bool,
}

/// A watched listener over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerCheck {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Backlog (last seen).
    pub backlog: u32,
    /// Largest accept queue seen.
    pub peak_queue: u32,
    /// Whether the queue reached the backlog.
    pub reached_backlog: bool,
    /// When the backlog looks like an old somaxconn clamp: why.
    pub clamped: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// JSON schema version ([`VERIFY_SCHEMA`]).
    pub schema: u32,
    /// True when nothing failed.
    pub passed: bool,
    /// Milliseconds watched.
    pub window_ms: u64,
    /// Listener snapshots taken.
    pub snapshots: usize,
    /// Counters.
    pub counters: Vec<CounterCheck>,
    /// Watched listeners.
    pub listeners: Vec<ListenerCheck>,
    /// Why it failed, one line each.
    pub failures: Vec<String>,
    /// Warnings that do not fail it (clamped listeners).
    pub warnings: Vec<String>,
    /// The old somaxconn clamped listeners were compared with (`None`: the
    /// past kernel defaults 128 and 4096 were).
    pub old_somaxconn: Option<u32>,
}

fn read<T>(what: &'static str, r: Result<T, SystemError>) -> Result<T, VerifyError> {
    r.map_err(|source| VerifyError::Read { what, source })
}

/// The somaxconn the newest applied transaction replaced, from the journal
/// records (oldest first): the clamp listeners started before it still have.
pub fn old_somaxconn_from_journal(records: &[TxRecord]) -> Option<u32> {
    records
        .iter()
        .rev()
        .filter(|r| {
            matches!(
                r.state,
                TxState::Applied | TxState::Abandoned | TxState::Open
            )
        })
        .flat_map(|r| r.steps.iter())
        .find(|s| {
            s.status == StepStatus::Applied
                && matches!(&s.target, Target::Sysctl { key } if key.as_str() == "net.core.somaxconn")
        })
        .and_then(|s| match &s.before {
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        })
}

/// Watch the counters and queues for `opts.window`.
pub fn watch(b: &Backends, opts: &VerifyOptions) -> Result<Watch, VerifyError> {
    let start = Instant::now();
    let first = read("counters", b.counters.sample())?;
    let mut snapshots = vec![read("listening sockets", b.sockets.listeners())?];
    let step = opts.step.max(Duration::from_millis(10));
    while start.elapsed() < opts.window {
        let left = opts.window.saturating_sub(start.elapsed());
        std::thread::sleep(step.min(left));
        snapshots.push(read("listening sockets", b.sockets.listeners())?);
    }
    let last = read("counters", b.counters.sample())?;
    let key = crate::names::SysctlName::new("net.core.somaxconn").expect("valid");
    let somaxconn =
        read("net.core.somaxconn", b.sysctls.read(&key))?.and_then(|v| v.trim().parse().ok());
    Ok(Watch {
        first,
        last,
        snapshots,
        somaxconn,
    })
}

/// Watch, then judge.
pub fn verify(b: &Backends, opts: &VerifyOptions) -> Result<Verdict, VerifyError> {
    Ok(judge(&watch(b, opts)?, opts))
}

/// Judge a watch (pure).
pub fn judge(w: &Watch, opts: &VerifyOptions) -> Verdict {
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let counters = counter_checks(w);
    for c in counters.iter().filter(|c| c.fails && c.delta > 0) {
        failures.push(format!(
            "{} {} grew by {} ({} -> {})",
            c.source, c.name, c.delta, c.before, c.after
        ));
    }
    let mut listeners = peak_listeners(w, opts);
    for l in &mut listeners {
        judge_listener(l, w, opts, &mut failures, &mut warnings);
    }
    for p in &opts.ports {
        if !listeners.iter().any(|l| l.port == *p) {
            failures.push(format!("nothing listens on port {p}"));
        }
    }
    Verdict {
        schema: VERIFY_SCHEMA,
        passed: failures.is_empty(),
        window_ms: w.last.at_ms.saturating_sub(w.first.at_ms),
        snapshots: w.snapshots.len(),
        counters,
        listeners,
        failures,
        warnings,
        old_somaxconn: opts.old_somaxconn,
    }
}

/// The watched TcpExt and conntrack counters, first sample against last.
fn counter_checks(w: &Watch) -> Vec<CounterCheck> {
    let mut counters = Vec::new();
    for name in WATCHED_TCP_EXT {
        let (Some(b), Some(a)) = (w.first.tcp_ext.get(*name), w.last.tcp_ext.get(*name)) else {
            continue;
        };
        counters.push(CounterCheck {
            source: "TcpExt".into(),
            name: (*name).into(),
            before: *b,
            after: *a,
            delta: a.saturating_sub(*b),
            fails: FAILING_TCP_EXT.contains(name),
        });
    }
    if let (Some(b), Some(a)) = (&w.first.conntrack, &w.last.conntrack) {
        for name in CONNTRACK_DROP_COLUMNS {
            let (Some(x), Some(y)) = (b.columns.get(*name), a.columns.get(*name)) else {
                continue;
            };
            counters.push(CounterCheck {
                source: "conntrack".into(),
                name: (*name).into(),
                before: *x,
                after: *y,
                delta: y.saturating_sub(*x),
                fails: true,
            });
        }
    }
    counters
}

/// Each wanted listener once, with its peak queue over the snapshots and
/// its last backlog, by port then address (not judged yet).
fn peak_listeners(w: &Watch, opts: &VerifyOptions) -> Vec<ListenerCheck> {
    let mut listeners: Vec<ListenerCheck> = Vec::new();
    for snap in &w.snapshots {
        for l in snap.iter().filter(|l| wanted(&opts.ports, l.port)) {
            match listeners
                .iter_mut()
                .find(|c| c.addr == l.addr && c.port == l.port)
            {
                Some(c) => {
                    c.peak_queue = c.peak_queue.max(l.queue);
                    c.backlog = l.backlog;
                }
                None => listeners.push(ListenerCheck {
                    addr: l.addr,
                    port: l.port,
                    backlog: l.backlog,
                    peak_queue: l.queue,
                    reached_backlog: false,
                    clamped: None,
                }),
            }
        }
    }
    listeners.sort_by_key(|a| (a.port, a.addr));
    listeners
}

/// A listener fails when its queue reached its backlog, and warns when its
/// backlog looks clamped by an old somaxconn.
fn judge_listener(
    l: &mut ListenerCheck,
    w: &Watch,
    opts: &VerifyOptions,
    failures: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let at = std::net::SocketAddr::new(l.addr, l.port);
    l.reached_backlog = queue_reached_backlog(l.peak_queue, l.backlog);
    if l.reached_backlog {
        failures.push(format!(
            "listener {at}: accept queue reached {} of backlog {}",
            l.peak_queue, l.backlog
        ));
    }
    if let Some(now) = w.somaxconn.filter(|s| l.backlog < *s) {
        let old = match opts.old_somaxconn {
            Some(o) => l.backlog == o,
            None => OLD_SOMAXCONN_DEFAULTS.contains(&l.backlog),
        };
        if old {
            let why = format!(
                "backlog {} is below somaxconn {now} and equals an old somaxconn: the service was probably clamped when it started; restart it so listen() picks up {now}",
                l.backlog
            );
            warnings.push(format!("listener {at}: {why}"));
            l.clamped = Some(why);
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "verify: {} after {:.1} s ({} queue snapshots)",
            if self.passed { "PASS" } else { "FAIL" },
            self.window_ms as f64 / 1000.0,
            self.snapshots
        )?;
        use crate::escape::escape_control as esc;
        for x in &self.failures {
            writeln!(f, "  fail: {}", esc(x))?;
        }
        for x in &self.warnings {
            writeln!(f, "  warn: {}", esc(x))?;
        }
        writeln!(f, "counters:")?;
        for c in &self.counters {
            writeln!(
                f,
                "  {} {}: {} -> {} (+{}){}",
                c.source,
                c.name,
                c.before,
                c.after,
                c.delta,
                if c.fails { "" } else { " (reported only)" }
            )?;
        }
        writeln!(f, "listeners:")?;
        if self.listeners.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for l in &self.listeners {
            writeln!(
                f,
                "  {}: peak queue {} of backlog {}{}",
                std::net::SocketAddr::new(l.addr, l.port),
                l.peak_queue,
                l.backlog,
                if l.reached_backlog { " REACHED" } else { "" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::procfs::ConntrackStat;
    use crate::state::{SysctlReading, SystemState};
    use crate::system::SimCounters;

    fn sample(at_ms: u64, overflows: u64, drop: u64, cookies: u64) -> CounterSample {
        CounterSample {
            at_ms,
            tcp_ext: BTreeMap::from([
                ("ListenOverflows".into(), overflows),
                ("ListenDrops".into(), overflows),
                ("TCPReqQFullDrop".into(), 0),
                ("SyncookiesSent".into(), cookies),
            ]),
            conntrack: Some(ConntrackStat {
                entries: Some(5),
                columns: BTreeMap::from([
                    ("drop".into(), drop),
                    ("insert_failed".into(), 0),
                    ("early_drop".into(), 0),
                ]),
                cpus: 1,
            }),
            ..Default::default()
        }
    }

    fn l(port: u16, queue: u32, backlog: u32) -> ListenSocket {
        ListenSocket {
            addr: "10.0.1.1".parse().unwrap(),
            port,
            queue,
            backlog,
            inode: 1,
        }
    }

    fn opts(ports: &[u16]) -> VerifyOptions {
        VerifyOptions {
            window: Duration::from_secs(5),
            step: Duration::from_millis(200),
            ports: ports.to_vec(),
            old_somaxconn: None,
        }
    }

    #[test]
    fn passes_when_nothing_grew_and_queues_stayed_below() {
        let w = Watch {
            first: sample(0, 10, 3, 0),
            last: sample(5_000, 10, 3, 7),
            snapshots: vec![vec![l(8080, 0, 1024)], vec![l(8080, 40, 1024)]],
            somaxconn: Some(8192),
        };
        let v = judge(&w, &opts(&[8080]));
        assert!(v.passed, "{v}");
        assert_eq!(v.window_ms, 5_000);
        assert_eq!(v.listeners[0].peak_queue, 40);
        // SYN cookies grew: reported, not failing.
        let c = v
            .counters
            .iter()
            .find(|c| c.name == "SyncookiesSent")
            .unwrap();
        assert_eq!((c.delta, c.fails), (7, false));
        assert!(v.to_string().starts_with("verify: PASS after 5.0 s"));
    }

    #[test]
    fn fails_with_deltas_on_overflows_drops_and_a_full_queue() {
        let w = Watch {
            first: sample(0, 10, 3, 0),
            last: sample(5_000, 25, 4, 0),
            snapshots: vec![vec![l(8080, 9, 8)]],
            somaxconn: Some(4096),
        };
        let v = judge(&w, &opts(&[8080]));
        assert!(!v.passed);
        let f = v.failures.join("\n");
        assert!(
            f.contains("TcpExt ListenOverflows grew by 15 (10 -> 25)"),
            "{f}"
        );
        assert!(f.contains("conntrack drop grew by 1 (3 -> 4)"), "{f}");
        assert!(
            f.contains("10.0.1.1:8080: accept queue reached 9 of backlog 8"),
            "{f}"
        );
    }

    #[test]
    fn an_idle_listener_with_backlog_zero_has_not_reached_it() {
        let w = Watch {
            snapshots: vec![vec![l(8080, 0, 0)]],
            ..Default::default()
        };
        assert!(judge(&w, &opts(&[8080])).passed);
        let w = Watch {
            snapshots: vec![vec![l(8080, 1, 0)]],
            ..Default::default()
        };
        assert!(!judge(&w, &opts(&[8080])).passed);
    }

    #[test]
    fn missing_watched_listener_fails() {
        let w = Watch {
            snapshots: vec![vec![]],
            ..Default::default()
        };
        let v = judge(&w, &opts(&[8080]));
        assert_eq!(v.failures, vec!["nothing listens on port 8080"]);
        // Without ports, nothing to watch is not a failure.
        assert!(judge(&w, &opts(&[])).passed);
    }

    #[test]
    fn flags_a_listener_clamped_by_an_old_somaxconn() {
        let w = Watch {
            snapshots: vec![vec![l(8080, 0, 128), l(9090, 0, 511)]],
            somaxconn: Some(4096),
            ..Default::default()
        };
        let v = judge(&w, &opts(&[]));
        assert!(v.passed, "a warning does not fail verify");
        assert_eq!(v.warnings.len(), 1);
        assert!(v.warnings[0].contains("10.0.1.1:8080") && v.warnings[0].contains("restart"));
        assert!(v.listeners[1].clamped.is_none());
        // A known old value replaces the guess.
        let mut o = opts(&[]);
        o.old_somaxconn = Some(511);
        let v = judge(&w, &o);
        assert!(v.listeners[1].clamped.is_some() && v.listeners[0].clamped.is_none());
        // At the current somaxconn it is not "old".
        let w = Watch {
            snapshots: vec![vec![l(8080, 0, 4096)]],
            somaxconn: Some(4096),
            ..Default::default()
        };
        assert!(judge(&w, &opts(&[])).warnings.is_empty());
    }

    #[test]
    fn old_somaxconn_comes_from_the_newest_applied_transaction() {
        use crate::change::ChangeKind;
        use crate::journal::Step;
        let rec = |id: &str, state, before: &str, status| TxRecord {
            format: 1,
            id: id.into(),
            command: "apply".into(),
            profile: "backlog-overflow".into(),
            started: String::new(),
            updated: String::new(),
            state,
            steps: vec![Step {
                kind: ChangeKind::Sysctl,
                key: "net.core.somaxconn".into(),
                target: Target::Sysctl {
                    key: "net.core.somaxconn".parse().unwrap(),
                },
                before: Value::Text(before.into()),
                after: Value::Text("8192".into()),
                status,
                error: None,
                remedy: None,
                note: None,
            }],
            boot_id: None,
            notes: vec![],
        };
        let records = vec![
            rec("000001", TxState::Applied, "128", StepStatus::Applied),
            rec("000002", TxState::Applied, "1024", StepStatus::Applied),
            rec("000003", TxState::Undone, "4096", StepStatus::Reverted),
            rec("000004", TxState::Applied, "9", StepStatus::Unchanged),
        ];
        assert_eq!(old_somaxconn_from_journal(&records), Some(1024));
        assert_eq!(old_somaxconn_from_journal(&records[2..]), None);
        assert_eq!(old_somaxconn_from_journal(&[]), None);
    }

    #[test]
    fn watch_samples_queues_through_the_window() {
        let mut state = SystemState::default();
        state
            .sysctls
            .insert("net.core.somaxconn".into(), SysctlReading::rw("4096"));
        state.listeners = vec![l(8080, 3, 1024)];
        let mut b = Backends::simulated(&state);
        b.counters = Box::new(SimCounters::new([sample(0, 1, 0, 0), sample(100, 2, 0, 0)]));
        let o = VerifyOptions {
            window: Duration::from_millis(100),
            step: Duration::from_millis(20),
            ..opts(&[8080])
        };
        let v = verify(&b, &o).unwrap();
        assert!(v.snapshots >= 3, "{v}");
        assert!(!v.passed);
        assert_eq!(
            v.failures,
            vec![
                "TcpExt ListenOverflows grew by 1 (1 -> 2)",
                "TcpExt ListenDrops grew by 1 (1 -> 2)"
            ]
        );
    }
}
