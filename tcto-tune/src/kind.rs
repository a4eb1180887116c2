//! The contract between the planner and each kind of fix.
//!
//! A kind of fix (sysctls, NOTRACK rules, NIC offloads, ...) is a type that
//! implements [`FixKind`]: it plans the profile's fixes of its kind into a
//! [`Plan`] and runs the safety checks about them over the drafted changes
//! ([`CheckInput`]). The planner (`crate::plan`) loops over a registry of
//! them; everything a kind needs to speak to it lives here, so this module
//! depends on no kind and no kind on the planner.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::change::{Change, ChangeKind};
use crate::finding::{Finding, FindingCode};
use crate::fix::Intent;
use crate::profile::Profile;
use crate::state::SystemState;
use crate::words::WordsRef;

/// One kind of fix: how it plans and what it checks.
///
/// The planner calls [`FixKind::plan`] of every registered kind, then
/// [`FixKind::check`] of every registered kind over the drafted changes.
/// A kind pushes only entries of its own [`ChangeKind`]; the plan lists
/// (and apply runs) changes in [`ChangeKind`] order, each kind's in the
/// order it pushed them.
pub trait FixKind: Sync {
    /// Add this kind's changes, unchanged settings, skips and planning
    /// findings for `profile` on `state` to `p`. A kind that only checks
    /// (its settings are planned by another kind) plans nothing.
    fn plan(&self, p: &mut Plan, profile: &Profile, state: &SystemState, opts: &PlanOptions) {
        let _ = (p, profile, state, opts);
    }
    /// The safety findings about this kind's fixes in the drafted plan.
    fn check(&self, input: &CheckInput) -> Vec<Finding>;
}

/// Inputs every check sees.
pub struct CheckInput<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// The observed state.
    pub state: &'a SystemState,
    /// The changes the planner drafted.
    pub changes: &'a [Change],
    /// How the caller names the actions a hint points at.
    pub words: WordsRef,
}

/// Version of the JSON plan document.
pub const PLAN_SCHEMA: u32 = 1;

/// A setting that already has the wanted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchanged {
    /// Kind.
    pub kind: ChangeKind,
    /// Key.
    pub key: String,
    /// Current value.
    pub current: String,
    /// What the profile asked for.
    pub desired: String,
    /// Intent.
    pub intent: Intent,
    /// Why the profile asks for it.
    pub reason: Option<String>,
}

/// A setting the plan will not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Kind.
    pub kind: ChangeKind,
    /// Key.
    pub key: String,
    /// Stable code (`not-writable-here`, `key-missing`...);
    /// `--allow CODE` plans it anyway where that makes sense.
    pub code: FindingCode,
    /// Why it is skipped.
    pub why: String,
    /// Current value, if any.
    pub current: Option<String>,
    /// What the profile asked for.
    pub desired: String,
    /// How: exact, at least, at most (shown as `>=`, `<=` beside `desired`).
    #[serde(default)]
    pub intent: Intent,
}

/// A plan: what would change on this host, what is fine, what is skipped,
/// and what the safety checks found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// JSON schema version ([`PLAN_SCHEMA`]).
    pub schema: u32,
    /// Profile name.
    pub profile: String,
    /// Whether the state was read in the initial network namespace.
    pub initial_netns: bool,
    /// Changes, in apply order.
    pub changes: Vec<Change>,
    /// Settings already as wanted.
    pub unchanged: Vec<Unchanged>,
    /// Settings not planned, with reasons.
    pub skipped: Vec<Skipped>,
    /// Safety findings.
    pub findings: Vec<Finding>,
}

impl Plan {
    /// Refusing findings that were not allowed.
    pub fn refusals(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.blocks()).collect()
    }
    /// True when there is nothing to change.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Options that change what the planner plans.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Finding and skip codes the user allowed (`--allow`).
    pub allow: BTreeSet<String>,
    /// NOTRACK: replace the flows this profile applied earlier instead of
    /// adding to them (`--replace`); other profiles' flows stay either way.
    pub notrack_replace: bool,
    /// How the caller names the actions hints point at (`--allow CODE`
    /// for the CLI); [`crate::words::Neutral`] by default.
    pub words: WordsRef,
}
