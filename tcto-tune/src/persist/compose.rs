//! The planner: which files persisting (or removing) a profile changes.
//!
//! Every generated file is rendered from the union of the persisted
//! entries ([`super::entries`]), with the entry of the profile being
//! persisted replaced (or, for `--remove`, dropped). Then each wanted file
//! is compared with what is on disk: unchanged, a change, or not ours to
//! touch (a foreign file refuses, a link at a target refuses, a path
//! leading out of `--root` refuses), and the conflict scan and the runtime
//! findings are added.

use std::collections::BTreeSet;
use std::path::Path;

use super::entries::{self, Persisted};
use super::sysctl_d::{self, Entry};
use super::{
    codes, conflicts, describe, foreign_file, host_path, root_escape, unit, written_by, Manager,
    ModuleState, PersistError, PersistFacts, PersistOptions, LEGACY_PERSISTED_PATH, MODPROBE_PATH,
    MODULES_LOAD_PATH, PERSISTED_PATH, SYSCTL_D_PATH, WANTS_PATH,
};
use crate::change::{Change, ChangeKind, Target, Value};
use crate::check::{Finding, Severity};
use crate::fix::Intent;
use crate::plan::{Plan, Skipped, Unchanged, PLAN_SCHEMA};
use crate::profile::Profile;
use crate::words::{Action, Words};

