//! Findings: what a safety check or a scope rule reports, and every code
//! ([`FindingCode`]). A leaf module: the planner, the checks and each kind
//! of fix produce [`Finding`]s without importing one another.

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
    pub code: FindingCode,
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
    pub fn new(code: FindingCode, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            code,
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
    /// ([`FindingCode::allowable`]) blocks even when marked allowed: whoever
    /// set the flag (a caller of the library, a hand-edited plan), the
    /// refusal holds.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Refuse && !(self.allowed && self.code.allowable())
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = if self.allowed && self.code.allowable() {
            format!("{} (allowed)", self.severity)
        } else {
            self.severity.to_string()
        };
        write!(
            f,
            "{sev} [{}] {}",
            escape_control(self.code.as_str()),
            escape_control(&self.message)
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {}", escape_control(h))?;
        }
        Ok(())
    }
}

/// Defines a code enum: one entry per variant, `Variant = "code",
/// "severity", "meaning";` (finding codes) or `Variant = "code",
/// "meaning";` (cause codes). The variant's serde name is its kebab-case
/// name (a test checks it equals the code); the macro writes the variant's
/// doc, [`ALL`](FindingCode::ALL), `as_str`, `severity`, `meaning` (each an
/// exhaustive match: a new variant cannot be left undocumented), `Display`,
/// `FromStr` and comparisons with `&str` (so `f.code == "key-missing"`
/// reads as before). Codes order as their strings do.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($variant:ident = $code:literal, $sev:literal, $meaning:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $(
                #[doc = concat!("`", $code, "` (", $sev, "): ", $meaning, ".")]
                $variant,
            )*
        }

        impl $name {
            /// Its severity as the docs' tables state it (`refuse`, `warn /
            /// refuse`, `skip`...): a skip code marks a setting the plan
            /// leaves alone.
            pub const fn severity(self) -> &'static str {
                match self {
                    $($name::$variant => $sev,)*
                }
            }
            /// What it means, as the docs' tables state it (markdown).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $($name::$variant => $meaning,)*
                }
            }
        }

        $crate::finding::code_enum!(@common $name $($variant = $code)*);
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($variant:ident = $code:literal, $meaning:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $(
                #[doc = concat!("`", $code, "`: ", $meaning, ".")]
                $variant,
            )*
        }

        impl $name {
            /// What it means.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $($name::$variant => $meaning,)*
                }
            }
        }

        $crate::finding::code_enum!(@common $name $($variant = $code)*);
    };
    (@common $name:ident $($variant:ident = $code:literal)*) => {
        impl $name {
            /// Every code, in the order of the docs' listings.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable kebab-case string (the JSON and text form).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::finding::UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == s)
                    .ok_or_else(|| $crate::finding::UnknownCode {
                        code: s.to_owned(),
                        known: $name::ALL.iter().map(|c| c.as_str()).collect(),
                    })
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }
    };
}
pub(crate) use code_enum;

/// A string that is no known code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode {
    /// The string given.
    pub code: String,
    /// Every known code, in the order of the docs.
    pub known: Vec<&'static str>,
}

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown code `{}`; known codes: {}",
            escape_control(&self.code),
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownCode {}

