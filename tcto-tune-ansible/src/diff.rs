//! Ansible's `diff` for what a transaction changes, one entry per target.
//!
//! Ansible prints each `{before_header, after_header, before, after}` as a
//! unified diff under `--diff`. Each target is shown in the form its own
//! tool shows it, so the diff reads like the system does: a sysctl as
//! `key = value` (sysctl.conf syntax), the NOTRACK table as `nft list
//! table` prints it, a NIC feature as `ethtool -k` names it, a persisted
//! file as its content. An absent target is an empty side.

use serde::Serialize;
use tcto_tune::apply::TxReport;
use tcto_tune::journal::StepStatus;
use tcto_tune::{Target, Value};

/// One entry of Ansible's `diff` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    /// Shown after `--- before: `.
    pub before_header: String,
    /// Shown after `+++ after: `.
    pub after_header: String,
    /// The target before, as text.
    pub before: String,
    /// The target after, as text.
    pub after: String,
}

/// A target's value as the text its own tool would show.
pub fn render(target: &Target, v: &Value) -> String {
    if *v == Value::Absent {
        return String::new();
    }
    match (target, v) {
        (Target::Sysctl { key }, v) => format!("{key} = {}\n", v.display()),
        (Target::Offload { iface, feature, .. }, v) => {
            format!("{iface} {feature}: {}\n", v.display())
        }
        (Target::NftTable { .. }, Value::Table(t)) => t.to_nft(),
        (_, Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        (_, Value::Symlink(to)) => format!("symbolic link to {to}\n"),
        (_, v) => format!("{}\n", v.display()),
    }
}

/// The entry for one target going from `before` to `after`.
pub fn entry(target: &Target, before: &Value, after: &Value) -> DiffEntry {
    let header = match target {
        Target::File { path } => path.clone(),
        other => other.to_string(),
    };
    DiffEntry {
        before_header: header.clone(),
        after_header: header,
        before: render(target, before),
        after: render(target, after),
    }
}

/// The entries for the steps a transaction made (or, in check mode,
/// would make).
pub fn of_report(report: &TxReport) -> Vec<DiffEntry> {
    report
        .steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Applied | StepStatus::WouldApply))
        .map(|s| entry(&s.target, &s.before, &s.after))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_like_its_own_tool() {
        let s = Target::Sysctl {
            key: "net.core.somaxconn".parse().unwrap(),
        };
        let e = entry(&s, &Value::Text("1024".into()), &Value::Text("4096".into()));
        assert_eq!(e.before_header, "sysctl net.core.somaxconn");
        assert_eq!(e.before, "net.core.somaxconn = 1024\n");
        assert_eq!(e.after, "net.core.somaxconn = 4096\n");

        let f = Target::File {
            path: "/etc/sysctl.d/99-tcto-tune.conf".into(),
        };
        let e = entry(&f, &Value::Absent, &Value::Bytes(b"a = 1\n".to_vec()));
        assert_eq!(e.before_header, "/etc/sysctl.d/99-tcto-tune.conf");
        assert_eq!((e.before.as_str(), e.after.as_str()), ("", "a = 1\n"));

        let o = Target::Offload {
            iface: "eth0".into(),
            feature: "tso".into(),
            ifindex: None,
            perm_addr: None,
            scope: None,
        };
        assert_eq!(render(&o, &Value::Bool(false)), "eth0 tso: off\n");
    }

    #[test]
    fn notrack_table_renders_as_nft_text() {
        let flows = [tcto_tune::notrack::ScopedFlow {
            from: "10.0.1.0/24".parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port: 8080,
        }];
        let table = tcto_tune::notrack::NotrackTable::for_flows(&flows);
        let v = Value::notrack_table(Some(&table));
        let text = render(&Target::notrack_table(), &v);
        assert!(text.starts_with("table inet tcto_tune {"), "{text}");
        assert!(text.contains("notrack"), "{text}");
        assert_eq!(render(&Target::notrack_table(), &Value::Absent), "");
    }
}
