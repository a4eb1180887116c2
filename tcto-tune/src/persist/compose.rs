//! The planner: which files persisting (or removing) a profile changes.
//!
//! It composes the list of persisted entries ([`super::entries`]), with
//! the entry of the profile being persisted replaced (or, for `--remove`,
//! dropped), and their union. It knows no file by itself: each kind of
//! boot-time file in [`super::BOOT_KINDS`] renders the files it wants from
//! that list ([`super::boot_kind`]). Then each wanted file is compared with
//! what is on disk: unchanged, a change, or not ours to touch (a foreign
//! file refuses, a link at a target refuses, a path leading out of
//! `--root` refuses), and the kinds' findings and the runtime findings are
//! added.

use std::collections::BTreeSet;

use super::boot_kind::{host_of, BootInput, Wanted};
use super::entries::{self, Persisted};
use super::sysctl_d::{self, Entry};
use super::{
    codes, describe, foreign_file, root_escape, written_by, PersistError, PersistFacts,
    PersistOptions, BOOT_KINDS, LEGACY_PERSISTED_PATH, PERSISTED_PATH, SYSCTL_D_PATH,
};
use crate::change::{Change, ChangeKind, Target, Value};
use crate::check::{Finding, Severity};
use crate::fix::Intent;
use crate::plan::{Plan, Skipped, Unchanged, PLAN_SCHEMA};
use crate::profile::Profile;
use crate::words::{Action, Words};

/// Codes of warnings about a diagnostic step (not a fix): persisting one
/// makes the experiment permanent, so it needs `--allow CODE`.
pub const DIAGNOSTIC_ONLY: &[&str] = &["offload-cpu-cost"];

/// Plan the files that persist `profile`, given its runtime plan on this
/// host (`runtime`, whose findings are carried over: a value refused at
/// runtime is refused at boot too) and what the backend read. The
/// profile's entry replaces only its own; the generated files are rendered
/// from every persisted entry.
pub fn plan_persist(
    profile: &Profile,
    runtime: &Plan,
    facts: &PersistFacts,
    opts: &PersistOptions,
) -> Plan {
    // A profile's `allow = [...]` counts as if given with `--allow`, here
    // as in the runtime planner.
    let allow: BTreeSet<String> = opts.allow.union(&profile.allow).cloned().collect();
    let mut findings = boot_findings(runtime, &allow, opts.words.get());
    let name = profile.name.clone();
    if !entries::valid_name(&name) {
        findings.push(bad_name(&name));
    }
    let (mut list, bad) = persisted(facts, opts.words.get());
    list.retain(|p| p.name != name);
    // A name that cannot be a file name refuses (above) and plans no entry.
    if entries::valid_name(&name) {
        list.push(Persisted::from_profile(profile, runtime, &opts.allow));
    }
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let ctx = Compose {
        name: &name,
        facts,
        opts,
        allow: &allow,
    };
    ctx.plan(list, bad, findings, runtime.initial_netns)
}

/// The runtime plan's findings as they stand for boot: a diagnostic step
/// not allowed refuses, since persisting it makes it permanent.
fn boot_findings(runtime: &Plan, allow: &BTreeSet<String>, words: &dyn Words) -> Vec<Finding> {
    let mut findings = runtime.findings.clone();
    for f in &mut findings {
        if DIAGNOSTIC_ONLY.contains(&f.code.as_str()) && !allow.contains(f.code.as_str()) {
            f.severity = Severity::Refuse;
            f.message
                .push_str(" (a diagnostic step: persisting it makes it permanent)");
            f.hint = Some(format!(
                "persist the fix instead of the experiment, or {} to persist it anyway",
                words.instruct(&Action::Allow(f.code))
            ));
        }
    }
    findings
}

fn bad_name(name: &str) -> Finding {
    Finding::new(
            codes::BAD_NAME,
            Severity::Refuse,
            format!("profile name `{name}` cannot name a file in {PERSISTED_PATH}: use letters, digits, `-`, `_` and `.` (not first)"),
        ).hint("set `name = \"...\"` in the profile file")
}

