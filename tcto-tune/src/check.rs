//! Safety checks: pure functions from a draft plan to findings.
//!
//! A tuning tool that happily raises `somaxconn` to 65535 while the
//! application still asks for 511 has changed nothing but the operator's
//! confidence. Each check here encodes one such trap from the runbook. Codes
//! are stable kebab-case identifiers ([`FindingCode`], each variant with
//! its severity and meaning, as the README's table lists them); a refusing
//! finding stops `apply` unless the user passes `--allow CODE`.
//!
//! These are the sysctl checks; each kind of fix runs its own (see
//! [`crate::kind::FixKind::check`]), the planner runs them all.

use crate::change::{Change, ChangeKind};
use crate::fix::{key_info, REMOVED_KEYS};
use crate::words::{Action, Words};

pub use crate::finding::{allowable, Finding, FindingCode, Severity};
pub use crate::kind::CheckInput;

/// Bytes of kernel memory per conntrack entry (struct nf_conn and its
/// extensions, rounded as the runbook does).
pub const CONNTRACK_ENTRY_BYTES: u64 = 350;
/// Bytes per hash bucket (one hlist_nulls_head pointer).
pub const CONNTRACK_BUCKET_BYTES: u64 = 8;

impl CheckInput<'_> {
    fn change(&self, key: &str) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| c.kind() == ChangeKind::Sysctl && c.key() == key)
    }
    fn planned_int(&self, key: &str) -> Option<i64> {
        match self.change(key) {
            Some(c) => c.desired.trim().parse().ok(),
            None => self.state.sysctl_int(key),
        }
    }
}

/// `rp-filter-unknown-interface`, `rp-filter-all-strict`: a per-interface
/// `net.ipv4.conf.IFACE.rp_filter` key (the `rp-filter-loose` profile).
/// The kernel applies the larger of `conf.all` and the interface's value.
pub fn rp_filter_checks(input: &CheckInput) -> Vec<Finding> {
    let mut out = Vec::new();
    for raw in &input.profile.sysctl {
        let key = raw.key.as_str();
        let Some(iface) = key
            .strip_prefix("net.ipv4.conf.")
            .and_then(|k| k.strip_suffix(".rp_filter"))
            .filter(|i| !matches!(*i, "all" | "default"))
        else {
            continue;
        };
        if input
            .state
            .sysctls
            .get(key)
            .and_then(|r| r.value.as_ref())
            .is_none()
        {
            out.push(
                Finding::new(
                    FindingCode::RpFilterUnknownInterface,
                    Severity::Refuse,
                    format!("interface `{iface}` does not exist in this network namespace"),
                )
                .hint("list the interfaces with `ip -br link`"),
            );
            continue;
        }
        let all = input.state.sysctl_int("net.ipv4.conf.all.rp_filter");
        let wanted = input
            .change(key)
            .and_then(|c| c.desired.trim().parse::<i64>().ok());
        if let (Some(all), Some(w)) = (all, wanted) {
            if all > w {
                out.push(Finding::new(
                    FindingCode::RpFilterAllStrict,
                    Severity::Warn,
                    format!("net.ipv4.conf.all.rp_filter is {all}: the kernel applies the larger value, so `{iface}` stays at {all} until `all` is lowered too"),
                ));
            } else if all == 1 {
                out.push(Finding::new(
                    FindingCode::RpFilterAllStrict,
                    Severity::Warn,
                    format!("net.ipv4.conf.all.rp_filter is 1 (strict) for every other interface; on `{iface}` the larger value, {w}, applies"),
                ));
            }
        }
    }
    out
}

/// The hint of `somaxconn-above-app-backlog`: the declaration it ends with
/// is complete (the port and the planned somaxconn), so it runs as printed
/// once the application asks for that backlog.
fn app_backlog_hint(words: &dyn Words, port: u16, new: i64) -> String {
    let declare = words.instruct(&Action::AppBacklog {
        port,
        backlog: Some(new),
    });
    format!("raise the application's own backlog to {new} (nginx `listen ... backlog={new}`, gunicorn `--backlog {new}`, HAProxy `backlog {new}`, Java `ServerSocket(port, {new})`) and restart it, then {declare}")
}

