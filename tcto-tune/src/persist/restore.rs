//! `/etc/tcto-tune/persisted.toml`: the NOTRACK and offload parts of a profile.
//!
//! What is saved is the *intent* (the flows and toggles, variables already
//! filled), not a plan: at boot `tcto-tune apply --persisted` loads it like
//! any profile file and plans it against the state it finds then, so the
//! transaction reads the real prior values and only writes what differs.
//! It is written in the ordinary profile syntax, so an admin can read it
//! and `tcto-tune plan --profile /etc/tcto-tune/persisted.toml` works.

use serde::Serialize;

use super::sysctl_d::header;
use crate::profile::Profile;

#[derive(Serialize)]
struct Doc {
    name: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notrack: Vec<Notrack>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    offload: Vec<Offload>,
}

#[derive(Serialize)]
struct Notrack {
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct Offload {
    iface: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tso: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gso: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gro: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lro: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Whether `profile` has anything the restore unit must re-apply.
pub fn needed(profile: &Profile) -> bool {
    !profile.notrack.is_empty() || !profile.offloads.is_empty()
}

/// The interfaces whose offloads are persisted (the unit waits for them).
pub fn ifaces(profile: &Profile) -> Vec<String> {
    let mut v: Vec<String> = profile
        .offloads
        .iter()
        .map(|o| o.iface.as_str().to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The text of persisted.toml for `profile`, with the codes the user
/// allowed when persisting (so the boot-time apply accepts them too).
pub fn render(profile: &Profile, allow: &std::collections::BTreeSet<String>) -> String {
    let doc = Doc {
        name: profile.name.clone(),
        description: format!(
            "NOTRACK rules and NIC offloads of profile `{}`, re-applied at boot by tcto-tune-restore.service",
            profile.name
        ),
        allow: allow.union(&profile.allow).cloned().collect(),
        notrack: profile
            .notrack
            .iter()
            .map(|n| Notrack {
                from: n.from.map(|c| c.to_string()),
                to: n.to.map(|c| c.to_string()),
                port: n.port,
                reason: n.reason.clone(),
            })
            .collect(),
        offload: profile
            .offloads
            .iter()
            .map(|o| Offload {
                iface: o.iface.as_str().to_owned(),
                tso: o.tso,
                gso: o.gso,
                gro: o.gro,
                lro: o.lro,
                reason: o.reason.clone(),
            })
            .collect(),
    };
    let body = toml::to_string(&doc).expect("plain strings, integers and booleans serialize");
    format!("{}\n{body}", header("#", &profile.name))
}
