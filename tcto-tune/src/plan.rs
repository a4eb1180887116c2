//! The pure planner: `Profile + SystemState -> Plan`.
//!
//! Nothing here reads the system. Given the same profile and state, the
//! planner returns the same plan, which makes plans diffable, storable in
//! the journal and testable from fixtures.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::change::{Change, ChangeKind};
use crate::check::{self, CheckInput, Finding, Severity};
use crate::fix::{key_info, normalize, Intent, Scope, SysctlTarget, REMOVED_KEYS};
use crate::profile::Profile;
use crate::scope::{in_net_tree, key_scope, runs_program, KeyScope};
use crate::state::SystemState;

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
    pub code: String,
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
}

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
    for target in profile.sysctl_targets() {
        plan_sysctl(&mut p, &target, state, opts);
    }
    crate::notrack::plan_notrack(&mut p, profile, state, opts.notrack_replace);
    crate::offload::plan_offloads(&mut p, profile, state);
    let findings = check::run_all(&CheckInput {
        profile,
        state,
        changes: &p.changes,
    });
    p.findings.extend(findings);
    // Over every finding, including those the planner itself raised
    // (`unknown-sysctl`): an accepted `--allow CODE` always takes effect,
    // except for the codes no allowance lifts (`key-runs-program`).
    for f in &mut p.findings {
        f.allowed = opts.allow.contains(&f.code) && check::allowable(&f.code);
    }
    p.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    p
}

fn plan_sysctl(p: &mut Plan, t: &SysctlTarget, state: &SystemState, opts: &PlanOptions) {
    let key = t.key.as_str();
    let desired = t.desired.value.render();
    let reason = t.desired.reason.clone();
    let skip = |p: &mut Plan, code: &str, why: String, current: Option<String>| {
        p.skipped.push(Skipped {
            kind: ChangeKind::Sysctl,
            key: key.into(),
            code: code.into(),
            why,
            current,
            desired: desired.clone(),
            intent: t.desired.intent,
        });
    };
    if REMOVED_KEYS.iter().any(|(k, _)| *k == key) {
        return skip(p, "removed-key", "removed from the kernel".into(), None);
    }
    let reading = state.sysctls.get(key);
    let current = reading.and_then(|r| r.value.clone());
    // Before anything else, and before "already as wanted": a key that
    // runs a program is never planned, kept or persisted.
    if let Some(message) = program_refusal(key, &desired, current.as_deref()) {
        let hint = "remove it from the profile; no `--allow` lifts this refusal, because nothing about TCP connect timeouts needs it";
        p.findings
            .push(Finding::new("key-runs-program", Severity::Refuse, message).hint(hint));
        return skip(
            p,
            "key-runs-program",
            "makes the kernel run a program or load code: never written".into(),
            current.as_deref().map(normalize),
        );
    }
    if !in_net_tree(key) {
        p.findings.push(
            Finding::new(
                "key-outside-scope",
                Severity::Refuse,
                format!("`{key}` is outside `net.`: not a TCP connect-timeout setting, and one value for the whole host"),
            )
            .hint("if this change is deliberate, pass `--allow key-outside-scope`"),
        );
    }
    // From a child namespace (a container), a host-wide key would change
    // the host's value: skip it unless allowed. An absent key outside
    // `net.` is not a namespace matter: it is unknown, below.
    if !state.in_initial_netns
        && key_scope(key, state) == KeyScope::Host
        && (current.is_some() || in_net_tree(key))
        && !opts.allow.contains("key-host-wide")
    {
        let why = if current.is_some() {
            "host-wide key: written from this child network namespace it would change the host's value".into()
        } else {
            format!("absent in this child network namespace: a host-wide key only the initial namespace has, or no key at all (on the host, `sysctl {key}` tells)")
        };
        return skip(p, "key-host-wide", why, current.as_deref().map(normalize));
    }
    let Some(cur) = current.clone() else {
        let info = key_info(key);
        if info.is_none() {
            p.findings.push(
                Finding::new(
                    "unknown-sysctl",
                    Severity::Refuse,
                    if state.in_initial_netns || !in_net_tree(key) {
                        format!("sysctl `{key}` does not exist on this host")
                    } else {
                        format!("sysctl `{key}` does not exist in this network namespace (a host-wide `net.` key exists only in the initial one)")
                    },
                )
                .hint(format!(
                    "check the name with `sysctl -a 2>/dev/null | grep {}`; a module may need loading first",
                    key.rsplit('.').next().unwrap_or(key)
                )),
            );
            return skip(p, "unknown-sysctl", "no such key here".into(), None);
        }
        let why = match info.and_then(|i| i.module) {
            Some(m) => format!("not present here: is the {m} module loaded? (global keys are also absent in some child network namespaces)"),
            None if info.is_some_and(|i| i.scope == Scope::Global) && !state.in_initial_netns => {
                "global key, absent inside a child network namespace".into()
            }
            None => "not present on this kernel".into(),
        };
        if !opts.allow.contains("key-missing") {
            return skip(p, "key-missing", why, None);
        }
        p.changes.push(Change::sysctl(
            &t.key,
            None,
            &desired,
            t.desired.intent,
            reason,
        ));
        return;
    };
    let wanted = match (
        t.desired.intent,
        cur.trim().parse::<i64>(),
        t.desired.value.as_int(),
    ) {
        (Intent::AtLeast, Ok(c), Some(v)) if c >= v => None,
        (Intent::AtMost, Ok(c), Some(v)) if c <= v => None,
        (Intent::Exact, ..) if normalize(&cur) == normalize(&desired) => None,
        _ => Some(desired.clone()),
    };
    let Some(wanted) = wanted else {
        p.unchanged.push(Unchanged {
            kind: ChangeKind::Sysctl,
            key: key.into(),
            current: normalize(&cur),
            desired,
            intent: t.desired.intent,
            reason,
        });
        return;
    };
    if !reading.is_some_and(|r| r.writable) && !opts.allow.contains("not-writable-here") {
        let why =
            if key_info(key).is_some_and(|i| i.scope == Scope::Global) && !state.in_initial_netns {
                "global key: only the initial network namespace can change it".to_owned()
            } else {
                "read-only here (the kernel marks it so in this namespace)".to_owned()
            };
        return skip(p, "not-writable-here", why, Some(normalize(&cur)));
    }
    p.changes.push(Change::sysctl(
        &t.key,
        Some(&cur),
        &wanted,
        t.desired.intent,
        reason,
    ));
}

/// The `key-runs-program` message when writing `desired` to `key` would
/// make the kernel run a program, or when the current value is one: then
/// replacing it would make the rollback (or a failed apply's revert) write
/// a program path back, which tcto-tune never does.
fn program_refusal(key: &str, desired: &str, current: Option<&str>) -> Option<String> {
    if let Some(why) = runs_program(key, desired) {
        return Some(format!(
            "`{key} = {desired}` would make the kernel run a program or load code: {why}"
        ));
    }
    let cur = normalize(current?);
    runs_program(key, &cur).map(|why| {
        format!("`{key}` is now `{cur}`: replacing it would make its rollback write a program path back ({why})")
    })
}

#[cfg(test)]
mod tests;
