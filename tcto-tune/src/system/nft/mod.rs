//! nftables over netlink (libnftnl + libmnl): the only code that talks to
//! nf_tables.
//!
//! Three exchanges, each with its own error step:
//! - write: the whole `inet tcto_tune` table in one batch (add, delete, add:
//!   atomic, and idempotent since the delete empties whatever was there),
//!   or add + delete to remove it; every message is ACKed and checked;
//!   then the table is read back and compared with what was meant;
//! - read our table: GETTABLE, then chain and rule dumps of that table,
//!   decoded into a [`NotrackTable`] (refusing content we did not write);
//! - read the others' filter chains: chain and rule dumps of every family,
//!   decoded into [`FilterChain`]s for the stateful-filter check.
//!
//! No `nft` binary is involved. The expressions themselves are built and
//! decoded as plain data in [`crate::notrack::expr`]; here they only cross
//! into and out of libnftnl objects.
//!
//! The code is split by what each part talks to, so no file mixes the
//! netlink plumbing with the meaning of our table:
//! - [`sock`]: the netlink socket, one request/reply exchange, and the
//!   batch send with its ACK checks (the only raw netlink I/O);
//! - [`dump`]: chain and rule dumps, decoded into plain `RawChain`s and
//!   `RawRule`s;
//! - [`read`]: [`Nft::read_table`] and [`Nft::read_filter_chains`], from
//!   those dumps to a [`NotrackTable`] and [`FilterChain`]s;
//! - [`sets`]: the `flows4`/`flows6` interval sets, as batch messages and
//!   read back into [`FlowSet`](crate::notrack::table::FlowSet)s;
//! - [`write`](mod@write): our expressions as libnftnl objects and the
//!   batch that writes the table ([`Nft::write_table`],
//!   [`Nft::send_table`]).
// FFI: libnftnl and libmnl objects and buffers, and recvmmsg for the
// ACKs of a batch (docs/architecture.md).
#![allow(unsafe_code)]

mod dump;
pub mod lazy;
mod read;
mod scan;
mod sets;
mod sock;
#[cfg(test)]
mod tests;
mod write;

use std::ffi::CStr;

use nftnl::nftnl_sys::libc;

use super::{Firewall, SystemError};
use crate::notrack::{FilterChain, NotrackTable};

/// [`TABLE_NAME`](crate::notrack::TABLE_NAME) as libnftnl takes it.
const TABLE_CNAME: &CStr = c"tcto_tune";

/// The error the kernel gives a batch writing `table`, when its rules
/// alone decide it: an element of a `flows4`/`flows6` interval set whose
/// start or end falls inside an element added before it (EEXIST, named as
/// the kernel's ACK would name the message, plus the two elements). The
/// simulated host refuses with it, so a dry run fails where apply would.
pub fn kernel_refusal(table: &NotrackTable) -> Option<SystemError> {
    table.sets.iter().find_map(|set| {
        let (new, old) = crate::notrack::overlap::first_refused(&set.elements)?;
        Some(SystemError::Nftables {
            step: format!(
                "add elements to set {} (`{}` overlaps `{}`)",
                set.name,
                new.to_nft(),
                old.to_nft()
            ),
            source: std::io::Error::from_raw_os_error(libc::EEXIST),
        })
    })
}

/// nf_tables through netlink, in this process's network namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nft;

impl Firewall for Nft {
    fn notrack_table(&self) -> Result<Option<NotrackTable>, SystemError> {
        self.read_table()
    }

    fn filter_chains(&self) -> Result<Vec<FilterChain>, SystemError> {
        self.read_filter_chains()
    }

    fn ruleset(&self) -> Result<Vec<crate::observed::FwChain>, SystemError> {
        self.read_ruleset()
    }

    fn legacy_tables(&self) -> Vec<String> {
        scan::legacy_tables()
    }

    fn write_table(&mut self, table: Option<&NotrackTable>) -> Result<(), SystemError> {
        self.send_table(table)
    }
}
