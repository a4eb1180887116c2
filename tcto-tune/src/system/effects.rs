//! [`Effects`]: the transaction's uniform view of the system.
//!
//! The apply transaction, rollback and the journal deal only in
//! [`Target`]s and [`Value`]s. [`Router`] routes each target to the
//! backend that owns it (over the live [`Backends`]: [`LinuxEffects`]);
//! [`SimEffects`] is the simulated host: one store of targets and their
//! values (seeded from a read state, a plan's observed values, or the
//! live values of a record's targets) with the host's other facts, which
//! dry-run and the fault-injection tests run the very same transaction
//! code against, and whose [`SimEffects::backends`] are what a state is
//! read from on it.

use std::collections::BTreeMap;

use super::faults::Injector;
use super::{
    locate, read_group, refused, write_group, Backends, Checkpoint, FaultPlan, Located, SystemError,
};
use crate::change::{Change, Target, Value};
use crate::state::{SysctlReading, SystemState};

/// Read and write any [`Target`].
pub trait Effects {
    /// The current value (`Value::Absent` when it does not exist).
    fn read(&mut self, target: &Target) -> Result<Value, SystemError>;
    /// Make the target hold `value` (`Value::Absent` removes it where that
    /// means something: a table, a file).
    fn write(&mut self, target: &Target, value: &Value) -> Result<(), SystemError>;
    /// Write, then return what the target holds afterwards, read from the
    /// system. Backends whose write already reads back override this.
    fn write_read_back(&mut self, target: &Target, value: &Value) -> Result<Value, SystemError> {
        self.write(target, value)?;
        self.read(target)
    }
    /// Where the target is now, asked before reverting it: a NIC can have
    /// been renamed or removed since (see [`Located`]). Everything else
    /// stays [`Located::Here`].
    fn locate(&mut self, _target: &Target) -> Result<Located, SystemError> {
        Ok(Located::Here)
    }
    /// The transaction reached `at` (a change written and journaled). Only
    /// an injected crash acts on it (see [`FaultPlan`]).
    fn checkpoint(&mut self, _at: Checkpoint) {}
}

/// The one router: each [`Target`] goes to the backend of its concern in
/// a set of [`Backends`] (a sysctl to `sysctls`, the NOTRACK table to
/// `firewall`, an offload to `offloads`, a file to `files`), through the
/// same traits `read_state` reads with. Writes pass through a
/// [`FaultPlan`] first (empty outside tests).
pub struct Router {
    backends: Backends,
    faults: Injector,
}

/// The live system: the router over [`Backends::linux`].
pub type LinuxEffects = Router;

impl Default for Router {
    /// The live system, with the faults a test build's environment asks
    /// for (none in a release build: see [`FaultPlan::from_env`]).
    fn default() -> Self {
        Router::new(Backends::linux(), FaultPlan::from_env())
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Route over `backends`, injecting `faults`.
    pub fn new(backends: Backends, faults: FaultPlan) -> Self {
        Router {
            backends,
            faults: Injector::new(faults),
        }
    }

    fn write_read_back_now(
        &mut self,
        target: &Target,
        value: &Value,
    ) -> Result<Value, SystemError> {
        match (target, value) {
            (Target::Sysctl { key }, Value::Text(v)) => Ok(self
                .backends
                .sysctls
                .write_read_back(key, v)?
                .map_or(Value::Absent, Value::Text)),
            _ => {
                self.write(target, value)?;
                self.read(target)
            }
        }
    }
}

fn is_ours(target: &Target) -> bool {
    *target == Target::notrack_table()
}

impl Effects for Router {
    fn read(&mut self, target: &Target) -> Result<Value, SystemError> {
        let b = &mut self.backends;
        match target {
            Target::Sysctl { key } => Ok(b.sysctls.read(key)?.map_or(Value::Absent, Value::Text)),
            Target::Offload { .. } => read_group(b.offloads.as_ref(), target),
            Target::File { path } => b.files.read(std::path::Path::new(path)),
            t if is_ours(t) => Ok(Value::notrack_table(b.firewall.notrack_table()?.as_ref())),
            other => Err(SystemError::Unsupported {
                what: format!("reading {other}"),
            }),
        }
    }

