//! The [`Offloads`] backend trait, its simulated implementation, and the
//! group read/write the transaction uses for `Target::Offload`.
//!
//! Backends deal only in kernel feature names; the user-facing groups
//! (`tso` = every `tx-tcp*-segmentation`) come from [`crate::offload`]. The
//! write here is the one place that turns a group into kernel writes and
//! checks that it took: the kernel accepts a change to a fixed feature
//! without an error, so success is decided by reading the feature back.

use std::collections::BTreeMap;
use std::io;

use super::SystemError;
use crate::change::Value;
use crate::names::IfName;
use crate::offload::{group, GroupState};
use crate::state::{Features, SystemState};

/// What the kernel said about a feature write (its positive flag word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetReport {
    /// Some features asked for are not changeable (`ETHTOOL_F_UNSUPPORTED`).
    pub unsupported: bool,
    /// The wish was recorded but the device cannot do it now (`ETHTOOL_F_WISH`).
    pub wish: bool,
}

/// Read and change NIC features by kernel name.
pub trait Offloads {
    /// The interfaces of this network namespace, in index order.
    fn interfaces(&self) -> Result<Vec<String>, SystemError>;
    /// Every feature of `iface`, or `None` when the interface does not exist.
    fn features(&self, iface: &IfName) -> Result<Option<Features>, SystemError>;
    /// Request each `(kernel name, on)`. Success does not mean the features
    /// changed: read them back.
    fn set(&mut self, iface: &IfName, writes: &[(String, bool)]) -> Result<SetReport, SystemError>;
}

/// In-memory NICs: fixed features ignore writes, as the kernel does.
#[derive(Debug, Clone, Default)]
pub struct SimOffloads {
    /// Interfaces in index order.
    pub interfaces: Vec<String>,
    /// Features by interface.
    pub features: BTreeMap<String, Features>,
}

impl SimOffloads {
    /// Seed from a state snapshot.
    pub fn from_state(state: &SystemState) -> Self {
        Self {
            interfaces: state.interfaces.clone(),
            features: state.offloads.clone(),
        }
    }
}

impl Offloads for SimOffloads {
    fn interfaces(&self) -> Result<Vec<String>, SystemError> {
        Ok(self.interfaces.clone())
    }

    fn features(&self, iface: &IfName) -> Result<Option<Features>, SystemError> {
        Ok(self.features.get(iface.as_str()).cloned())
    }

    fn set(&mut self, iface: &IfName, writes: &[(String, bool)]) -> Result<SetReport, SystemError> {
        let err = |errno| SystemError::Ethtool {
            iface: iface.to_string(),
            step: "SFEATURES",
            source: io::Error::from_raw_os_error(errno),
        };
        let features = self
            .features
            .get_mut(iface.as_str())
            .ok_or_else(|| err(libc::ENODEV))?;
        if writes.iter().any(|(n, _)| !features.contains_key(n)) {
            return Err(err(libc::EINVAL));
        }
        let mut report = SetReport::default();
        for (name, on) in writes {
            let f = features.get_mut(name).expect("checked above");
            if f.fixed {
                report.unsupported = true;
            } else {
                f.on = *on;
            }
        }
        Ok(report)
    }
}

fn ifname(iface: &str) -> Result<IfName, SystemError> {
    IfName::new(iface).map_err(|e| SystemError::Ethtool {
        iface: iface.to_owned(),
        step: "validate the interface name",
        source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    })
}

fn group_of(feature: &str) -> Result<&'static crate::offload::Group, SystemError> {
    group(feature).ok_or_else(|| SystemError::Unsupported {
        what: format!("offload feature `{feature}` (known: tso, gso, gro, lro)"),
    })
}

/// The value of user-facing `feature` (`tso`...) of `iface`:
/// `Value::Bool` as `ethtool -k` shows it, `Value::Absent` when the
/// interface does not exist.
pub fn read_group(o: &dyn Offloads, iface: &str, feature: &str) -> Result<Value, SystemError> {
    let g = group_of(feature)?;
    let name = ifname(iface)?;
    Ok(match o.features(&name)? {
        Some(f) => Value::Bool(GroupState::of(g, &f).on),
        None => Value::Absent,
    })
}

