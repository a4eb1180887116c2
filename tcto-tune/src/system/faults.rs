//! Injected faults: one plan for every concern and every host.
//!
//! A [`FaultPlan`] names the points of a transaction where the host
//! misbehaves: the Nth write refused, the Nth write landing but reading
//! back different, a crash right after the Nth change of an `apply` or the
//! Nth value a `rollback` restored. The simulated host carries one (and
//! per-target faults, see [`super::SimFault`]); the live host carries one
//! only in a test build (feature `fault-injection`, enabled by the
//! end-to-end test crate), read from the environment:
//!
//! - `TCTO_TUNE_FAULT_CRASH_AFTER=N`: the process is SIGKILLed right after
//!   the Nth change of an `apply` reached the system (and its journal).
//! - `TCTO_TUNE_FAULT_CRASH_UNDO_AFTER=N`: the same after the Nth value a
//!   `rollback` restored.
//! - `TCTO_TUNE_FAULT_REFUSE_AT=N`: the Nth write fails before it reaches
//!   the system, as a kernel refusal would.
//! - `TCTO_TUNE_FAULT_READBACK_AT=N`: the Nth write lands but reads back
//!   different, as a silent kernel clamp would.
//!
//! Writes are counted over the host's life, reverts included: a transaction
//! stops writing forward at its first failure, so the Nth write of an
//! `apply` is its Nth step.

use super::SystemError;
use crate::change::{Target, Value};

/// Where a transaction is, told to the host so that it can crash there
/// (see [`super::Effects::checkpoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The Nth change of an apply is written, read back and journaled.
    Applied(usize),
    /// The Nth value of a rollback is restored and journaled.
    Restored(usize),
}

/// Faults to inject at given points (1-based counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The Nth write fails before it reaches the system.
    pub refuse_at: Option<usize>,
    /// The Nth write lands but reads back different.
    pub differ_at: Option<usize>,
    /// Crash at [`Checkpoint::Applied`] N.
    pub crash_after_apply: Option<usize>,
    /// Crash at [`Checkpoint::Restored`] N.
    pub crash_after_undo: Option<usize>,
}

impl FaultPlan {
    /// The plan the environment asks for (a `fault-injection` build only;
    /// otherwise none).
    pub fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        {
            let n = |var: &str| std::env::var(var).ok().and_then(|v| v.parse().ok());
            FaultPlan {
                refuse_at: n("TCTO_TUNE_FAULT_REFUSE_AT"),
                differ_at: n("TCTO_TUNE_FAULT_READBACK_AT"),
                crash_after_apply: n("TCTO_TUNE_FAULT_CRASH_AFTER"),
                crash_after_undo: n("TCTO_TUNE_FAULT_CRASH_UNDO_AFTER"),
            }
        }
        #[cfg(not(feature = "fault-injection"))]
        FaultPlan::default()
    }

    /// Whether the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        *self == FaultPlan::default()
    }

    /// Whether to crash at `at`.
    pub fn crashes_at(&self, at: Checkpoint) -> bool {
        match at {
            Checkpoint::Applied(n) => self.crash_after_apply == Some(n),
            Checkpoint::Restored(n) => self.crash_after_undo == Some(n),
        }
    }
}

/// A [`FaultPlan`] being played: counts the writes.
#[derive(Debug, Clone, Default)]
pub(super) struct Injector {
    pub(super) plan: FaultPlan,
    writes: usize,
}

impl Injector {
    pub(super) fn new(plan: FaultPlan) -> Self {
        Injector { plan, writes: 0 }
    }

    /// Write through `write` (which writes and reads back), unless the plan
    /// refuses this write; a write the plan makes differ lands, then fails.
    pub(super) fn write(
        &mut self,
        write: impl FnOnce() -> Result<Value, SystemError>,
    ) -> Result<Value, SystemError> {
        if self.plan.is_empty() {
            return write();
        }
        self.writes += 1;
        if self.plan.refuse_at == Some(self.writes) {
            return Err(SystemError::Injected {
                what: "write refused",
            });
        }
        let back = write()?;
        if self.plan.differ_at == Some(self.writes) {
            return Err(SystemError::Injected {
                what: "read-back differs",
            });
        }
        Ok(back)
    }
}

