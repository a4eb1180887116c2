//! Shared by the property tests that run the transaction engine against
//! the simulated system: a hand-made plan, a refused write, and quiet
//! simulated crashes.

use tcto_tune::change::{Change, Target, Value};
use tcto_tune::fix::Intent;
use tcto_tune::system::SystemError;
use tcto_tune::Plan;

/// The panic message a simulated crash (the process dying mid-apply) uses.
pub const SIMULATED_CRASH: &str = "simulated crash";

/// Keep simulated crashes out of the test output; other panics still print.
pub fn hide_simulated_crashes() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&SIMULATED_CRASH) {
            default_hook(info);
        }
    }));
}

/// A plan named `prop` making exactly `changes`.
pub fn plan_of(changes: Vec<Change>) -> Plan {
    Plan {
        schema: 1,
        profile: "prop".into(),
        initial_netns: true,
        changes,
        unchanged: vec![],
        skipped: vec![],
        findings: vec![],
    }
}

/// An exact change of any target from `before` to `after`.
pub fn exact_change(target: Target, before: Value, after: Value) -> Change {
    Change {
        kind: target.kind(),
        key: target.key(),
        current: Some(before.display()),
        desired: after.display(),
        intent: Intent::Exact,
        reason: None,
        target,
        before,
        after,
    }
}

/// The error a write the kernel refuses with `errno` gets.
pub fn refused(target: &Target, value: &Value, errno: i32) -> SystemError {
    SystemError::SysctlWrite {
        key: target.key(),
        value: value.display(),
        source: std::io::Error::from_raw_os_error(errno),
    }
}