struct Wanted {
    /// In-image path.
    path: String,
    after: Value,
    reason: String,
}

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
    let was_bad = bad.iter().any(|f| f.message.contains(&unreadable_file));
    if list.len() == before && !was_bad {
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
        .filter(|f| !f.message.contains(&unreadable_file))
        .collect();
    let ctx = Compose {
        name,
        facts,
        opts,
        allow: &opts.allow,
    };
    Ok(ctx.plan(list, bad, vec![], initial_netns))
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

/// Host path of an in-image path: as resolved by the backend, or joined.
fn host_of(facts: &PersistFacts, path: &str) -> String {
    facts
        .resolved
        .get(path)
        .cloned()
        .unwrap_or_else(|| host_path(&facts.root, path))
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
    fn plan(
        &self,
        list: Vec<Persisted>,
        bad: Vec<Finding>,
        mut findings: Vec<Finding>,
        initial_netns: bool,
    ) -> Plan {
        findings.extend(bad.iter().cloned());
        findings.extend(entries::conflicts(&list, self.opts.words.get()));
        let union = union_of(&list);
        let conntrack = union.iter().any(|e| e.is_conntrack());
        let built_in = matches!(self.facts.module, ModuleState::BuiltIn { .. });
        findings.extend(self.built_in_finding(&union));
        let mut wanted = self.sysctl_files(&list, &union);
        wanted.extend(self.entry_files(&list, &bad));
        wanted.extend(self.unit_files(&list));
        let restore = list.iter().any(Persisted::restores);
        if restore && !unit::use_packaged(&self.opts.exec, self.facts.packaged_unit) {
            findings.extend(unit::own_path_finding(&self.opts.exec));
        }

        let mut out = Plan {
            schema: PLAN_SCHEMA,
            profile: self.name.to_owned(),
            initial_netns,
            changes: vec![],
            unchanged: vec![],
            skipped: vec![],
            findings,
        };
        for w in wanted {
            self.add(&mut out, w, conntrack && built_in);
        }
        self.host_findings(&mut out.findings, &union);
        self.mark_allowed(&mut out.findings);
        out.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }

    /// With conntrack keys persisted on a kernel that has nf_conntrack
    /// built in: no module files are written, and the buckets need the
    /// kernel command line.
    fn built_in_finding(&self, union: &[Entry]) -> Option<Finding> {
        let conntrack = union.iter().any(|e| e.is_conntrack());
        let (true, ModuleState::BuiltIn { evidence }) = (conntrack, &self.facts.module) else {
            return None;
        };
        let mut f = Finding::new(
            codes::BUILT_IN,
            Severity::Info,
            format!("nf_conntrack is built into this kernel ({evidence}): its sysctls exist at boot, no modules-load.d or modprobe.d file is written"),
        );
        if let Some(b) = buckets(union) {
            f = f.hint(format!(
                "sysctl.d sets the buckets after boot; to size the hash from the start add `nf_conntrack.hashsize={}` to the kernel command line",
                b.value
            ));
        }
        Some(f)
    }

    /// The sysctl.d file, and the modules-load.d and modprobe.d files that
    /// make nf_conntrack's keys exist when systemd-sysctl runs.
    fn sysctl_files(&self, list: &[Persisted], union: &[Entry]) -> Vec<Wanted> {
        let conntrack = union.iter().any(|e| e.is_conntrack());
        let built_in = matches!(self.facts.module, ModuleState::BuiltIn { .. });
        let head = header(list);
        vec![
            Wanted {
                path: SYSCTL_D_PATH.into(),
                after: if union.is_empty() {
                    Value::Absent
                } else {
                    bytes(sysctl_d::render_composed(&names(list), list))
                },
                reason: "sysctls, applied at boot by systemd-sysctl".into(),
            },
            Wanted {
                path: MODULES_LOAD_PATH.into(),
                after: if conntrack && !built_in {
                    bytes(format!("{head}nf_conntrack\n"))
                } else {
                    Value::Absent
                },
                reason: "load nf_conntrack before systemd-sysctl sets its keys".into(),
            },
            Wanted {
                path: MODPROBE_PATH.into(),
                after: match buckets(union) {
                    Some(b) if !built_in => bytes(format!(
                        "{head}{}options nf_conntrack hashsize={}\n",
                        b.reason
                            .as_ref()
                            .map(|r| format!("# {r}\n"))
                            .unwrap_or_default(),
                        b.value
                    )),
                    _ => Value::Absent,
                },
                reason: "conntrack hash buckets as the module parameter".into(),
            },
        ]
    }

    /// An entry file per persisted profile, the removal of entries no longer
    /// persisted (an unreadable one stays), and of the legacy file.
    fn entry_files(&self, list: &[Persisted], bad: &[Finding]) -> Vec<Wanted> {
        let facts = self.facts;
        let mut wanted: Vec<Wanted> = list
            .iter()
            .map(|p| Wanted {
                path: entries::entry_path(&p.name),
                after: bytes(entries::render(p)),
                reason: format!("what is persisted from profile `{}`", p.name),
            })
            .collect();
        let dir = host_of(facts, PERSISTED_PATH);
        for host in facts.entry_files.keys() {
            let stem = Path::new(host)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let unreadable = bad.iter().any(|f| f.message.contains(host.as_str()));
            let kept = list.iter().any(|p| p.name == stem) || unreadable;
            if !kept && host.starts_with(&dir) {
                wanted.push(Wanted {
                    path: entries::entry_path(&stem),
                    after: Value::Absent,
                    reason: format!("profile `{stem}` is no longer persisted"),
                });
            }
        }
        wanted.push(Wanted {
            path: LEGACY_PERSISTED_PATH.into(),
            after: Value::Absent,
            reason: format!("migrated to {PERSISTED_PATH}"),
        });
        wanted
    }

    /// The unit (or, with the package's unit installed, the drop-in and the
    /// link to it) that restores NOTRACK and offloads at boot: wanted only
    /// when some entry restores something; its header names every
    /// persisted profile.
    fn unit_files(&self, list: &[Persisted]) -> Vec<Wanted> {
        let restore = list.iter().any(Persisted::restores);
        let when = |v: Value| if restore { v } else { Value::Absent };
        let mut ifaces: Vec<String> = list
            .iter()
            .flat_map(|p| p.offload.iter().map(|o| o.iface.clone()))
            .collect();
        ifaces.sort();
        ifaces.dedup();
        let head = header(list);
        let rehead = |v: Value| match v {
            Value::Bytes(b) => {
                let text = String::from_utf8_lossy(&b);
                let body: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
                bytes(format!("{head}{body}"))
            }
            other => other,
        };
        unit::files(
            "persisted",
            &self.opts.exec,
            &ifaces,
            self.facts.packaged_unit,
        )
        .into_iter()
        .map(|f| {
            let after = if f.path == WANTS_PATH || f.after == Value::Absent {
                f.after
            } else {
                rehead(f.after)
            };
            Wanted {
                path: f.path.into(),
                after: when(after),
                reason: f.reason,
            }
        })
        .collect()
    }

    /// What the host adds: paths leading out of `--root`, other sources of
    /// the same keys, and runtime managers that rewrite them.
    fn host_findings(&self, findings: &mut Vec<Finding>, union: &[Entry]) {
        let facts = self.facts;
        findings.extend(facts.escapes.iter().map(root_escape));
        findings.extend(conflicts::scan(
            union,
            &facts.sysctl_sources,
            self.allow,
            self.opts.words.get(),
        ));
        if !union.is_empty() {
            findings.extend(facts.managers.iter().map(manager));
        }
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
    fn add(&self, out: &mut Plan, w: Wanted, module_skipped: bool) {
        if self.escaped(&w.path) {
            return;
        }
        let in_dir = in_persisted_dir(&w.path);
        let host = self.host_path(&w.path);
        let before = self.before(&host);
        if before.matches(&w.after) {
            keep(out, w, host, &before, module_skipped);
            return;
        }
        // persisted.d is tcto-tune's own directory: its files are entries
        // (an unreadable one refuses on its own), never foreign.
        let foreign = !in_dir && matches!(before, Value::Bytes(_)) && written_by(&before).is_none();
        // A file we no longer need is removed only if it is ours.
        if w.after == Value::Absent
            && (foreign || matches!(before, Value::Symlink(_)) && w.path != WANTS_PATH)
        {
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
                .hint(format!("look at where it points; remove the link (`rm {host}`) if it is not wanted, then persist again")),
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

    /// Whether an in-image path leads out of `--root` (an entry does when
    /// persisted.d does).
    fn escaped(&self, path: &str) -> bool {
        let escaped = |p: &str| self.facts.escapes.iter().any(|e| e.path == p);
        escaped(path) || (in_persisted_dir(path) && escaped(PERSISTED_PATH))
    }

    /// Host path of an in-image path; an entry's as the backend listed it.
    fn host_path(&self, path: &str) -> String {
        if in_persisted_dir(path) {
            host_entry_path(
                self.facts,
                path.trim_start_matches(&format!("{PERSISTED_PATH}/"))
                    .trim_end_matches(".toml"),
            )
        } else {
            host_of(self.facts, path)
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

/// A wanted file already as wanted: unchanged, or (a module file not
/// needed on a kernel with nf_conntrack built in) skipped.
fn keep(out: &mut Plan, w: Wanted, host: String, before: &Value, module_skipped: bool) {
    if w.after != Value::Absent {
        out.unchanged.push(Unchanged {
            kind: ChangeKind::File,
            key: host,
            current: describe(before),
            desired: describe(&w.after),
            intent: Intent::Exact,
            reason: Some(w.reason),
        });
    } else if (w.path == MODULES_LOAD_PATH || w.path == MODPROBE_PATH) && module_skipped {
        out.skipped.push(Skipped {
            kind: ChangeKind::File,
            key: host,
            code: codes::BUILT_IN,
            why: "nf_conntrack is built into the kernel".into(),
            current: None,
            desired: String::new(),
            intent: Default::default(),
        });
    }
}

fn in_persisted_dir(path: &str) -> bool {
    path.starts_with(&format!("{PERSISTED_PATH}/"))
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

fn buckets(union: &[Entry]) -> Option<&Entry> {
    union
        .iter()
        .find(|e| e.key == "net.netfilter.nf_conntrack_buckets")
}

fn names(list: &[Persisted]) -> Vec<&str> {
    list.iter().map(|p| p.name.as_str()).collect()
}

/// The header of a generated file, naming every persisted profile.
fn header(list: &[Persisted]) -> String {
    sysctl_d::composed_header("#", &names(list))
}

fn bytes(s: String) -> Value {
    Value::Bytes(s.into_bytes())
}

/// Codes `--allow` cannot turn off.
pub const NEVER_ALLOWED: &[&str] = &[
    codes::ROOT_ESCAPE.as_str(),
    entries::CONFLICT.as_str(),
    entries::UNREADABLE.as_str(),
    codes::BAD_NAME.as_str(),
];

fn manager(m: &Manager) -> Finding {
    Finding::new(
        codes::RUNTIME_MANAGER,
        Severity::Warn,
        format!("{} is present ({}): it rewrites conntrack and backlog sysctls when it starts, after systemd-sysctl, so the persisted values may not last", m.name, m.evidence),
    )
    .hint(match m.name.as_str() {
        "kube-proxy" => "set the same values in kube-proxy's configuration (`conntrack.maxPerCore`, `conntrack.min`, `conntrack.tcpEstablishedTimeout`)",
        _ => "put the values in the active TuneD profile's [sysctl] section, or a custom profile that includes it",
    })
}