    fn write(&mut self, target: &Target, value: &Value) -> Result<(), SystemError> {
        let b = &mut self.backends;
        match (target, value) {
            (Target::Sysctl { key }, Value::Text(v)) => b.sysctls.write(key, v),
            (Target::Offload { .. }, v) => write_group(b.offloads.as_mut(), target, v),
            (Target::File { path }, v) => b.files.write(std::path::Path::new(path), v),
            // The transaction reads the table back and compares.
            (t, Value::Table(table)) if is_ours(t) => b.firewall.write_table(Some(table)),
            (t, Value::Absent) if is_ours(t) => b.firewall.write_table(None),
            (other, v) => Err(SystemError::Unsupported {
                what: format!("writing {} to {other}", v.display()),
            }),
        }
    }

    fn locate(&mut self, target: &Target) -> Result<Located, SystemError> {
        match target {
            Target::Offload { .. } => locate(self.backends.offloads.as_ref(), target),
            _ => Ok(Located::Here),
        }
    }

    fn write_read_back(&mut self, target: &Target, value: &Value) -> Result<Value, SystemError> {
        let mut faults = std::mem::take(&mut self.faults);
        let back = faults.write(|| self.write_read_back_now(target, value));
        self.faults = faults;
        back
    }

    fn checkpoint(&mut self, at: Checkpoint) {
        if self.faults.plan.crashes_at(at) {
            crash();
        }
    }
}

/// Die as a crash would: SIGKILL cannot be caught, so this is exactly the
/// crash the journal must survive.
fn crash() {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
}

/// A fault to inject into [`SimEffects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimFault {
    /// The write fails with this errno and changes nothing.
    Refuse(i32),
    /// The write "succeeds" but the target then holds this value (a clamp).
    Store(Value),
    /// The write lands as asked, but reading it back right after gives
    /// this value.
    ReadBack(Value),
}

/// The simulated host: every target holds a value, and the facts that
/// are not targets (listeners, memory, NICs, other tables' chains) are a
/// [`SystemState`]. Transactions read and write `values`; reading a state
/// goes through [`SimEffects::backends`], which sees `values` too.
#[derive(Debug, Clone, Default)]
pub struct SimEffects {
    /// Current values.
    pub values: BTreeMap<Target, Value>,
    /// What is not a target: the host facts [`SimEffects::backends`]
    /// reads besides `values` (its sysctls and table are only the
    /// fallback for targets `values` does not hold; its offloads are
    /// read from here, not from `values`).
    pub facts: SystemState,
    /// Faults by target, applied to every write of that target.
    pub faults: BTreeMap<Target, SimFault>,
    /// Every successful write, in order.
    pub writes: Vec<(Target, Value)>,
    /// Faults by step: the Nth write refused or reading back different, a
    /// crash (a panic that skips the hook) at a checkpoint.
    pub plan: FaultPlan,
    injector: Injector,
}

impl SimEffects {
    /// A simulated host holding what `live` holds now for each of
    /// `targets`: a dry-run rollback (`rollback --dry-run`, Ansible's check
    /// mode) undoes a journaled record against it, drift included, and
    /// writes nothing. The error names the target that could not be read.
    pub fn mirror<'t>(
        live: &mut dyn Effects,
        targets: impl IntoIterator<Item = &'t Target>,
    ) -> Result<Self, Box<(Target, SystemError)>> {
        let mut s = Self::default();
        for t in targets {
            let v = live.read(t).map_err(|e| Box::new((t.clone(), e)))?;
            s.values.insert(t.clone(), v);
        }
        Ok(s)
    }

    /// Seed with the values a plan observed for each change it makes
    /// (`&plan.changes`).
    pub fn from_changes(changes: &[Change]) -> Self {
        let mut s = Self::default();
        for c in changes {
            s.values.insert(c.target.clone(), c.before.clone());
        }
        s
    }
}

