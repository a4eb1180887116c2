//! Safety checks: pure functions from a draft plan to findings.
//!
//! A tuning tool that happily raises `somaxconn` to 65535 while the
//! application still asks for 511 has changed nothing but the operator's
//! confidence. Each check here encodes one such trap from the runbook. Codes
//! are stable kebab-case identifiers (documented in [`CODES`] and the
//! README); a refusing finding stops `apply` unless the user passes
//! `--allow CODE`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::change::{Change, ChangeKind};
use crate::escape::escape_control;
use crate::fix::{key_info, REMOVED_KEYS};
use crate::profile::Profile;
use crate::state::SystemState;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Probably wrong or incomplete; does not stop apply.
    Warn,
    /// Unsafe: apply stops unless the code is allowed.
    Refuse,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Refuse => "refuse",
        })
    }
}

/// One result of a safety check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable kebab-case code.
    pub code: String,
    /// Severity.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// True when the user allowed this code with `--allow`.
    #[serde(default)]
    pub allowed: bool,
}

impl Finding {
    /// A new finding.
    pub fn new(code: &str, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            code: code.into(),
            severity,
            message: message.into(),
            hint: None,
            allowed: false,
        }
    }
    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Whether this finding stops apply. A code no allowance lifts
    /// ([`allowable`]) blocks even when marked allowed: whoever set the
    /// flag (a caller of the library, a hand-edited plan), the refusal holds.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Refuse && !(self.allowed && allowable(&self.code))
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = if self.allowed && allowable(&self.code) {
            format!("{} (allowed)", self.severity)
        } else {
            self.severity.to_string()
        };
        write!(
            f,
            "{sev} [{}] {}",
            escape_control(&self.code),
            escape_control(&self.message)
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {}", escape_control(h))?;
        }
        Ok(())
    }
}

