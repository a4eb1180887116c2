//! The pure planner: `Profile + SystemState -> Plan`.
//!
//! Nothing here reads the system. Given the same profile and state, the
//! planner returns the same plan, which makes plans diffable, storable in
//! the journal and testable from fixtures.
//!
//! The planner knows no kind of fix by itself: it loops over [`KINDS`],
//! each a [`FixKind`] in its own module here ([`sysctl`], [`notrack`],
//! [`offload`]). Adding a kind is one new module and one line in
//! [`KINDS`].

pub mod notrack;
pub mod offload;
pub mod sysctl;

pub use crate::kind::{CheckInput, FixKind, Plan, PlanOptions, Skipped, Unchanged, PLAN_SCHEMA};
use crate::profile::Profile;
use crate::state::SystemState;

/// Every kind of fix, in the order their findings are listed (a plan's
/// changes, unchanged settings and skips follow [`ChangeKind`] order
/// instead: see [`FixKind`]).
///
/// [`ChangeKind`]: crate::change::ChangeKind
pub const KINDS: &[&dyn FixKind] = &[
    &sysctl::Sysctl,
    &offload::Offloads,
    &notrack::Notrack,
    &sysctl::RpFilter,
];

/// Plan `profile` against `state` with default options.
pub fn plan(profile: &Profile, state: &SystemState) -> Plan {
    plan_with(profile, state, &PlanOptions::default())
}

/// Plan `profile` against `state`.
pub fn plan_with(profile: &Profile, state: &SystemState, opts: &PlanOptions) -> Plan {
    let merged;
    let opts = if profile.allow.is_empty() {
        opts
    } else {
        merged = PlanOptions {
            allow: opts.allow.union(&profile.allow).cloned().collect(),
            notrack_replace: opts.notrack_replace,
            words: opts.words,
        };
        &merged
    };
    let mut p = Plan {
        schema: PLAN_SCHEMA,
        profile: profile.name.clone(),
        initial_netns: state.in_initial_netns,
        changes: vec![],
        unchanged: vec![],
        skipped: vec![],
        findings: vec![],
    };
    for kind in KINDS {
        kind.plan(&mut p, profile, state, opts);
    }
    // Apply order is kind order (sysctls, then NOTRACK, then offloads),
    // whatever the order of the registry; stable, so each kind keeps its own.
    p.changes.sort_by_key(|c| c.kind());
    p.unchanged.sort_by_key(|u| u.kind);
    p.skipped.sort_by_key(|s| s.kind);
    let input = CheckInput {
        profile,
        state,
        changes: &p.changes,
        words: opts.words,
    };
    let findings: Vec<_> = KINDS.iter().flat_map(|k| k.check(&input)).collect();
    p.findings.extend(findings);
    // Over every finding, including those the planner itself raised
    // (`unknown-sysctl`): an accepted `--allow CODE` always takes effect,
    // except for the codes no allowance lifts (`key-runs-program`).
    for f in &mut p.findings {
        f.allowed = opts.allow.contains(f.code.as_str()) && f.code.allowable();
    }
    p.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    p
}

#[cfg(test)]
mod tests;