impl SimEffects {
    /// A simulated host holding `state`: each sysctl it read and the
    /// NOTRACK table are targets in `values`, and a sysctl the state shows
    /// missing (ENOENT) or read-only here (EACCES) refuses writes as the
    /// kernel would; everything is also kept as `facts`.
    pub fn from_state(state: &SystemState) -> Self {
        let mut s = Self {
            facts: state.clone(),
            ..Self::default()
        };
        for (key, r) in &state.sysctls {
            let Ok(key) = key.parse() else { continue };
            let target = Target::Sysctl { key };
            let value = r.value.clone().map_or(Value::Absent, Value::Text);
            if r.value.is_none() {
                s.faults
                    .insert(target.clone(), SimFault::Refuse(libc::ENOENT));
            } else if !r.writable {
                s.faults
                    .insert(target.clone(), SimFault::Refuse(libc::EACCES));
            }
            s.values.insert(target, value);
        }
        s.values.insert(
            Target::notrack_table(),
            Value::notrack_table(state.notrack_table.as_ref()),
        );
        s
    }

    /// The host `state` was read from, holding the values a plan observed
    /// for each change it makes (what dry-run runs `apply` against): a
    /// sysctl planned only because the user allowed a read-only or missing
    /// one is refused, as the kernel would.
    pub fn from_changes_and_state(changes: &[Change], state: &SystemState) -> Self {
        let mut s = Self::from_state(state);
        for c in changes {
            s.values.insert(c.target.clone(), c.before.clone());
        }
        s
    }

    /// The read side of this host, for `read_state` and the probes: its
    /// sysctls, NOTRACK table, files and the offloads it holds are what
    /// `values` holds now, the rest is
    /// `facts`. A snapshot: read it again after a transaction.
    pub fn backends(&self) -> Backends {
        let mut state = self.facts.clone();
        let mut files = super::SimFiles::default();
        for (target, value) in &self.values {
            match target {
                Target::Sysctl { key } => {
                    let refused = matches!(self.faults.get(target), Some(SimFault::Refuse(_)));
                    let value = match value {
                        Value::Text(v) => Some(v.clone()),
                        _ => None,
                    };
                    // Writable as the state read said; a key it did not
                    // read, unless a fault refuses it.
                    let writable = match self.facts.sysctls.get(key.as_str()) {
                        Some(r) => r.writable,
                        None => value.is_some() && !refused,
                    };
                    state
                        .sysctls
                        .insert(key.to_string(), SysctlReading { value, writable });
                }
                t if is_ours(t) => {
                    state.notrack_table = match value {
                        Value::Table(table) => Some(table.clone()),
                        _ => None,
                    }
                }
                Target::File { path } if *value != Value::Absent => {
                    files.0.insert(path.into(), value.clone());
                }
                _ => {}
            }
        }
        let mut b = Backends::of_state(&state, files);
        // An offload a transaction changed, set on the simulated NICs the
        // way the kernel would take it (a fixed feature stays as it is).
        let mut nics = super::SimOffloads::from_state(&state);
        for (target, value) in &self.values {
            if let Target::Offload { .. } = target {
                if read_group(&nics, target).ok().as_ref() != Some(value) {
                    let _ = write_group(&mut nics, target, value);
                }
            }
        }
        b.offloads = Box::new(nics);
        b
    }
}

impl Effects for SimEffects {
    fn read(&mut self, target: &Target) -> Result<Value, SystemError> {
        Ok(self.values.get(target).cloned().unwrap_or(Value::Absent))
    }

    fn write(&mut self, target: &Target, value: &Value) -> Result<(), SystemError> {
        // What the kernel refuses of a NOTRACK table, the simulation refuses.
        if let (true, Value::Table(table)) = (is_ours(target), value) {
            if let Some(e) = super::nft::kernel_refusal(table) {
                return Err(e);
            }
        }
        let stored = match self.faults.get(target) {
            Some(SimFault::Refuse(errno)) => return Err(refused(target, value, *errno)),
            Some(SimFault::Store(v)) => v.clone(),
            Some(SimFault::ReadBack(_)) | None => value.clone(),
        };
        self.values.insert(target.clone(), stored);
        self.writes.push((target.clone(), value.clone()));
        Ok(())
    }