/// Make user-facing `feature` of `iface` read `want`: set every changeable
/// member, then read back; a change that did not take is an error.
pub fn write_group(
    o: &mut dyn Offloads,
    iface: &str,
    feature: &str,
    want: bool,
) -> Result<(), SystemError> {
    let g = group_of(feature)?;
    let name = ifname(iface)?;
    let missing = || SystemError::Ethtool {
        iface: iface.to_owned(),
        step: "GFEATURES",
        source: io::Error::from_raw_os_error(libc::ENODEV),
    };
    let before = GroupState::of(g, &o.features(&name)?.ok_or_else(missing)?);
    let writes = before.writes(want);
    let report = if writes.is_empty() {
        SetReport::default()
    } else {
        o.set(&name, &writes)?
    };
    let after = GroupState::of(g, &o.features(&name)?.ok_or_else(missing)?);
    if after.on == want {
        return Ok(());
    }
    let blockers = after.blockers(want);
    let why = if !blockers.is_empty() {
        format!("the driver fixes {}", blockers.join(", "))
    } else if report.wish {
        "the kernel recorded the request but the device cannot do it now (a dependency such as scatter-gather or checksumming is off)".to_owned()
    } else {
        let stuck: Vec<_> = after
            .members
            .iter()
            .filter(|(_, s)| s.on != want)
            .map(|(n, _)| n.as_str())
            .collect();
        format!("the kernel kept {}", stuck.join(", "))
    };
    Err(SystemError::OffloadNotTaken {
        iface: iface.to_owned(),
        feature: feature.to_owned(),
        wanted: if want { "on" } else { "off" },
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FeatureState;

    fn sim() -> SimOffloads {
        let mut f = Features::new();
        for n in [
            "tx-tcp-segmentation",
            "tx-tcp-ecn-segmentation",
            "tx-tcp6-segmentation",
        ] {
            f.insert(n.into(), FeatureState::changeable(true));
        }
        f.insert("rx-gro".into(), FeatureState::changeable(false));
        f.insert("rx-lro".into(), FeatureState::fixed(false));
        f.insert(
            "tx-tcp-mangleid-segmentation".into(),
            FeatureState::changeable(true),
        );
        SimOffloads {
            interfaces: vec!["lo".into(), "a".into()],
            features: BTreeMap::from([("a".into(), f)]),
        }
    }

    #[test]
    fn writing_a_group_sets_every_changeable_member_and_reads_back() {
        let mut s = sim();
        write_group(&mut s, "a", "tso", false).unwrap();
        assert_eq!(read_group(&s, "a", "tso").unwrap(), Value::Bool(false));
        assert!(s.features["a"]
            .iter()
            .filter(|(n, _)| n.starts_with("tx-tcp"))
            .all(|(_, st)| !st.on));
        write_group(&mut s, "a", "gro", true).unwrap();
        assert_eq!(read_group(&s, "a", "gro").unwrap(), Value::Bool(true));
        // Writing the value it already has is a no-op that succeeds.
        write_group(&mut s, "a", "gro", true).unwrap();
    }

    #[test]
    fn a_fixed_feature_that_did_not_change_is_an_error() {
        let mut s = sim();
        let e = write_group(&mut s, "a", "lro", true).unwrap_err();
        assert!(matches!(e, SystemError::OffloadNotTaken { .. }), "{e}");
        assert!(e.to_string().contains("`a lro` is still not on"), "{e}");
        assert!(e.to_string().contains("fixes rx-lro"), "{e}");
    }

    #[test]
    fn a_missing_interface_reads_absent_and_fails_to_write_with_enodev() {
        let mut s = sim();
        assert_eq!(read_group(&s, "eth9", "tso").unwrap(), Value::Absent);
        let e = write_group(&mut s, "eth9", "tso", false).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
    }

    #[test]
    fn bad_names_are_refused_before_any_backend_call() {
        let mut s = sim();
        assert!(read_group(&s, "a/../b", "tso").is_err());
        assert!(write_group(&mut s, "a", "ufo", false).is_err());
    }
}
