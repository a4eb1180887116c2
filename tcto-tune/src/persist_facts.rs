//! What the backend reads for `persist`, and the paths persist manages.
//!
//! Plain data shared by the persist planner (`crate::persist`) and the
//! file backend (`crate::system`), so that neither imports the other.
//! Re-exported from `crate::persist` (and the unit paths from
//! `crate::persist::unit`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::change::Value;

/// The sysctl.d file.
pub const SYSCTL_D_PATH: &str = "/etc/sysctl.d/99-tcto-tune.conf";
/// The modules-load.d file (loads nf_conntrack before systemd-sysctl runs).
pub const MODULES_LOAD_PATH: &str = "/etc/modules-load.d/99-tcto-tune.conf";
/// The modprobe.d file (`options nf_conntrack hashsize=N`; `99-` so that
/// our option comes last and wins).
pub const MODPROBE_PATH: &str = "/etc/modprobe.d/99-tcto-tune.conf";
/// The directory of persisted entries, one `NAME.toml` per profile (the
/// unit runs when it exists).
pub const PERSISTED_PATH: &str = "/etc/tcto-tune/persisted.d";
/// The single persisted profile of earlier versions: still read, and
/// migrated to [`PERSISTED_PATH`] by the next persist.
pub const LEGACY_PERSISTED_PATH: &str = "/etc/tcto-tune/persisted.toml";
/// The restore unit.
pub const UNIT_PATH: &str = "/etc/systemd/system/tcto-tune-restore.service";
/// The symlink that enables the unit.
pub const WANTS_PATH: &str =
    "/etc/systemd/system/multi-user.target.wants/tcto-tune-restore.service";

/// Every fixed file persist manages (the entries in [`PERSISTED_PATH`]
/// come on top). Plans write in this order, the entries before the unit:
/// sysctls first; the data before the unit, and the unit before the link
/// that enables it, so an interrupted persist never leaves an enabled unit
/// without its data.
pub const MANAGED_FILES: &[&str] = &[
    SYSCTL_D_PATH,
    MODULES_LOAD_PATH,
    MODPROBE_PATH,
    LEGACY_PERSISTED_PATH,
    UNIT_PATH,
    DROPIN_PATH,
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
    /// The files in [`PERSISTED_PATH`] named `*.toml`, by host path:
    /// `Bytes`, `Symlink` (never followed), or `Text` saying what else is
    /// there under that name (`a directory`, `a FIFO`): never an entry,
    /// and never removed by tcto-tune.
    #[serde(default)]
    pub entry_files: BTreeMap<String, Value>,
    /// sysctl.d files, directories in precedence order, names sorted.
    pub sysctl_sources: Vec<SysctlSource>,
    /// nf_conntrack built in or not.
    pub module: ModuleState,
    /// kube-proxy / TuneD found.
    pub managers: Vec<Manager>,
    /// The Debian package's unit is installed under the root
    /// ([`PACKAGED_UNIT_PATH`]): `persist` by the packaged binary
    /// enables it instead of writing one.
    #[serde(default)]
    pub packaged_unit: bool,
}

/// Where the Debian package installs the unit.
pub const PACKAGED_UNIT_PATH: &str = "/lib/systemd/system/tcto-tune-restore.service";
/// The same unit through merged `/usr` (`/lib` is a link to `usr/lib`).
pub const PACKAGED_UNIT_USR_PATH: &str = "/usr/lib/systemd/system/tcto-tune-restore.service";
/// The packaged unit's `ExecStart=` line, by which the backend recognises it.
pub const PACKAGED_EXEC_START: &str = "ExecStart=/usr/bin/tcto-tune apply --persisted";
/// Drop-in holding the per-interface ordering for the packaged unit.
pub const DROPIN_PATH: &str = "/etc/systemd/system/tcto-tune-restore.service.d/50-interfaces.conf";
