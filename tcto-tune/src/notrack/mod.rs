//! NOTRACK rules for trusted flows: the `inet tcto_tune` table.
//!
//! When trusted frontend -> backend traffic fills the conntrack table, the
//! runbook's permanent fix is to stop tracking it: raw-priority `notrack`
//! rules for exactly those subnets and that port. This module is the pure
//! half: the rule model and its kernel encoding (`table`, `expr`), and
//! the analyses the planner and the safety checks run, above all the one
//! that sees a stateful filter that would drop untracked packets
//! (`filter`); the planner step that turns `Profile.notrack` into one
//! table change and the checks are the NOTRACK kind of fix,
//! `crate::plan::notrack`. The netlink half is
//! `system::nft`; it only moves [`NotrackTable`]s and [`FilterChain`]s
//! between the kernel and these types.
//!
//! Up to `MAX_RULE_FLOWS` flows get one rule per direction each; more
//! go into concatenated interval sets (`from . to . port`) looked up by
//! two rules per address family, so the rule count stays constant.

pub(crate) mod compose;
pub(crate) mod expr;
pub(crate) mod filter;
pub(crate) mod overlap;
pub(crate) mod scope;
pub(crate) mod stateful;
pub(crate) mod table;
pub(crate) mod walk;

pub use filter::FilterChain;
#[cfg(test)]
use table::{FlowElement, MAX_RULE_FLOWS};
pub use table::{
    Foreign, NotrackChain, NotrackRule, NotrackTable, ScopedFlow, TABLE_FAMILY, TABLE_NAME,
};

use crate::profile::Profile;

/// The display key, `inet tcto_tune`: the key of
/// [`Target::notrack_table`](crate::Target::notrack_table).
pub fn key() -> String {
    format!("{TABLE_FAMILY} {TABLE_NAME}")
}

/// The profile's flows that name all three fields, each once.
pub(crate) fn usable_flows(profile: &Profile) -> Vec<ScopedFlow> {
    let mut seen = std::collections::HashSet::with_capacity(profile.notrack.len());
    profile
        .notrack
        .iter()
        .filter_map(ScopedFlow::of)
        .filter(|f| seen.insert(*f))
        .collect()
}

/// The profile's flows that become rules: usable, with flows that lie
/// inside another merged away (`overlap`).
pub fn scoped_flows(profile: &Profile) -> Vec<ScopedFlow> {
    overlap::settle(&usable_flows(profile)).flows
}

/// The table `profile` asks for on a host without one, or `None` when it
/// has no usable flow.
#[cfg(test)]
pub fn desired_table(profile: &Profile) -> Option<NotrackTable> {
    compose::compose(None, &profile.name, &usable_flows(profile), false).table
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
