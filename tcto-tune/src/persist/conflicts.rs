//! The conflict scan: would our sysctl.d file actually win at boot?
//!
//! A value persisted to `/etc/sysctl.d/99-tcto-tune.conf` is worthless if
//! another file undoes it: the machine reboots into the old incident. This
//! module replays what systemd-sysctl (v252, `src/sysctl/sysctl.c`) does
//! with the files the backend read, rule for rule:
//!
//! 1. Directories in precedence order `/etc`, `/run`, `/usr/local/lib`,
//!    `/usr/lib`, `/lib`; of files with the same name only the one in the
//!    first directory counts (a link to `/dev/null` masks the name); the
//!    survivors are read in lexical order of their names.
//! 2. Lines are read into one ordered map keyed by the normalised key
//!    (`.` and `/` swapped when the first separator is `/`). A line for a
//!    key already in the map with the *same* value changes nothing; with a
//!    different value it replaces the earlier one.
//! 3. A line `-KEY` without `=` is a "negative" entry: it replaces any
//!    earlier assignment of KEY with "do not set", so a later
//!    `-net.core.somaxconn` cancels our line and the kernel keeps its
//!    default. (A `-` before `KEY = VALUE` only silences write errors.)
//! 4. A key with `*`, `?` or `[` is a glob over `/proc/sys` in which a
//!    wildcard never crosses a separator. A glob never writes a key that
//!    has an explicit entry in the map (negative ones included), whatever
//!    the file order: our explicit keys are never overridden by a glob.
//!
//! `/etc/sysctl.conf` is not read by systemd-sysctl; procps `sysctl
//! --system` reads it after every sysctl.d file, so it is checked last
//! (unless a sysctl.d entry links to it, as Debian's `99-sysctl.conf` does).

use std::collections::BTreeSet;

use super::sysctl_d::{Entry, SYSCTL_D_NAME};
use super::SysctlSource;
use crate::check::{Finding, Severity};
use crate::fix::normalize;
use crate::words::{Action, Words};

/// One line of a sysctl file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// File path as shown to the user.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// Key as written, normalised to dots (may hold a glob).
    pub pattern: String,
    /// Value as written (whitespace folded); `None` for a negative line
    /// (`-KEY` without `=`).
    pub value: Option<String>,
}

impl Setting {
    /// `KEY = VALUE`, or `-KEY` for a negative line.
    pub fn show(&self) -> String {
        match &self.value {
            Some(v) => format!("{} = {v}", self.pattern),
            None => format!("-{}", self.pattern),
        }
    }
}

/// Parse a sysctl.d file the way systemd-sysctl does: `#` and `;` start
/// comments; `KEY = VALUE`, where a leading `-` only silences errors;
/// `-KEY` alone is a negative entry; any other line without `=` is
/// ignored; a key whose first separator is `/` uses `/` for `.`.
pub fn parse(path: &str, text: &str) -> Vec<Setting> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                return None;
            }
            let (k, v) = match l.split_once('=') {
                Some((k, v)) => (k.trim().strip_prefix('-').unwrap_or(k.trim()), Some(v)),
                None => (l.strip_prefix('-')?, None),
            };
            let k = k.trim();
            if k.is_empty() {
                return None;
            }
            Some(Setting {
                path: path.to_owned(),
                line: i + 1,
                pattern: normalize_key(k),
                value: v.map(normalize),
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

/// Whether a key is a glob for systemd-sysctl (`string_is_glob`).
pub fn is_glob(key: &str) -> bool {
    key.contains(['*', '?', '['])
}

/// glob(3) over `/proc/sys`, on dotted keys: `*` and `?` never match the
/// separator `.` (a path's `/`), `[...]` is a class (`!` or `^` negates,
/// `a-z` ranges).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    matches_from(&p, &t)
}

fn matches_from(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len())
            .take_while(|&n| n == 0 || t[n - 1] != '.')
            .any(|n| matches_from(&p[1..], &t[n..])),
        Some('?') => t.first().is_some_and(|c| *c != '.') && matches_from(&p[1..], &t[1..]),
        Some('[') => match (class(&p[1..]), t.first()) {
            (Some((set_len, hit)), Some(c)) if *c != '.' => {
                hit(*c) && matches_from(&p[1 + set_len..], &t[1..])
            }
            (Some(_), _) => false,
            // An unclosed `[` is a literal.
            (None, Some('[')) => matches_from(&p[1..], &t[1..]),
            (None, _) => false,
        },
        Some(c) => t.first() == Some(c) && matches_from(&p[1..], &t[1..]),
    }
}