/// Plan `persist --remove NAME`: drop its entry, re-render the rest.
///
/// While another entry cannot be read, the files rendered from every entry
/// cannot be rendered right (rendered without it, they would drop what it
/// persists): the removal then removes NAME's entry file only, leaves
/// every other file as it is, and each unreadable entry warns instead of
/// refusing. So two broken entries never block each other's removal, and
/// the removal makes nothing worse; the next persist or removal once all
/// can be read renders the files again.
pub fn plan_remove(
    name: &str,
    facts: &PersistFacts,
    opts: &PersistOptions,
    initial_netns: bool,
) -> Result<Plan, PersistError> {
    let (mut list, bad) = persisted(facts, opts.words.get());
    let before = list.len();
    list.retain(|p| p.name != name);
    let unreadable_file = host_entry_path(facts, name);
    if let Some(Value::Text(what)) = facts.entry_files.get(&unreadable_file) {
        return Err(PersistError::NotAFile {
            path: unreadable_file,
            what: what.clone(),
        });
    }
    let was_bad = bad.iter().any(|f| entries::names_file(f, &unreadable_file));
    if list.len() == before && !was_bad {
        // Its entry is gone, but a removal made while another entry could
        // not be read left the rendered files naming it: now that every
        // entry reads, the removal finishes (renders them again) rather
        // than leave a profile the user removed persisted by sysctl.d.
        if bad.is_empty() && rendered_names(facts).contains(name) {
            let ctx = Compose {
                name,
                facts,
                opts,
                allow: &opts.allow,
            };
            return Ok(ctx.plan(list, bad, vec![], initial_netns));
        }
        return Err(PersistError::NotPersisted {
            name: name.to_owned(),
            persisted: persisted(facts, opts.words.get())
                .0
                .into_iter()
                .map(|p| p.name)
                .collect(),
        });
    }
    // The entry being removed may be the unreadable one.
    let bad: Vec<Finding> = bad
        .into_iter()
        .filter(|f| !entries::names_file(f, &unreadable_file))
        .collect();
    let ctx = Compose {
        name,
        facts,
        opts,
        allow: &opts.allow,
    };
    if !bad.is_empty() && facts.entry_files.contains_key(&unreadable_file) {
        return Ok(ctx.plan_entry_only(bad, initial_netns));
    }
    Ok(ctx.plan(list, bad, vec![], initial_netns))
}

/// The profiles the headers of the files rendered from the entries name
/// (`... from the persisted profiles `a`, `b` (...)`), as they are on disk.
fn rendered_names(facts: &PersistFacts) -> BTreeSet<String> {
    const LEAD: &str = " Written by tcto-tune from the persisted profiles ";
    let mut out = BTreeSet::new();
    for v in facts.existing.values() {
        let Value::Bytes(b) = v else { continue };
        let first = b.split(|&c| c == b'\n').next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        let Some((_, rest)) = first.split_once(LEAD) else {
            continue;
        };
        let list = rest.split(" (").next().unwrap_or_default();
        out.extend(
            list.split(", ")
                .filter_map(|n| n.strip_prefix('`')?.strip_suffix('`'))
                .map(str::to_owned),
        );
    }
    out
}

/// The sysctl.d file persisting `profile` would write, given what is
/// persisted already (`plan --diff` shows it): its entry replaces its own,
/// the others stay.
pub fn sysctl_d_preview(profile: &Profile, runtime: &Plan, facts: &PersistFacts) -> String {
    let (mut list, _) = persisted(facts, &crate::words::NEUTRAL);
    list.retain(|p| p.name != profile.name);
    list.push(Persisted::from_profile(profile, runtime, &BTreeSet::new()));
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    sysctl_d::render_composed(&names, &list)
}

/// Every persisted entry (persisted.d, then the legacy files), and a
/// refusing finding per unreadable one, its hint naming actions in `words`.
pub fn persisted(facts: &PersistFacts, words: &dyn Words) -> (Vec<Persisted>, Vec<Finding>) {
    let legacy_host = host_of(facts, LEGACY_PERSISTED_PATH);
    let sysctl_host = host_of(facts, SYSCTL_D_PATH);
    entries::load_all(
        &facts.entry_files,
        facts
            .existing
            .get(&legacy_host)
            .map(|v| (legacy_host.as_str(), v)),
        facts
            .existing
            .get(&sysctl_host)
            .map(|v| (sysctl_host.as_str(), v)),
        words,
    )
}

