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
//! | `/etc/tcto-tune/persisted.d/NAME.toml` | every persisted profile | its entry: what was persisted from it ([`entries`]) |
//! | `/etc/systemd/system/tcto-tune-restore.service` | same | runs `tcto-tune apply --persisted` early in boot |
//! | `.../tcto-tune-restore.service.d/50-interfaces.conf` | packaged unit, offloads | the interfaces the packaged unit waits for |
//! | `.../multi-user.target.wants/tcto-tune-restore.service` | same | the symlink `systemctl enable` would make |
//!
//! With the Debian package's unit installed and the packaged binary
//! persisting, the unit in /etc is not written (see [`mod@unit`]).
//!
//! Each group of files is a boot-time kind (`kinds/`: sysctl.d, the
//! conntrack module files, the entries, the boot unit) implementing
//! `boot_kind::BootKind`; the planner (`compose`) loops over `BOOT_KINDS`
//! and compares what each wants with what is on disk.
//!
//! Persisted profiles compose: each has its own entry, and every other file
//! is rendered from the union of the entries, so persisting X never drops
//! what Y persisted (see [`entries`]). A file no longer needed is planned
//! as `Absent`, but only if it is ours (it has our header).
//!
//! The result is an ordinary [`Plan`](crate::Plan) of `Target::File` changes, so the
//! apply transaction journals every file's prior content, restores them on
//! a failure, and `rollback` restores them later. The conflict scan
//! (`conflicts`) adds findings when another sysctl.d file would override
//! ours at boot.

mod boot_kind;
mod compose;
mod conflicts;
pub mod entries;
mod kinds;
mod preview;
pub mod restore;
pub mod sysctl_d;
pub mod unit;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;

use crate::change::{Change, Value};
use crate::check::{Finding, Severity};
use crate::words::Action;
pub use compose::{
    persisted, plan_persist, plan_remove, sysctl_d_preview, DIAGNOSTIC_ONLY, NEVER_ALLOWED,
};
pub use entries::Persisted;
pub(crate) use kinds::BOOT_KINDS;
pub use preview::{sysctl_d_diff, unreadable_entries};

pub use crate::persist_facts::{
    Manager, ModuleState, PersistFacts, RootEscape, SysctlSource, LEGACY_PERSISTED_PATH,
    MANAGED_FILES, MODPROBE_PATH, MODULES_LOAD_PATH, PERSISTED_PATH, SYSCTL_CONF, SYSCTL_DIRS,
    SYSCTL_D_PATH, UNIT_PATH, WANTS_PATH,
};

/// Options of [`plan_persist`].
#[derive(Debug, Clone, Default)]
pub struct PersistOptions {
    /// Codes the user allowed.
    pub allow: BTreeSet<String>,
    /// Absolute path of the `tcto-tune` binary for the unit's `ExecStart`.
    pub exec: String,
    /// How the caller names the actions hints point at.
    pub words: crate::words::WordsRef,
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
    /// `persist --remove NAME` whose entry's name holds no file: a
    /// directory, a FIFO (tcto-tune removes files and links only).
    #[error("`{path}` is {what}, not an entry file; tcto-tune removes files and links only")]
    NotAFile {
        /// Its host path.
        path: String,
        /// What it is (`a directory`).
        what: String,
    },
    /// `persist --remove NAME` of a profile that is not persisted.
    #[error("no persisted profile `{name}`{}", if persisted.is_empty() { " (nothing is persisted)".to_owned() } else { format!("; persisted: {}", persisted.join(", ")) })]
    NotPersisted {
        /// The name given.
        name: String,
        /// The names that are persisted.
        persisted: Vec<String>,
    },
}

impl PersistError {
    /// What the user can do, when it is not to correct the input: for a
    /// directory at an entry's name, the command that moves it out.
    pub fn hint(&self) -> Option<String> {
        match self {
            PersistError::NotAFile { path, .. } => Some(entries::move_out_hint(path)),
            _ => None,
        }
    }
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

/// Finding codes of this module (see [`crate::finding::FindingCode`]).
pub mod codes {
    use crate::finding::FindingCode;

    pub use super::conflicts::{ALSO_SET, OVERRIDDEN};
    pub use super::unit::codes::UNIT_OWN_PATH;
    /// A tool that rewrites our values at its own start is present.
    pub const RUNTIME_MANAGER: FindingCode = FindingCode::PersistRuntimeManager;
    /// A symlink sits where we would write a file.
    pub const TARGET_SYMLINK: FindingCode = FindingCode::PersistTargetSymlink;
    pub use super::entries::{CONFLICT as ENTRIES_CONFLICT, UNREADABLE as ENTRY_UNREADABLE};
    /// A profile name that cannot be a file name in persisted.d.
    pub const BAD_NAME: FindingCode = FindingCode::PersistBadName;
    /// A file at one of our paths lacks our header: someone else wrote it.
    pub const FOREIGN_FILE: FindingCode = FindingCode::PersistForeignFile;
    /// A path under `--root` leads out of it through a symbolic link.
    pub const ROOT_ESCAPE: FindingCode = FindingCode::PersistRootEscape;
    /// nf_conntrack is built in: module files skipped.
    pub const BUILT_IN: FindingCode = FindingCode::ConntrackBuiltIn;
}

/// `persist-foreign-file`: a file at one of our paths that tcto-tune did
/// not write (no header) would be replaced or removed. Refuses unless
/// allowed; either way the apply journals its content, so `rollback`
/// brings it back byte for byte.
fn foreign_file(host: &str, after: &Value, words: &dyn crate::words::Words) -> Finding {
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
    .hint(format!(
        "look at it (`cat {}`) and move its lines to a file of your own, or {} to replace it (its content is journaled; {} restores it)",
        crate::words::shell_word(host),
        words.instruct(&Action::Allow(codes::FOREIGN_FILE)),
        words.name(&Action::Rollback)
    ))
}

/// `persist-root-escape`: never allowed, the file would be read or written
/// outside the image.
pub fn root_escape(e: &RootEscape) -> Finding {
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
        crate::words::shell_word(&e.link)
    ))
}

/// The header line of a file tcto-tune wrote (any version), if it has one.
fn written_by(v: &Value) -> Option<String> {
    let Value::Bytes(b) = v else { return None };
    let text = String::from_utf8_lossy(b);
    let first = text.lines().next()?;
    first
        .contains("Written by tcto-tune from ")
        .then(|| first.to_owned())
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
        &change.key(),
        as_text(&change.before).as_deref(),
        as_text(&change.after).as_deref(),
    )
}
