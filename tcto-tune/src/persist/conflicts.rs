//! The conflict scan: would our sysctl.d file actually win at boot?
//!
//! A value persisted to `/etc/sysctl.d/99-tcto-tune.conf` is worthless if a
//! later file sets the same key: the machine reboots into the old incident.
//! This module replays systemd-sysctl's rules (sysctl.d(5)) over the files
//! the backend read: directories in precedence order `/etc`, `/run`,
//! `/usr/local/lib`, `/usr/lib`, `/lib`; of files with the same name only
//! the one in the first directory counts; the survivors are applied in
//! lexical order of their names, a later setting overriding an earlier one.
//! `/etc/sysctl.conf` counts last unless a sysctl.d entry links to it
//! (Debian's `99-sysctl.conf`): procps `sysctl --system` reads it after every
//! sysctl.d file.

use std::collections::BTreeSet;

use super::sysctl_d::{Entry, SYSCTL_D_NAME};
use super::SysctlSource;
use crate::check::{Finding, Severity};
use crate::fix::normalize;

/// One `key = value` line of a sysctl file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// File path as shown to the user.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// Key as written, normalised to dots (may hold a glob).
    pub pattern: String,
    /// Value as written (whitespace folded).
    pub value: String,
}

/// Parse a sysctl.d file the way systemd-sysctl does: `#` and `;` start
/// comments, `key = value`, a leading `-` on the key only silences errors,
/// and a key whose first separator is `/` uses `/` for `.`.
pub fn parse(path: &str, text: &str) -> Vec<Setting> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let k = k.trim().trim_start_matches('-');
            if k.is_empty() {
                return None;
            }
            Some(Setting {
                path: path.to_owned(),
                line: i + 1,
                pattern: normalize_key(k),
                value: normalize(v),
            })
        })
        .collect()
}

fn normalize_key(k: &str) -> String {
    match k.find(['.', '/']) {
        Some(i) if k.as_bytes()[i] == b'/' => k
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => k.to_owned(),
    }
}

/// `fnmatch` with `*` and `?` (systemd 247+ accepts globs in keys).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The files systemd-sysctl applies, in order, split around ours:
/// `(before ours, after ours)`.
pub fn effective_order(sources: &[SysctlSource]) -> (Vec<&SysctlSource>, Vec<&SysctlSource>) {
    let standalone = |s: &SysctlSource| s.dir == "/etc" && s.name == "sysctl.conf";
    let mut seen = BTreeSet::new();
    let winners: Vec<&SysctlSource> = sources
        .iter()
        .filter(|s| !standalone(s))
        .filter(|s| seen.insert(s.name.clone()))
        .collect();
    let linked = winners.iter().any(|s| s.is_sysctl_conf && !s.masked);
    let mut d: Vec<&SysctlSource> = winners
        .into_iter()
        .filter(|s| s.name != SYSCTL_D_NAME && !s.masked)
        .collect();
    d.sort_by(|a, b| a.name.cmp(&b.name));
    let (before, mut after): (Vec<_>, Vec<_>) =
        d.into_iter().partition(|s| s.name.as_str() < SYSCTL_D_NAME);
    if !linked {
        after.extend(sources.iter().filter(|s| standalone(s)));
    }
    (before, after)
}

