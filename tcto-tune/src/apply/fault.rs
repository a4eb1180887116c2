//! Test-only fault points (feature `fault-injection`, enabled only by the
//! end-to-end test crate; a release build compiles them to nothing).
//!
//! - `TCTO_TUNE_FAULT_CRASH_AFTER=N`: the process is SIGKILLed right after
//!   the Nth change of an `apply` reached the system.
//! - `TCTO_TUNE_FAULT_CRASH_UNDO_AFTER=N`: the same after the Nth value a
//!   `rollback` restored.
//! - `TCTO_TUNE_FAULT_REFUSE_AT=N`: the Nth write of an `apply` fails before
//!   it reaches the system, as a kernel refusal would.
//! - `TCTO_TUNE_FAULT_READBACK_AT=N`: the Nth write lands but reads back
//!   different, as a silent kernel clamp would.

#[cfg(feature = "fault-injection")]
fn fault_env(var: &str) -> Option<usize> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

#[cfg(feature = "fault-injection")]
fn die_if(var: &str, done: usize) {
    if fault_env(var) == Some(done) {
        // SIGKILL to ourselves cannot be caught, so this is exactly the
        // crash the journal must survive.
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// After the `done`th change of an apply.
#[cfg(feature = "fault-injection")]
pub(super) fn crash_point(done: usize) {
    die_if("TCTO_TUNE_FAULT_CRASH_AFTER", done);
}

/// After the `done`th value a rollback restored.
#[cfg(feature = "fault-injection")]
pub(super) fn undo_crash_point(done: usize) {
    die_if("TCTO_TUNE_FAULT_CRASH_UNDO_AFTER", done);
}

/// A refusal for the `n`th write, if one is injected there.
#[cfg(feature = "fault-injection")]
pub(super) fn injected_refusal(n: usize) -> Option<String> {
    (fault_env("TCTO_TUNE_FAULT_REFUSE_AT") == Some(n))
        .then(|| "injected fault: write refused".to_owned())
}

/// A read-back mismatch for the `n`th write, if one is injected there.
#[cfg(feature = "fault-injection")]
pub(super) fn injected_readback(n: usize) -> Option<String> {
    (fault_env("TCTO_TUNE_FAULT_READBACK_AT") == Some(n))
        .then(|| "injected fault: read-back differs".to_owned())
}

#[cfg(not(feature = "fault-injection"))]
pub(super) fn crash_point(_done: usize) {}

#[cfg(not(feature = "fault-injection"))]
pub(super) fn undo_crash_point(_done: usize) {}

#[cfg(not(feature = "fault-injection"))]
pub(super) fn injected_refusal(_n: usize) -> Option<String> {
    None
}

#[cfg(not(feature = "fault-injection"))]
pub(super) fn injected_readback(_n: usize) -> Option<String> {
    None
}
