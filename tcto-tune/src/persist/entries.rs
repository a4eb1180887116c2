//! Persisted profiles compose: one entry per profile in
//! `/etc/tcto-tune/persisted.d/NAME.toml`.
//!
//! A second `persist` used to replace the first one's files, and with them
//! the runbook's permanent fix. Now each persisted profile is its own
//! entry, holding what was persisted from it: the sysctl values (as they
//! go to sysctl.d, `at_least` already resolved against the host), the
//! NOTRACK flows and offload toggles (intent, planned again at boot) and
//! the codes allowed. Every generated file (sysctl.d, modules-load.d,
//! modprobe.d, the unit and its link) is rendered from the union of the
//! entries, so persisting X rewrites only X's entry and re-renders the
//! rest, and `persist --remove X` drops X's entry. Two entries that want
//! the same key (or the same offload feature) with different values
//! refuse with both names (`persist-entries-conflict`): there is no order
//! between entries that could decide.
//!
//! Compatibility: the single `/etc/tcto-tune/persisted.toml` and a
//! sysctl.d file written from one profile by earlier versions are read as
//! entries of that profile and migrated (written to persisted.d, the old
//! file removed) by the next persist, in the same journaled transaction.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::restore::{Notrack, Offload};
use super::sysctl_d::{header, Entry};
use super::{Value, PERSISTED_PATH, SYSCTL_D_PATH};
use crate::check::{Finding, Severity};
use crate::finding::FindingCode;
use crate::fix::normalize;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::words::{Action, Words};

/// A persisted entry could not be read (`persist-entry-unreadable`).
pub const UNREADABLE: FindingCode = FindingCode::PersistEntryUnreadable;
/// Two entries set the same key to different values.
pub const CONFLICT: FindingCode = FindingCode::PersistEntriesConflict;

/// One persisted profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persisted {
    /// Profile name (also the file name, `NAME.toml`).
    pub name: String,
    /// The sysctls persisted to sysctl.d.
    #[serde(skip)]
    pub sysctls: Vec<Entry>,
    /// NOTRACK flows re-applied at boot.
    pub notrack: Vec<Notrack>,
    /// Offload toggles re-applied at boot.
    pub offload: Vec<Offload>,
    /// Codes allowed when it was persisted.
    pub allow: BTreeSet<String>,
    /// Where it was read from (host path), empty for a new one.
    pub file: String,
}

impl Persisted {
    /// The entry of `profile`, with its sysctl values as planned on this host.
    pub fn from_profile(profile: &Profile, runtime: &Plan, allow: &BTreeSet<String>) -> Self {
        Persisted {
            name: profile.name.clone(),
            sysctls: super::sysctl_d::entries(profile, runtime),
            notrack: super::restore::notrack(profile),
            offload: super::restore::offloads(profile),
            allow: allow.union(&profile.allow).cloned().collect(),
            file: String::new(),
        }
    }

    /// Whether the restore unit must re-apply something of it.
    pub fn restores(&self) -> bool {
        !self.notrack.is_empty() || !self.offload.is_empty()
    }
}

/// In-image path of a profile's entry.
pub fn entry_path(name: &str) -> String {
    format!("{PERSISTED_PATH}/{name}.toml")
}

/// Whether `name` can be a file name in persisted.d.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allow: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sysctl: BTreeMap<String, SysctlDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notrack: Vec<Notrack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    offload: Vec<Offload>,
    /// The order of the sysctl lines (a TOML table has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    order: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SysctlDoc {
    exact: toml::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The text of an entry file.
pub fn render(e: &Persisted) -> String {
    let doc = Doc {
        name: e.name.clone(),
        description: Some(format!(
            "what `tcto-tune persist --profile {}` saved; the sysctls go to {SYSCTL_D_PATH}, the rest is re-applied at boot",
            e.name
        )),
        allow: e.allow.iter().cloned().collect(),
        sysctl: e
            .sysctls
            .iter()
            .map(|s| {
                let exact = s
                    .value
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .unwrap_or_else(|_| toml::Value::String(s.value.clone()));
                let reason = s.reason.clone();
                (s.key.clone(), SysctlDoc { exact, reason })
            })
            .collect(),
        notrack: e.notrack.clone(),
        offload: e.offload.clone(),
        order: e.sysctls.iter().map(|s| s.key.clone()).collect(),
    };
    let body = toml::to_string(&doc).expect("strings, integers and booleans serialize");
    format!("{}\n{body}", header("#", &e.name))
}

