//! What the system backends read for `diagnose`, beyond [`SystemState`]:
//! the firewall ruleset ([`FwChain`]), conntrack entries and their
//! aggregation ([`ConntrackGroups`]), the kernel's drop reasons and the
//! trace events of the drop tracer. Plain data and pure parsers, so the
//! backends (`crate::system`) and `crate::diagnose` both depend on this
//! module and not on each other.
//!
//! [`SystemState`]: crate::state::SystemState

mod ctgroups;
mod firewall;
mod trace;

pub use ctgroups::{
    parse_ct_entry, source_subnet, ConntrackGroups, CtAggregator, CtEntry, CtGroup, IDLE_S,
};
pub use firewall::{FwChain, FwLimit, FwRule};
pub use trace::{
    aggregate as aggregate_trace, kfree_skb_filter, parse_reason_names, parse_trace_line,
    TraceDrop, TraceEvent, TraceReport,
};
