//! Persist: make a plan survive a reboot the way Linux expects.
//!
//! Runtime changes vanish at reboot, and half the incidents this tool fixes
//! come back after one. This module decides, as a pure function of the
//! profile, the runtime plan and [`PersistFacts`] the backend read, which
//! files to write and what goes in them:
//!
//! | file | when | why |
//! | --- | --- | --- |
//! | `/etc/sysctl.d/99-tcto-tune.conf` | any sysctl | systemd-sysctl applies it at boot; `99-` sorts after the distribution's files |
//! | `/etc/modules-load.d/99-tcto-tune.conf` | a conntrack key, module not built in | conntrack sysctls do not exist until nf_conntrack is loaded; systemd-sysctl runs after systemd-modules-load |
//! | `/etc/modprobe.d/99-tcto-tune.conf` | buckets, module not built in | `options nf_conntrack hashsize=N` sizes the hash when the module loads |
//! | `/etc/tcto-tune/persisted.toml` | NOTRACK or offloads | the kernel forgets both; the unit re-applies this |
//! | `/etc/systemd/system/tcto-tune-restore.service` | same | runs `tcto-tune apply --persisted` early in boot |
//! | `.../multi-user.target.wants/tcto-tune-restore.service` | same | the symlink `systemctl enable` would make |
//!
//! A file no longer needed (a profile without NOTRACK persisted over one
//! with it) is planned as `Absent`: these paths are tcto-tune's own.
//!
//! The result is an ordinary [`Plan`] of `Target::File` changes, so the
//! apply transaction journals every file's prior content, restores them on
//! a failure, and `rollback` restores them later. The conflict scan
//! ([`conflicts`]) adds findings when another sysctl.d file would override
//! ours at boot.

pub mod conflicts;
pub mod restore;
pub mod sysctl_d;
pub mod unit;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::change::{Change, ChangeKind, Target, Value};
use crate::check::{Finding, Severity};
use crate::fix::Intent;
use crate::plan::{Plan, Skipped, Unchanged, PLAN_SCHEMA};
use crate::profile::Profile;

/// The sysctl.d file.
pub const SYSCTL_D_PATH: &str = "/etc/sysctl.d/99-tcto-tune.conf";
/// The modules-load.d file (loads nf_conntrack before systemd-sysctl runs).
pub const MODULES_LOAD_PATH: &str = "/etc/modules-load.d/99-tcto-tune.conf";
/// The modprobe.d file (`options nf_conntrack hashsize=N`; `99-` so that
/// our option comes last and wins).
pub const MODPROBE_PATH: &str = "/etc/modprobe.d/99-tcto-tune.conf";
/// The persisted NOTRACK/offload profile.
pub const PERSISTED_PATH: &str = "/etc/tcto-tune/persisted.toml";
/// The restore unit.
pub const UNIT_PATH: &str = "/etc/systemd/system/tcto-tune-restore.service";
/// The symlink that enables the unit.
pub const WANTS_PATH: &str =
    "/etc/systemd/system/multi-user.target.wants/tcto-tune-restore.service";

/// Every file persist manages, in write order: sysctls first; the data
/// file before the unit, and the unit before the link that enables it, so
/// an interrupted persist never leaves an enabled unit without its data.
pub const MANAGED_FILES: &[&str] = &[
    SYSCTL_D_PATH,
    MODULES_LOAD_PATH,
    MODPROBE_PATH,
    PERSISTED_PATH,
    UNIT_PATH,
    WANTS_PATH,
];

/// sysctl.d directories in systemd's precedence order.
pub const SYSCTL_DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];
/// The legacy file procps `sysctl --system` reads last.
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Whether nf_conntrack is a module in the kernel the files are for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModuleState {
    /// Built into the kernel: always present, module files are pointless.
    BuiltIn {
        /// How we know.
        evidence: String,
    },
    /// A loadable module.
    Loadable {
        /// How we know.
        evidence: String,
    },
    /// Could not tell (an image without /lib/modules): the module files are
    /// written, since loading a built-in module is a harmless no-op.
    #[default]
    Unknown,
}

