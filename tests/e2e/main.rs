//! End-to-end tests: the `tcto-tune` binary driven inside throwaway network
//! namespaces, checked against the system's own tools. One test binary,
//! one module per area (ripgrep's layout).

mod apply;
mod crash_hints;
mod diagnose;
mod faults;
mod hostile;
mod notrack;
mod offload;
mod offload_nic;
mod persist;
mod persist_hints;
mod plan;
mod prometheus;
mod schema;
mod snapshots;
mod status;
