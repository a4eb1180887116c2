//! What `plan` shows of a later `persist`: the diff of the sysctl.d file.
//!
//! The old side is the file as the persist facts read it under their root
//! (`--root`, the Ansible module's `root`), not a fresh read of the host's
//! path: a symbolic link there is shown as the link it is, never followed
//! to whatever it points at, and an image is compared with its own file.
//!
//! The diff is what persist would really write. While a persisted entry
//! cannot be read, persist refuses (the entries cannot be combined without
//! it) and writes nothing: the diff is then empty, and
//! [`unreadable_entries`] says why. (Rendered without that entry, the diff
//! used to show its lines removed, which persist never does.)

use crate::change::Value;
use crate::plan::Plan;
use crate::profile::Profile;

use super::boot_kind::host_of;
use super::{codes, persisted, sysctl_d, sysctl_d_preview, PersistFacts, SYSCTL_D_PATH};

/// The unified diff, labelled with the in-image path, from the sysctl.d
/// file under `facts.root` to the one persisting `profile` would write
/// there (composed with what is persisted already). Empty when the
/// profile persists no sysctl, or while a persisted entry cannot be read
/// ([`unreadable_entries`]): persist then leaves the file alone.
pub fn sysctl_d_diff(profile: &Profile, runtime: &Plan, facts: &PersistFacts) -> String {
    if sysctl_d::entries(profile, runtime).is_empty() || !unreadable_entries(facts).is_empty() {
        return String::new();
    }
    let old = match facts.existing.get(&host_of(facts, SYSCTL_D_PATH)) {
        None | Some(Value::Absent) => None,
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Some(Value::Symlink(t)) => Some(format!("symbolic link to {t}\n")),
        Some(other) => Some(format!("{}\n", other.display())),
    };
    let new = sysctl_d_preview(profile, runtime, facts);
    sysctl_d::unified_diff(SYSCTL_D_PATH, old.as_deref(), Some(&new))
}

/// The persisted entries under `facts.root` that cannot be read, each as
/// persist's refusal says it: while there is one, persisting any profile
/// refuses and writes nothing (`persist --remove` removes only its own
/// entry). Empty when every entry reads.
pub fn unreadable_entries(facts: &PersistFacts) -> Vec<String> {
    let (_, bad) = persisted(facts, &crate::words::NEUTRAL);
    bad.into_iter()
        .filter(|f| f.code == codes::ENTRY_UNREADABLE)
        .map(|f| f.message)
        .collect()
}