code_enum! {
    /// Every finding and skip code. The JSON and text name is the
    /// kebab-case string ([`FindingCode::as_str`]); the README's "Safety
    /// checks" table lists each code with [`severity`](FindingCode::severity)
    /// and [`meaning`](FindingCode::meaning), and a test holds the two
    /// equal.
    pub enum FindingCode {
        SomaxconnAboveAppBacklog = "somaxconn-above-app-backlog", "refuse",
            "the plan raises somaxconn above the backlog a named application asked for: its effective backlog stays the application's";
        AppBacklogUnknown = "app-backlog-unknown", "warn",
            "a named listener's backlog equals somaxconn (it was clamped): the application's own backlog is unknown; pass `--app-backlog PORT=N`";
        ListenerNotFound = "listener-not-found", "info",
            "a named port has no listener here and no declared backlog";
        ListenerNeedsRestart = "listener-needs-restart", "warn",
            "listeners opened before the change keep their old clamp until they call `listen()` again; they are named";
        ConntrackMaxBelowCount = "conntrack-max-below-count", "refuse",
            "the planned `nf_conntrack_max` is below the current entry count";
        ConntrackMemory = "conntrack-memory", "warn / refuse",
            "a full table (about 350 bytes an entry plus 8 a bucket) would use more than 5% / 20% of RAM";
        ConntrackTimeoutRange = "conntrack-timeout-range", "warn / refuse",
            "a timeout is not positive or absurdly long (refuse); the established timeout is below `tcp_keepalive_time` (warn)";
        ValueOutOfRange = "value-out-of-range", "refuse",
            "outside the kernel's bounds for the key";
        RemovedKey = "removed-key", "refuse",
            "the key was removed from the kernel (e.g. `tcp_tw_recycle`, 4.12)";
        UnknownSysctl = "unknown-sysctl", "refuse",
            "a raw `[sysctl]` key does not exist here";
        KeyRunsProgram = "key-runs-program", "refuse, **never allowed**",
            "the key makes the kernel run a program or load code as root: `kernel.core_pattern` starting with `|` or `@` (set, or replaced while it is one: its rollback would write it), `kernel.modprobe`, `kernel.hotplug`, `kernel.poweroff_cmd`, `kernel.usermodehelper.*`, `fs.binfmt_misc.*`, `fs.ocfs2.nm.hb_ctl_path`. Never planned, kept or persisted; `--allow key-runs-program` is a usage error, and so is the code in a profile's `allow`";
        KeyOutsideScope = "key-outside-scope", "refuse",
            "a key outside `net.` (`vm.*`, `kernel.*`, `fs.*`...): not a connect-timeout setting, and one value for the whole host; allow it when the change is deliberate";
        KeyHostWide = "key-host-wide", "skip",
            "from a child network namespace (a container): a key outside `net.`, a global `net.` key (`nf_conntrack_max`, `nf_conntrack_buckets`, `netdev_max_backlog`) or a `net.` key absent from this namespace would change the host's value, even where the kernel lets the container write it (`vm.swappiness` is mode 0644 there)";
        NotWritableHere = "not-writable-here", "skip",
            "read-only here (after `--allow key-host-wide`: `nf_conntrack_max` is read-only inside a child network namespace)";
        KeyMissing = "key-missing", "skip",
            "a typed key does not exist (nf_conntrack not loaded)";
        RpFilterUnknownInterface = "rp-filter-unknown-interface", "refuse",
            "a `net.ipv4.conf.IFACE.rp_filter` key (`rp-filter-loose`) names an interface this namespace does not have";
        RpFilterAllStrict = "rp-filter-all-strict", "warn",
            "`net.ipv4.conf.all.rp_filter` is 1: other interfaces stay strict; the interface's own loose value still applies (the kernel uses the larger)";
        OffloadUnknownInterface = "offload-unknown-interface", "refuse",
            "the profile names an interface this network namespace does not have; the hint lists the ones it has. Also the skip code of its toggles";
        OffloadFixed = "offload-fixed", "refuse",
            "the driver does not let the toggle take the wanted value (`[fixed]` in `ethtool -k`). `--allow` plans it anyway; apply then fails at read-back and rolls back";
        OffloadCpuCost = "offload-cpu-cost", "warn",
            "the plan turns `tso`, `gso` or `gro` off: the CPU then segments or merges every packet itself. A diagnostic step, not a permanent fix";
        OffloadOnLoopback = "offload-on-loopback", "refuse",
            "the plan changes offloads of `lo`, which has no NIC and is never the culprit";
        OffloadDependencyOff = "offload-dependency-off", "refuse",
            "the plan turns `tso` or `gso` on while a feature the kernel requires for it is off (`sg`; checksum offload for `tso`). The kernel would take the request and keep the group off (`off [requested on]`). The hint is the `ethtool -K IFACE sg on` to run first (or, when the driver fixes the dependency off, to drop the toggle). `--allow` plans it anyway; apply then fails at read-back, names the dependency, and rolls back";
        NotrackUnscoped = "notrack-unscoped", "refuse / warn",
            "refuse: a flow lacks `from`, `to` or `port` (never planned; shown as skipped), mixes IPv4 and IPv6, covers every address (`0.0.0.0/0`, `::/0`), or the flows' `from` (or `to`) subnets together cover every address (`0.0.0.0/1` + `128.0.0.0/1`); warn: together they span a block wider than a /8 (IPv4) or /32 (IPv6), or a flow's `from` equals its `to`";
        NotrackBreaksStatefulFilter = "notrack-breaks-stateful-filter", "refuse",
            "a base chain (type filter or route, any hook) of another table, walked through its jumps and gotos, lets the flow's packets through tracked but would drop them untracked; the finding quotes the rules it read, the hint names the rule to add";
        NotrackFilterUndecided = "notrack-filter-undecided", "refuse",
            "the walk of such a chain cannot tell (a verdict map or set not on `ct state`, a match it does not model, a missing chain, a loop, the 16-jump depth bound); names the chain and the rule";
        NotrackFlowsOverlap = "notrack-flows-overlap", "refuse / info",
            "refuse: two flows (same family and port) overlap without one holding the other, both named (past 32 flows the kernel refuses overlapping set elements; the dry run refuses them the same way); info: a flow lies inside another and is planned once, as the wider";
        NotrackForeignContent = "notrack-foreign-content", "refuse",
            "the `inet tcto_tune` table holds a rule, chain or set tcto-tune did not write: named with its handle and the `nft` command that removes it; no NOTRACK change is planned over it (even allowed); `rollback` names it, `rollback --force` restores our journaled table without it";
        NotrackFlowsKept = "notrack-flows-kept", "info",
            "the NOTRACK table keeps flows applied earlier (by other profiles, or by this one and not named now); `--replace` replaces this profile's";
        NotrackLoopback = "notrack-loopback", "warn",
            "a flow is on loopback (both `from` and `to` reach into 127.0.0.0/8 or ::1; decided by those ranges only): its request direction is NOTRACKed in `output` too, and local clients become untracked";
        NotrackBypassesConntrack = "notrack-bypasses-conntrack", "info",
            "NOTRACKed flows bypass NAT and conntrack-based accounting";
        PersistOverriddenBy = "persist-overridden-by", "refuse (warn with `--allow`)",
            "a file applied after ours sets one of our keys to another value, or cancels it with a negative line `-KEY`; names `FILE:LINE` and the value at boot";
        PersistAlsoSet = "persist-also-set", "info",
            "another line sets one of our keys, but ours wins (applied before ours, after with the same value, or a glob: systemd never applies a glob to an explicit key)";
        PersistRuntimeManager = "persist-runtime-manager", "warn",
            "kube-proxy or TuneD is present (binary, config or a running process); both rewrite conntrack and backlog values at their own start, after systemd-sysctl";
        PersistTargetSymlink = "persist-target-symlink", "refuse",
            "a symlink sits where persist writes a file; it is never followed";
        PersistUnitOwnPath = "persist-unit-own-path", "warn",
            "the boot unit persist writes runs a binary outside the package's `/usr/bin` (a build tree, `~/.cargo/bin`): it fails at boot once that file is gone";
        PersistForeignFile = "persist-foreign-file", "refuse (warn with `--allow`)",
            "a file at one of our paths has no `Written by tcto-tune` header: someone else wrote it; replaced or removed only with `--allow`, and its content is journaled either way (`rollback` restores it)";
        PersistRootEscape = "persist-root-escape", "refuse (never allowed)",
            "a path under `--root` leads out of it through a link whose `..` climbs above the root; names the link";
        PersistEntriesConflict = "persist-entries-conflict", "refuse (never allowed)",
            "two persisted profiles set the same sysctl or offload feature to different values; names both";
        PersistEntryUnreadable = "persist-entry-unreadable", "refuse (never allowed)",
            "an entry in `/etc/tcto-tune/persisted.d` cannot be read; names the file";
        PersistBadName = "persist-bad-name", "refuse",
            "the profile's name cannot be a file name in persisted.d";
        ConntrackBuiltIn = "conntrack-built-in", "info / skip",
            "nf_conntrack is built in: no modules-load.d or modprobe.d file";
    }
}

