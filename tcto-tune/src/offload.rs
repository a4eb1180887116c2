//! NIC offload toggles: user names and kernel features (the offload kind
//! of fix, its planning and checks, is `crate::plan::offload`).
//!
//! The runbook says "turn TCP offload off and see whether the timeouts
//! go away". Users say `tso` and `gro`; the kernel knows about sixty
//! features by name (`tx-tcp-segmentation`, `rx-gro`, ...) and `tso` is
//! really a *group* of them. This module maps one to the other exactly as
//! `ethtool -k` does (same patterns), so the plan speaks the operator's
//! names. It does not take over ethtool's "on if any member is on" group
//! line, which says `tso: on` while IPv4 TSO is off: a group is on only
//! when every changeable member is ([`Reading`]). It is pure: the kernel
//! is read by `system::ethtool`, and only [`Features`] reach here.
//!
//! A group is written by setting every *changeable* member to the wanted
//! value (what `ethtool -K IFACE tso off` does); fixed members stay as the
//! driver has them, which is why a wanted value can be unreachable
//! (`offload-fixed`).

use crate::change::Value;
use crate::state::{FeatureState, Features};

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

/// Keep only the features behind the four toggles and those they depend
/// on (what [`SystemState`](crate::state::SystemState) stores).
pub fn relevant(features: &Features) -> Features {
    features
        .iter()
        .filter(|(name, _)| group_of(name).is_some() || is_dependency(name))
        .map(|(n, s)| (n.clone(), *s))
        .collect()
}

/// The state of one group on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// On when any member is on: what `ethtool -k` prints on the group
    /// line. Too weak to decide "on" (see [`GroupState::reading`]); kept
    /// for comparing with `ethtool -k` and for `diagnose`.
    pub on: bool,
    /// The members, by kernel name.
    pub members: Vec<(String, FeatureState)>,
}

/// What a group holds, as plans, apply and rollback compare it.
///
/// `ethtool -k` prints a group `on` when any member is on; with `sg` off the
/// kernel keeps IPv4 and IPv6 TSO off (`off [requested on]`) while
/// `tx-tcp-accecn-segmentation` stays on, and the group line still says
/// `on`. So a group is [`Reading::On`] only when every member the kernel
/// lets change is on, [`Reading::Off`] when no member is on, and anything
/// else is [`Reading::Mixed`], listing each member so that rollback can
/// put every one back exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Every changeable member is on (and at least one member is).
    On,
    /// No member is on.
    Off,
    /// Some on, some off (fixed members included). Read from the kernel
    /// both lists are complete; parsed from a journaled value only one is
    /// (see [`Reading::value`]).
    Mixed {
        /// Members that are on.
        on: Vec<String>,
        /// Members that are off.
        off: Vec<String>,
    },
}

impl Reading {
    /// As a transaction [`Value`]: `Bool` for on and off; a mixed group is
    /// the text `mixed (off: A, B)` (every other member on) or
    /// `mixed (on: C)` (every other member off), whichever list is
    /// shorter. [`Reading::parse`] reads it back, so a journaled mixed
    /// group is restored member by member.
    pub fn value(&self) -> Value {
        match self {
            Reading::On => Value::Bool(true),
            Reading::Off => Value::Bool(false),
            Reading::Mixed { on, off } if on.len() < off.len() => {
                Value::Text(format!("mixed (on: {})", on.join(", ")))
            }
            Reading::Mixed { off, .. } => Value::Text(format!("mixed (off: {})", off.join(", "))),
        }
    }

