//! The modules-load.d and modprobe.d files that make nf_conntrack's keys
//! exist when systemd-sysctl runs (and size its hash as the module loads),
//! or, on a kernel with nf_conntrack built in, why they are not written.

use super::super::boot_kind::{bytes, BootInput, BootKind, Wanted};
use super::super::sysctl_d::Entry;
use super::super::{codes, ModuleState, MODPROBE_PATH, MODULES_LOAD_PATH};
use crate::change::Value;
use crate::check::{Finding, Severity};

/// The nf_conntrack module files.
pub struct ConntrackModule;

impl BootKind for ConntrackModule {
    fn files(&self, input: &BootInput) -> Vec<Wanted> {
        let conntrack = input.union.iter().any(|e| e.is_conntrack());
        let built_in = matches!(input.facts.module, ModuleState::BuiltIn { .. });
        let head = input.header();
        // Not needed because the module is built in: say so as a skip.
        let skip = |w: Wanted| {
            if conntrack && built_in {
                w.skipped_as(codes::BUILT_IN, "nf_conntrack is built into the kernel")
            } else {
                w
            }
        };
        vec![
            skip(Wanted::new(
                MODULES_LOAD_PATH,
                if conntrack && !built_in {
                    bytes(format!("{head}nf_conntrack\n"))
                } else {
                    Value::Absent
                },
                "load nf_conntrack before systemd-sysctl sets its keys",
            )),
            skip(Wanted::new(
                MODPROBE_PATH,
                match buckets(input.union) {
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
                "conntrack hash buckets as the module parameter",
            )),
        ]
    }

    /// With conntrack keys persisted on a kernel that has nf_conntrack
    /// built in: no module files are written, and the buckets need the
    /// kernel command line.
    fn findings(&self, input: &BootInput) -> Vec<Finding> {
        let union = input.union;
        let conntrack = union.iter().any(|e| e.is_conntrack());
        let (true, ModuleState::BuiltIn { evidence }) = (conntrack, &input.facts.module) else {
            return vec![];
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
        vec![f]
    }
}

fn buckets(union: &[Entry]) -> Option<&Entry> {
    union
        .iter()
        .find(|e| e.key == "net.netfilter.nf_conntrack_buckets")
}
