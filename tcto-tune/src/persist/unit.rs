//! `tcto-tune-restore.service`: re-applies NOTRACK rules and NIC offloads at boot.
//!
//! Sysctls need no unit: systemd-sysctl applies sysctl.d. NOTRACK rules and
//! offloads live in the kernel only, so a oneshot unit runs
//! `tcto-tune apply --persisted` early in boot. Its ordering, and why:
//!
//! - `DefaultDependencies=no`: the default `After=sysinit.target
//!   basic.target` would run it long after the network is up; like
//!   `nftables.service` it must run in early boot.
//! - `Wants=network-pre.target`, `Before=network-pre.target`: network-pre
//!   is the passive target that firewall setup must precede; anything that
//!   configures interfaces (networkd, ifupdown, NetworkManager) is ordered
//!   after it, so no connection is tracked before the NOTRACK rules exist.
//! - `After=local-fs.target`: the binary, the persisted plan and the journal
//!   in /var/lib/tcto-tune must be mounted.
//! - `After=systemd-modules-load.service`: nf_tables/nf_conntrack loaded.
//! - `After=nftables.service netfilter-persistent.service`: those start
//!   with `flush ruleset`, which would delete our table; running after them
//!   keeps it (ordering against a unit that is absent is a no-op).
//! - per interface with offload toggles, `Wants=` and `After=` its
//!   `sys-subsystem-net-devices-IFACE.device`: features can only be set on
//!   an interface that exists (and has its final, udev-given name).
//! - `Before=shutdown.target`, `Conflicts=shutdown.target`: what early-boot
//!   units without default dependencies must say to be stopped cleanly.
//! - `WantedBy=multi-user.target`: enabled by the symlink `persist` writes
//!   (never `systemctl`, so it works in an image); the ordering above still
//!   holds because the whole boot is one transaction.
//!
//! Who provides the unit ([`files`]):
//!
//! - **The Debian package** ships it as [`PACKAGED_UNIT_PATH`], running
//!   [`PACKAGED_EXEC`] ([`render_packaged`]; `scripts/package` writes it).
//!   When the binary persisting is that packaged binary and the unit is
//!   installed under the root, `persist` only enables it (the `.wants/`
//!   link points at the packaged unit), removes an `/etc` copy an earlier
//!   build-tree persist left (it would shadow the package's), and puts the
//!   per-interface ordering, the only per-profile part, in the drop-in
//!   [`DROPIN_PATH`]. Upgrading the package upgrades the unit.
//! - **Otherwise** (`cargo install`, a build tree, an image without the
//!   package) `persist` writes its own unit in `/etc/systemd/system`
//!   running the binary's own path, as before, and warns
//!   ([`codes::UNIT_OWN_PATH`]) when that is not `/usr/bin/tcto-tune`: a
//!   build tree gets cleaned, and the unit then fails at every boot.

use std::fmt::Write as _;

use super::sysctl_d::header;
use super::{PERSISTED_PATH, UNIT_PATH, WANTS_PATH};
use crate::change::Value;
use crate::check::{Finding, Severity};

/// Unit name.
pub const UNIT_NAME: &str = "tcto-tune-restore.service";
/// The binary the package installs and its unit runs.
pub const PACKAGED_EXEC: &str = "/usr/bin/tcto-tune";
pub use crate::persist_facts::{
    DROPIN_PATH, PACKAGED_EXEC_START, PACKAGED_UNIT_PATH, PACKAGED_UNIT_USR_PATH,
};

/// Finding codes of the unit.
pub mod codes {
    /// The unit runs a binary outside the package's `/usr/bin`.
    pub const UNIT_OWN_PATH: crate::finding::FindingCode =
        crate::finding::FindingCode::PersistUnitOwnPath;
}

/// `systemd-escape --path`: the device unit of a network interface.
pub fn device_unit(iface: &str) -> String {
    let mut out = String::from("sys-subsystem-net-devices-");
    for (i, b) in iface.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && i > 0);
        if b == b'/' {
            out.push('-');
        } else if plain {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push_str(".device");
    out
}

/// Quote an absolute path for `ExecStart=`: `%` is a specifier (doubled),
/// and the path is double-quoted so spaces survive. The caller validated
/// it (absolute, no quote, backslash or control character).
fn exec_quoted(exec: &str) -> String {
    format!("\"{}\"", exec.replace('%', "%%"))
}

/// The unit text `persist` writes when the package's unit is not there.
pub fn render(profile: &str, exec: &str, ifaces: &[String]) -> String {
    body(header("#", profile), &exec_quoted(exec), ifaces)
}