    fn write_read_back(&mut self, target: &Target, value: &Value) -> Result<Value, SystemError> {
        if self.injector.plan != self.plan {
            self.injector = Injector::new(self.plan);
        }
        let mut injector = std::mem::take(&mut self.injector);
        let back = injector.write(|| {
            self.write(target, value)?;
            match self.faults.get(target) {
                Some(SimFault::ReadBack(v)) => Ok(v.clone()),
                _ => self.read(target),
            }
        });
        self.injector = injector;
        back
    }

    fn checkpoint(&mut self, at: Checkpoint) {
        if self.plan.crashes_at(at) {
            // An unwind that skips the panic hook: nothing printed.
            std::panic::resume_unwind(Box::new("simulated crash"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{apply, ApplyOptions, Outcome, Run};
    use crate::fix::Desired;
    use crate::snapshot::read_state;
    use crate::state::SysctlReading;
    use crate::Profile;

    #[test]
    fn one_simulated_host_is_planned_on_written_and_read_again() {
        let mut state = SystemState::default();
        state
            .sysctls
            .insert("net.core.somaxconn".into(), SysctlReading::rw("1024"));
        let profile = Profile::builder("t")
            .somaxconn(Desired::at_least(4096))
            .build();
        let mut host = SimEffects::from_state(&state);
        let read = read_state(&profile, &host.backends()).unwrap();
        assert_eq!(read.sysctl("net.core.somaxconn"), Some("1024"));
        let plan = crate::plan(&profile, &read);
        assert_eq!(plan.changes.len(), 1);
        let r = apply(&plan, Run::DryRun(&mut host), &ApplyOptions::default()).unwrap();
        assert_eq!(r.outcome, Outcome::WouldApply, "{r}");
        // The same host, read again, holds what the transaction wrote.
        let after = read_state(&profile, &host.backends()).unwrap();
        assert_eq!(after.sysctl("net.core.somaxconn"), Some("4096"));
        assert!(crate::plan(&profile, &after).changes.is_empty());
    }

    #[test]
    fn an_offload_written_on_the_simulated_host_reads_back_from_its_nics() {
        let mut features = crate::state::Features::new();
        features.insert(
            "rx-gro".into(),
            crate::state::FeatureState::changeable(false),
        );
        let mut state = SystemState {
            interfaces: vec!["lo".into(), "a".into()],
            ..Default::default()
        };
        state.offloads.insert("a".into(), features);
        let profile = Profile::builder("t")
            .offload(crate::fix::OffloadFix {
                iface: crate::names::IfName::new("a").unwrap(),
                tso: None,
                gso: None,
                gro: Some(true),
                lro: None,
                reason: None,
            })
            .build();
        let plan = crate::plan(&profile, &state);
        assert_eq!(plan.changes.len(), 1);
        let mut host = SimEffects::from_changes_and_state(&plan.changes, &state);
        let r = apply(&plan, Run::DryRun(&mut host), &ApplyOptions::default()).unwrap();
        assert_eq!(r.outcome, Outcome::WouldApply, "{r}");
        let after = read_state(&profile, &host.backends()).unwrap();
        assert!(after.offloads["a"]["rx-gro"].on);
        assert!(crate::plan(&profile, &after).changes.is_empty());
    }

    #[test]
    fn a_read_only_sysctl_of_the_state_refuses_its_write() {
        let mut state = SystemState::default();
        state
            .sysctls
            .insert("net.core.somaxconn".into(), SysctlReading::ro("1024"));
        let mut host = SimEffects::from_state(&state);
        let t = Target::Sysctl {
            key: "net.core.somaxconn".parse().unwrap(),
        };
        let e = host.write(&t, &Value::Text("4096".into())).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert!(!host
            .backends()
            .sysctls
            .writable(&"net.core.somaxconn".parse().unwrap()));
    }
}
