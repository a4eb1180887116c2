//! The boot unit that re-applies NOTRACK and offloads (`tcto-tune apply
//! --persisted`), rendered by [`super::super::unit`]: its own unit, or with
//! the package's unit installed the drop-in and the link to it; wanted only
//! when some entry restores something.

use super::super::boot_kind::{bytes, BootInput, BootKind, Wanted};
use super::super::{unit, WANTS_PATH};
use crate::change::Value;
use crate::check::Finding;

/// The restore unit, its drop-in and the link that enables it.
pub struct BootUnit;

impl BootKind for BootUnit {
    /// The unit files; the header names every persisted profile.
    fn files(&self, input: &BootInput) -> Vec<Wanted> {
        let restore = input.restores();
        let when = |v: Value| if restore { v } else { Value::Absent };
        let mut ifaces: Vec<String> = input
            .list
            .iter()
            .flat_map(|p| p.offload.iter().map(|o| o.iface.clone()))
            .collect();
        ifaces.sort();
        ifaces.dedup();
        let head = input.header();
        let rehead = |v: Value| match v {
            Value::Bytes(b) => {
                let text = String::from_utf8_lossy(&b);
                let body: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
                bytes(format!("{head}{body}"))
            }
            other => other,
        };
        unit::files(
            "persisted",
            &input.opts.exec,
            &ifaces,
            input.facts.packaged_unit,
        )
        .into_iter()
        .map(|f| {
            let link = f.path == WANTS_PATH;
            let after = if link || f.after == Value::Absent {
                f.after
            } else {
                rehead(f.after)
            };
            let w = Wanted::new(f.path, when(after), f.reason);
            if link {
                w.link()
            } else {
                w
            }
        })
        .collect()
    }

    /// A unit of our own that runs a binary outside the package's path.
    fn findings(&self, input: &BootInput) -> Vec<Finding> {
        if input.restores() && !unit::use_packaged(&input.opts.exec, input.facts.packaged_unit) {
            unit::own_path_finding(&input.opts.exec)
                .into_iter()
                .collect()
        } else {
            vec![]
        }
    }
}
