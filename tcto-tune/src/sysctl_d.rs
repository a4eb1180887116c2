//! The sysctl.d file a plan persists to, and its diff against what is on disk.
//!
//! `plan` shows this diff so the operator sees, before anything is written,
//! exactly what `persist` would put in /etc/sysctl.d.

use std::fmt::Write as _;

use similar::TextDiff;

use crate::change::ChangeKind;
use crate::plan::Plan;

/// File name under `/etc/sysctl.d`. systemd-sysctl applies files in lexical
/// order of their names, the later winning; `99-tcto-tune.conf` sorts after
/// the distribution's `50-*` files and Debian's `99-sysctl.conf` (the
/// `/etc/sysctl.conf` link), but before a local `99-zzz-*.conf` an admin
/// may add to override us.
pub const SYSCTL_D_NAME: &str = "99-tcto-tune.conf";

/// The content of the sysctl.d file for `plan`: every sysctl the plan
/// changes or found already right, with its reason as a comment.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by tcto-tune from profile `{}`. Do not edit by hand:",
        plan.profile
    );
    let _ = writeln!(
        out,
        "# re-run `tcto-tune persist --profile {}` instead.",
        plan.profile
    );
    let mut rows: Vec<(&str, &str, Option<&str>)> = plan
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Sysctl)
        .map(|c| (c.key.as_str(), c.desired.as_str(), c.reason.as_deref()))
        .collect();
    rows.extend(
        plan.unchanged
            .iter()
            .filter(|u| u.kind == ChangeKind::Sysctl)
            .map(|u| (u.key.as_str(), u.current.as_str(), u.reason.as_deref())),
    );
    for (key, value, reason) in rows {
        out.push('\n');
        if let Some(r) = reason {
            let _ = writeln!(out, "# {r}");
        }
        let _ = writeln!(out, "{key} = {value}");
    }
    out
}

/// Unified diff from `old` (absent: empty) to `new`, labelled with `path`.
pub fn unified_diff(path: &str, old: Option<&str>, new: &str) -> String {
    let old_label = if old.is_some() {
        format!("a{path}")
    } else {
        "/dev/null".to_owned()
    };
    TextDiff::from_lines(old.unwrap_or(""), new)
        .unified_diff()
        .context_radius(3)
        .header(&old_label, &format!("b{path}"))
        .to_string()
}
