//! The offload kind: the profile's NIC offload toggles, one change per
//! feature that differs, and the offload checks. The groups and how they
//! read are [`crate::offload`].

use std::collections::BTreeSet;

use crate::change::{Change, ChangeKind, Target, Value};
use crate::finding::{Finding, FindingCode, Severity};
use crate::fix::Intent;
use crate::kind::{CheckInput, FixKind, Plan, PlanOptions, Skipped, Unchanged};
use crate::offload::{dependencies_off, group, key, on_off, Group, GroupState};
use crate::profile::Profile;
use crate::state::SystemState;
use crate::words::Action;

/// NIC offload toggles (`Profile.offloads`).
pub struct Offloads;

impl FixKind for Offloads {
    fn plan(&self, p: &mut Plan, profile: &Profile, state: &SystemState, _opts: &PlanOptions) {
        plan_offloads(p, profile, state);
    }
    fn check(&self, input: &CheckInput) -> Vec<Finding> {
        checks(input)
    }
}

/// Every toggle of the profile as `(iface, user name, wanted, reason)`;
/// a later entry for the same interface and feature replaces an earlier one.
fn toggles(profile: &Profile) -> Vec<(String, &'static str, bool, Option<String>)> {
    let mut out: Vec<(String, &'static str, bool, Option<String>)> = Vec::new();
    for o in &profile.offloads {
        for (feature, want) in o.toggles() {
            let iface = o.iface.as_str().to_owned();
            out.retain(|(i, f, ..)| !(*i == iface && *f == feature));
            out.push((iface, feature, want, o.reason.clone()));
        }
    }
    out
}

/// Plan the profile's offload toggles into `p`: a change for each feature
/// that differs, an unchanged entry for each that does not, a skip for each
/// toggle of an interface that does not exist.
pub fn plan_offloads(p: &mut Plan, profile: &Profile, state: &SystemState) {
    for (iface, feature, want, reason) in toggles(profile) {
        let key = key(&iface, feature);
        let Some(features) = state.offloads.get(&iface) else {
            p.skipped.push(Skipped {
                kind: ChangeKind::Offload,
                key,
                code: FindingCode::OffloadUnknownInterface,
                why: format!("no interface `{iface}` in this network namespace"),
                current: None,
                desired: on_off(want).into(),
                intent: Default::default(),
            });
            continue;
        };
        let g = group(feature).expect("OffloadFix::toggles yields known names");
        let now = GroupState::of(g, features).reading().value();
        let wanted = Value::Bool(want);
        if now == wanted {
            p.unchanged.push(Unchanged {
                kind: ChangeKind::Offload,
                key,
                current: now.display(),
                desired: on_off(want).into(),
                intent: Intent::Exact,
                reason,
            });
            continue;
        }
        let nic = state.nics.get(&iface);
        p.changes.push(Change {
            current: Some(now.display()),
            desired: on_off(want).into(),
            intent: Intent::Exact,
            reason,
            target: Target::Offload {
                ifindex: nic.map(|n| n.ifindex),
                perm_addr: nic.and_then(|n| n.perm_addr.clone()),
                scope: nic.and_then(|n| n.scope.clone()),
                iface,
                feature: feature.into(),
            },
            before: now,
            after: wanted,
        });
    }
}

/// The planned offload changes as `(iface, user name, group state, wanted)`.
fn planned<'a>(input: &'a CheckInput) -> Vec<(&'a str, &'static Group, GroupState, bool)> {
    input
        .changes
        .iter()
        .filter_map(|c| {
            let (Target::Offload { iface, feature, .. }, Value::Bool(want)) = (&c.target, &c.after)
            else {
                return None;
            };
            let g = group(feature)?;
            let features = input.state.offloads.get(iface)?;
            Some((iface.as_str(), g, GroupState::of(g, features), *want))
        })
        .collect()
}

/// Every offload check: `offload-unknown-interface`, `offload-fixed`,
/// `offload-cpu-cost`, `offload-on-loopback`, `offload-dependency-off`.
pub fn checks(input: &CheckInput) -> Vec<Finding> {
    let mut out = unknown_interface(input);
    out.extend(fixed(input));
    out.extend(cpu_cost(input));
    out.extend(on_loopback(input));
    out.extend(dependency_off(input));
    out
}

/// `offload-unknown-interface`: the profile names an interface this
/// namespace does not have.
pub fn unknown_interface(input: &CheckInput) -> Vec<Finding> {
    let missing: BTreeSet<&str> = input
        .profile
        .offloads
        .iter()
        .map(|o| o.iface.as_str())
        .filter(|i| !input.state.offloads.contains_key(*i))
        .collect();
    let existing = if input.state.interfaces.is_empty() {
        "none".to_owned()
    } else {
        input.state.interfaces.join(", ")
    };
    missing
        .into_iter()
        .map(|iface| {
            Finding::new(
                FindingCode::OffloadUnknownInterface,
                Severity::Refuse,
                format!("interface `{iface}` does not exist in this network namespace"),
            )
            .hint(format!(
                "interfaces here: {existing}; pass the right one with {}",
                input.words.name(&iface_variable())
            ))
        })
        .collect()
}