/// Findings for every persisted key another file also sets.
pub fn scan(entries: &[Entry], sources: &[SysctlSource], allow: &BTreeSet<String>) -> Vec<Finding> {
    let (before, after) = effective_order(sources);
    let settings = |files: &[&SysctlSource]| -> Vec<Setting> {
        files.iter().flat_map(|s| parse(&s.path, &s.text)).collect()
    };
    let (early, late) = (settings(&before), settings(&after));
    let mut out = Vec::new();
    for e in entries {
        let hits = |v: &[Setting]| -> Vec<Setting> {
            v.iter()
                .filter(|s| glob_match(&s.pattern, &e.key))
                .cloned()
                .collect()
        };
        let (early, late) = (hits(&early), hits(&late));
        let ours = normalize(&e.value);
        if let Some(w) = late.iter().rev().find(|s| s.value != ours) {
            let allowed = allow.contains(OVERRIDDEN);
            out.push(
                Finding {
                    allowed,
                    ..Finding::new(
                        OVERRIDDEN,
                        if allowed { Severity::Warn } else { Severity::Refuse },
                        format!(
                            "{}:{} sets {} = {} and is applied after {SYSCTL_D_NAME}: at boot {} would be {}, not {}",
                            w.path, w.line, w.pattern, w.value, e.key, w.value, e.value
                        ),
                    )
                }
                .hint(format!(
                    "remove or change line {} of {}, or pass `--allow {OVERRIDDEN}` to persist anyway",
                    w.line, w.path
                )),
            );
        }
        let also: Vec<String> = early
            .iter()
            .map(|s| {
                format!(
                    "{}:{} ({} = {}, applied before ours)",
                    s.path, s.line, s.pattern, s.value
                )
            })
            .chain(late.iter().filter(|s| s.value == ours).map(|s| {
                format!(
                    "{}:{} ({} = {}, same value, applied after ours)",
                    s.path, s.line, s.pattern, s.value
                )
            }))
            .collect();
        if !also.is_empty() {
            out.push(
                Finding::new(
                    ALSO_SET,
                    Severity::Info,
                    format!("{} is also set by {}", e.key, also.join(", ")),
                )
                .hint("tcto-tune's value wins at boot; remove the other lines to keep one source of truth"),
            );
        }
    }
    out
}

/// Code: a later file overrides a persisted key.
pub const OVERRIDDEN: &str = "persist-overridden-by";
/// Code: another file sets a persisted key, but ours wins.
pub const ALSO_SET: &str = "persist-also-set";

#[cfg(test)]
mod tests {
    use super::*;

    fn src(dir: &str, name: &str, text: &str) -> SysctlSource {
        SysctlSource {
            dir: dir.into(),
            name: name.into(),
            path: format!("{dir}/{name}"),
            text: text.into(),
            masked: false,
            is_sysctl_conf: false,
        }
    }

    fn somaxconn() -> Vec<Entry> {
        vec![Entry {
            key: "net.core.somaxconn".into(),
            value: "4096".into(),
            reason: None,
        }]
    }

    #[test]
    fn parses_comments_dashes_slashes_and_line_numbers() {
        let s = parse(
            "f",
            "# c\n; c\n\n-net/core/somaxconn=1\n net.ipv4.conf.eth0/1.rp_filter = 2 \nnonsense\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].line, s[0].pattern.as_str(), s[0].value.as_str()),
            (4, "net.core.somaxconn", "1")
        );
        assert_eq!(s[1].pattern, "net.ipv4.conf.eth0/1.rp_filter");
    }

    #[test]
    fn globs() {
        assert!(glob_match("net.core.*", "net.core.somaxconn"));
        assert!(glob_match("net.core.somaxcon?", "net.core.somaxconn"));
        assert!(!glob_match("net.ipv4.*", "net.core.somaxconn"));
        assert!(glob_match("net.core.somaxconn", "net.core.somaxconn"));
    }