/// The unit the Debian package ships as [`PACKAGED_UNIT_PATH`]: the same
/// ordering, no interfaces (`persist` adds those in [`DROPIN_PATH`]).
pub fn render_packaged() -> String {
    let head = "# Installed by the tcto-tune Debian package; `tcto-tune persist` enables it.\n\
                # Local changes: `systemctl edit tcto-tune-restore.service`.\n"
        .to_owned();
    // Unquoted, so that the line is exactly PACKAGED_EXEC_START.
    body(head, PACKAGED_EXEC, &[])
}

/// The drop-in that makes the packaged unit wait for the interfaces whose
/// offloads it sets.
pub fn render_dropin(profile: &str, ifaces: &[String]) -> String {
    let mut out = header("#", profile);
    out.push_str("#\n# The interfaces whose offloads tcto-tune-restore.service sets.\n\n[Unit]\n");
    for i in ifaces {
        let dev = device_unit(i);
        let _ = writeln!(out, "Wants={dev}\nAfter={dev}");
    }
    out
}

fn body(mut out: String, exec: &str, ifaces: &[String]) -> String {
    out.push_str(&format!(
        "#\n# Re-applies the NOTRACK rules and NIC offloads saved in {PERSISTED_PATH}\n\
         # at boot. Sysctls are not here: systemd-sysctl applies /etc/sysctl.d.\n"
    ));
    out.push_str(
        "\n[Unit]\n\
         Description=Re-apply tcto-tune NOTRACK rules and NIC offloads\n\
         DefaultDependencies=no\n\
         Wants=network-pre.target\n\
         Before=network-pre.target shutdown.target\n\
         After=local-fs.target systemd-modules-load.service nftables.service netfilter-persistent.service\n\
         Conflicts=shutdown.target\n",
    );
    let _ = writeln!(out, "ConditionPathExists={PERSISTED_PATH}");
    for i in ifaces {
        let dev = device_unit(i);
        let _ = writeln!(out, "Wants={dev}\nAfter={dev}");
    }
    let _ = write!(
        out,
        "\n[Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart={} apply --persisted\n\
         \n[Install]\n\
         WantedBy=multi-user.target\n",
        exec
    );
    out
}

/// One unit file `persist` wants, for [`super::plan_persist`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// In-system path.
    pub path: &'static str,
    /// Wanted content (`Absent`: removed if there).
    pub after: Value,
    /// Why, for the plan.
    pub reason: String,
}

/// Whether the unit to enable is the package's: it is installed under the
/// root (`packaged_unit`, read by the backend) and the binary the unit
/// would run is the package's own.
pub fn use_packaged(exec: &str, packaged_unit: bool) -> bool {
    packaged_unit && exec == PACKAGED_EXEC
}

/// The unit files, in write order (the unit and its drop-in before the
/// link that enables it).
pub fn files(profile: &str, exec: &str, ifaces: &[String], packaged_unit: bool) -> Vec<UnitFile> {
    let bytes = |s: String| Value::Bytes(s.into_bytes());
    if use_packaged(exec, packaged_unit) {
        vec![
            UnitFile {
                path: UNIT_PATH,
                after: Value::Absent,
                reason: format!(
                    "the package's {PACKAGED_UNIT_PATH} is used; a copy in /etc would shadow it"
                ),
            },
            UnitFile {
                path: DROPIN_PATH,
                after: if ifaces.is_empty() {
                    Value::Absent
                } else {
                    bytes(render_dropin(profile, ifaces))
                },
                reason: "makes the packaged unit wait for the interfaces whose offloads it sets"
                    .into(),
            },
            UnitFile {
                path: WANTS_PATH,
                after: Value::Symlink(PACKAGED_UNIT_PATH.into()),
                reason: "enables the package's unit (what `systemctl enable` would link)".into(),
            },
        ]
    } else {
        vec![
            UnitFile {
                path: UNIT_PATH,
                after: bytes(render(profile, exec, ifaces)),
                reason: "runs `tcto-tune apply --persisted` before network-pre.target".into(),
            },
            UnitFile {
                path: DROPIN_PATH,
                after: Value::Absent,
                reason: "the interfaces are in the unit itself".into(),
            },
            UnitFile {
                path: WANTS_PATH,
                after: Value::Symlink(UNIT_PATH.into()),
                reason: "enables the unit (what `systemctl enable` would link)".into(),
            },
        ]
    }
}

