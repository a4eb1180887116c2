//! The [`Offloads`] backend trait, its simulated implementation, and the
//! group read/write the transaction uses for `Target::Offload`.
//!
//! Backends deal only in kernel feature names; the user-facing groups
//! (`tso` = every `tx-tcp*-segmentation`) come from [`crate::offload`]. The
//! write here is the one place that turns a group into kernel writes and
//! checks that it took: the kernel accepts a change to a fixed feature
//! without an error, so success is decided by reading the feature back.
//!
//! A target names the device it was planned on (ifindex, and the permanent
//! MAC where there is one) beside the name, because names move: after
//! `ip link set dev a name aold; ip link set dev b name a` the name `a` is
//! another NIC. Every read and write first finds the device ([`locate`]):
//! by ifindex (following a rename), then by permanent MAC (a driver reload
//! gives the NIC a new ifindex), never by name alone unless the journal
//! record predates ifindex tracking. A device that is no longer there is
//! [`Located::Gone`]: there is nothing left to restore, which is not the
//! same as someone having changed it.

use std::collections::BTreeMap;
use std::io;

use super::SystemError;
use crate::change::{Target, Value};
use crate::names::IfName;
use crate::offload::{dependencies_off, group, GroupState, Reading};
use crate::state::{Features, IfScope, NicId, SystemState};

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
    /// Which device `iface` names now, or `None` when no interface has
    /// that name.
    fn device(&self, iface: &IfName) -> Result<Option<NicId>, SystemError>;
    /// The name of the interface with index `ifindex`, or `None` when
    /// there is none.
    fn name_of(&self, ifindex: u32) -> Result<Option<String>, SystemError>;
    /// The boot and network namespace ifindexes belong to here (`None`:
    /// unknown, and then not compared).
    fn scope(&self) -> Result<Option<IfScope>, SystemError>;
}

/// Where a target is now, asked before rollback acts on it: a NIC can be
/// renamed or removed between apply and rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Where it was (every non-offload target).
    Here,
    /// The same device under another name (or, found by its permanent
    /// MAC, another ifindex): `to` addresses it now, `note` says so.
    Moved {
        /// The target as it is addressed now.
        to: Target,
        /// One line for the report.
        note: String,
    },
    /// The device is no longer in this namespace: nothing to restore.
    Gone {
        /// One line for the report (names a different device now holding
        /// the name, which is left alone).
        why: String,
    },
}

/// In-memory NICs: fixed features ignore writes, as the kernel does.
#[derive(Debug, Clone, Default)]
pub struct SimOffloads {
    /// Interfaces in index order.
    pub interfaces: Vec<String>,
    /// Features by interface.
    pub features: BTreeMap<String, Features>,
    /// Device identities by interface; an interface without an entry has
    /// its 1-based position in `interfaces` as ifindex and no permanent MAC.
    pub nics: BTreeMap<String, NicId>,
    /// The boot and namespace reported by [`Offloads::scope`].
    pub scope: Option<IfScope>,
}

impl SimOffloads {
    /// Seed from a state snapshot.
    pub fn from_state(state: &SystemState) -> Self {
        Self {
            interfaces: state.interfaces.clone(),
            features: state.offloads.clone(),
            nics: state.nics.clone(),
            scope: state.nics.values().find_map(|n| n.scope.clone()),
        }
    }

    fn id_of(&self, name: &str) -> Option<NicId> {
        if let Some(id) = self.nics.get(name) {
            return Some(id.clone());
        }
        let pos = self.interfaces.iter().position(|i| i == name)?;
        Some(NicId {
            ifindex: u32::try_from(pos + 1).ok()?,
            perm_addr: None,
            scope: self.scope.clone(),
        })
    }

    /// `ip link set dev FROM name TO`: the device keeps its identity.
    pub fn rename(&mut self, from: &str, to: &str) {
        let id = self.id_of(from);
        for i in &mut self.interfaces {
            if i == from {
                *i = to.to_owned();
            }
        }
        if let Some(f) = self.features.remove(from) {
            self.features.insert(to.to_owned(), f);
        }
        self.nics.remove(from);
        if let Some(id) = id {
            self.nics.insert(to.to_owned(), id);
        }
    }