impl FindingCode {
    /// Whether `--allow CODE` (or a profile's `allow`) may lift it. Only
    /// `key-runs-program` is never allowable: the flag is a usage error.
    pub const fn allowable(self) -> bool {
        use FindingCode::*;
        match self {
            KeyRunsProgram => false,
            SomaxconnAboveAppBacklog
            | AppBacklogUnknown
            | ListenerNotFound
            | ListenerNeedsRestart
            | ConntrackMaxBelowCount
            | ConntrackMemory
            | ConntrackTimeoutRange
            | ValueOutOfRange
            | RemovedKey
            | UnknownSysctl
            | KeyOutsideScope
            | KeyHostWide
            | NotWritableHere
            | KeyMissing
            | RpFilterUnknownInterface
            | RpFilterAllStrict
            | OffloadUnknownInterface
            | OffloadFixed
            | OffloadCpuCost
            | OffloadOnLoopback
            | OffloadDependencyOff
            | NotrackUnscoped
            | NotrackBreaksStatefulFilter
            | NotrackFilterUndecided
            | NotrackFlowsOverlap
            | NotrackForeignContent
            | NotrackFlowsKept
            | NotrackLoopback
            | NotrackBypassesConntrack
            | PersistOverriddenBy
            | PersistAlsoSet
            | PersistRuntimeManager
            | PersistTargetSymlink
            | PersistUnitOwnPath
            | PersistForeignFile
            | PersistRootEscape
            | PersistEntriesConflict
            | PersistEntryUnreadable
            | PersistBadName
            | ConntrackBuiltIn => true,
        }
    }
}

