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

use std::fmt::Write as _;

use super::sysctl_d::header;
use super::PERSISTED_PATH;

/// Unit name.
pub const UNIT_NAME: &str = "tcto-tune-restore.service";

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

/// The unit text.
pub fn render(profile: &str, exec: &str, ifaces: &[String]) -> String {
    let mut out = header("#", profile);
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
        exec_quoted(exec)
    );
    out
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
}
