//! Findings: what a safety check or a scope rule reports, and the table of
//! every code. A leaf module: the planner, the checks and each kind of fix
//! produce [`Finding`]s without importing one another.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::escape::escape_control;
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
