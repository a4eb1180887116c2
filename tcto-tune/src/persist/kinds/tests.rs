//! The registry covers every file persist manages, each exactly once.

use std::collections::{BTreeMap, BTreeSet};

use super::super::boot_kind::BootInput;
use super::super::entries::{entry_path, Persisted};
use super::super::restore::{Notrack, Offload};
use super::super::sysctl_d::Entry;
use super::super::{
    host_path, ModuleState, PersistFacts, PersistOptions, MANAGED_FILES, PERSISTED_PATH, WANTS_PATH,
};
use super::BOOT_KINDS;
use crate::change::Value;

fn entry(name: &str, sysctls: &[(&str, &str)], restores: bool) -> Persisted {
    Persisted {
        name: name.into(),
        sysctls: sysctls
            .iter()
            .map(|(k, v)| Entry {
                key: (*k).into(),
                value: (*v).into(),
                reason: None,
            })
            .collect(),
        notrack: if restores {
            vec![Notrack {
                from: None,
                to: Some("10.0.2.0/24".into()),
                port: Some(8080),
                reason: None,
            }]
        } else {
            vec![]
        },
        offload: if restores {
            vec![Offload {
                iface: "eth0".into(),
                tso: Some(false),
                gso: None,
                gro: None,
                lro: None,
                reason: None,
            }]
        } else {
            vec![]
        },
        allow: BTreeSet::new(),
        file: String::new(),
    }
}

/// Every path the registry lists for one input, with the number of times.
fn paths(list: &[Persisted], facts: &PersistFacts, exec: &str) -> BTreeMap<String, usize> {
    let union: Vec<Entry> = list.iter().flat_map(|p| p.sysctls.clone()).collect();
    let opts = PersistOptions {
        exec: exec.into(),
        ..Default::default()
    };
    let input = BootInput {
        list,
        union: &union,
        unreadable: &[],
        facts,
        opts: &opts,
        allow: &BTreeSet::new(),
    };
    let mut seen = BTreeMap::new();
    let mut order = vec![];
    for kind in BOOT_KINDS {
        for w in kind.files(&input) {
            // What makes a file ours when no header can: persisted.d is our
            // directory, and the wants link is ours as a link (and so is a
            // link at a removed entry's name in our directory).
            let in_dir = w.path.starts_with(&format!("{PERSISTED_PATH}/"));
            assert_eq!(w.dir, in_dir.then_some(PERSISTED_PATH), "{}", w.path);
            let removed_entry = in_dir && w.after == Value::Absent;
            assert_eq!(w.link, w.path == WANTS_PATH || removed_entry, "{}", w.path);
            *seen.entry(w.path.clone()).or_insert(0) += 1;
            if MANAGED_FILES.contains(&w.path.as_str()) {
                order.push(w.path);
            }
        }
    }
    // The write order: sysctls, module files, entries, unit, link.
    assert_eq!(order, MANAGED_FILES, "write order");
    seen
}

#[test]
fn the_registry_lists_every_managed_file_exactly_once() {
    let root = "/img";
    let stale = host_path(root, &entry_path("gone"));
    let list = [
        entry(
            "a",
            &[
                ("net.core.somaxconn", "4096"),
                ("net.netfilter.nf_conntrack_buckets", "262144"),
            ],
            true,
        ),
        entry("b", &[("net.ipv4.tcp_keepalive_time", "600")], false),
    ];
    let modules = [
        ModuleState::Unknown,
        ModuleState::Loadable {
            evidence: "test".into(),
        },
        ModuleState::BuiltIn {
            evidence: "test".into(),
        },
    ];
    for module in modules {
        for packaged_unit in [false, true] {
            for exec in ["/usr/local/bin/tcto-tune", "/usr/bin/tcto-tune"] {
                let facts = PersistFacts {
                    root: root.into(),
                    module: module.clone(),
                    packaged_unit,
                    entry_files: [(stale.clone(), Value::Bytes(b"name = \"gone\"\n".to_vec()))]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                };
                // Needed or not, every file is listed (so that one no
                // longer needed is removed): with entries, and with none.
                for list in [&list[..], &[]] {
                    let seen = paths(list, &facts, exec);
                    let mut expected: BTreeSet<String> =
                        MANAGED_FILES.iter().map(|p| (*p).to_owned()).collect();
                    expected.extend(list.iter().map(|p| entry_path(&p.name)));
                    expected.insert(entry_path("gone"));
                    assert_eq!(
                        seen.keys().cloned().collect::<BTreeSet<_>>(),
                        expected,
                        "{module:?} packaged={packaged_unit} {exec} entries={}",
                        list.len()
                    );
                    for (path, n) in &seen {
                        assert_eq!(*n, 1, "{path} listed {n} times");
                        assert!(
                            MANAGED_FILES.contains(&path.as_str())
                                || path.starts_with(&format!("{PERSISTED_PATH}/")),
                            "{path} is not a managed path"
                        );
                    }
                }
            }
        }
    }
}