/// Parse an entry file (or the legacy persisted.toml, which has no
/// sysctls). `file` is its host path, kept for messages.
pub fn parse(file: &str, text: &str) -> Result<Persisted, String> {
    let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
    if !valid_name(&doc.name) {
        return Err(format!("`{}` is not a valid profile name", doc.name));
    }
    let mut sysctls: Vec<Entry> = Vec::new();
    let mut keys: Vec<&String> = doc.order.iter().collect();
    keys.extend(doc.sysctl.keys().filter(|k| !doc.order.contains(k)));
    for k in keys {
        let Some(s) = doc.sysctl.get(k) else {
            return Err(format!("`order` names `{k}`, which has no [sysctl] entry"));
        };
        let value = match &s.exact {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(v) => normalize(v),
            other => {
                return Err(format!(
                    "`{k}`: value {other} is neither a number nor a string"
                ))
            }
        };
        if value.contains(['\n', '\r']) || k.contains(char::is_whitespace) {
            return Err(format!(
                "`{k}`: a key or value with whitespace or a newline"
            ));
        }
        // A hand-edited entry must not smuggle into sysctl.d what no
        // profile may persist (issue 16: refused from every source).
        if let Some(why) = crate::scope::runs_program(k, &value) {
            return Err(format!("`{k}` is never persisted: {why}"));
        }
        sysctls.push(Entry {
            key: k.clone(),
            value,
            reason: s.reason.clone(),
        });
    }
    Ok(Persisted {
        name: doc.name,
        sysctls,
        notrack: doc.notrack,
        offload: doc.offload,
        allow: doc.allow.into_iter().collect(),
        file: file.to_owned(),
    })
}

/// The profile named in the header of a sysctl.d file written by a version
/// that kept one profile per file.
fn legacy_sysctl_d_profile(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let rest = first.strip_prefix("# Written by tcto-tune from profile `")?;
    let (name, tail) = rest.split_once('`')?;
    (tail == ". Do not edit by hand:").then(|| name.to_owned())
}

/// The sysctls of a legacy sysctl.d file: each `key = value` line, with the
/// comment lines right above it as its reason.
fn legacy_sysctls(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut comment: Vec<&str> = Vec::new();
    for l in text.lines().skip(2) {
        let l = l.trim();
        if let Some(c) = l.strip_prefix('#') {
            comment.push(c.trim());
        } else if let Some((k, v)) = l
            .split_once('=')
            .filter(|(k, v)| crate::scope::runs_program(k.trim(), &normalize(v)).is_none())
        {
            out.push(Entry {
                key: k.trim().to_owned(),
                value: normalize(v),
                reason: (!comment.is_empty()).then(|| comment.join("\n")),
            });
            comment.clear();
        } else {
            comment.clear();
        }
    }
    out
}

/// Every persisted entry: persisted.d's files, then what the legacy files
/// hold for a profile persisted.d does not have. Unreadable entries come
/// back as refusing findings naming the file (their file is left alone).
pub fn load_all(
    files: &BTreeMap<String, Value>,
    legacy_toml: Option<(&str, &Value)>,
    sysctl_d: Option<(&str, &Value)>,
    words: &dyn Words,
) -> (Vec<Persisted>, Vec<Finding>) {
    let mut out: BTreeMap<String, Persisted> = BTreeMap::new();
    let mut bad = Vec::new();
    for (path, v) in files {
        let stem = std::path::Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match load_entry(path, &stem, v) {
            Ok(p) => {
                out.insert(p.name.clone(), p);
            }
            Err(why) if !removable(v) => bad.push(not_a_file(path, &why)),
            Err(why) => bad.push(unreadable(path, &stem, &why, words)),
        }
    }
    for (name, p) in load_legacy(legacy_toml, sysctl_d, &mut bad, words) {
        out.entry(name).or_insert(p);
    }
    (out.into_values().collect(), bad)
}

