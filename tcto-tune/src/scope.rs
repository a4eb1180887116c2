//! What a sysctl reaches: this network namespace, the whole host, or a
//! program the kernel runs as root.
//!
//! tcto-tune is often run inside a container, that is, a child network
//! namespace that shares everything else with the host. There `/proc/sys`
//! mixes two kinds of keys: the ones under `net.` that the kernel registers
//! per network namespace (each namespace has its own `somaxconn`), and all
//! the others (`vm.*`, `kernel.*`, `fs.*`, and the `net.` keys registered
//! only for the initial namespace), which are the host's own. Many of the
//! latter are *writable* from the container (`vm.swappiness` is mode 0644
//! there), so "the kernel let me write it" says nothing about whose value
//! changed. The scope of a key is therefore decided before planning, from
//! facts the state reader already records in [`SystemState`]:
//!
//! - whether we run in the initial network namespace
//!   ([`SystemState::in_initial_netns`], from the nsfs inode of
//!   `/proc/thread-self/ns/net`), and
//! - whether the key exists *here* ([`SysctlReading::value`] is `None` when
//!   it does not): `/proc/sys/net` shows the keys of the reading task's own
//!   network namespace, and in a child namespace it lacks the global ones
//!   (`net.core.netdev_max_backlog`, `net.ipv4.tcp_mem`...).
//!
//! So: a key outside `net.` is host-wide; a `net.` key the crate knows as
//! global ([`crate::fix::KNOWN_KEYS`]: the conntrack table size, which is
//! present but read-only in a child namespace) is host-wide; a `net.` key
//! absent from a child namespace is host-wide (or does not exist at all: the
//! two cannot be told apart from inside, and neither can be written there);
//! every other `net.` key is this namespace's own (an interface's key,
//! `net.ipv4.conf.IFACE.*`, absent here names a missing interface instead).
//! In the initial namespace the namespace *is* the host's, so there a `net.`
//! key is simply planned.
//!
//! Keys that another namespace type covers (`kernel.hostname`: UTS;
//! `kernel.shmmax`, `fs.mqueue.*`: IPC; `user.*`: user) are counted
//! host-wide too: tcto-tune tells only network namespaces apart, and they
//! are outside its scope anyway, so the cautious answer costs nothing.
//!
//! Separately, a few keys make the kernel run a program or load code as
//! root: they are refused whatever the scope, and no `--allow` lifts that
//! (see [`runs_program`]). Nothing about TCP connect timeouts needs them, and
//! a profile, a `--set` value or a persisted file that reaches one is either
//! a mistake or an attack.
//!
//! [`SysctlReading::value`]: crate::state::SysctlReading::value

use serde::{Deserialize, Serialize};

use crate::fix::{key_info, Scope};
use crate::state::SystemState;

/// Whose value a write to a key changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyScope {
    /// This network namespace's own value.
    Netns,
    /// One value for the whole host.
    Host,
}

/// The scope of `key` as seen from the state read here. Pure: the facts it
/// uses (initial namespace or not, the key present here or not) are in
/// `state`.
pub fn key_scope(key: &str, state: &SystemState) -> KeyScope {
    if !in_net_tree(key) || key_info(key).is_some_and(|i| i.scope == Scope::Global) {
        return KeyScope::Host;
    }
    if !state.in_initial_netns && state.sysctl(key).is_none() && !per_interface(key) {
        return KeyScope::Host;
    }
    KeyScope::Netns
}

/// Whether `key` is one of an interface's own keys
/// (`net.ipv4.conf.eth0.rp_filter`, `net.ipv6.neigh.eth0.*`): those exist
/// per interface of each namespace, so one absent here names an interface
/// this namespace does not have, not a host-wide key.
fn per_interface(key: &str) -> bool {
    let mut seg = key.split('.');
    seg.next() == Some("net")
        && seg.next().is_some()
        && matches!(seg.next(), Some("conf" | "neigh"))
}

/// Whether `key` lies under `/proc/sys/net`: the only tree whose keys the
/// kernel registers per network namespace, and the only one tcto-tune's
/// remedies need.
pub fn in_net_tree(key: &str) -> bool {
    key.starts_with("net.")
}

/// A key, or a subtree of keys, that makes the kernel run a program or load
/// code.
struct ProgramKey {
    /// Dotted key, or subtree prefix when `subtree`.
    key: &'static str,
    /// Whether every key below `key` is meant.
    subtree: bool,
    /// What the kernel does with it.
    why: &'static str,
}