/// Every finding and skip code with its severity and meaning.
pub const CODES: &[(&str, &str, &str)] = &[
    ("somaxconn-above-app-backlog", "refuse", "the plan raises somaxconn above the backlog a named application asked for; the effective backlog is the smaller of the two, so the change does nothing for it"),
    ("app-backlog-unknown", "warn", "a named listener's backlog equals somaxconn (it was clamped), so the application's own backlog is unknown; pass --app-backlog PORT=N"),
    ("listener-not-found", "info", "a named port has no listening socket here and no declared backlog"),
    ("listener-needs-restart", "warn", "listeners opened before the change keep their old clamp until they call listen() again"),
    ("conntrack-max-below-count", "refuse", "the planned nf_conntrack_max is below the current entry count"),
    ("conntrack-memory", "warn/refuse", "the planned conntrack table may use more than 5% (warn) or 20% (refuse) of RAM at about 350 bytes an entry plus 8 a bucket"),
    ("conntrack-timeout-range", "warn/refuse", "a conntrack timeout is not positive or absurdly long (refuse), or the established timeout is below tcp_keepalive_time (warn)"),
    ("value-out-of-range", "refuse", "a value is outside the kernel's bounds for the key"),
    ("removed-key", "refuse", "the key was removed from the kernel"),
    ("unknown-sysctl", "refuse", "a raw [sysctl] key does not exist on this host"),
    ("key-runs-program", "refuse (never allowed)", "the key makes the kernel run a program or load code as root (`kernel.core_pattern` starting with `|` or `@`, set or replaced, `kernel.modprobe`, `kernel.hotplug`, `kernel.poweroff_cmd`, `kernel.usermodehelper.*`, `fs.binfmt_misc.*`, `fs.ocfs2.nm.hb_ctl_path`): never planned, kept or persisted, and no `--allow` lifts it"),
    ("key-outside-scope", "refuse", "a key outside `net.` (`vm.*`, `kernel.*`, `fs.*`...): not a TCP connect-timeout setting, and one value for the whole host; allow it when the change is deliberate"),
    ("key-host-wide", "skip", "from a child network namespace (a container), a host-wide key (outside `net.`, a global `net.` key such as nf_conntrack_max, or a `net.` key absent from this namespace) would change the host's value; allowing it plans the write anyway"),
    ("not-writable-here", "skip", "the key is read-only here (a global key inside a child network namespace); allowing it plans the write anyway"),
    ("key-missing", "skip", "a typed key does not exist (e.g. nf_conntrack not loaded); allowing it plans the write anyway"),
    ("rp-filter-unknown-interface", "refuse", "a `net.ipv4.conf.IFACE.rp_filter` key (rp-filter-loose) names an interface this network namespace does not have"),
    ("rp-filter-all-strict", "warn", "net.ipv4.conf.all.rp_filter is 1 (strict): other interfaces stay strict; the interface's own loose value still applies, since the kernel uses the larger"),
    ("offload-unknown-interface", "refuse", "an [[offload]] entry names an interface this network namespace does not have; the hint lists the ones it has"),
    ("offload-fixed", "refuse", "the driver does not let the feature take the wanted value (`[fixed]` in `ethtool -k`); applying anyway fails at read-back and rolls back"),
    ("offload-cpu-cost", "warn", "the plan turns tso, gso or gro off: the CPU then segments or merges every packet; a diagnostic step, not a permanent fix"),
    ("offload-on-loopback", "refuse", "the plan changes offloads of `lo`, which has no NIC and cannot be the cause of connect timeouts"),
    ("offload-dependency-off", "refuse", "the plan turns tso or gso on while a feature the kernel requires for it is off (`sg`, checksum offload): the kernel would keep it off (`off [requested on]`)"),
    ("notrack-unscoped", "refuse", "a NOTRACK flow lacks `from`, `to` or `port`, mixes IPv4 and IPv6, or covers every address (0.0.0.0/0, ::/0); flows lacking a field are never planned"),
    ("notrack-breaks-stateful-filter", "refuse", "a base chain of another table that the flow's packets cross (any hook, following jump and goto) lets them through tracked but would drop them untracked; add `ct state untracked accept` to it"),
    ("notrack-filter-undecided", "refuse", "the walk of such a chain cannot tell whether untracked packets get through (a verdict map, a set or match it does not read, a loop or the jump depth bound); the finding names the chain and the rule"),
    ("notrack-flows-overlap", "refuse/info", "two NOTRACK flows (same family and port) overlap without one holding the other (refuse, both named: past 32 flows the kernel refuses overlapping set elements), or one lies inside another (info: planned once, as the wider)"),
    ("notrack-foreign-content", "refuse", "the `inet tcto_tune` table holds a rule, chain or set tcto-tune did not write (named, with the nft command that removes it); no NOTRACK change is planned over it, even when allowed"),
    ("notrack-flows-kept", "info", "the NOTRACK table keeps flows applied earlier: by other profiles, or by this profile and not named by this run (`--replace` replaces those)"),
    ("notrack-loopback", "warn", "a NOTRACK flow is on loopback, where conntrack first sees packets at OUTPUT: the output chain also gets the request direction"),
    ("notrack-bypasses-conntrack", "info", "NOTRACKed flows bypass NAT and conntrack-based accounting"),
    ("persist-overridden-by", "refuse/warn", "persist: another sysctl.d file (or /etc/sysctl.conf) applied after 99-tcto-tune.conf sets one of our keys to another value, so it would win at boot; the finding names FILE:LINE; with --allow it is a warning"),
    ("persist-also-set", "info", "persist: another file sets one of our keys but ours wins at boot (applied before ours, or after it with the same value)"),
    ("persist-runtime-manager", "warn", "persist: kube-proxy or TuneD is present; both rewrite conntrack and backlog sysctls at their own start, after systemd-sysctl"),
    ("persist-target-symlink", "refuse", "persist: a symbolic link sits where tcto-tune would write a file; it is never followed (allowing the code does not make the write follow it)"),
    ("persist-unit-own-path", "warn", "persist: the boot unit it writes runs a binary outside the package's /usr/bin (a build tree, ~/.cargo/bin); the unit fails at boot once that file is gone"),
    ("persist-foreign-file", "refuse", "persist: a file at a path tcto-tune writes (e.g. /etc/sysctl.d/99-tcto-tune.conf) has no tcto-tune header, so someone else wrote it; with --allow it is replaced, and its content is journaled so rollback restores it"),
    ("persist-root-escape", "refuse", "persist: a path under --root leads out of the root through a symbolic link that climbs above it (absolute links are taken inside the root, as systemd's --root does); never allowed"),
    ("persist-entries-conflict", "refuse", "persist: two persisted profiles set the same sysctl, or the same offload feature of an interface, to different values; names both (never allowed: remove one with `persist --remove`)"),
    ("persist-entry-unreadable", "refuse", "persist: an entry in /etc/tcto-tune/persisted.d cannot be read (corrupt, not UTF-8, a link, its name differs from its file); names the file (never allowed: fix it or `persist --remove` it)"),
    ("persist-bad-name", "refuse", "persist: the profile's name cannot be a file name in /etc/tcto-tune/persisted.d"),
    ("conntrack-built-in", "info/skip", "persist: nf_conntrack is built into the kernel, so no modules-load.d or modprobe.d file is written (hash size: kernel command line)"),
];

/// Codes that `--allow` (or a profile's `allow`) can never lift.
pub const NOT_ALLOWABLE: &[&str] = &["key-runs-program"];