/// A `[...]` class after its `[`: its length through `]`, and its test.
#[allow(clippy::type_complexity)]
fn class(p: &[char]) -> Option<(usize, Box<dyn Fn(char) -> bool + '_>)> {
    let neg = matches!(p.first(), Some('!' | '^'));
    let start = usize::from(neg);
    // The first member may be `]` itself, as in fnmatch.
    p.get(start)?;
    let end = start + 1 + p[start + 1..].iter().position(|c| *c == ']')?;
    let set = &p[start..end];
    let test = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < set.len() {
            if i + 2 < set.len() && set[i + 1] == '-' {
                hit |= (set[i]..=set[i + 2]).contains(&c);
                i += 3;
            } else {
                hit |= set[i] == c;
                i += 1;
            }
        }
        hit != neg
    };
    Some((end + 1, Box::new(test)))
}

/// The files systemd-sysctl applies, in order, split around ours:
/// `(before ours, after ours)`. `/etc/sysctl.conf` (read by procps only)
/// comes last unless a sysctl.d entry links to it.
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

/// Where a line sits relative to ours.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    Ours,
    After,
}

/// systemd-sysctl's ordered map, with where each entry came from: the
/// surviving explicit entry for each key (rule 2 and 3).
fn explicit_map(lines: &[(Side, Setting)]) -> Vec<&(Side, Setting)> {
    let mut map: Vec<&(Side, Setting)> = Vec::new();
    for l in lines {
        match map.iter().position(|m| m.1.pattern == l.1.pattern) {
            Some(i) if map[i].1.value == l.1.value => {}
            Some(i) => {
                map.remove(i);
                map.push(l);
            }
            None => map.push(l),
        }
    }
    map
}