fn host_entry_path(facts: &PersistFacts, name: &str) -> String {
    format!("{}/{name}.toml", host_of(facts, PERSISTED_PATH))
}

struct Compose<'a> {
    name: &'a str,
    facts: &'a PersistFacts,
    opts: &'a PersistOptions,
    allow: &'a BTreeSet<String>,
}

impl Compose<'_> {
    /// The plan of the composed `list`. Within one severity, findings are
    /// listed as they are found: the runtime's, the entries' own
    /// (unreadable, conflicting), every kind's, those of the files compared
    /// with disk (kind by kind, in registry order), the root escapes, then
    /// what the kinds find on the host.
    fn plan(
        &self,
        list: Vec<Persisted>,
        bad: Vec<Finding>,
        mut findings: Vec<Finding>,
        initial_netns: bool,
    ) -> Plan {
        findings.extend(bad.iter().cloned());
        findings.extend(entries::conflicts_persisting(
            &list,
            Some(self.name),
            self.opts.words.get(),
        ));
        let union = union_of(&list);
        let input = BootInput {
            list: &list,
            union: &union,
            unreadable: &bad,
            facts: self.facts,
            opts: self.opts,
            allow: self.allow,
        };
        findings.extend(BOOT_KINDS.iter().flat_map(|k| k.findings(&input)));
        let mut out = self.empty_plan(initial_netns, findings);
        for w in BOOT_KINDS.iter().flat_map(|k| k.files(&input)) {
            self.add(&mut out, w);
        }
        // Paths leading out of `--root` (their files were left out above).
        out.findings
            .extend(self.facts.escapes.iter().map(root_escape));
        out.findings
            .extend(BOOT_KINDS.iter().flat_map(|k| k.host_findings(&input)));
        self.mark_allowed(&mut out.findings);
        out.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }

    /// A plan of this profile with `findings` and no file yet.
    fn empty_plan(&self, initial_netns: bool, findings: Vec<Finding>) -> Plan {
        Plan {
            schema: PLAN_SCHEMA,
            profile: self.name.to_owned(),
            initial_netns,
            changes: vec![],
            unchanged: vec![],
            skipped: vec![],
            findings,
        }
    }

    /// `persist --remove NAME` while other entries cannot be read: NAME's
    /// entry file goes (a link there too, never its target), nothing else
    /// is rendered, and each unreadable entry warns, saying so.
    fn plan_entry_only(&self, bad: Vec<Finding>, initial_netns: bool) -> Plan {
        let mut findings: Vec<Finding> = bad
            .into_iter()
            .map(|mut f| {
                f.severity = Severity::Warn;
                f.message.push_str(&format!(
                    "; removing `{}` removes its entry only and leaves the files rendered from the entries (sysctl.d, the module files, the boot unit) as they are until this one is fixed or removed",
                    self.name
                ));
                // Fixed by hand or moved out, nothing renders the files
                // again by itself: the same removal then does.
                let again = format!(
                    "once it is fixed or gone, {} again renders them without `{}`",
                    self.opts.words.get().name(&Action::PersistRemove {
                        name: self.name.to_owned()
                    }),
                    self.name
                );
                f.hint = Some(match f.hint.take() {
                    Some(h) => format!("{h}; {again}"),
                    None => again,
                });
                f
            })
            .collect();
        findings.extend(self.facts.escapes.iter().map(root_escape));
        let mut out = self.empty_plan(initial_netns, findings);
        let w = Wanted::new(
            entries::entry_path(self.name),
            Value::Absent,
            format!("profile `{}` is no longer persisted", self.name),
        )
        .in_own_dir(PERSISTED_PATH)
        .link();
        self.add(&mut out, w);
        self.mark_allowed(&mut out.findings);
        out.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }

    /// `--allow` (and the profile's `allow`) marks its findings allowed; a
    /// foreign file allowed only warns.
    fn mark_allowed(&self, findings: &mut [Finding]) {
        for f in findings {
            if self.allow.contains(f.code.as_str()) {
                f.allowed = true;
                if f.code == codes::FOREIGN_FILE {
                    f.severity = Severity::Warn;
                }
            }
            // Never allowed: the write would land outside the image, or
            // there is no way to know which value or entry is meant.
            if NEVER_ALLOWED.contains(&f.code.as_str()) {
                f.allowed = false;
            }
        }
    }

    /// Compare one wanted file with what is on disk: unchanged (or skipped),
    /// a change, or nothing when it is not ours to touch.
    fn add(&self, out: &mut Plan, w: Wanted) {
        if self.escaped(&w) {
            return;
        }
        let host = self.host_path(&w);
        let before = self.before(&host);
        if before.matches(&w.after) {
            keep(out, w, host, &before);
            return;
        }
        // A file in a directory of our own (persisted.d) is never foreign.
        let foreign =
            w.dir.is_none() && matches!(before, Value::Bytes(_)) && written_by(&before).is_none();
        // A file we no longer need is removed only if it is ours.
        if w.after == Value::Absent && (foreign || matches!(before, Value::Symlink(_)) && !w.link) {
            return;
        }
        if foreign {
            out.findings
                .push(foreign_file(&host, &w.after, self.opts.words.get()));
        }
        if let (Value::Symlink(link), Value::Bytes(_)) = (&before, &w.after) {
            out.findings.push(
                Finding::new(
                    codes::TARGET_SYMLINK,
                    Severity::Refuse,
                    format!("{host} is a symbolic link (to {link}); tcto-tune writes only regular files and never follows a link at its target"),
                )
                .hint(format!("look at where it points; remove the link (`rm {}`) if it is not wanted, then persist again", crate::words::shell_word(&host))),
            );
        }
        out.changes.push(Change {
            current: (before != Value::Absent).then(|| describe(&before)),
            desired: describe(&w.after),
            intent: Intent::Exact,
            reason: Some(w.reason),
            target: Target::File { path: host },
            before,
            after: w.after,
        });
    }

    /// Whether a wanted file leads out of `--root` (a file in a directory
    /// of our own does when the directory does).
    fn escaped(&self, w: &Wanted) -> bool {
        let escaped = |p: &str| self.facts.escapes.iter().any(|e| e.path == p);
        escaped(&w.path) || w.dir.is_some_and(escaped)
    }

    /// Host path of a wanted file; one in a directory of our own is in the
    /// directory as the backend resolved it (its file name whole: the entry
    /// of a profile named `web.toml` is `web.toml.toml`, not `web`'s).
    fn host_path(&self, w: &Wanted) -> String {
        let file = w
            .dir
            .and_then(|dir| Some((dir, w.path.strip_prefix(dir)?.strip_prefix('/')?)));
        match file {
            Some((dir, file)) => format!("{}/{file}", host_of(self.facts, dir)),
            None => host_of(self.facts, &w.path),
        }
    }

    /// What is at a host path now.
    fn before(&self, host: &str) -> Value {
        let facts = self.facts;
        facts
            .existing
            .get(host)
            .or_else(|| facts.entry_files.get(host))
            .cloned()
            .unwrap_or(Value::Absent)
    }
}