/// The error a refused write of `value` to `target` gets: the one its
/// backend reports (a sysctl write, a file, an nftables batch, an ethtool
/// call), with `errno` as the cause.
pub fn refused(target: &Target, value: &Value, errno: i32) -> SystemError {
    let source = std::io::Error::from_raw_os_error(errno);
    match target {
        Target::Sysctl { .. } => SystemError::SysctlWrite {
            key: target.key(),
            value: value.display(),
            source,
        },
        Target::File { path } => SystemError::File {
            action: "write",
            path: path.clone(),
            source,
        },
        Target::NftTable { family, name } => SystemError::Nftables {
            step: format!("replace table {family} {name}"),
            source,
        },
        Target::Offload { iface, .. } => SystemError::Ethtool {
            iface: iface.clone(),
            step: "SFEATURES",
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{apply, ApplyOptions, Outcome, Run};
    use crate::change::Change;
    use crate::fix::Intent;
    use crate::journal::StepStatus;
    use crate::system::{Effects, SimEffects, SimFault};
    use crate::Plan;

    fn sysctl(k: &str) -> Target {
        Target::Sysctl {
            key: k.parse().unwrap(),
        }
    }

    fn two_step_plan() -> Plan {
        Plan {
            schema: 1,
            profile: "t".into(),
            initial_netns: true,
            changes: vec![
                Change::sysctl(
                    &"net.core.somaxconn".parse().unwrap(),
                    Some("1"),
                    "2",
                    Intent::Exact,
                    None,
                ),
                Change::sysctl(
                    &"net.ipv4.tcp_max_syn_backlog".parse().unwrap(),
                    Some("3"),
                    "4",
                    Intent::Exact,
                    None,
                ),
            ],
            unchanged: vec![],
            skipped: vec![],
            findings: vec![],
        }
    }

    #[test]
    fn the_plan_refuses_and_makes_differ_the_nth_write_only() {
        let t = sysctl("net.core.somaxconn");
        let mut sim = SimEffects::default();
        sim.plan.refuse_at = Some(2);
        sim.plan.differ_at = Some(3);
        let v = |s: &str| Value::Text(s.into());
        assert_eq!(sim.write_read_back(&t, &v("1")).unwrap(), v("1"));
        let e = sim.write_read_back(&t, &v("2")).unwrap_err();
        assert_eq!(e.to_string(), "injected fault: write refused");
        assert_eq!(
            sim.read(&t).unwrap(),
            v("1"),
            "a refused write lands nowhere"
        );
        let e = sim.write_read_back(&t, &v("3")).unwrap_err();
        assert_eq!(e.to_string(), "injected fault: read-back differs");
        assert_eq!(
            sim.read(&t).unwrap(),
            v("3"),
            "a write that differs did land"
        );
        assert_eq!(sim.write_read_back(&t, &v("4")).unwrap(), v("4"));
    }

    #[test]
    fn a_target_that_reads_back_different_fails_its_step_and_its_revert() {
        let plan = two_step_plan();
        let mut sim = SimEffects::from_changes(&plan.changes);
        sim.faults.insert(
            plan.changes[1].target.clone(),
            SimFault::ReadBack(Value::Text("9".into())),
        );
        let r = apply(&plan, Run::DryRun(&mut sim), &ApplyOptions::default()).unwrap();
        // Every write of that target reads back `9`: its revert too.
        assert_eq!(r.outcome, Outcome::RollbackIncomplete, "{r}");
        assert_eq!(r.steps[1].status, StepStatus::RevertFailed);
        assert!(r.steps[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("the kernel kept `9` instead of `4` (clamped or refused silently)"));
        // The value did land, and the first step was put back.
        assert_eq!(sim.values[&plan.changes[1].target], Value::Text("3".into()));
        assert_eq!(sim.values[&plan.changes[0].target], Value::Text("1".into()));
    }

    #[test]
    fn a_crash_at_a_checkpoint_stops_the_simulated_host() {
        let plan = two_step_plan();
        let mut sim = SimEffects::from_changes(&plan.changes);
        sim.plan.crash_after_apply = Some(1);
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply(&plan, Run::DryRun(&mut sim), &ApplyOptions::default())
        }));
        assert!(crashed.is_err());
        assert_eq!(sim.writes.len(), 1, "the second step was never written");
    }

    #[test]
    fn a_refused_write_is_the_error_of_its_own_backend() {
        let cases = [
            (
                sysctl("net.core.somaxconn"),
                "cannot write `1` to sysctl `net.core.somaxconn`",
            ),
            (
                Target::File {
                    path: "/etc/x.conf".into(),
                },
                "cannot write `/etc/x.conf`",
            ),
            (
                Target::notrack_table(),
                "nftables: cannot replace table inet tcto_tune",
            ),
        ];
        for (t, text) in cases {
            let mut sim = SimEffects::default();
            sim.faults.insert(t.clone(), SimFault::Refuse(libc::EACCES));
            let e = sim.write(&t, &Value::Text("1".into())).unwrap_err();
            assert_eq!(e.to_string(), text);
            assert_eq!(e.errno(), Some(libc::EACCES));
        }
    }
}