/// `somaxconn-above-app-backlog`, `app-backlog-unknown`, `listener-not-found`,
/// `listener-needs-restart`.
pub fn backlog_checks(input: &CheckInput) -> Vec<Finding> {
    // A port named with no listener and no declared backlog is worth
    // saying whether or not somaxconn changes: the user named it for a
    // reason (a typo, a service that is down, another namespace).
    let mut out: Vec<Finding> = input
        .profile
        .listeners
        .iter()
        .filter(|l| l.backlog.is_none() && input.state.listeners_on(l.port).next().is_none())
        .map(|l| {
            Finding::new(
                FindingCode::ListenerNotFound,
                Severity::Info,
                format!(
                    "nothing listens on port {} here, and no backlog was declared for it",
                    l.port
                ),
            )
            .hint(format!(
                "declare the application's backlog with {}",
                input.words.name(&Action::AppBacklog {
                    port: l.port,
                    backlog: None
                })
            ))
        })
        .collect();
    let Some(change) = input.change("net.core.somaxconn") else {
        return out;
    };
    let Some(new) = change.desired.trim().parse::<i64>().ok() else {
        return out;
    };
    let current = input.state.sysctl_int("net.core.somaxconn");
    for l in &input.profile.listeners {
        let live: Vec<_> = input.state.listeners_on(l.port).collect();
        let app = match l.backlog {
            Some(b) => {
                // The app was reconfigured but the running socket still has
                // its old, smaller backlog (below somaxconn: not a clamp).
                let stale: Vec<String> = live
                    .iter()
                    .filter(|s| {
                        i64::from(s.backlog) < i64::from(b)
                            && current.is_some_and(|c| i64::from(s.backlog) < c)
                    })
                    .map(|s| format!("{}:{} has backlog {}", s.addr, s.port, s.backlog))
                    .collect();
                if !stale.is_empty() {
                    out.push(
                        Finding::new(FindingCode::ListenerNeedsRestart, Severity::Warn, format!(
                            "the application on port {} is declared with backlog {b}, but the running socket {}: restart it so listen() uses the new value", l.port, stale.join(", ")))
                            .hint("restart the service after apply; `ss -tln` Send-Q shows the effective backlog"),
                    );
                }
                Some(i64::from(b))
            }
            // Said above, whether or not somaxconn changes.
            None if live.is_empty() => None,
            None => {
                let wq = live.iter().map(|s| i64::from(s.backlog)).max().unwrap_or(0);
                match current {
                    Some(cur) if wq < cur => Some(wq),
                    _ => {
                        out.push(
                            Finding::new(FindingCode::AppBacklogUnknown, Severity::Warn, format!(
                                "the listener on port {} has backlog {wq}, equal to somaxconn: the kernel clamped it, so the application's own backlog is unknown (at least {wq})", l.port))
                                .hint(format!("find the backlog the application asks for and {}", input.words.instruct(&Action::AppBacklog { port: l.port, backlog: None }))),
                        );
                        None
                    }
                }
            }
        };
        if let Some(app) = app {
            if new > app {
                out.push(
                    Finding::new(FindingCode::SomaxconnAboveAppBacklog, Severity::Refuse, format!(
                        "the plan raises net.core.somaxconn to {new}, but the application on port {} asks for a backlog of {app}; its effective backlog stays min({app}, {new}) = {app}", l.port))
                        .hint(app_backlog_hint(input.words.get(), l.port, new)),
                );
            }
        }
    }
    if let Some(cur) = current {
        if new > cur {
            let clamped: Vec<String> = input
                .state
                .listeners
                .iter()
                .filter(|s| i64::from(s.backlog) >= cur)
                .map(|s| format!("{}:{}", s.addr, s.port))
                .collect();
            if !clamped.is_empty() {
                out.push(
                    Finding::new(FindingCode::ListenerNeedsRestart, Severity::Warn, format!(
                        "{} listener(s) were clamped to the old somaxconn {cur} and keep it until they call listen() again: {}", clamped.len(), clamped.join(", ")))
                        .hint("restart (or reload with a new listen()) these services after apply"),
                );
            }
        }
    }
    out
}

/// `conntrack-max-below-count`.
pub fn conntrack_max_below_count(input: &CheckInput) -> Vec<Finding> {
    let key = "net.netfilter.nf_conntrack_max";
    let (Some(_), Some(max), Some(count)) = (
        input.change(key),
        input.planned_int(key),
        input.state.sysctl_int("net.netfilter.nf_conntrack_count"),
    ) else {
        return vec![];
    };
    if max < count {
        return vec![Finding::new(FindingCode::ConntrackMaxBelowCount, Severity::Refuse, format!(
            "the plan sets nf_conntrack_max to {max}, below the {count} entries in the table now: new connections would be dropped at once"))
            .hint(format!("use a value above {count}, or `at_least` so the table only grows"))];
    }
    vec![]
}

