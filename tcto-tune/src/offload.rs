//! NIC offload toggles: user names, kernel features, planning and checks.
//!
//! The runbook says "turn TCP offload off and see whether the timeouts
//! go away". Users say `tso` and `gro`; the kernel knows about sixty
//! features by name (`tx-tcp-segmentation`, `rx-gro`, ...) and `tso` is
//! really a *group* of them. This module maps one to the other exactly as
//! `ethtool -k` does (same patterns, same "on if any member is on" rule),
//! so what the plan shows is what the operator's own tool shows. It is pure:
//! the kernel is read by `system::ethtool`, and only [`Features`] reach here.
//!
//! A group is written by setting every *changeable* member to the wanted
//! value (what `ethtool -K IFACE tso off` does); fixed members stay as the
//! driver has them, which is why a wanted value can be unreachable
//! (`offload-fixed`).

use std::collections::BTreeSet;

use crate::change::{Change, ChangeKind, Target, Value};
use crate::check::{CheckInput, Finding, Severity};
use crate::fix::Intent;
use crate::plan::{Plan, Skipped, Unchanged};
use crate::profile::Profile;
use crate::state::{FeatureState, Features, SystemState};

/// One user-facing toggle and the kernel features behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// The name users write (`tso`).
    pub user: &'static str,
    /// The name `ethtool -k` prints (`tcp-segmentation-offload`).
    pub long_name: &'static str,
    /// Kernel feature names that belong to it: an exact name, or one `*`
    /// standing for any run of characters (ethtool's `off_flag_def`).
    pub pattern: &'static str,
}

/// The four toggles a profile can set, as ethtool 6.x defines them.
pub const GROUPS: &[Group] = &[
    Group {
        user: "tso",
        long_name: "tcp-segmentation-offload",
        pattern: "tx-tcp*-segmentation",
    },
    Group {
        user: "gso",
        long_name: "generic-segmentation-offload",
        pattern: "tx-generic-segmentation",
    },
    Group {
        user: "gro",
        long_name: "generic-receive-offload",
        pattern: "rx-gro",
    },
    Group {
        user: "lro",
        long_name: "large-receive-offload",
        pattern: "rx-lro",
    },
];

/// The group named `user` (`tso`, `gso`, `gro`, `lro`).
pub fn group(user: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.user == user)
}

/// ethtool's `flag_pattern_match`: `name` equals `pattern`, or, when the
/// pattern has a `*`, starts with what precedes it and ends with what
/// follows it.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => name == pattern,
        Some((prefix, suffix)) => {
            name.len() >= prefix.len() + suffix.len()
                && name.starts_with(prefix)
                && name.ends_with(suffix)
        }
    }
}

/// The group a kernel feature belongs to, if any.
pub fn group_of(kernel_name: &str) -> Option<&'static Group> {
    GROUPS
        .iter()
        .find(|g| pattern_matches(g.pattern, kernel_name))
}

/// Keep only the features behind the four toggles (what [`SystemState`]
/// stores).
pub fn relevant(features: &Features) -> Features {
    features
        .iter()
        .filter(|(name, _)| group_of(name).is_some())
        .map(|(n, s)| (n.clone(), *s))
        .collect()
}

/// The state of one group on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// On when any member is on (what `ethtool -k` prints on the group line).
    pub on: bool,
    /// The members, by kernel name.
    pub members: Vec<(String, FeatureState)>,
}

impl GroupState {
    /// Collect `group`'s members from `features`. A kernel that lacks every
    /// member reads as off, with nothing that can change.
    pub fn of(group: &Group, features: &Features) -> Self {
        let members: Vec<_> = features
            .iter()
            .filter(|(n, _)| pattern_matches(group.pattern, n))
            .map(|(n, s)| (n.clone(), *s))
            .collect();
        GroupState {
            on: members.iter().any(|(_, s)| s.on),
            members,
        }
    }

    /// The kernel writes that make the group `want`: every changeable
    /// member not already there.
    pub fn writes(&self, want: bool) -> Vec<(String, bool)> {
        self.members
            .iter()
            .filter(|(_, s)| !s.fixed && s.on != want)
            .map(|(n, _)| (n.clone(), want))
            .collect()
    }

    /// Whether setting every changeable member makes the group read `want`.
    pub fn reachable(&self, want: bool) -> bool {
        if want {
            self.members.iter().any(|(_, s)| !s.fixed || s.on)
        } else {
            !self.members.iter().any(|(_, s)| s.fixed && s.on)
        }
    }

