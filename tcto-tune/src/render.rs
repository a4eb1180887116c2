//! Text rendering of a plan: an aligned table a tired operator can read.
//!
//! Colour is opt-in (the CLI turns it on for a terminal without NO_COLOR);
//! `Display` is always plain, so logs and snapshots never carry escapes.
//! Every string that comes from the system or a file (values read from
//! /proc/sys, nft tables, interface names, profile text, finding messages
//! that quote them) passes [`escape_control`] before it is laid out, so
//! the only escape sequences in the output are the colours added here.

use std::fmt::{self, Write as _};

use crate::change::{Change, ChangeKind};
use crate::check::Severity;
use crate::escape::{escape_control, escape_lines};
use crate::fix::Intent;
use crate::plan::{Plan, Skipped, Unchanged};

/// Rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextStyle {
    /// ANSI colour for status words.
    pub color: bool,
}

fn paint(style: TextStyle, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn intent_word(i: Intent) -> &'static str {
    match i {
        Intent::Exact => "",
        Intent::AtLeast => ">= ",
        Intent::AtMost => "<= ",
    }
}

/// `1 rule`, `4 rules`: the rule lines of an nft table text.
fn rules_word(nft: &str) -> String {
    let n = nft
        .lines()
        .filter(|l| {
            let l = l.trim_end();
            l.ends_with(" notrack") || l.contains(" notrack comment \"")
        })
        .count();
    format!("{n} rule{}", if n == 1 { "" } else { "s" })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {}\n", escape_lines(l)))
        .collect()
}

/// One table row: status, key, value, note, colour; the text cells escaped.
fn row(status: &str, key: &str, value: &str, note: &str, color: &str) -> [String; 5] {
    [
        status.into(),
        escape_control(key).into_owned(),
        escape_control(value).into_owned(),
        escape_control(note).into_owned(),
        color.into(),
    ]
}

/// The `findings:` block of a plan, as `plan` and `apply` print it.
fn findings_block(findings: &[crate::check::Finding], style: TextStyle, out: &mut String) {
    if !findings.is_empty() {
        out.push_str("\nfindings:\n");
        for f in findings {
            let color = match f.severity {
                Severity::Refuse if f.blocks() => "1;31",
                Severity::Refuse | Severity::Warn => "33",
                Severity::Info => "36",
            };
            let sev = if f.allowed && f.code.allowable() {
                format!("{} (allowed)", f.severity)
            } else {
                f.severity.to_string()
            };
            let _ = writeln!(
                out,
                "  {} [{}] {}",
                paint(style, color, &sev),
                escape_control(f.code.as_str()),
                escape_control(&f.message)
            );
            if let Some(h) = &f.hint {
                let _ = writeln!(out, "    hint: {}", escape_control(h));
            }
        }
    }
}

/// The value cell of a `skip` line: what is there and what was wanted.
fn skip_value(s: &Skipped) -> String {
    match (&s.current, s.desired.is_empty()) {
        (Some(c), false) => format!("{c} (wanted {}{})", intent_word(s.intent), s.desired),
        (None, false) => format!("(wanted {}{})", intent_word(s.intent), s.desired),
        (Some(c), true) => c.clone(),
        (None, true) => String::new(),
    }
}

fn change_row(c: &Change) -> [String; 5] {
    let value = if c.kind() == ChangeKind::Notrack {
        format!(
            "{} -> {}",
            c.current.as_deref().map_or("(absent)".into(), rules_word),
            rules_word(&c.desired)
        )
    } else {
        format!(
            "{} -> {}",
            c.current.as_deref().unwrap_or("(absent)"),
            c.desired
        )
    };
    row(
        "change",
        &c.key(),
        &value,
        c.reason.as_deref().unwrap_or_default(),
        "31",
    )
}