/// Whether `--allow CODE` may lift `code`.
pub fn allowable(code: &str) -> bool {
    !NOT_ALLOWABLE.contains(&code)
}

/// Bytes of kernel memory per conntrack entry (struct nf_conn and its
/// extensions, rounded as the runbook does).
pub const CONNTRACK_ENTRY_BYTES: u64 = 350;
/// Bytes per hash bucket (one hlist_nulls_head pointer).
pub const CONNTRACK_BUCKET_BYTES: u64 = 8;

/// Inputs every check sees.
pub struct CheckInput<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// The observed state.
    pub state: &'a SystemState,
    /// The changes the planner drafted.
    pub changes: &'a [Change],
}

impl CheckInput<'_> {
    fn change(&self, key: &str) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| c.kind == ChangeKind::Sysctl && c.key == key)
    }
    fn planned_int(&self, key: &str) -> Option<i64> {
        match self.change(key) {
            Some(c) => c.desired.trim().parse().ok(),
            None => self.state.sysctl_int(key),
        }
    }
}

/// Run every check.
pub fn run_all(input: &CheckInput) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(backlog_checks(input));
    out.extend(conntrack_max_below_count(input));
    out.extend(conntrack_memory(input));
    out.extend(conntrack_timeout_range(input));
    out.extend(value_out_of_range(input));
    out.extend(removed_keys(input));
    out.extend(crate::offload::checks(input));
    out.extend(crate::notrack::checks(input));
    out.extend(rp_filter_checks(input));
    out
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
                    "rp-filter-unknown-interface",
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
                    "rp-filter-all-strict",
                    Severity::Warn,
                    format!("net.ipv4.conf.all.rp_filter is {all}: the kernel applies the larger value, so `{iface}` stays at {all} until `all` is lowered too"),
                ));
            } else if all == 1 {
                out.push(Finding::new(
                    "rp-filter-all-strict",
                    Severity::Warn,
                    format!("net.ipv4.conf.all.rp_filter is 1 (strict) for every other interface; on `{iface}` the larger value, {w}, applies"),
                ));
            }
        }
    }
    out
}

/// The hint of `somaxconn-above-app-backlog`: the flag it ends with is
/// complete (the port and the planned somaxconn), so it runs as printed once
/// the application asks for that backlog.
fn app_backlog_hint(port: u16, new: i64) -> String {
    format!("raise the application's own backlog to {new} (nginx `listen ... backlog={new}`, gunicorn `--backlog {new}`, HAProxy `backlog {new}`, Java `ServerSocket(port, {new})`) and restart it, then pass `--app-backlog {port}={new}`")
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
                "listener-not-found",
                Severity::Info,
                format!(
                    "nothing listens on port {} here, and no backlog was declared for it",
                    l.port
                ),
            )
            .hint(format!(
                "declare the application's backlog with `--app-backlog {}=N`",
                l.port
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
                        Finding::new("listener-needs-restart", Severity::Warn, format!(
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
                            Finding::new("app-backlog-unknown", Severity::Warn, format!(
                                "the listener on port {} has backlog {wq}, equal to somaxconn: the kernel clamped it, so the application's own backlog is unknown (at least {wq})", l.port))
                                .hint(format!("find the backlog the application asks for and pass `--app-backlog {}=N`", l.port)),
                        );
                        None
                    }
                }
            }
        };
        if let Some(app) = app {
            if new > app {
                out.push(
                    Finding::new("somaxconn-above-app-backlog", Severity::Refuse, format!(
                        "the plan raises net.core.somaxconn to {new}, but the application on port {} asks for a backlog of {app}; its effective backlog stays min({app}, {new}) = {app}", l.port))
                        .hint(app_backlog_hint(l.port, new)),
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
                    Finding::new("listener-needs-restart", Severity::Warn, format!(
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
        return vec![Finding::new("conntrack-max-below-count", Severity::Refuse, format!(
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
        vec![Finding::new("conntrack-memory", Severity::Refuse, msg)
            .hint("lower nf_conntrack_max, shorten conntrack timeouts, or NOTRACK trusted flows")]
    } else if pct > 5.0 {
        vec![Finding::new("conntrack-memory", Severity::Warn, msg)
            .hint("make sure the host can spare this memory under peak load")]
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
            out.push(Finding::new("conntrack-timeout-range", Severity::Refuse, format!(
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
            out.push(Finding::new("conntrack-timeout-range", Severity::Warn, format!(
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
                    "value-out-of-range",
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
                    "removed-key",
                    Severity::Refuse,
                    format!("{} no longer exists: {why}", r.key),
                )
                .hint("remove it from the profile"),
            )
        })
        .collect()
}