    /// The fixed members that keep the group from reading `want` once
    /// every changeable member is set (empty when `want` is reachable, and
    /// when the kernel has no member at all).
    pub fn blockers(&self, want: bool) -> Vec<&str> {
        let names = |pred: &dyn Fn(&FeatureState) -> bool| {
            self.members
                .iter()
                .filter(|(_, s)| pred(s))
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
        };
        if want {
            if self.reachable(true) {
                vec![]
            } else {
                names(&|_| true)
            }
        } else {
            names(&|s| s.fixed && s.on)
        }
    }

    /// Changeable members that are off while the group reads on: a
    /// rollback to "on" turns them on too.
    pub fn off_while_on(&self) -> Vec<&str> {
        if !self.on {
            return vec![];
        }
        self.members
            .iter()
            .filter(|(_, s)| !s.fixed && !s.on)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The display key of a toggle: `eth0 tso`.
pub fn key(iface: &str, feature: &str) -> String {
    format!("{iface} {feature}")
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
                code: "offload-unknown-interface".into(),
                why: format!("no interface `{iface}` in this network namespace"),
                current: None,
                desired: on_off(want).into(),
            });
            continue;
        };
        let g = group(feature).expect("OffloadFix::toggles yields known names");
        let now = GroupState::of(g, features).on;
        if now == want {
            p.unchanged.push(Unchanged {
                kind: ChangeKind::Offload,
                key,
                current: on_off(now).into(),
                desired: on_off(want).into(),
                intent: Intent::Exact,
                reason,
            });
            continue;
        }
        p.changes.push(Change {
            kind: ChangeKind::Offload,
            key,
            current: Some(on_off(now).into()),
            desired: on_off(want).into(),
            intent: Intent::Exact,
            reason,
            target: Target::Offload {
                iface,
                feature: feature.into(),
            },
            before: Value::Bool(now),
            after: Value::Bool(want),
        });
    }
}

/// The planned offload changes as `(iface, user name, group state, wanted)`.
fn planned<'a>(input: &'a CheckInput) -> Vec<(&'a str, &'static Group, GroupState, bool)> {
    input
        .changes
        .iter()
        .filter_map(|c| {
            let (Target::Offload { iface, feature }, Value::Bool(want)) = (&c.target, &c.after)
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
/// `offload-cpu-cost`, `offload-on-loopback`, `offload-group-mixed`.
pub fn checks(input: &CheckInput) -> Vec<Finding> {
    let mut out = unknown_interface(input);
    out.extend(fixed(input));
    out.extend(cpu_cost(input));
    out.extend(on_loopback(input));
    out.extend(group_mixed(input));
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
                "offload-unknown-interface",
                Severity::Refuse,
                format!("interface `{iface}` does not exist in this network namespace"),
            )
            .hint(format!(
                "interfaces here: {existing}; pass the right one with `--set iface=NAME`"
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
                    "offload-fixed",
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
        "offload-cpu-cost",
        Severity::Warn,
        format!(
            "turning off {} makes the CPU segment or merge every packet itself: more CPU per byte, less throughput under load",
            keys.join(", ")
        ),
    )
    .hint("this is a diagnostic step, not a permanent fix: watch whether the timeouts stop, then `tcto-tune rollback`; if they did stop, update the NIC driver or firmware")]
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
        "offload-on-loopback",
        Severity::Refuse,
        "the plan changes offloads of `lo`: loopback has no NIC, its segments are never split or merged by hardware, so its offloads cannot cause connect timeouts; turning them off only costs CPU for local traffic",
    )
    .hint("name the interface the timing-out traffic crosses (`ip route get ADDRESS` shows it) with `--set iface=NAME`")]
}

/// `offload-group-mixed`: the group reads on while some changeable members
/// are off; rollback restores the group as a whole and turns those on.
pub fn group_mixed(input: &CheckInput) -> Vec<Finding> {
    planned(input)
        .into_iter()
        .filter_map(|(iface, g, st, _)| {
            let off = st.off_while_on();
            if off.is_empty() {
                return None;
            }
            Some(
                Finding::new(
                    "offload-group-mixed",
                    Severity::Warn,
                    format!(
                        "`{}` reads on, but {} {} off; rollback restores the group as a whole and turns {} on",
                        key(iface, g.user),
                        off.join(", "),
                        if off.len() == 1 { "is" } else { "are" },
                        if off.len() == 1 { "it" } else { "them" },
                    ),
                )
                .hint(format!(
                    "to keep them off after rollback: `ethtool -K {iface} {}`",
                    off.iter()
                        .map(|n| format!("{n} off"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