/// `conntrack-memory`.
pub fn conntrack_memory(input: &CheckInput) -> Vec<Finding> {
    let max_key = "net.netfilter.nf_conntrack_max";
    let buckets_key = "net.netfilter.nf_conntrack_buckets";
    if input.change(max_key).is_none() && input.change(buckets_key).is_none() {
        return vec![];
    }
    let (Some(mem), Some(max)) = (input.state.mem_total_bytes, input.planned_int(max_key)) else {
        return vec![];
    };
    let buckets = input.planned_int(buckets_key).unwrap_or(0).max(0) as u64;
    let bytes = (max.max(0) as u64) * CONNTRACK_ENTRY_BYTES + buckets * CONNTRACK_BUCKET_BYTES;
    let pct = bytes as f64 * 100.0 / mem as f64;
    let mib = |b: u64| b / (1 << 20);
    let msg = format!(
        "a full conntrack table of {max} entries and {buckets} buckets needs about {} MiB, {pct:.1}% of {} MiB RAM",
        mib(bytes), mib(mem)
    );
    if pct > 20.0 {
        vec![
            Finding::new(FindingCode::ConntrackMemory, Severity::Refuse, msg).hint(
                "lower nf_conntrack_max, shorten conntrack timeouts, or NOTRACK trusted flows",
            ),
        ]
    } else if pct > 5.0 {
        vec![
            Finding::new(FindingCode::ConntrackMemory, Severity::Warn, msg)
                .hint("make sure the host can spare this memory under peak load"),
        ]
    } else {
        vec![]
    }
}

/// Longest sensible value of each conntrack TCP timeout, seconds.
fn timeout_limit(key: &str) -> i64 {
    if key.ends_with("established") {
        7 * 24 * 3600
    } else {
        3600
    }
}

/// `conntrack-timeout-range`.
pub fn conntrack_timeout_range(input: &CheckInput) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in input.profile.conntrack.targets() {
        let key = t.key.as_str();
        if !key.contains("_timeout_") {
            continue;
        }
        let Some(v) = t.desired.value.as_int() else {
            continue;
        };
        let limit = timeout_limit(key);
        if v <= 0 || v > limit {
            out.push(Finding::new(FindingCode::ConntrackTimeoutRange, Severity::Refuse, format!(
                "{key} = {v} seconds is outside 1..={limit}; the kernel would accept it and misbehave"))
                .hint("conntrack timeouts are seconds: the kernel default for established is 432000 (5 days), 600 is a common lowered value"));
        }
    }
    let est = "net.netfilter.nf_conntrack_tcp_timeout_established";
    if let (Some(_), Some(v), Some(keepalive)) = (
        input.change(est),
        input.planned_int(est),
        input.state.sysctl_int("net.ipv4.tcp_keepalive_time"),
    ) {
        if v > 0 && v < keepalive {
            out.push(Finding::new(FindingCode::ConntrackTimeoutRange, Severity::Warn, format!(
                "{est} = {v} is below net.ipv4.tcp_keepalive_time = {keepalive}: idle keep-alive connections lose their conntrack state before the first probe, and a stateful filter then drops them"))
                .hint(format!("use at least {keepalive}, or lower the applications' keep-alive interval below {v}")));
        }
    }
    out
}

/// `value-out-of-range`.
pub fn value_out_of_range(input: &CheckInput) -> Vec<Finding> {
    // The typed conntrack timeouts have their own, narrower range check
    // (`conntrack-timeout-range`): one finding for one bad value, not two.
    let timeouts: Vec<_> = input
        .profile
        .conntrack
        .targets()
        .into_iter()
        .filter(|t| t.key.as_str().contains("_timeout_"))
        .map(|t| t.key)
        .collect();
    input
        .profile
        .sysctl_targets()
        .iter()
        .filter(|t| !timeouts.contains(&t.key))
        .filter_map(|t| {
            let info = key_info(t.key.as_str())?;
            let v = t.desired.value.as_int()?;
            (v < info.min || v > info.max).then(|| {
                Finding::new(
                    FindingCode::ValueOutOfRange,
                    Severity::Refuse,
                    format!(
                        "{} = {v} is outside the kernel's range {}..={}",
                        info.name, info.min, info.max
                    ),
                )
                .hint("pick a value inside the range")
            })
        })
        .collect()
}

/// `removed-key`.
pub fn removed_keys(input: &CheckInput) -> Vec<Finding> {
    input
        .profile
        .sysctl
        .iter()
        .filter_map(|r| {
            let (_, why) = REMOVED_KEYS.iter().find(|(k, _)| *k == r.key.as_str())?;
            Some(
                Finding::new(
                    FindingCode::RemovedKey,
                    Severity::Refuse,
                    format!("{} no longer exists: {why}", r.key),
                )
                .hint("remove it from the profile"),
            )
        })
        .collect()
}