fn unchanged_row(u: &Unchanged) -> [String; 5] {
    let value = if u.kind == ChangeKind::Notrack {
        format!("{} already in place", rules_word(&u.current))
    } else {
        format!(
            "{} (wanted {}{})",
            u.current,
            intent_word(u.intent),
            u.desired
        )
    };
    row(
        "ok",
        &u.key,
        &value,
        u.reason.as_deref().unwrap_or_default(),
        "32",
    )
}

fn skipped_row(s: &Skipped) -> [String; 5] {
    row(
        "skip",
        &s.key,
        &skip_value(s),
        &format!("{} [{}]", s.why, s.code),
        "33",
    )
}

/// The rows laid out in aligned columns (the value column at most 40 wide).
fn table(rows: &[[String; 5]], style: TextStyle, out: &mut String) {
    let w_key = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
    let w_val = rows
        .iter()
        .map(|r| r[2].chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for r in rows {
        let status = paint(style, &r[4], &format!("{:<6}", r[0]));
        let line = format!("{status}  {:<w_key$}  {:<w_val$}  {}", r[1], r[2], r[3]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// A NOTRACK change in full: the table as planned, and a coloured diff
/// against what is in place.
fn notrack_diff(c: &Change, style: TextStyle, out: &mut String) {
    let _ = writeln!(
        out,
        "\n{} {} as planned:",
        c.kind(),
        escape_control(&c.key())
    );
    out.push_str(&indent(&c.desired));
    let old = c.current.clone().unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&old, &c.desired);
    let _ = writeln!(out, "\ndiff against what is in place:");
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            if c.current.is_some() {
                "in place"
            } else {
                "(absent)"
            },
            "planned",
        )
        .to_string();
    for line in text.lines() {
        let line = escape_lines(line);
        let line = line.as_ref();
        let color = match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => "32",
            Some(b'-') if !line.starts_with("---") => "31",
            _ => "0",
        };
        let _ = writeln!(out, "  {}", paint(style, color, line));
    }
}

impl Plan {
    /// What `apply` prints before its steps: the plan's `skip` lines and its
    /// findings, exactly as `plan` prints them (empty when there are none).
    pub fn render_notes(&self, style: TextStyle) -> String {
        let mut out = String::new();
        let w_key = self
            .skipped
            .iter()
            .map(|s| s.key.chars().count())
            .max()
            .unwrap_or(0);
        for s in &self.skipped {
            let value = skip_value(s);
            let status = paint(style, "33", &format!("{:<6}", "skip"));
            let line = format!(
                "{status}  {:<w_key$}  {}  {} [{}]",
                escape_control(&s.key),
                escape_control(&value),
                escape_control(&s.why),
                s.code
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        findings_block(&self.findings, style, &mut out);
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out
    }

    /// Render as text.
    pub fn render(&self, style: TextStyle) -> String {
        let rows: Vec<[String; 5]> = (self.changes.iter().map(change_row))
            .chain(self.unchanged.iter().map(unchanged_row))
            .chain(self.skipped.iter().map(skipped_row))
            .collect();
        let mut out = String::new();
        let ns = if self.initial_netns {
            "initial network namespace"
        } else {
            "child network namespace"
        };
        let _ = writeln!(
            out,
            "plan for profile `{}` ({ns})",
            escape_control(&self.profile)
        );
        if !rows.is_empty() {
            out.push('\n');
        }
        table(&rows, style, &mut out);
        for c in self
            .changes
            .iter()
            .filter(|c| c.kind() == ChangeKind::Notrack)
        {
            notrack_diff(c, style, &mut out);
        }
        findings_block(&self.findings, style, &mut out);
        out.push_str(&self.totals());
        out
    }

    /// The last line: how many of each, and how many findings refuse.
    fn totals(&self) -> String {
        let refusals = self.refusals().len();
        format!(
            "\n{} to change, {} already fine, {} skipped, {} finding(s){}\n",
            self.changes.len(),
            self.unchanged.len(),
            self.skipped.len(),
            self.findings.len(),
            if refusals > 0 {
                format!(", {refusals} refusing")
            } else {
                String::new()
            }
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(TextStyle::default()))
    }
}