/// One file in a sysctl.d directory (or /etc/sysctl.conf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlSource {
    /// The directory as the booted system sees it (`/etc/sysctl.d`), or
    /// `/etc` for sysctl.conf.
    pub dir: String,
    /// File name.
    pub name: String,
    /// Path on this host (under `--root`), shown in findings.
    pub path: String,
    /// Content.
    pub text: String,
    /// A link to /dev/null: masks the same name in lower directories.
    pub masked: bool,
    /// This is /etc/sysctl.conf, or a link to it.
    pub is_sysctl_conf: bool,
}

/// A tool that rewrites our sysctls at its own start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    /// `kube-proxy` or `TuneD`.
    pub name: String,
    /// What showed it is there (a path, a pid).
    pub evidence: String,
}

/// A path under `--root` that leads out of it (`persist-root-escape`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootEscape {
    /// The in-image path persist wanted to read or write.
    pub path: String,
    /// Host path of the symbolic link that leads out.
    pub link: String,
    /// The link's target as stored.
    pub target: String,
}

/// What the backend read for persist (`system::read_persist_facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistFacts {
    /// The root directory (`/` for the live host).
    pub root: String,
    /// Current value of every managed file, by host path.
    pub existing: BTreeMap<String, Value>,
    /// Host path of every managed file that resolves inside the root (links
    /// followed as the image sees them), by in-image path.
    #[serde(default)]
    pub resolved: BTreeMap<String, String>,
    /// Paths that lead out of the root.
    #[serde(default)]
    pub escapes: Vec<RootEscape>,
    /// sysctl.d files, directories in precedence order, names sorted.
    pub sysctl_sources: Vec<SysctlSource>,
    /// nf_conntrack built in or not.
    pub module: ModuleState,
    /// kube-proxy / TuneD found.
    pub managers: Vec<Manager>,
}

/// Options of [`plan_persist`].
#[derive(Debug, Clone, Default)]
pub struct PersistOptions {
    /// Codes the user allowed.
    pub allow: BTreeSet<String>,
    /// Absolute path of the `tcto-tune` binary for the unit's `ExecStart`.
    pub exec: String,
}

/// Why persist options are unusable.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The `ExecStart` binary path is unusable.
    #[error("cannot use `{path}` as the unit's ExecStart binary: {why}")]
    BadExec {
        /// The path.
        path: String,
        /// Why.
        why: &'static str,
    },
}

/// Validate the binary path the unit runs.
pub fn check_exec(path: &str) -> Result<(), PersistError> {
    let bad = |why| {
        Err(PersistError::BadExec {
            path: path.to_owned(),
            why,
        })
    };
    if !Path::new(path).is_absolute() {
        return bad("not an absolute path");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return bad("contains a quote, a backslash or a control character");
    }
    Ok(())
}

/// Host path of an in-system path under `root`.
pub fn host_path(root: &str, path: &str) -> String {
    Path::new(root)
        .join(path.trim_start_matches('/'))
        .display()
        .to_string()
}

/// Finding codes of this module (see [`crate::check::CODES`]).
pub mod codes {
    pub use super::conflicts::{ALSO_SET, OVERRIDDEN};
    /// A tool that rewrites our values at its own start is present.
    pub const RUNTIME_MANAGER: &str = "persist-runtime-manager";
    /// A symlink sits where we would write a file.
    pub const TARGET_SYMLINK: &str = "persist-target-symlink";
    /// A file written from another profile is replaced.
    pub const REPLACES_PROFILE: &str = "persist-replaces-profile";
    /// A file at one of our paths lacks our header: someone else wrote it.
    pub const FOREIGN_FILE: &str = "persist-foreign-file";
    /// A path under `--root` leads out of it through a symbolic link.
    pub const ROOT_ESCAPE: &str = "persist-root-escape";
    /// nf_conntrack is built in: module files skipped.
    pub const BUILT_IN: &str = "conntrack-built-in";
}

struct Wanted {
    /// Which part of the profile the file persists: the sysctl part
    /// (sysctl.d, modules-load.d, modprobe.d) or the restore part
    /// (persisted.toml, unit, link).
    sysctl_part: bool,
    path: &'static str,
    after: Value,
    reason: String,
}

