//! The sysctl.d file: every persisted sysctl, applied at boot by
//! systemd-sysctl; and what else on the host decides those keys at boot
//! (another sysctl.d file, kube-proxy or TuneD).

use super::super::boot_kind::{bytes, BootInput, BootKind, Wanted};
use super::super::{codes, conflicts, sysctl_d, Manager, SYSCTL_D_PATH};
use crate::change::Value;
use crate::check::{Finding, Severity};

/// The sysctl.d file.
pub struct SysctlD;

impl BootKind for SysctlD {
    fn files(&self, input: &BootInput) -> Vec<Wanted> {
        vec![Wanted::new(
            SYSCTL_D_PATH,
            if input.union.is_empty() {
                Value::Absent
            } else {
                bytes(sysctl_d::render_composed(&input.names(), input.list))
            },
            "sysctls, applied at boot by systemd-sysctl",
        )]
    }

    /// Other sources of the same keys, and runtime managers that rewrite
    /// them (only when some sysctl is persisted).
    fn host_findings(&self, input: &BootInput) -> Vec<Finding> {
        let facts = input.facts;
        let mut findings = conflicts::scan(
            input.union,
            &facts.sysctl_sources,
            input.allow,
            input.opts.words.get(),
        );
        if !input.union.is_empty() {
            findings.extend(facts.managers.iter().map(manager));
        }
        findings
    }
}

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
