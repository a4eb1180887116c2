//! One line for an error and its causes, the form reports, journal
//! records and the CLI print. A leaf: the backends and the journal use it
//! without importing the transaction.

use std::fmt::Write as _;

/// An error and its causes on one line (`cannot write ...: Permission
/// denied`), the form reports and the CLI print.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let _ = write!(s, ": {c}");
        src = c.source();
    }
    s
}