/// Plan the files that persist `profile`, given its runtime plan on this
/// host (`runtime`, whose findings are carried over: a value refused at
/// runtime is refused at boot too) and what the backend read.
pub fn plan_persist(
    profile: &Profile,
    runtime: &Plan,
    facts: &PersistFacts,
    opts: &PersistOptions,
) -> Plan {
    let entries = sysctl_d::entries(profile, runtime);
    // A profile's `allow = [...]` counts as if given with `--allow`, here
    // as in the runtime planner.
    let allow: BTreeSet<String> = opts.allow.union(&profile.allow).cloned().collect();
    let mut out = Plan {
        schema: PLAN_SCHEMA,
        profile: profile.name.clone(),
        initial_netns: runtime.initial_netns,
        changes: vec![],
        unchanged: vec![],
        skipped: vec![],
        findings: runtime.findings.clone(),
    };
    let name = profile.name.as_str();
    let bytes = |s: String| Value::Bytes(s.into_bytes());
    let mut wanted = vec![Wanted {
        sysctl_part: true,
        path: SYSCTL_D_PATH,
        after: if entries.is_empty() {
            Value::Absent
        } else {
            bytes(sysctl_d::render(name, &entries))
        },
        reason: "sysctls, applied at boot by systemd-sysctl".into(),
    }];

    let conntrack = entries.iter().any(|e| e.is_conntrack());
    let buckets = entries
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
        out.findings.push(f);
    }
    let header = |c: &str| sysctl_d::header(c, name);
    wanted.push(Wanted {
        sysctl_part: true,
        path: MODULES_LOAD_PATH,
        after: if conntrack && !built_in {
            bytes(format!("{}nf_conntrack\n", header("#")))
        } else {
            Value::Absent
        },
        reason: "load nf_conntrack before systemd-sysctl sets its keys".into(),
    });
    wanted.push(Wanted {
        sysctl_part: true,
        path: MODPROBE_PATH,
        after: match buckets {
            Some(b) if !built_in => bytes(format!(
                "{}{}options nf_conntrack hashsize={}\n",
                header("#"),
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

    let restore = restore::needed(profile);
    let when = |v: Value| if restore { v } else { Value::Absent };
    wanted.push(Wanted {
        sysctl_part: false,
        path: PERSISTED_PATH,
        after: when(bytes(restore::render(profile, &opts.allow))),
        reason: "NOTRACK rules and NIC offloads to re-apply at boot".into(),
    });
    wanted.push(Wanted {
        sysctl_part: false,
        path: UNIT_PATH,
        after: when(bytes(unit::render(
            name,
            &opts.exec,
            &restore::ifaces(profile),
        ))),
        reason: "runs `tcto-tune apply --persisted` before network-pre.target".into(),
    });
    wanted.push(Wanted {
        sysctl_part: false,
        path: WANTS_PATH,
        after: when(Value::Symlink(UNIT_PATH.into())),
        reason: "enables the unit (what `systemctl enable` would link)".into(),
    });

    for w in wanted {
        // A profile persists only the parts it has: persisting a NOTRACK
        // profile leaves the sysctl files of an earlier one alone, and the
        // other way round. (`rollback` removes what a persist wrote.)
        if (w.sysctl_part && entries.is_empty()) || (!w.sysctl_part && !restore) {
            continue;
        }
        if facts.escapes.iter().any(|e| e.path == w.path) {
            continue;
        }
        let host = facts
            .resolved
            .get(w.path)
            .cloned()
            .unwrap_or_else(|| host_path(&facts.root, w.path));
        let before = facts.existing.get(&host).cloned().unwrap_or(Value::Absent);
        if let Some(other) = written_by(&before).filter(|o| o != name) {
            if !before.matches(&w.after) {
                out.findings.push(
                    Finding::new(
                        codes::REPLACES_PROFILE,
                        Severity::Info,
                        format!("{host} was written from profile `{other}`; persisting `{name}` replaces it"),
                    )
                    .hint(format!("to keep both, persist a profile that `extends` `{other}` and adds what `{name}` sets")),
                );
            }
        }
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
            } else if (w.path == MODULES_LOAD_PATH || w.path == MODPROBE_PATH)
                && conntrack
                && built_in
            {
                out.skipped.push(Skipped {
                    kind: ChangeKind::File,
                    key: host,
                    code: codes::BUILT_IN.into(),
                    why: "nf_conntrack is built into the kernel".into(),
                    current: None,
                    desired: String::new(),
                });
            }
            continue;
        }
        if let Value::Bytes(_) = &before {
            if written_by(&before).is_none() {
                out.findings.push(foreign(&host, &w.after));
            }
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

    out.findings.extend(facts.escapes.iter().map(root_escape));
    out.findings
        .extend(conflicts::scan(&entries, &facts.sysctl_sources, &allow));
    if !entries.is_empty() {
        for m in &facts.managers {
            out.findings.push(
                Finding::new(
                    codes::RUNTIME_MANAGER,
                    Severity::Warn,
                    format!("{} is present ({}): it rewrites conntrack and backlog sysctls when it starts, after systemd-sysctl, so the persisted values may not last", m.name, m.evidence),
                )
                .hint(match m.name.as_str() {
                    "kube-proxy" => "set the same values in kube-proxy's configuration (`conntrack.maxPerCore`, `conntrack.min`, `conntrack.tcpEstablishedTimeout`)",
                    _ => "put the values in the active TuneD profile's [sysctl] section, or a custom profile that includes it",
                }),
            );
        }
    }
    for f in &mut out.findings {
        if allow.contains(&f.code) {
            f.allowed = true;
            if f.code == codes::FOREIGN_FILE {
                f.severity = Severity::Warn;
            }
        }
        // Never allowed: the write would land outside the image.
        if f.code == codes::ROOT_ESCAPE {
            f.allowed = false;
        }
    }
    out.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// `persist-foreign-file`: a file at one of our paths that tcto-tune did
/// not write (no header) would be replaced or removed. Refuses unless
/// allowed; either way the apply journals its content, so `rollback`
/// brings it back byte for byte.
fn foreign(host: &str, after: &Value) -> Finding {
    let what = if *after == Value::Absent {
        "removes"
    } else {
        "replaces"
    };
    Finding::new(
        codes::FOREIGN_FILE,
        Severity::Refuse,
        format!("{host} exists and was not written by tcto-tune (no `Written by tcto-tune` header); persisting {what} it"),
    )
    .hint(format!("look at it (`cat {host}`) and move its lines to a file of your own, or pass `--allow {}` to replace it (its content is journaled; `tcto-tune rollback` restores it)", codes::FOREIGN_FILE))
}

/// `persist-root-escape`: never allowed, the file would be read or written
/// outside the image.
fn root_escape(e: &RootEscape) -> Finding {
    Finding::new(
        codes::ROOT_ESCAPE,
        Severity::Refuse,
        format!(
            "{} leads out of the root directory: `{}` is a symbolic link to `{}`, which climbs above the root even when taken inside the image",
            e.path, e.link, e.target
        ),
    )
    .hint(format!(
        "fix the link in the image (`ls -l {}`); an absolute link is taken inside the root, a relative one must not climb above it",
        e.link
    ))
}

/// The profile named in the header of a file tcto-tune wrote.
fn written_by(v: &Value) -> Option<String> {
    let Value::Bytes(b) = v else { return None };
    let text = String::from_utf8_lossy(b);
    let first = text.lines().next()?;
    let rest = first.split("Written by tcto-tune from profile `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

/// A short description of a file value for plans and tables.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Absent => "(absent)".into(),
        Value::Bytes(b) => {
            let lines = b.iter().filter(|c| **c == b'\n').count();
            format!("{lines} lines")
        }
        Value::Symlink(t) => format!("link to {t}"),
        other => other.display(),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Absent => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Symlink(t) => Some(format!("symbolic link to {t}\n")),
        other => Some(format!("{}\n", other.display())),
    }
}

/// The unified diff of one file change (prior content to planned content).
pub fn diff(change: &Change) -> String {
    sysctl_d::unified_diff(
        &change.key,
        as_text(&change.before).as_deref(),
        as_text(&change.after).as_deref(),
    )
}
