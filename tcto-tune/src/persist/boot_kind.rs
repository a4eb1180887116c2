//! The contract between the persist planner and each kind of boot-time
//! file.
//!
//! The runtime planner loops over [`crate::plan::KINDS`], each a
//! [`crate::kind::FixKind`] that plans from a profile and the live
//! [`crate::SystemState`]. What makes a plan survive a reboot is a second,
//! separate loop: the persist planner (`compose`) loops over
//! [`super::BOOT_KINDS`], each a [`BootKind`] that says which files it wants
//! for the composed list of persisted entries and what it finds about
//! them, given [`BootInput`]. The two stay apart because a boot kind reads
//! disk facts ([`PersistFacts`]: the files under `--root`, the module state,
//! other sysctl.d files) that planning and applying at runtime never read.
//!
//! A kind only renders: comparing each wanted file with what is on disk
//! (unchanged, a change, a foreign file, a link at the target, a path
//! leading out of `--root`) is the planner's, the same for every kind.
//! This module depends on no kind and on no planner, so each kind and the
//! planner import it without a cycle.

use std::collections::BTreeSet;

use super::entries::Persisted;
use super::sysctl_d::{composed_header, Entry};
use super::{host_path, PersistFacts, PersistOptions};
use crate::change::Value;
use crate::finding::{Finding, FindingCode};

/// One kind of boot-time file: what it writes and what it finds.
///
/// The planner collects, in registry order: every kind's
/// [`findings`](BootKind::findings), then every kind's
/// [`files`](BootKind::files) (which it compares with disk, in that order,
/// which is the order the transaction writes them), then every kind's
/// [`host_findings`](BootKind::host_findings).
pub trait BootKind: Sync {
    /// Every file this kind manages, in write order: its wanted content, or
    /// [`Value::Absent`] when it is not needed (removed if it is ours). A
    /// kind lists each of its paths every time, needed or not, so that a
    /// file no longer needed is removed.
    fn files(&self, input: &BootInput) -> Vec<Wanted>;
    /// Findings about what this kind persists (the kernel it boots, the
    /// binary its unit runs), listed before the files' own findings.
    fn findings(&self, input: &BootInput) -> Vec<Finding> {
        let _ = input;
        vec![]
    }
    /// Findings about what else on the host decides this kind's values at
    /// boot (another sysctl.d file, a daemon that rewrites them), listed
    /// after the files' own findings.
    fn host_findings(&self, input: &BootInput) -> Vec<Finding> {
        let _ = input;
        vec![]
    }
}

/// What every boot kind sees.
pub struct BootInput<'a> {
    /// Every persisted entry, the one being persisted in its place (or, for
    /// `--remove`, dropped), sorted by name.
    pub list: &'a [Persisted],
    /// Every persisted sysctl once, the first entry's where two set one key
    /// (two that disagree refuse before anything is written).
    pub union: &'a [Entry],
    /// The refusing findings of the entries that could not be read (their
    /// files stay).
    pub unreadable: &'a [Finding],
    /// What the backend read.
    pub facts: &'a PersistFacts,
    /// The options.
    pub opts: &'a PersistOptions,
    /// Codes allowed (`--allow` and the profile's own `allow`).
    pub allow: &'a BTreeSet<String>,
}

impl BootInput<'_> {
    /// Host path of an in-image path: as resolved by the backend, or joined.
    pub fn host_of(&self, path: &str) -> String {
        host_of(self.facts, path)
    }

    /// The names of the persisted profiles, in order.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|p| p.name.as_str()).collect()
    }

    /// The header of a generated file, naming every persisted profile.
    pub fn header(&self) -> String {
        composed_header("#", &self.names())
    }

    /// Whether the boot unit must re-apply something of some entry.
    pub fn restores(&self) -> bool {
        self.list.iter().any(Persisted::restores)
    }
}

/// Host path of an in-image path: as resolved by the backend, or joined.
pub fn host_of(facts: &PersistFacts, path: &str) -> String {
    facts
        .resolved
        .get(path)
        .cloned()
        .unwrap_or_else(|| host_path(&facts.root, path))
}

/// One file a kind wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// In-image path.
    pub path: String,
    /// Wanted content; `Absent`: removed if it is there and ours.
    pub after: Value,
    /// Why, for the plan.
    pub reason: String,
    /// When not needed and not there: list it as skipped with this code
    /// and why (instead of saying nothing).
    pub skip: Option<(FindingCode, String)>,
    /// This path is ours as a symbolic link: a link there is removed when
    /// the file is no longer needed (a link at any other path is not ours
    /// and stays).
    pub link: bool,
    /// The file is in this directory of tcto-tune's own (persisted.d): its
    /// host path is the directory's as the backend resolved it, it leads
    /// out of `--root` when the directory does, and it is never foreign
    /// (a file there is an entry; an unreadable one refuses on its own).
    pub dir: Option<&'static str>,
}

impl Wanted {
    /// A file with this content (or absent), for this reason.
    pub fn new(path: impl Into<String>, after: Value, reason: impl Into<String>) -> Self {
        Wanted {
            path: path.into(),
            after,
            reason: reason.into(),
            skip: None,
            link: false,
            dir: None,
        }
    }

    /// When not needed and not there, list it as skipped (`code`, `why`).
    pub fn skipped_as(mut self, code: FindingCode, why: impl Into<String>) -> Self {
        self.skip = Some((code, why.into()));
        self
    }

    /// Mark the path as ours as a symbolic link.
    pub fn link(mut self) -> Self {
        self.link = true;
        self
    }

    /// Mark the file as one in `dir`, a directory of tcto-tune's own.
    pub fn in_own_dir(mut self, dir: &'static str) -> Self {
        self.dir = Some(dir);
        self
    }
}

/// A file's content from text.
pub fn bytes(s: String) -> Value {
    Value::Bytes(s.into_bytes())
}
