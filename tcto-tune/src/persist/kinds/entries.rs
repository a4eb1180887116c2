//! The persisted entries: one `persisted.d/NAME.toml` per persisted
//! profile (rendered by [`super::super::entries`]), the removal of entries
//! no longer persisted, and of the single legacy file they replaced.

use std::path::Path;

use super::super::boot_kind::{bytes, BootInput, BootKind, Wanted};
use super::super::entries;
use super::super::{LEGACY_PERSISTED_PATH, PERSISTED_PATH};
use crate::change::Value;

/// The entry files.
pub struct Entries;

impl BootKind for Entries {
    /// An entry file per persisted profile, the removal of entries no
    /// longer persisted (an unreadable one stays), and of the legacy file.
    fn files(&self, input: &BootInput) -> Vec<Wanted> {
        let list = input.list;
        let mut wanted: Vec<Wanted> = list
            .iter()
            .map(|p| {
                Wanted::new(
                    entries::entry_path(&p.name),
                    bytes(entries::render(p)),
                    format!("what is persisted from profile `{}`", p.name),
                )
                .in_own_dir(PERSISTED_PATH)
            })
            .collect();
        let dir = input.host_of(PERSISTED_PATH);
        for host in input.facts.entry_files.keys() {
            let stem = Path::new(host)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let unreadable = input
                .unreadable
                .iter()
                .any(|f| entries::names_file(f, host));
            // Only a file or a link is ever removed (a directory in its
            // place is the user's to move: its finding says how).
            let removable = entries::removable(&input.facts.entry_files[host]);
            let kept = list.iter().any(|p| p.name == stem) || unreadable || !removable;
            if !kept && host.starts_with(&dir) {
                wanted.push(
                    Wanted::new(
                        entries::entry_path(&stem),
                        Value::Absent,
                        format!("profile `{stem}` is no longer persisted"),
                    )
                    .in_own_dir(PERSISTED_PATH)
                    // A link in our own directory at the entry's name (an
                    // entry never read) goes too: the link itself, never
                    // what it points at.
                    .link(),
                );
            }
        }
        wanted.push(Wanted::new(
            LEGACY_PERSISTED_PATH,
            Value::Absent,
            format!("migrated to {PERSISTED_PATH}"),
        ));
        wanted
    }
}