    /// The reading a [`Value`] stands for (the inverse of
    /// [`Reading::value`]; a mixed one lists only the members it names).
    pub fn parse(v: &Value) -> Option<Reading> {
        match v {
            Value::Bool(true) => Some(Reading::On),
            Value::Bool(false) => Some(Reading::Off),
            Value::Text(t) => {
                let t = crate::fix::normalize(t);
                let inner = t.strip_prefix("mixed (")?.strip_suffix(')')?;
                let (form, list) = inner.split_once(": ")?;
                let names: Vec<String> = list.split(", ").map(str::to_owned).collect();
                let valid = |n: &String| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b',')
                };
                if !names.iter().all(valid) {
                    return None;
                }
                match form {
                    "on" => Some(Reading::Mixed {
                        on: names,
                        off: vec![],
                    }),
                    "off" => Some(Reading::Mixed {
                        on: vec![],
                        off: names,
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The value `member` should hold under this reading (`None`: the
    /// reading does not say).
    fn wanted(&self, member: &str) -> Option<bool> {
        match self {
            Reading::On => Some(true),
            Reading::Off => Some(false),
            Reading::Mixed { on, off } => {
                let listed_on = on.iter().any(|n| n == member);
                let listed_off = off.iter().any(|n| n == member);
                // `mixed (on: ...)` lists only those on: the rest are off;
                // `mixed (off: ...)` the reverse.
                if listed_on || (!listed_off && off.is_empty()) {
                    Some(listed_on)
                } else if listed_off || on.is_empty() {
                    Some(!listed_off)
                } else {
                    None
                }
            }
        }
    }
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

    /// What the group holds (see [`Reading`]).
    pub fn reading(&self) -> Reading {
        if !self.members.iter().any(|(_, s)| s.on) {
            return Reading::Off;
        }
        if self.members.iter().all(|(_, s)| s.on || s.fixed) {
            return Reading::On;
        }
        let names = |want: bool| {
            self.members
                .iter()
                .filter(|(_, s)| s.on == want)
                .map(|(n, _)| n.clone())
                .collect()
        };
        Reading::Mixed {
            on: names(true),
            off: names(false),
        }
    }

    /// The kernel writes that make the group `want`: every changeable
    /// member not already there.
    #[cfg(test)]
    pub fn writes(&self, want: bool) -> Vec<(String, bool)> {
        self.writes_for(&if want { Reading::On } else { Reading::Off })
    }

    /// The kernel writes that make the group read `target`: every
    /// changeable member it names that is not there, or that the kernel
    /// holds against a request for the other value (`[requested on]`),
    /// so that the request is put back too.
    pub fn writes_for(&self, target: &Reading) -> Vec<(String, bool)> {
        self.members
            .iter()
            .filter(|(_, s)| !s.fixed)
            .filter_map(|(n, s)| {
                let want = target.wanted(n)?;
                (s.on != want || s.wish).then(|| (n.clone(), want))
            })
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
}

/// A feature outside a group that the kernel requires before it lets
/// members of the group turn on (`netdev_fix_features`): without it the
/// kernel records the request and keeps the member off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency {
    /// The group (`tso`).
    pub group: &'static str,
    /// The requirement holds when any of these kernel features is on.
    pub any_of: &'static [&'static str],
    /// The name `ethtool -K` takes for it.
    pub short: &'static str,
    /// What the kernel does without it.
    pub why: &'static str,
}

/// The dependencies of the four groups, as kernel 6.x enforces them (seen
/// on a veth with kernel 6.18: `sg off` leaves `tso` and `gso`
/// `off [requested on]`, and so does `tx-checksum-ip-generic off` for TSO).
pub const DEPENDENCIES: &[Dependency] = &[
    Dependency {
        group: "tso",
        any_of: &["tx-scatter-gather"],
        short: "sg",
        why: "the kernel keeps TCP segmentation off without scatter-gather",
    },
    Dependency {
        group: "tso",
        any_of: &["tx-checksum-ip-generic", "tx-checksum-ipv4"],
        short: "tx-checksum-ip-generic",
        why: "the kernel keeps IPv4 TCP segmentation off without IPv4 checksum offload",
    },
    Dependency {
        group: "tso",
        any_of: &["tx-checksum-ip-generic", "tx-checksum-ipv6"],
        short: "tx-checksum-ip-generic",
        why: "the kernel keeps IPv6 TCP segmentation off without IPv6 checksum offload",
    },
    Dependency {
        group: "gso",
        any_of: &["tx-scatter-gather"],
        short: "sg",
        why: "the kernel keeps generic segmentation off without scatter-gather",
    },
];

/// Whether `name` is a feature some [`Dependency`] looks at.
fn is_dependency(name: &str) -> bool {
    DEPENDENCIES.iter().any(|d| d.any_of.contains(&name))
}

/// The dependencies of `group` that `features` shows off: each with the
/// kernel names it looked at. A dependency whose features this kernel
/// does not report at all is not judged.
pub fn dependencies_off<'a>(
    group: &str,
    features: &'a Features,
) -> Vec<(&'static Dependency, Vec<(&'a str, FeatureState)>)> {
    DEPENDENCIES
        .iter()
        .filter(|d| d.group == group)
        .filter_map(|d| {
            let present: Vec<(&str, FeatureState)> = d
                .any_of
                .iter()
                .filter_map(|n| features.get_key_value(*n).map(|(k, s)| (k.as_str(), *s)))
                .collect();
            (!present.is_empty() && present.iter().all(|(_, s)| !s.on)).then_some((d, present))
        })
        .collect()
}

pub(crate) fn on_off(b: bool) -> &'static str {
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

#[cfg(test)]
mod tests;