/// A wanted file already as wanted: unchanged, or (a file not needed, for
/// a reason the kind gave: a module file on a kernel with nf_conntrack
/// built in) skipped.
fn keep(out: &mut Plan, w: Wanted, host: String, before: &Value) {
    if w.after != Value::Absent {
        out.unchanged.push(Unchanged {
            kind: ChangeKind::File,
            key: host,
            current: describe(before),
            desired: describe(&w.after),
            intent: Intent::Exact,
            reason: Some(w.reason),
        });
    } else if let Some((code, why)) = w.skip {
        out.skipped.push(Skipped {
            kind: ChangeKind::File,
            key: host,
            code,
            why,
            current: None,
            desired: String::new(),
            intent: Default::default(),
        });
    }
}

/// Every persisted sysctl once, the first entry's where two set one key.
fn union_of(list: &[Persisted]) -> Vec<Entry> {
    let mut union: Vec<Entry> = Vec::new();
    for p in list {
        for e in &p.sysctls {
            if !union.iter().any(|u| u.key == e.key) {
                union.push(e.clone());
            }
        }
    }
    union
}

/// Codes `--allow` cannot turn off.
pub const NEVER_ALLOWED: &[&str] = &[
    codes::ROOT_ESCAPE.as_str(),
    entries::CONFLICT.as_str(),
    entries::UNREADABLE.as_str(),
    codes::BAD_NAME.as_str(),
];
