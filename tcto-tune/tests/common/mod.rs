//! Shared by the property tests that run the transaction engine against
//! the simulated system: a hand-made plan, a refused write, quiet
//! simulated crashes and a scratch dir.

use tcto_tune::system::SystemError;
use tcto_tune::Intent;
use tcto_tune::Plan;
use tcto_tune::{Change, Target, Value};

/// The panic message a simulated crash (the process dying mid-apply) uses.
pub const SIMULATED_CRASH: &str = "simulated crash";

/// Die of a simulated crash: an unwind that skips the panic hook, so
/// thousands of them print nothing (proptest installs its own hook).
pub fn crash() -> ! {
    std::panic::resume_unwind(Box::new(SIMULATED_CRASH))
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

/// Where the property tests keep their journals: tmpfs (`/dev/shm`) when
/// there is one. They test the transaction's logic over thousands of
/// journals; on a disk each fsync costs milliseconds and the run minutes.
pub fn scratch_dir() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}