/// One persisted.d file: a regular file of UTF-8 entry TOML whose profile
/// name is its file name.
fn load_entry(path: &str, stem: &str, v: &Value) -> Result<Persisted, String> {
    match v {
        Value::Bytes(b) => std::str::from_utf8(b)
            .map_err(|_| "not UTF-8 text".to_owned())
            .and_then(|t| parse(path, t)),
        Value::Symlink(t) => Err(format!("a symbolic link (to {t}), never followed")),
        // What the backend found there instead of a file (`a directory`).
        Value::Text(what) => Err(format!("{what}, not a regular file")),
        _ => Err("not a regular file".to_owned()),
    }
    .and_then(|p| {
        if p.name == stem {
            Ok(p)
        } else {
            Err(format!(
                "it names profile `{}`, its file name says `{stem}`",
                p.name
            ))
        }
    })
}

/// What the legacy files hold, by profile: the sysctls of the single-profile
/// sysctl.d file, with the rest from the single persisted TOML. An
/// unreadable TOML is added to `bad`.
fn load_legacy(
    legacy_toml: Option<(&str, &Value)>,
    sysctl_d: Option<(&str, &Value)>,
    bad: &mut Vec<Finding>,
    words: &dyn Words,
) -> BTreeMap<String, Persisted> {
    let mut legacy: BTreeMap<String, Persisted> = BTreeMap::new();
    if let Some((path, Value::Bytes(b))) = sysctl_d {
        let text = String::from_utf8_lossy(b);
        if let Some(name) = legacy_sysctl_d_profile(&text).filter(|n| valid_name(n)) {
            legacy.insert(
                name.clone(),
                Persisted {
                    name,
                    sysctls: legacy_sysctls(&text),
                    notrack: vec![],
                    offload: vec![],
                    allow: BTreeSet::new(),
                    file: path.to_owned(),
                },
            );
        }
    }
    if let Some((path, Value::Bytes(b))) = legacy_toml {
        match std::str::from_utf8(b)
            .map_err(|_| "not UTF-8 text".to_owned())
            .and_then(|t| parse(path, t))
        {
            Ok(p) => {
                let e = legacy.entry(p.name.clone()).or_insert_with(|| Persisted {
                    sysctls: vec![],
                    ..p.clone()
                });
                e.notrack = p.notrack;
                e.offload = p.offload;
                e.allow.extend(p.allow);
                e.file = path.to_owned();
            }
            Err(why) => bad.push(unreadable(path, "", &why, words)),
        }
    }
    legacy
}

/// Whether an entry file that cannot be read can be removed by `persist
/// --remove` (a file or a link; a directory or a FIFO is left to the user).
pub(crate) fn removable(v: &Value) -> bool {
    matches!(v, Value::Bytes(_) | Value::Symlink(_))
}

/// An unreadable "entry" that is no file at all: only the user can move it
/// out of the directory (tcto-tune removes files and links, nothing else).
fn not_a_file(path: &str, why: &str) -> Finding {
    Finding::new(
        UNREADABLE,
        Severity::Refuse,
        format!("{UNREADABLE_PREFIX}{path}: {why}; the persisted profiles cannot be combined without it"),
    )
    .hint(move_out_hint(path))
}

/// The way out for a directory or special file among the entries: moved
/// out of them by hand (a name not ending in `.toml`, where nothing is).
pub(crate) fn move_out_hint(path: &str) -> String {
    let p = crate::words::shell_word(path);
    let aside = crate::words::shell_word(&crate::atomic_file::aside_name(
        std::path::Path::new(path),
        "aside",
    ));
    format!("no entry is a directory or a special file: look at it (`ls -la {p}`) and move it out of the entries (`mv {p} {aside}`)")
}

/// Whether an unreadable-entry finding is about the file `host` (exactly:
/// `a.toml` is not `a.toml.toml`).
pub(crate) fn names_file(f: &Finding, host: &str) -> bool {
    f.code == UNREADABLE
        && f.message
            .strip_prefix(UNREADABLE_PREFIX)
            .and_then(|rest| rest.strip_prefix(host))
            .is_some_and(|rest| rest.starts_with(": "))
}

const UNREADABLE_PREFIX: &str = "cannot read the persisted entry ";