/// The kernel's usermode-helper paths and their likes: every sysctl whose
/// value names a program the kernel starts as root (through
/// `call_usermodehelper`), widens what such programs may do, or registers
/// code the kernel runs for others.
const PROGRAM_KEYS: &[ProgramKey] = &[
    ProgramKey {
        key: "kernel.modprobe",
        subtree: false,
        why: "the program the kernel runs as root to load a module (`modprobe_path`)",
    },
    ProgramKey {
        key: "kernel.hotplug",
        subtree: false,
        why: "the program the kernel runs as root on every device event (`uevent_helper`)",
    },
    ProgramKey {
        key: "kernel.poweroff_cmd",
        subtree: false,
        why: "the program the kernel runs as root for an orderly power-off",
    },
    ProgramKey {
        key: "kernel.usermodehelper",
        subtree: true,
        why: "the capabilities every program the kernel starts as root (usermode helpers) may keep",
    },
    ProgramKey {
        key: "fs.binfmt_misc",
        subtree: true,
        why: "binfmt_misc registers interpreters the kernel runs, possibly with the caller's credentials, for matching executables",
    },
    ProgramKey {
        key: "fs.ocfs2.nm.hb_ctl_path",
        subtree: false,
        why: "the program the OCFS2 cluster code runs as root to control heartbeats",
    },
];

/// Why writing `value` to `key` would make the kernel run a program or load
/// code, or `None` when it would not. Such a write is refused always: no
/// `--allow` code lifts it.
///
/// `kernel.core_pattern` counts when the value starts with `|` (the kernel
/// pipes every core dump into that program, run as root) or `@` (it hands
/// the dump to whatever listens on that socket, Linux 6.16+); a plain path
/// is only outside the namespace scope.
pub fn runs_program(key: &str, value: &str) -> Option<&'static str> {
    if key == "kernel.core_pattern" {
        let v = value.trim_start();
        return (v.starts_with('|') || v.starts_with('@')).then_some(
            "a core_pattern starting with `|` makes the kernel run that program as root on every crash (`@` hands the core to a socket's server)",
        );
    }
    PROGRAM_KEYS
        .iter()
        .find(|p| {
            key == p.key
                || (p.subtree
                    && key
                        .strip_prefix(p.key)
                        .is_some_and(|rest| rest.starts_with('.')))
        })
        .map(|p| p.why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SysctlReading;

    fn state(initial: bool, keys: &[&str]) -> SystemState {
        let mut s = SystemState {
            in_initial_netns: initial,
            ..Default::default()
        };
        for k in keys {
            s.sysctls.insert((*k).into(), SysctlReading::rw("1"));
        }
        s
    }

    #[test]
    fn scope_follows_the_tree_the_known_globals_and_presence_here() {
        let child = state(false, &["net.core.somaxconn", "vm.swappiness"]);
        assert_eq!(key_scope("net.core.somaxconn", &child), KeyScope::Netns);
        assert_eq!(key_scope("vm.swappiness", &child), KeyScope::Host);
        assert_eq!(key_scope("net.core.rmem_max", &child), KeyScope::Host);
        assert_eq!(
            key_scope("net.netfilter.nf_conntrack_max", &child),
            KeyScope::Host
        );
        let host = state(true, &["net.core.somaxconn", "vm.swappiness"]);
        assert_eq!(key_scope("net.core.somaxconn", &host), KeyScope::Netns);
        assert_eq!(key_scope("vm.swappiness", &host), KeyScope::Host);
        // Absent in the initial namespace: simply missing, not host-wide.
        assert_eq!(key_scope("net.core.rmem_max", &host), KeyScope::Netns);
        // An interface's own key absent here names a missing interface.
        assert_eq!(
            key_scope("net.ipv4.conf.eth9.rp_filter", &child),
            KeyScope::Netns
        );
        assert_eq!(key_scope("net.ipv6.neigh.eth9.x", &child), KeyScope::Netns);
        // `net` alone or a look-alike prefix is not the net tree.
        assert!(!in_net_tree("netx.a") && !in_net_tree("net"));
    }

    #[test]
    fn program_keys_are_recognised_exactly() {
        for (key, value) in [
            ("kernel.core_pattern", "|/tmp/evil %p"),
            ("kernel.core_pattern", "  |/tmp/evil"),
            ("kernel.core_pattern", "@/run/dump.sock"),
            ("kernel.modprobe", "/tmp/x"),
            ("kernel.hotplug", "/tmp/x"),
            ("kernel.poweroff_cmd", "/tmp/x"),
            ("kernel.usermodehelper.bset", "4294967295 511"),
            ("kernel.usermodehelper.inheritable", "4294967295 511"),
            ("fs.binfmt_misc.register", ":x:E::x::/tmp/x:"),
            ("fs.binfmt_misc.status", "1"),
            ("fs.ocfs2.nm.hb_ctl_path", "/tmp/x"),
        ] {
            assert!(runs_program(key, value).is_some(), "{key} = {value}");
        }
        for (key, value) in [
            ("kernel.core_pattern", "core.%p"),
            ("kernel.core_pattern", "/var/crash/core|x"),
            ("kernel.modprobe_x", "/tmp/x"),
            ("kernel.usermodehelperx", "1"),
            ("fs.binfmt_misc_x", "1"),
            ("net.core.somaxconn", "|4096"),
        ] {
            assert!(runs_program(key, value).is_none(), "{key} = {value}");
        }
    }
}
