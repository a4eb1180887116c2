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
//!    the safety checks ([`check`]),
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
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod apply;
pub mod atomic_file;
pub mod change;
pub mod check;
pub mod diagnose;
pub mod duration;
pub mod error_chain;
pub mod escape;
pub mod finding;
pub mod fix;
pub mod journal;
pub mod kind;
pub mod names;
pub mod notrack;
pub mod observed;
pub mod offload;
pub mod persist;
pub mod persist_facts;
pub mod plan;
pub mod probe;
pub mod procfs;
pub mod profile;
mod render;
pub mod scope;
pub mod snapshot;
pub mod state;
pub use persist::sysctl_d;
pub mod system;
pub mod verify;

pub use change::{Change, ChangeKind, Target, Value};
pub use check::{Finding, Severity};
pub use fix::{Desired, Intent, SysctlValue};
pub use plan::{plan, plan_with, Plan, PlanOptions, Skipped, Unchanged, PLAN_SCHEMA};
pub use profile::{Profile, ProfileBuilder, ProfileError};
pub use render::TextStyle;
pub use state::{FeatureState, Features, IfScope, ListenSocket, NicId, SysctlReading, SystemState};
