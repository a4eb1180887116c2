//! tcto-tune: fix TCP connect timeouts at their root.
//!
//! A connect timeout means the SYN-ACK never came back. The usual causes
//! are kernel state: a full conntrack table, a listen backlog too small, a
//! stateful firewall dropping what it cannot track, a NIC offload bug. This
//! crate models the documented fixes as typed, checked plans:
//!
//! 1. load a [`Profile`] (built-in, TOML file, or built in code),
//! 2. read the host into a [`SystemState`] through [`system::Backends`],
//! 3. compute a [`Plan`] with the pure [`plan()`] function, which also runs
//!    the safety checks (`check`),
//! 4. apply it as a transaction, roll it back, persist it.
//!
//! ```
//! use tcto_tune::{plan, Desired, Profile, SystemState, SysctlReading};
//!
//! let profile = Profile::builder("web")
//!     .somaxconn(Desired::at_least(4096).because("room for bursts"))
//!     .build();
//! let mut state = SystemState::default();
//! state.sysctls.insert("net.core.somaxconn".into(), SysctlReading::rw("1024"));
//!
//! let p = plan(&profile, &state);
//! assert_eq!(p.changes.len(), 1);
//! assert_eq!(p.changes[0].desired, "4096");
//! assert!(p.refusals().is_empty());
//! ```
//!
//! # The public API
//!
//! The shared words (profile, state, plan, change, finding) are
//! re-exported here at the root; everything else lives in one of a few
//! modules, each with one purpose:
//!
//! - [`profile`]: load, build and print profiles;
//! - [`system`]: the backends (the traits an embedder may implement, their
//!   Linux and simulated versions) and [`read_state`]'s inputs;
//! - [`apply`]: run a plan as a transaction, undo it, read its report;
//! - [`journal`]: the transaction records and the state-dir lock;
//! - [`persist`]: plan the files that make a profile survive a reboot;
//! - [`diagnose`], [`probe`], [`verify`]: find the cause of timeouts,
//!   measure connects, compare counters before and after a fix;
//! - [`notrack`]: the `inet tcto_tune` NOTRACK table;
//! - [`atomic_file`]: the atomic writer (for a Prometheus textfile);
//! - [`words`]: how a front end names the actions hints point at.
//!
//! Errors and hints state facts (a transaction id, a finding code, a
//! path); the words of a user interface (command lines, flags) are the
//! caller's to add.
#![warn(missing_docs)]
#![deny(unsafe_code)]

// The public surface: a few modules with one purpose each, and the shared
// words re-exported at the root. Everything else is an implementation
// detail (`pub` inside a private module is crate-wide, not API).

pub mod apply;
pub mod atomic_file;
pub mod diagnose;
pub mod journal;
pub mod notrack;
pub mod persist;
pub mod probe;
pub mod profile;
pub mod system;
pub mod verify;
pub mod words;

#[doc(hidden)]
pub mod fuzzing;

mod change;
mod check;
mod duration;
mod error_chain;
mod escape;
mod finding;
mod fix;
mod kind;
mod names;
mod observed;
mod offload;
mod persist_facts;
mod plan;
mod procfs;
mod render;
mod scope;
mod snapshot;
mod state;

pub use change::{Change, ChangeKind, Target, Value};
pub use duration::{format_duration, parse_duration};
pub use escape::{escape_control, escape_lines};
pub use finding::{allowable, Finding, FindingCode, Severity, UnknownCode};
pub use fix::{Desired, Intent, SysctlValue};
pub use names::{parse_port, SysctlName};
pub use plan::{plan, plan_with, Plan, PlanOptions, Skipped, Unchanged, PLAN_SCHEMA};
pub use profile::{Profile, ProfileBuilder, ProfileError};
pub use render::TextStyle;
pub use snapshot::read_state;
pub use state::{FeatureState, Features, IfScope, ListenSocket, NicId, SysctlReading, SystemState};