/// The warning for a unit that runs a binary outside the package's
/// `/usr/bin` (a build tree, `~/.cargo/bin`): it fails at every boot once
/// that file is gone.
pub fn own_path_finding(exec: &str) -> Option<Finding> {
    (exec != PACKAGED_EXEC).then(|| {
        Finding::new(
            codes::UNIT_OWN_PATH,
            Severity::Warn,
            format!("the boot unit runs `{exec}` (this binary's own path unless `--exec` named it), not the packaged {PACKAGED_EXEC}: it fails at every boot once that file moves or its build tree is cleaned"),
        )
        .hint("install the Debian package (docs/packaging.md) and persist again with its /usr/bin/tcto-tune, or pass `--exec` naming a binary that stays")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_units_are_escaped_like_systemd_escape() {
        assert_eq!(device_unit("eth0"), "sys-subsystem-net-devices-eth0.device");
        assert_eq!(
            device_unit("veth-a.10"),
            "sys-subsystem-net-devices-veth\\x2da.10.device"
        );
        assert_eq!(device_unit(".x"), "sys-subsystem-net-devices-\\x2ex.device");
    }

    #[test]
    fn percent_is_doubled_in_exec() {
        assert!(
            render("p", "/opt/100%/tcto-tune", &[]).contains("ExecStart=\"/opt/100%%/tcto-tune\"")
        );
    }

    #[test]
    fn the_packaged_unit_runs_usr_bin_unquoted() {
        let u = render_packaged();
        let exec: Vec<&str> = u.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        assert_eq!(exec, [PACKAGED_EXEC_START]);
        assert!(
            u.contains("\nBefore=network-pre.target shutdown.target\n"),
            "{u}"
        );
        assert!(u.contains("\nWantedBy=multi-user.target\n"), "{u}");
        assert!(!u.contains("sys-subsystem-net-devices"), "{u}");
    }

    fn paths(files: &[UnitFile]) -> Vec<(&str, &Value)> {
        files.iter().map(|f| (f.path, &f.after)).collect()
    }

    #[test]
    fn the_packaged_binary_only_links_the_packaged_unit() {
        let ifaces = vec!["veth-a".to_owned()];
        let f = files("p", PACKAGED_EXEC, &ifaces, true);
        let p = paths(&f);
        // No unit of its own in /etc (one left there is removed) ...
        assert_eq!(p[0], (UNIT_PATH, &Value::Absent));
        // ... the interfaces in a drop-in, the link at the package's unit.
        assert_eq!(p[1].0, DROPIN_PATH);
        let Value::Bytes(b) = p[1].1 else {
            panic!("{:?}", p[1])
        };
        let dropin = String::from_utf8_lossy(b);
        assert!(dropin.contains("[Unit]\nWants=sys-subsystem-net-devices-veth\\x2da.device\nAfter=sys-subsystem-net-devices-veth\\x2da.device\n"), "{dropin}");
        assert_eq!(
            p[2],
            (WANTS_PATH, &Value::Symlink(PACKAGED_UNIT_PATH.into()))
        );
        // Without interfaces, no drop-in.
        let f = files("p", PACKAGED_EXEC, &[], true);
        assert_eq!(paths(&f)[1], (DROPIN_PATH, &Value::Absent));
        assert!(own_path_finding(PACKAGED_EXEC).is_none());
    }

    #[test]
    fn any_other_binary_writes_its_own_unit_and_is_warned() {
        for (exec, installed) in [
            ("/work/target/release/tcto-tune", true),
            ("/work/target/release/tcto-tune", false),
            // The package's path, but its unit is not in this root (an image).
            (PACKAGED_EXEC, false),
        ] {
            let f = files("p", exec, &[], installed);
            let p = paths(&f);
            let Value::Bytes(b) = p[0].1 else {
                panic!("{p:?}")
            };
            assert!(String::from_utf8_lossy(b)
                .contains(&format!("ExecStart=\"{exec}\" apply --persisted\n")));
            assert_eq!(p[1], (DROPIN_PATH, &Value::Absent));
            assert_eq!(p[2], (WANTS_PATH, &Value::Symlink(UNIT_PATH.into())));
        }
        let w = own_path_finding("/work/target/release/tcto-tune").unwrap();
        assert_eq!(w.code, codes::UNIT_OWN_PATH);
        assert_eq!(w.severity, Severity::Warn);
        assert!(
            w.message.contains("/work/target/release/tcto-tune"),
            "{}",
            w.message
        );
    }
}