    /// `ip link del NAME`. The other devices keep their ifindex.
    pub fn remove(&mut self, name: &str) {
        let ids: Vec<(String, NicId)> = self
            .interfaces
            .iter()
            .filter_map(|i| Some((i.clone(), self.id_of(i)?)))
            .collect();
        self.nics = ids.into_iter().filter(|(i, _)| i != name).collect();
        self.interfaces.retain(|i| i != name);
        self.features.remove(name);
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
                f.wish = false;
            }
        }
        // As netdev_fix_features: a member whose dependency is off stays
        // off, its request recorded (`off [requested on]`).
        for g in crate::offload::GROUPS {
            if dependencies_off(g.user, features).is_empty() {
                continue;
            }
            for (name, f) in features.iter_mut() {
                if crate::offload::pattern_matches(g.pattern, name) && f.on && !f.fixed {
                    f.on = false;
                    f.wish = true;
                    report.wish = true;
                }
            }
        }
        Ok(report)
    }

    fn device(&self, iface: &IfName) -> Result<Option<NicId>, SystemError> {
        Ok(self
            .interfaces
            .iter()
            .any(|i| i == iface.as_str())
            .then(|| self.id_of(iface.as_str()))
            .flatten())
    }

    fn scope(&self) -> Result<Option<IfScope>, SystemError> {
        Ok(self.scope.clone())
    }

    fn name_of(&self, ifindex: u32) -> Result<Option<String>, SystemError> {
        Ok(self
            .interfaces
            .iter()
            .find(|i| self.id_of(i).is_some_and(|id| id.ifindex == ifindex))
            .cloned())
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

/// The parts of an offload target.
struct Parts<'a> {
    iface: &'a str,
    feature: &'a str,
    ifindex: Option<u32>,
    perm_addr: Option<&'a str>,
    scope: Option<&'a IfScope>,
}

fn parts(target: &Target) -> Result<Parts<'_>, SystemError> {
    match target {
        Target::Offload {
            iface,
            feature,
            ifindex,
            perm_addr,
            scope,
        } => Ok(Parts {
            iface,
            feature,
            ifindex: *ifindex,
            perm_addr: perm_addr.as_deref(),
            scope: scope.as_ref(),
        }),
        other => Err(SystemError::Unsupported {
            what: format!("{other} as an offload target"),
        }),
    }
}

/// Where the device of `p` is now.
enum Found {
    /// Under this name, with this identity.
    At(IfName, NicId),
    /// Not in this namespace; why, in one line.
    Gone(String),
}

fn describe(id: &NicId) -> String {
    match &id.perm_addr {
        Some(mac) => format!("ifindex {}, permanent address {mac}", id.ifindex),
        None => format!("ifindex {}", id.ifindex),
    }
}

fn find(o: &dyn Offloads, p: &Parts) -> Result<Found, SystemError> {
    let name = ifname(p.iface)?;
    let under_name = o.device(&name)?;
    let Some(ifindex) = p.ifindex else {
        // A record written before ifindex tracking: all we have is the name.
        return Ok(match under_name {
            Some(id) => Found::At(name, id),
            None => Found::Gone(format!(
                "interface `{}` is gone (no interface has that name now)",
                p.iface
            )),
        });
    };
    // An ifindex means this device only in the boot and namespace it was
    // read in: after a reboot the numbers are handed out again (and the
    // offload change itself did not survive), and each namespace counts
    // its own.
    if let (Some(was), Some(now)) = (p.scope, o.scope()?) {
        if was.boot_id != now.boot_id {
            return Ok(Found::Gone(format!(
                "`{}` was changed before the last reboot (boot id {}); offload settings do not survive a reboot, so there is nothing to restore",
                p.iface, was.boot_id
            )));
        }
        if was.netns != now.netns {
            return Err(SystemError::OtherNamespace {
                iface: p.iface.to_owned(),
                was: was.netns,
                now: now.netns,
            });
        }
    }
    let same = |id: &NicId| {
        p.perm_addr
            .is_none_or(|m| id.perm_addr.as_deref() == Some(m))
    };
    if let Some(now) = o.name_of(ifindex)? {
        let now = ifname(&now)?;
        if let Some(id) = o.device(&now)? {
            if id.ifindex == ifindex && same(&id) {
                return Ok(Found::At(now, id));
            }
        }
    }
    if let Some(mac) = p.perm_addr {
        for n in o.interfaces()? {
            let n = ifname(&n)?;
            if let Some(id) = o.device(&n)? {
                if id.perm_addr.as_deref() == Some(mac) {
                    return Ok(Found::At(n, id));
                }
            }
        }
    }
    let was = describe(&NicId {
        ifindex,
        perm_addr: p.perm_addr.map(str::to_owned),
        scope: None,
    });
    Ok(Found::Gone(match under_name {
        Some(other) => format!(
            "interface `{}` ({was}) is gone; the `{}` here now is another device ({}), left alone",
            p.iface,
            p.iface,
            describe(&other)
        ),
        None => format!("interface `{}` ({was}) is gone", p.iface),
    }))
}

fn gone_error(p: &Parts, why: String) -> SystemError {
    SystemError::InterfaceGone {
        iface: p.iface.to_owned(),
        why,
    }
}

/// Test-only: `TCTO_TUNE_FAULT_PAUSE_BEFORE_OFFLOAD_WRITE=N:FILE` makes
/// the Nth offload write of the process create FILE and wait (up to 30 s)
/// until it is removed, so that an end-to-end test can delete a real NIC
/// between two steps of a transaction.
#[cfg(feature = "fault-injection")]
fn pause_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    let Ok(spec) = std::env::var("TCTO_TUNE_FAULT_PAUSE_BEFORE_OFFLOAD_WRITE") else {
        return;
    };
    let Some((at, file)) = spec.split_once(':') else {
        return;
    };
    if at.parse() != Ok(n) || std::fs::write(file, b"paused\n").is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::path::Path::new(file).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(not(feature = "fault-injection"))]