fn unreadable(path: &str, name: &str, why: &str, words: &dyn Words) -> Finding {
    let hint = if name.is_empty() {
        format!("fix or remove {path} (it was written by an earlier tcto-tune; {} of that persist restores the files before it)", words.name(&Action::Rollback))
    } else {
        format!(
            "fix the file, or drop it with {}",
            words.name(&Action::PersistRemove { name: name.into() })
        )
    };
    Finding::new(
        UNREADABLE,
        Severity::Refuse,
        format!("{UNREADABLE_PREFIX}{path}: {why}; the persisted profiles cannot be combined without it"),
    )
    .hint(hint)
}

/// Refusals for two entries that want the same sysctl, or the same offload
/// feature of the same interface, with different values.
pub fn conflicts(list: &[Persisted], words: &dyn Words) -> Vec<Finding> {
    conflicts_persisting(list, None, words)
}

/// [`conflicts`] while `persisting` (a profile being persisted now, in
/// `list` in place of its entry on disk, if it has one) is persisted: its
/// hint names only the removal of the entry it meets, which exists (a
/// removal of the profile being persisted would remove nothing, or the
/// entry the user is replacing), and says what to do with the profile.
pub fn conflicts_persisting(
    list: &[Persisted],
    persisting: Option<&str>,
    words: &dyn Words,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut clash = |what: String, name: &str, value: String, out: &mut Vec<Finding>| {
        match seen.get(&what) {
            Some((other, v)) if *v != value => out.push(
                Finding::new(
                    CONFLICT,
                    Severity::Refuse,
                    format!("persisted profiles `{other}` and `{name}` both set {what}: `{other}` to {v}, `{name}` to {value}; at boot only one value can hold"),
                )
                .hint(conflict_hint(&what, (other, v), (name, &value), persisting, words)),
            ),
            Some(_) => {}
            None => {
                seen.insert(what, (name.to_owned(), value));
            }
        }
    };
    for p in list {
        for s in &p.sysctls {
            clash(s.key.clone(), &p.name, normalize(&s.value), &mut out);
        }
        for o in &p.offload {
            for (feature, v) in o.toggles() {
                let value = if v { "on" } else { "off" }.to_owned();
                clash(format!("{} {feature}", o.iface), &p.name, value, &mut out);
            }
        }
    }
    out
}

/// What to do about two entries that disagree on `what`: between two
/// persisted entries, remove one; while persisting one of them, remove the
/// other (the one that exists) or change the profile being persisted.
fn conflict_hint(
    what: &str,
    a: (&str, &str),
    b: (&str, &str),
    persisting: Option<&str>,
    words: &dyn Words,
) -> String {
    let remove = |name: &str| words.name(&Action::PersistRemove { name: name.into() });
    let (new, old) = match persisting {
        Some(p) if p == a.0 => (a, b),
        Some(p) if p == b.0 => (b, a),
        _ => {
            return format!(
                "keep one: {} or {} (a profile that `extends` one and sets the value you want can replace both)",
                remove(a.0),
                remove(b.0)
            )
        }
    };
    format!(
        "`{new}` is being persisted and meets the persisted `{old}`: to keep {nv}: {}, then persist `{new}` again; to keep {ov}: set {what} to {ov} in `{new}` (or leave it out), then persist `{new}` again",
        words.instruct(&Action::PersistRemove {
            name: old.0.into()
        }),
        new = new.0,
        old = old.0,
        nv = new.1,
        ov = old.1,
    )
}

/// The profile text `apply --persisted` plans at boot: every entry's
/// NOTRACK flows and offload toggles and the codes allowed, in the profile
/// syntax (sysctls are systemd-sysctl's job).
pub fn boot_profile(list: &[Persisted]) -> String {
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    let doc = super::restore::Doc {
        name: names.join("+"),
        description: format!(
            "the NOTRACK rules and NIC offloads of the persisted profiles {}",
            names.join(", ")
        ),
        allow: list
            .iter()
            .flat_map(|p| p.allow.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        notrack: list
            .iter()
            .flat_map(|p| p.notrack.iter().cloned())
            .collect(),
        offload: list
            .iter()
            .flat_map(|p| p.offload.iter().cloned())
            .collect(),
    };
    toml::to_string(&doc).expect("strings, integers and booleans serialize")
}
