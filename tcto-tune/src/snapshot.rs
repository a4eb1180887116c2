//! Read the host into a [`SystemState`]: everything the planner needs to
//! plan one profile, through [`Backends`] (live or simulated).
//!
//! Above `system` (it knows what a [`Profile`] asks for) and below the
//! planner, which stays pure: it only ever sees the state read here.

use std::collections::BTreeSet;

use crate::names::SysctlName;
use crate::profile::Profile;
use crate::state::{SysctlReading, SystemState};
use crate::system::{Backends, SystemError};

/// Sysctls read for the checks even when the profile does not set them.
pub const CONTEXT_KEYS: &[&str] = &[
    "net.core.somaxconn",
    "net.netfilter.nf_conntrack_count",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.conf.all.rp_filter",
];

/// Read everything the planner needs to plan `profile` on this host.
pub fn read_state(profile: &Profile, b: &Backends) -> Result<SystemState, SystemError> {
    let mut keys: BTreeSet<SysctlName> = profile
        .sysctl_targets()
        .into_iter()
        .map(|t| t.key)
        .collect();
    keys.extend(
        CONTEXT_KEYS
            .iter()
            .map(|k| SysctlName::new(k).expect("valid")),
    );
    let mut state = SystemState {
        in_initial_netns: b.host.in_initial_netns()?,
        mem_total_bytes: b.host.mem_total_bytes()?,
        listeners: b.sockets.listeners()?,
        ..Default::default()
    };
    // nftables is read only for NOTRACK plans: it needs CAP_NET_ADMIN and
    // nf_tables, which a sysctl-only plan must not depend on.
    if !profile.notrack.is_empty() {
        state.notrack_table = b.firewall.notrack_table()?;
        state.filter_chains = b.firewall.filter_chains()?;
    }
    for key in keys {
        let reading = match b.sysctls.read_with_writable(&key)? {
            Some((v, writable)) => SysctlReading {
                writable,
                value: Some(v),
            },
            None => SysctlReading::missing(),
        };
        state.sysctls.insert(key.as_str().to_owned(), reading);
    }
    if !profile.offloads.is_empty() {
        state.interfaces = b.offloads.interfaces()?;
        for o in &profile.offloads {
            if let Some(f) = b.offloads.features(&o.iface)? {
                state
                    .offloads
                    .insert(o.iface.to_string(), crate::offload::relevant(&f));
                if let Some(id) = b.offloads.device(&o.iface)? {
                    state.nics.insert(o.iface.to_string(), id);
                }
            }
        }
    }
    Ok(state)
}