    #[test]
    fn later_file_overrides_and_refuses_with_file_and_line() {
        let sources = vec![src(
            "/etc/sysctl.d",
            "99-zzz.conf",
            "# local\nnet.core.somaxconn = 1024\n",
        )];
        let f = scan(&somaxconn(), &sources, &BTreeSet::new());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, OVERRIDDEN);
        assert_eq!(f[0].severity, Severity::Refuse);
        assert!(
            f[0].message.contains("/etc/sysctl.d/99-zzz.conf:2"),
            "{}",
            f[0].message
        );
        assert!(f[0].blocks());
    }

    #[test]
    fn allowing_the_override_turns_it_into_a_warning() {
        let sources = vec![src(
            "/etc/sysctl.d",
            "99-zzz.conf",
            "net.core.somaxconn = 1024\n",
        )];
        let allow = [OVERRIDDEN.to_owned()].into_iter().collect();
        let f = scan(&somaxconn(), &sources, &allow);
        assert_eq!(
            (f[0].severity, f[0].allowed, f[0].blocks()),
            (Severity::Warn, true, false)
        );
    }

    #[test]
    fn earlier_file_is_reported_but_does_not_refuse() {
        let sources = vec![
            src(
                "/usr/lib/sysctl.d",
                "50-default.conf",
                "net.core.somaxconn = 128\n",
            ),
            src("/etc/sysctl.d", "10-mine.conf", "net.core.*=512\n"),
        ];
        let f = scan(&somaxconn(), &sources, &BTreeSet::new());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].code.as_str(), f[0].severity),
            (ALSO_SET, Severity::Info)
        );
        assert!(f[0].message.contains("/etc/sysctl.d/10-mine.conf:1"));
        assert!(f[0].message.contains("/usr/lib/sysctl.d/50-default.conf:1"));
    }

    #[test]
    fn no_other_setting_no_finding() {
        let sources = vec![src(
            "/etc/sysctl.d",
            "99-zzz.conf",
            "net.core.rmem_max = 1\n",
        )];
        assert!(scan(&somaxconn(), &sources, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn same_name_in_a_lower_directory_is_shadowed() {
        // /etc/sysctl.d/99-zzz.conf masks /usr/lib/sysctl.d/99-zzz.conf.
        let sources = vec![
            src("/etc/sysctl.d", "99-zzz.conf", "# emptied by the admin\n"),
            src(
                "/usr/lib/sysctl.d",
                "99-zzz.conf",
                "net.core.somaxconn = 1024\n",
            ),
        ];
        assert!(scan(&somaxconn(), &sources, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn sysctl_conf_counts_last_unless_linked() {
        let conf = SysctlSource {
            is_sysctl_conf: true,
            ..src("/etc", "sysctl.conf", "net.core.somaxconn=1024\n")
        };
        let f = scan(&somaxconn(), std::slice::from_ref(&conf), &BTreeSet::new());
        assert_eq!(f[0].code, OVERRIDDEN, "{f:?}");
        // Debian: 99-sysctl.conf -> ../sysctl.conf sorts before us.
        let link = SysctlSource {
            is_sysctl_conf: true,
            ..src(
                "/etc/sysctl.d",
                "99-sysctl.conf",
                "net.core.somaxconn=1024\n",
            )
        };
        let f = scan(&somaxconn(), &[link, conf], &BTreeSet::new());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, ALSO_SET);
    }

    #[test]
    fn a_shadowed_link_to_sysctl_conf_does_not_count() {
        // /usr/lib's 99-sysctl.conf links to sysctl.conf, but /etc's file of
        // the same name wins: sysctl.conf is then only read last, by procps.
        let conf = SysctlSource {
            is_sysctl_conf: true,
            ..src("/etc", "sysctl.conf", "net.core.somaxconn=1024\n")
        };
        let lower = SysctlSource {
            is_sysctl_conf: true,
            ..src(
                "/usr/lib/sysctl.d",
                "99-sysctl.conf",
                "net.core.somaxconn=1024\n",
            )
        };
        let upper = src("/etc/sysctl.d", "99-sysctl.conf", "# emptied\n");
        let f = scan(&somaxconn(), &[upper, lower, conf], &BTreeSet::new());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, OVERRIDDEN);
        assert!(
            f[0].message.starts_with("/etc/sysctl.conf:1 "),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_later_line_with_our_value_is_only_reported() {
        let sources = vec![src(
            "/etc/sysctl.d",
            "99-zzz.conf",
            "net.core.somaxconn = 4096\n",
        )];
        let f = scan(&somaxconn(), &sources, &BTreeSet::new());
        assert_eq!((f.len(), f[0].code.as_str()), (1, ALSO_SET), "{f:?}");
    }
}
