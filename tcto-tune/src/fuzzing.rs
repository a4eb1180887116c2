//! Entry points for the fuzz targets in `fuzz/`: the parsers of untrusted
//! input (journal records, profiles, `/proc` files, trace lines, conntrack
//! entries, netlink replies, nftables expressions).
//!
//! **Not API.** Hidden from the documentation and free to change in any
//! release; an embedder uses the public modules instead.

pub use crate::journal::parse_record;
pub use crate::notrack::expr::{decode, RawExpr};
pub use crate::observed::{
    aggregate_trace, kfree_skb_filter, parse_ct_entry, parse_reason_names, parse_trace_line,
    CtAggregator,
};
pub use crate::profile::{load_text, ProfileOrigin};
pub use crate::system::route::{decode_diag, decode_reply};

/// The `/proc` parsers.
pub mod procfs {
    pub use crate::procfs::*;
}