/// Findings for every persisted key whose value at boot would not be ours.
pub fn scan(
    entries: &[Entry],
    sources: &[SysctlSource],
    allow: &BTreeSet<String>,
    words: &dyn Words,
) -> Vec<Finding> {
    let lines = boot_lines(entries, sources);
    let map = explicit_map(&lines);
    let mut out = Vec::new();
    for e in entries {
        let winner = map
            .iter()
            .find(|m| m.1.pattern == e.key)
            .expect("our own line is in the map");
        let wins = winner.1.value.as_deref() == Some(normalize(&e.value).as_str());
        if !wins {
            out.push(overridden(e, &winner.1, allow, words));
        }
        let also = also_set(&lines, &winner.1, &e.key);
        if !also.is_empty() && wins {
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

/// Every line systemd-sysctl reads at boot, in its order: the files
/// before ours, our entries, the files after ours.
fn boot_lines(entries: &[Entry], sources: &[SysctlSource]) -> Vec<(Side, Setting)> {
    let (before, after) = effective_order(sources);
    let read = |files: &[&SysctlSource], side: Side| -> Vec<(Side, Setting)> {
        files
            .iter()
            .flat_map(|s| parse(&s.path, &s.text))
            .map(|s| (side, s))
            .collect()
    };
    let ours = entries.iter().enumerate().map(|(i, e)| {
        let s = Setting {
            path: SYSCTL_D_NAME.into(),
            line: i + 1,
            pattern: e.key.clone(),
            value: Some(normalize(&e.value)),
        };
        (Side::Ours, s)
    });
    read(&before, Side::Before)
        .into_iter()
        .chain(ours)
        .chain(read(&after, Side::After))
        .collect()
}

/// The other lines that set `key` (the winner aside), each with why it
/// does not decide the value.
fn also_set(lines: &[(Side, Setting)], winner: &Setting, key: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|(side, s)| *side != Side::Ours && !std::ptr::eq(s, winner))
        .filter_map(|(side, s)| {
            let glob = is_glob(&s.pattern);
            let why = if glob && glob_match(&s.pattern, key) && s.value.is_some() {
                "a glob, never applied to a key with an explicit line"
            } else if glob || s.pattern != key {
                return None;
            } else if *side == Side::Before && s.value != winner.value {
                "applied before ours, replaced by it"
            } else if *side == Side::Before {
                "same value, applied before ours"
            } else {
                "same value, applied after ours"
            };
            Some(format!("{}:{} ({}, {why})", s.path, s.line, s.show()))
        })
        .collect()
}

fn overridden(e: &Entry, w: &Setting, allow: &BTreeSet<String>, words: &dyn Words) -> Finding {
    let allowed = allow.contains(OVERRIDDEN.as_str());
    let message = match &w.value {
        Some(v) => format!(
            "{}:{} sets {} = {v} and is applied after {SYSCTL_D_NAME}: at boot {} would be {v}, not {}",
            w.path, w.line, w.pattern, e.key, e.value
        ),
        None => format!(
            "{}:{} has the negative line `-{}`, which cancels the assignment in {SYSCTL_D_NAME}: at boot systemd-sysctl leaves {} at the kernel's default, not {}",
            w.path, w.line, w.pattern, e.key, e.value
        ),
    };
    Finding {
        allowed,
        ..Finding::new(
            OVERRIDDEN,
            if allowed {
                Severity::Warn
            } else {
                Severity::Refuse
            },
            message,
        )
    }
    .hint(format!(
        "remove or change line {} of {}, or {} to persist anyway",
        w.line,
        w.path,
        words.instruct(&Action::Allow(OVERRIDDEN))
    ))
}

/// Code: another file overrides or cancels a persisted key at boot.
pub const OVERRIDDEN: crate::finding::FindingCode =
    crate::finding::FindingCode::PersistOverriddenBy;
/// Code: another file sets a persisted key, but ours wins.
pub const ALSO_SET: crate::finding::FindingCode = crate::finding::FindingCode::PersistAlsoSet;

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
            (s[0].line, s[0].pattern.as_str(), s[0].value.as_deref()),
            (4, "net.core.somaxconn", Some("1"))
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
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
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
        let allow = [OVERRIDDEN.to_string()].into_iter().collect();
        let f = scan(&somaxconn(), &sources, &allow, &crate::words::NEUTRAL);
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
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].code, f[0].severity), (ALSO_SET, Severity::Info));
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
        assert!(scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL
        )
        .is_empty());
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
        assert!(scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL
        )
        .is_empty());
    }

    #[test]
    fn sysctl_conf_counts_last_unless_linked() {
        let conf = SysctlSource {
            is_sysctl_conf: true,
            ..src("/etc", "sysctl.conf", "net.core.somaxconn=1024\n")
        };
        let f = scan(
            &somaxconn(),
            std::slice::from_ref(&conf),
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
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
        let f = scan(
            &somaxconn(),
            &[link, conf],
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
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
        let f = scan(
            &somaxconn(),
            &[upper, lower, conf],
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
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
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert_eq!((f.len(), f[0].code), (1, ALSO_SET), "{f:?}");
    }

    fn codes(f: &[Finding]) -> Vec<(crate::finding::FindingCode, Severity)> {
        f.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn a_later_negative_line_cancels_ours_and_refuses() {
        let sources = vec![src("/etc/sysctl.d", "99-zzz.conf", "-net.core.somaxconn\n")];
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert_eq!(codes(&f), vec![(OVERRIDDEN, Severity::Refuse)], "{f:?}");
        assert!(
            f[0].message
                .contains("99-zzz.conf:1 has the negative line `-net.core.somaxconn`"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn an_earlier_negative_line_is_replaced_by_ours() {
        let sources = vec![src("/etc/sysctl.d", "10-a.conf", "-net/core/somaxconn\n")];
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert_eq!(codes(&f), vec![(ALSO_SET, Severity::Info)], "{f:?}");
    }

    #[test]
    fn a_dash_before_an_assignment_only_silences_errors() {
        let sources = vec![src(
            "/etc/sysctl.d",
            "99-zzz.conf",
            "-net.core.somaxconn = 1024\n",
        )];
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert!(
            f[0].message.contains("sets net.core.somaxconn = 1024"),
            "{f:?}"
        );
    }

    #[test]
    fn a_later_glob_never_overrides_an_explicit_key() {
        let sources = vec![src(
            "/etc/sysctl.d",
            "99-zzz.conf",
            "net.core.somax* = 128\n",
        )];
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert_eq!(codes(&f), vec![(ALSO_SET, Severity::Info)], "{f:?}");
        assert!(f[0].message.contains("a glob"), "{}", f[0].message);
    }

    #[test]
    fn a_later_line_then_a_later_one_with_our_value_leaves_ours() {
        let sources = vec![
            src("/etc/sysctl.d", "99-zzz.conf", "net.core.somaxconn = 1\n"),
            src(
                "/etc/sysctl.d",
                "99-zzzz.conf",
                "net.core.somaxconn = 4096\n",
            ),
        ];
        let f = scan(
            &somaxconn(),
            &sources,
            &BTreeSet::new(),
            &crate::words::NEUTRAL,
        );
        assert_eq!(codes(&f), vec![(ALSO_SET, Severity::Info)], "{f:?}");
    }

    #[test]
    fn glob_wildcards_do_not_cross_separators_and_classes_work() {
        assert!(!glob_match("net.*", "net.core.somaxconn"));
        assert!(glob_match("net.*.somaxconn", "net.core.somaxconn"));
        assert!(glob_match("net.core.somaxcon[mn]", "net.core.somaxconn"));
        assert!(!glob_match("net.core.somaxcon[!n]", "net.core.somaxconn"));
        assert!(glob_match("net.core.somaxco[a-z]n", "net.core.somaxconn"));
        assert!(!glob_match("net.core?somaxconn", "net.core.somaxconn"));
        assert!(is_glob("a[b]") && !is_glob("net.core.somaxconn"));
    }
}
