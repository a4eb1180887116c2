//! The sysctl.d file a plan persists to, and unified diffs against disk.
//!
//! `plan --diff` and `persist --dry-run` show these diffs so the operator
//! sees, before anything is written, exactly what lands in /etc.

use std::fmt::Write as _;

use similar::TextDiff;

use crate::change::ChangeKind;
use crate::fix::normalize;
use crate::plan::Plan;
use crate::profile::Profile;

/// File name under `/etc/sysctl.d`. systemd-sysctl applies files in lexical
/// order of their names, the later winning; `99-tcto-tune.conf` sorts after
/// the distribution's `50-*` files and Debian's `99-sysctl.conf` (the
/// `/etc/sysctl.conf` link), but before a local `99-zzz-*.conf` an admin
/// may add to override us.
pub const SYSCTL_D_NAME: &str = "99-tcto-tune.conf";

/// Skip codes whose key is still persisted: the value cannot be set *now*
/// (a global key inside a child namespace, a module not loaded yet) but
/// will be at boot, in the initial namespace, after modules-load.d.
/// (`key-runs-program` is never among them: such a key is never persisted.)
const PERSIST_DESPITE: &[&str] = &["not-writable-here", "key-missing", "key-host-wide"];

/// One line of the sysctl.d file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Dotted key.
    pub key: String,
    /// Value written.
    pub value: String,
    /// The profile's reason, written as a comment above the line.
    pub reason: Option<String>,
}

impl Entry {
    /// Whether the key only exists once nf_conntrack is loaded.
    pub fn is_conntrack(&self) -> bool {
        self.key.starts_with("net.netfilter.nf_conntrack_")
    }
}

/// The sysctls to persist for `profile`, in the profile's apply order:
/// a planned change persists its new value; a key already as wanted
/// persists its current value (an `at_least` never lowers a higher value
/// at boot); a key skipped only because it cannot be written *here*
/// persists the profile's value; removed and unknown keys are left out
/// (their findings already refuse the plan).
pub fn entries(profile: &Profile, plan: &Plan) -> Vec<Entry> {
    let mut out = Vec::new();
    for t in profile.sysctl_targets() {
        let key = t.key.as_str();
        let reason = t.desired.reason.clone();
        let sysctl = |k: ChangeKind| k == ChangeKind::Sysctl;
        let value =
            if let Some(c) = plan
                .changes
                .iter()
                .find(|c| sysctl(c.kind()) && c.key() == key)
            {
                Some(c.desired.clone())
            } else if let Some(u) = plan
                .unchanged
                .iter()
                .find(|u| sysctl(u.kind) && u.key == key)
            {
                Some(u.current.clone())
            } else if plan.skipped.iter().any(|s| {
                sysctl(s.kind) && s.key == key && PERSIST_DESPITE.contains(&s.code.as_str())
            }) {
                Some(normalize(&t.desired.value.render()))
            } else {
                None
            };
        if let Some(value) = value {
            out.push(Entry {
                key: key.to_owned(),
                value,
                reason,
            });
        }
    }
    out
}

/// The header every file tcto-tune writes starts with (`comment` is the
/// comment leader of the file's syntax).
pub fn header(comment: &str, profile: &str) -> String {
    format!(
        "{comment} Written by tcto-tune from profile `{profile}`. Do not edit by hand:\n\
         {comment} re-run `tcto-tune persist --profile {profile}` instead.\n"
    )
}

/// The header of a file rendered from every persisted entry.
pub fn composed_header(comment: &str, names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!(
        "{comment} Written by tcto-tune from the persisted profiles {} ({}). Do not edit by hand:\n\
         {comment} change them with `tcto-tune persist --profile NAME` or `tcto-tune persist --remove NAME`.\n",
        list.join(", "),
        super::PERSISTED_PATH
    )
}

/// The sysctl.d file of every persisted entry: the header, then one
/// section per profile (in name order), each key once (two entries that
/// disagree on a key refuse before this is written).
pub fn render_composed(names: &[&str], list: &[super::Persisted]) -> String {
    let mut out = composed_header("#", names);
    let mut seen = std::collections::BTreeSet::new();
    for p in list {
        let lines: Vec<&Entry> = p
            .sysctls
            .iter()
            .filter(|e| seen.insert(e.key.clone()))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let _ = write!(out, "\n# --- profile `{}` ---\n", p.name);
        for e in lines {
            push_line(&mut out, e);
        }
    }
    out
}

/// The content of the sysctl.d file: a header naming the profile, then
/// one key per line with its reason as a comment above it.
pub fn render(profile: &str, entries: &[Entry]) -> String {
    let mut out = header("#", profile);
    for e in entries {
        push_line(&mut out, e);
    }
    out
}

/// One `key = value` line after a blank line, its reason as comments above.
fn push_line(out: &mut String, e: &Entry) {
    out.push('\n');
    if let Some(r) = &e.reason {
        for line in r.lines() {
            let _ = writeln!(out, "# {line}");
        }
    }
    let _ = writeln!(out, "{} = {}", e.key, e.value);
}

/// Unified diff from `old` (absent: empty) to `new` (absent: removal),
/// labelled with `path`.
pub fn unified_diff(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let label = |side: &str, present: bool| {
        if present {
            format!("{side}{path}")
        } else {
            "/dev/null".to_owned()
        }
    };
    TextDiff::from_lines(old.unwrap_or(""), new.unwrap_or(""))
        .unified_diff()
        .context_radius(3)
        .header(&label("a", old.is_some()), &label("b", new.is_some()))
        .to_string()
}
