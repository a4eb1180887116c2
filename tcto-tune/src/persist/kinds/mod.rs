//! The boot-time kinds, one module each, and [`BOOT_KINDS`], the registry
//! the persist planner loops over (see [`super::boot_kind`]).

mod boot_unit;
mod conntrack_module;
mod entries;
mod sysctl_d;

#[cfg(test)]
mod tests;

use super::boot_kind::BootKind;

/// Every kind of boot-time file, in write order: the sysctls first, the
/// data (module files, entries) before the unit, and the unit before the
/// link that enables it, so an interrupted persist never leaves an enabled
/// unit without its data. Findings are listed in this order too.
pub const BOOT_KINDS: &[&dyn BootKind] = &[
    &sysctl_d::SysctlD,
    &conntrack_module::ConntrackModule,
    &entries::Entries,
    &boot_unit::BootUnit,
];