/// `offload-fixed`: the driver does not let the feature take the wanted
/// value (a fixed member holds it, or nothing in the group can change).
pub fn fixed(input: &CheckInput) -> Vec<Finding> {
    planned(input)
        .into_iter()
        .filter_map(|(iface, g, st, want)| {
            if st.reachable(want) {
                return None;
            }
            let blockers = st.blockers(want);
            let why = if blockers.is_empty() {
                format!("this kernel has no `{}` feature", g.pattern)
            } else {
                format!(
                    "the driver of `{iface}` fixes {} ({})",
                    if blockers.len() == 1 { "it" } else { "them" },
                    blockers
                        .iter()
                        .map(|b| format!("{b}: {} [fixed]", on_off(!want)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Some(
                Finding::new(
                    FindingCode::OffloadFixed,
                    Severity::Refuse,
                    format!(
                        "`{}` cannot be turned {}: {why}",
                        key(iface, g.user),
                        on_off(want)
                    ),
                )
                .hint(format!(
                    "remove `{}` from the profile; `ethtool -k {iface}` shows what can change",
                    g.user
                )),
            )
        })
        .collect()
}

/// `offload-cpu-cost`: turning segmentation or receive offload off moves
/// per-packet work to the CPU.
pub fn cpu_cost(input: &CheckInput) -> Vec<Finding> {
    let keys: Vec<String> = planned(input)
        .into_iter()
        .filter(|(_, g, _, want)| !want && matches!(g.user, "tso" | "gso" | "gro"))
        .map(|(iface, g, ..)| format!("`{}`", key(iface, g.user)))
        .collect();
    if keys.is_empty() {
        return vec![];
    }
    vec![Finding::new(
        FindingCode::OffloadCpuCost,
        Severity::Warn,
        format!(
            "turning off {} makes the CPU segment or merge every packet itself: more CPU per byte, less throughput under load",
            keys.join(", ")
        ),
    )
    .hint(format!("this is a diagnostic step, not a permanent fix: watch whether the timeouts stop, then {}; if they did stop, update the NIC driver or firmware", input.words.instruct(&Action::Rollback)))]
}

/// `offload-on-loopback`: `lo` has no hardware, so its offloads cannot be
/// what drops SYNs; the profile most likely names the wrong interface.
pub fn on_loopback(input: &CheckInput) -> Vec<Finding> {
    let on_lo = input
        .changes
        .iter()
        .any(|c| matches!(&c.target, Target::Offload { iface, .. } if iface == "lo"));
    if !on_lo {
        return vec![];
    }
    vec![Finding::new(
        FindingCode::OffloadOnLoopback,
        Severity::Refuse,
        "the plan changes offloads of `lo`: loopback has no NIC, its segments are never split or merged by hardware, so its offloads cannot cause connect timeouts; turning them off only costs CPU for local traffic",
    )
    .hint(format!("name the interface the timing-out traffic crosses (`ip route get ADDRESS` shows it) with {}", input.words.name(&iface_variable())))]
}

/// The profile variable that names the interface, as a hint points at it.
fn iface_variable() -> Action {
    Action::SetVariable {
        name: "iface".into(),
        value: "NAME".into(),
    }
}

/// `offload-dependency-off`: the plan turns a group on while a feature the
/// kernel requires for it is off (`sg` for `tso` and `gso`, checksum
/// offload for `tso`). The kernel would accept the write and keep the
/// members off (`off [requested on]`); the read-back would then fail the
/// transaction, so say why before anything changes.
pub fn dependency_off(input: &CheckInput) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in input.changes {
        let (Target::Offload { iface, feature, .. }, Value::Bool(true)) = (&c.target, &c.after)
        else {
            continue;
        };
        let Some(features) = input.state.offloads.get(iface) else {
            continue;
        };
        for (dep, present) in dependencies_off(feature, features) {
            let states = present
                .iter()
                .map(|(n, s)| format!("{n}: off{}", if s.fixed { " [fixed]" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ");
            let hint = if present.iter().all(|(_, s)| s.fixed) {
                format!(
                    "the driver of `{iface}` fixes it off, so `{feature}` cannot turn on here: remove `{feature}` from the profile"
                )
            } else {
                let name = present
                    .iter()
                    .find(|(_, s)| !s.fixed)
                    .map_or(dep.short, |(n, _)| {
                        if *n == "tx-scatter-gather" {
                            dep.short
                        } else {
                            n
                        }
                    });
                format!("turn it on first: `ethtool -K {iface} {name} on`, then plan again")
            };
            out.push(
                Finding::new(
                    FindingCode::OffloadDependencyOff,
                    Severity::Refuse,
                    format!(
                        "`{}` cannot turn on while `{}` is off ({states}): {}",
                        key(iface, feature),
                        dep.short,
                        dep.why
                    ),
                )
                .hint(hint),
            );
        }
    }
    out
}