/// Whether `--allow CODE` may lift `code`, a string from an allow list
/// ([`FindingCode::allowable`] for a code). An unknown string is not
/// refused here: the CLI and the profile loader reject it before planning.
pub fn allowable(code: &str) -> bool {
    code.parse().map_or(true, FindingCode::allowable)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::diagnose::CauseCode;

    #[test]
    fn serde_names_are_the_codes() {
        for c in FindingCode::ALL {
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<FindingCode>(&json).unwrap(), *c);
            assert_eq!(c.as_str().parse::<FindingCode>(), Ok(*c));
            assert_eq!(c.to_string(), c.as_str());
        }
        for c in CauseCode::ALL {
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<CauseCode>(&json).unwrap(), *c);
            assert_eq!(c.as_str().parse::<CauseCode>(), Ok(*c));
        }
    }

    #[test]
    fn a_finding_serializes_its_code_as_the_string() {
        let f = Finding::new(FindingCode::KeyMissing, Severity::Info, "m");
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["code"], "key-missing");
        assert_eq!(serde_json::from_value::<Finding>(json).unwrap(), f);
        assert_eq!(f.code, "key-missing");
        assert!(serde_json::from_str::<FindingCode>("\"no-such-code\"").is_err());
    }

    #[test]
    fn an_unknown_code_names_every_known_one() {
        let e = "no-such".parse::<FindingCode>().unwrap_err();
        assert_eq!(e.code, "no-such");
        assert_eq!(e.known.len(), FindingCode::ALL.len());
        let text = e.to_string();
        assert!(
            text.starts_with("unknown code `no-such`; known codes: somaxconn-above-app-backlog, ")
        );
        assert!(text.ends_with(", conntrack-built-in"), "{text}");
        let e = "no-such".parse::<CauseCode>().unwrap_err();
        assert_eq!(e.known.len(), CauseCode::ALL.len());
    }

    #[test]
    fn codes_order_as_their_strings() {
        let mut by_enum = FindingCode::ALL.to_vec();
        by_enum.sort();
        let mut by_str: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        by_str.sort();
        assert_eq!(by_enum, by_str);
        let mut by_enum = CauseCode::ALL.to_vec();
        by_enum.sort();
        let mut by_str: Vec<&str> = CauseCode::ALL.iter().map(|c| c.as_str()).collect();
        by_str.sort();
        assert_eq!(by_enum, by_str);
    }

    #[test]
    fn only_key_runs_program_is_never_allowable() {
        let never: Vec<_> = FindingCode::ALL.iter().filter(|c| !c.allowable()).collect();
        assert_eq!(never, [&FindingCode::KeyRunsProgram]);
        assert!(!allowable("key-runs-program"));
        assert!(allowable("key-missing"));
        // Unknown strings are rejected where they come in, not here.
        assert!(allowable("no-such-code"));
    }

    /// The cells of a markdown table row (`\|` is a literal bar).
    fn cells(line: &str) -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        let mut out = vec![String::new()];
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    out.last_mut().unwrap().push('|');
                    chars.next();
                }
                '|' => out.push(String::new()),
                c => out.last_mut().unwrap().push(c),
            }
        }
        out.iter().map(|c| c.trim().to_owned()).collect()
    }

    /// Every row of every table whose header is `header`, in the README and
    /// docs/*.md, by file.
    fn tables(header: &[&str]) -> BTreeMap<String, Vec<Vec<String>>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = vec![root.join("README.md")];
        for e in std::fs::read_dir(root.join("docs")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
        let mut out = BTreeMap::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let mut lines = text.lines();
            while let Some(l) = lines.next() {
                if !l.starts_with('|') || cells(l) != header {
                    continue;
                }
                lines.next(); // | --- | --- |
                let rows: &mut Vec<_> = out.entry(f.display().to_string()).or_default();
                for row in lines.by_ref().take_while(|l| l.starts_with('|')) {
                    rows.push(cells(row));
                }
            }
        }
        out
    }

    fn code_cell(cell: &str) -> &str {
        cell.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| panic!("a code cell is `code`: {cell}"))
    }

    #[test]
    fn the_docs_code_tables_match_the_enum() {
        let tables = tables(&["code", "severity", "meaning"]);
        let readme = tables
            .iter()
            .find(|(f, _)| f.ends_with("README.md"))
            .expect("the README's table of codes")
            .1;
        let listed: Vec<&str> = readme.iter().map(|r| code_cell(&r[0])).collect();
        for c in FindingCode::ALL {
            let n = listed.iter().filter(|l| **l == c.as_str()).count();
            assert_eq!(n, 1, "README lists `{c}` {n} times");
        }
        let mut wrong = vec![];
        for (file, rows) in &tables {
            for row in rows {
                let code: FindingCode = code_cell(&row[0])
                    .parse()
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                if row[1..] != [code.severity(), code.meaning()] {
                    wrong.push(format!(
                        "{file}: the row of `{code}` differs from FindingCode::{code:?}:\n  {:?}\n  {:?}",
                        &row[1..],
                        [code.severity(), code.meaning()]
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_docs_cause_table_matches_the_enum() {
        let tables = tables(&["code", "when", "plan command"]);
        let rows = tables
            .iter()
            .find(|(f, _)| f.ends_with("diagnose.md"))
            .expect("docs/diagnose.md's table of causes")
            .1;
        let mut listed: Vec<CauseCode> = rows
            .iter()
            .map(|r| code_cell(&r[0]).parse().unwrap())
            .collect();
        listed.sort();
        let mut all = CauseCode::ALL.to_vec();
        all.sort();
        assert_eq!(listed, all);
    }
}
