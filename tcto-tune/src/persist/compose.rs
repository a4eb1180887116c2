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
    let mut findings = runtime.findings.clone();
    for f in &mut findings {
        if DIAGNOSTIC_ONLY.contains(&f.code.as_str()) && !allow.contains(f.code.as_str()) {
            f.severity = Severity::Refuse;
            f.message
                .push_str(" (a diagnostic step: persisting it makes it permanent)");
            f.hint = Some(format!(
                "persist the fix instead of the experiment, or pass `--allow {}` to persist it anyway",
                f.code
            ));
        }
    }
    let name = profile.name.clone();
    if !entries::valid_name(&name) {
        findings.push(Finding::new(
            codes::BAD_NAME,
            Severity::Refuse,
            format!("profile name `{name}` cannot name a file in {PERSISTED_PATH}: use letters, digits, `-`, `_` and `.` (not first)"),
        ).hint("set `name = \"...\"` in the profile file"));
    }
    let (mut list, bad) = persisted(facts);
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

/// Plan `persist --remove NAME`: drop its entry, re-render the rest.
pub fn plan_remove(
    name: &str,
    facts: &PersistFacts,
    opts: &PersistOptions,
    initial_netns: bool,
) -> Result<Plan, PersistError> {
    let (mut list, bad) = persisted(facts);
    let before = list.len();
    list.retain(|p| p.name != name);
    let unreadable_file = host_entry_path(facts, name);
    let was_bad = bad.iter().any(|f| f.message.contains(&unreadable_file));
    if list.len() == before && !was_bad {
        return Err(PersistError::NotPersisted {
            name: name.to_owned(),
            persisted: persisted(facts).0.into_iter().map(|p| p.name).collect(),
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
    let (mut list, _) = persisted(facts);
    list.retain(|p| p.name != profile.name);
    list.push(Persisted::from_profile(profile, runtime, &BTreeSet::new()));
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    sysctl_d::render_composed(&names, &list)
}

/// Every persisted entry (persisted.d, then the legacy files), and a
/// refusing finding per unreadable one.
pub fn persisted(facts: &PersistFacts) -> (Vec<Persisted>, Vec<Finding>) {
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
        let facts = self.facts;
        findings.extend(bad.iter().cloned());
        findings.extend(entries::conflicts(&list));
        let mut union: Vec<Entry> = Vec::new();
        for p in &list {
            for e in &p.sysctls {
                if !union.iter().any(|u| u.key == e.key) {
                    union.push(e.clone());
                }
            }
        }
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        let head = |c: &str| sysctl_d::composed_header(c, &names);
        let bytes = |s: String| Value::Bytes(s.into_bytes());
        let mut wanted = vec![Wanted {
            path: SYSCTL_D_PATH.into(),
            after: if union.is_empty() {
                Value::Absent
            } else {
                bytes(sysctl_d::render_composed(&names, &list))
            },
            reason: "sysctls, applied at boot by systemd-sysctl".into(),
        }];
        let conntrack = union.iter().any(|e| e.is_conntrack());
        let buckets = union
            .iter()
            .find(|e| e.key == "net.netfilter.nf_conntrack_buckets");
        let built_in = matches!(facts.module, ModuleState::BuiltIn { .. });
        if let (true, ModuleState::BuiltIn { evidence }) = (conntrack, &facts.module) {
            let mut f = Finding::new(
                codes::BUILT_IN,
                Severity::Info,
                format!("nf_conntrack is built into this kernel ({evidence}): its sysctls exist at boot, no modules-load.d or modprobe.d file is written"),
            );
            if let Some(b) = buckets {
                f = f.hint(format!(
                    "sysctl.d sets the buckets after boot; to size the hash from the start add `nf_conntrack.hashsize={}` to the kernel command line",
                    b.value
                ));
            }
            findings.push(f);
        }
        wanted.push(Wanted {
            path: MODULES_LOAD_PATH.into(),
            after: if conntrack && !built_in {
                bytes(format!("{}nf_conntrack\n", head("#")))
            } else {
                Value::Absent
            },
            reason: "load nf_conntrack before systemd-sysctl sets its keys".into(),
        });
        wanted.push(Wanted {
            path: MODPROBE_PATH.into(),
            after: match buckets {
                Some(b) if !built_in => bytes(format!(
                    "{}{}options nf_conntrack hashsize={}\n",
                    head("#"),
                    b.reason
                        .as_ref()
                        .map(|r| format!("# {r}\n"))
                        .unwrap_or_default(),
                    b.value
                )),
                _ => Value::Absent,
            },
            reason: "conntrack hash buckets as the module parameter".into(),
        });
        for p in &list {
            wanted.push(Wanted {
                path: entries::entry_path(&p.name),
                after: bytes(entries::render(p)),
                reason: format!("what is persisted from profile `{}`", p.name),
            });
        }
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
        let restore = list.iter().any(Persisted::restores);
        let when = |v: Value| if restore { v } else { Value::Absent };
        let mut ifaces: Vec<String> = list
            .iter()
            .flat_map(|p| p.offload.iter().map(|o| o.iface.clone()))
            .collect();
        ifaces.sort();
        ifaces.dedup();
        // The unit (or, with the package's unit installed, the drop-in and
        // the link to it): their header names every persisted profile.
        let rehead = |v: Value| match v {
            Value::Bytes(b) => {
                let text = String::from_utf8_lossy(&b);
                let body: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
                bytes(format!("{}{body}", head("#")))
            }
            other => other,
        };
        for f in unit::files("persisted", &self.opts.exec, &ifaces, facts.packaged_unit) {
            let after = if f.path == WANTS_PATH || f.after == Value::Absent {
                f.after
            } else {
                rehead(f.after)
            };
            wanted.push(Wanted {
                path: f.path.into(),
                after: when(after),
                reason: f.reason,
            });
        }
        if restore && !unit::use_packaged(&self.opts.exec, facts.packaged_unit) {
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
        out.findings.extend(facts.escapes.iter().map(root_escape));
        out.findings
            .extend(conflicts::scan(&union, &facts.sysctl_sources, self.allow));
        if !union.is_empty() {
            out.findings.extend(facts.managers.iter().map(manager));
        }
        for f in &mut out.findings {
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
        out.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }

    fn add(&self, out: &mut Plan, w: Wanted, module_skipped: bool) {
        let facts = self.facts;
        let in_dir = w.path.starts_with(&format!("{PERSISTED_PATH}/"));
        let escaped = |p: &str| facts.escapes.iter().any(|e| e.path == p);
        if escaped(&w.path) || (in_dir && escaped(PERSISTED_PATH)) {
            return;
        }
        let host = if in_dir {
            host_entry_path(
                facts,
                w.path
                    .trim_start_matches(&format!("{PERSISTED_PATH}/"))
                    .trim_end_matches(".toml"),
            )
        } else {
            host_of(facts, &w.path)
        };
        let before = facts
            .existing
            .get(&host)
            .or_else(|| facts.entry_files.get(&host))
            .cloned()
            .unwrap_or(Value::Absent);
        // persisted.d is tcto-tune's own directory: its files are entries
        // (an unreadable one refuses on its own), never foreign.
        let foreign = !in_dir && matches!(before, Value::Bytes(_)) && written_by(&before).is_none();
        if before.matches(&w.after) {
            if w.after != Value::Absent {
                out.unchanged.push(Unchanged {
                    kind: ChangeKind::File,
                    key: host,
                    current: describe(&before),
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
            return;
        }
        // A file we no longer need is removed only if it is ours.
        if w.after == Value::Absent
            && (foreign || matches!(before, Value::Symlink(_)) && w.path != WANTS_PATH)
        {
            return;
        }
        if foreign {
            out.findings.push(foreign_file(&host, &w.after));
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
            kind: ChangeKind::File,
            key: host.clone(),
            current: (before != Value::Absent).then(|| describe(&before)),
            desired: describe(&w.after),
            intent: Intent::Exact,
            reason: Some(w.reason),
            target: Target::File { path: host },
            before,
            after: w.after,
        });
    }
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