fn pause_point() {}

/// Where the device of an offload target is now (see the module docs).
pub fn locate(o: &dyn Offloads, target: &Target) -> Result<Located, SystemError> {
    let p = parts(target)?;
    Ok(match find(o, &p)? {
        Found::Gone(why) => Located::Gone { why },
        Found::At(now, id) => {
            let renamed = now.as_str() != p.iface;
            let reindexed = p.ifindex.is_some_and(|i| i != id.ifindex);
            if !renamed && !reindexed {
                return Ok(Located::Here);
            }
            let mut note = if reindexed {
                format!(
                    "`{}` came back as `{now}` ({}, same permanent address); acting on it there",
                    p.iface,
                    describe(&id)
                )
            } else {
                format!(
                    "`{}` ({}) is now named `{now}`; acting on it there",
                    p.iface,
                    describe(&id)
                )
            };
            if renamed {
                if let Some(other) = o.device(&ifname(p.iface)?)? {
                    note.push_str(&format!(
                        "; the `{}` here now is another device ({}), left alone",
                        p.iface,
                        describe(&other)
                    ));
                }
            }
            Located::Moved {
                to: Target::Offload {
                    iface: now.to_string(),
                    feature: p.feature.to_owned(),
                    ifindex: p.ifindex.map(|_| id.ifindex),
                    perm_addr: p.perm_addr.map(str::to_owned),
                    scope: p.scope.cloned(),
                },
                note,
            }
        }
    })
}

/// The value of an offload target, as [`Reading::value`]: on, off, or the
/// members of a mixed group. An interface that is gone is an error
/// ([`SystemError::InterfaceGone`]), never a value: it cannot be written.
pub fn read_group(o: &dyn Offloads, target: &Target) -> Result<Value, SystemError> {
    let p = parts(target)?;
    let g = group_of(p.feature)?;
    let name = match find(o, &p)? {
        Found::At(name, _) => name,
        Found::Gone(why) => return Err(gone_error(&p, why)),
    };
    match o.features(&name)? {
        Some(f) => Ok(GroupState::of(g, &f).reading().value()),
        None => Err(gone_error(
            &p,
            format!("interface `{name}` vanished while being read"),
        )),
    }
}

/// Make an offload target hold `value` (on, off, or a journaled mixed
/// reading): set every changeable member that differs, then read back; a
/// result other than `value` (a member the kernel kept, e.g. TSO with
/// scatter-gather off) is an error.
pub fn write_group(
    o: &mut dyn Offloads,
    target: &Target,
    value: &Value,
) -> Result<(), SystemError> {
    pause_point();
    let p = parts(target)?;
    let g = group_of(p.feature)?;
    let want = Reading::parse(value).ok_or_else(|| SystemError::Unsupported {
        what: format!("writing `{}` to {target}", value.display()),
    })?;
    let (name, id) = match find(o, &p)? {
        Found::At(name, id) => (name, id),
        Found::Gone(why) => return Err(gone_error(&p, why)),
    };
    let vanished = |name: &IfName| {
        gone_error(
            &p,
            format!("interface `{name}` vanished while being changed"),
        )
    };
    let before = GroupState::of(g, &o.features(&name)?.ok_or_else(|| vanished(&name))?);
    let writes = before.writes_for(&want);
    let report = if writes.is_empty() {
        SetReport::default()
    } else {
        o.set(&name, &writes)?
    };
    // The name was resolved before the write: make sure it still named the
    // same device after it (a rename in between would have sent the write
    // to another NIC).
    if p.ifindex.is_some() && o.device(&name)?.map(|d| d.ifindex) != Some(id.ifindex) {
        return Err(gone_error(
            &p,
            format!(
                "interface `{name}` was renamed or replaced while being changed ({} before)",
                describe(&id)
            ),
        ));
    }
    let features = o.features(&name)?.ok_or_else(|| vanished(&name))?;
    let after = GroupState::of(g, &features);
    let got = after.reading();
    if got.value().matches(value) {
        return Ok(());
    }
    let wanted = value.display();
    let deps = dependencies_off(p.feature, &features);
    let why = if let Some((dep, _)) = deps.first() {
        format!("`{}` is off: {}", dep.short, dep.why)
    } else if let Some(blockers) = match want {
        Reading::On => Some(after.blockers(true)),
        Reading::Off => Some(after.blockers(false)),
        Reading::Mixed { .. } => None,
    }
    .filter(|b| !b.is_empty())
    {
        format!("the driver fixes {}", blockers.join(", "))
    } else if report.wish {
        "the kernel recorded the request but the device cannot do it now (a dependency such as scatter-gather or checksumming is off)".to_owned()
    } else {
        format!("it reads `{}`", got.value().display())
    };
    Err(SystemError::OffloadNotTaken {
        iface: name.to_string(),
        feature: p.feature.to_owned(),
        wanted,
        why,
    })
}

#[cfg(test)]
mod tests;
