//! The NOTRACK and offload parts of a profile, as persisted (in its entry
//! in `/etc/tcto-tune/persisted.d`, formerly the single
//! `/etc/tcto-tune/persisted.toml`).
//!
//! What is saved is the *intent* (the flows and toggles, variables already
//! filled), not a plan: at boot `tcto-tune apply --persisted` loads it like
//! any profile file and plans it against the state it finds then, so the
//! transaction reads the real prior values and only writes what differs.
//! It is written in the ordinary profile syntax, so an admin can read it
//! and `tcto-tune plan --profile /etc/tcto-tune/persisted.d/NAME.toml` works
//! for an entry without sysctls. At boot every entry's part is joined into
//! one such profile ([`super::entries::boot_profile`]).

use serde::{Deserialize, Serialize};

use super::sysctl_d::header;
use crate::profile::Profile;

/// A profile's restore part in the profile syntax.
#[derive(Serialize)]
pub(crate) struct Doc {
    pub(crate) name: String,
    pub(crate) description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notrack: Vec<Notrack>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) offload: Vec<Offload>,
}

/// One `[[notrack]]` flow, variables filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notrack {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Source subnet.
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Destination subnet.
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Destination port.
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why, from the profile.
    pub reason: Option<String>,
}

/// One `[[offload]]` entry, variables filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offload {
    /// Interface name.
    pub iface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// TCP segmentation offload.
    pub tso: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Generic segmentation offload.
    pub gso: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Generic receive offload.
    pub gro: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Large receive offload.
    pub lro: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why, from the profile.
    pub reason: Option<String>,
}

impl Offload {
    /// The toggles set, as `(feature, on)`, in the order tso, gso, gro, lro.
    pub fn toggles(&self) -> Vec<(&'static str, bool)> {
        crate::fix::toggles_set([self.tso, self.gso, self.gro, self.lro])
    }
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
        notrack: notrack(profile),
        offload: offloads(profile),
    };
    let body = toml::to_string(&doc).expect("plain strings, integers and booleans serialize");
    format!("{}\n{body}", header("#", &profile.name))
}

/// The profile's NOTRACK flows as persisted.
pub fn notrack(profile: &Profile) -> Vec<Notrack> {
    profile
        .notrack
        .iter()
        .map(|n| Notrack {
            from: n.from.map(|c| c.to_string()),
            to: n.to.map(|c| c.to_string()),
            port: n.port,
            reason: n.reason.clone(),
        })
        .collect()
}

/// The profile's offload toggles as persisted.
pub fn offloads(profile: &Profile) -> Vec<Offload> {
    profile
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
        .collect()
}
