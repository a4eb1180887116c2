//! What a transaction changes, independent of which backend changes it.
//!
//! A [`Target`] names one piece of kernel or file state (a sysctl, the
//! `inet tcto_tune` table, one offload feature of one interface, one file);
//! a [`Value`] is what that piece holds. The apply transaction, the journal
//! and rollback only ever see these two types, so a new kind of change
//! (NOTRACK rules, offloads, persisted files) joins the same transaction by
//! adding a variant and a backend, not by touching the transaction.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fix::{normalize, Intent};
use crate::names::SysctlName;
use crate::notrack::{NotrackTable, TABLE_FAMILY, TABLE_NAME};

/// One piece of state a change touches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A sysctl under `/proc/sys`.
    Sysctl {
        /// Dotted key.
        key: SysctlName,
    },
    /// An nftables table (tcto-tune only ever owns `inet tcto_tune`).
    NftTable {
        /// Family, e.g. `inet`.
        family: String,
        /// Table name.
        name: String,
    },
    /// One NIC offload feature of one interface.
    Offload {
        /// Interface name when planned (a device can be renamed since).
        iface: String,
        /// User-facing feature name (`tso`, `gso`, `gro`, `lro`).
        feature: String,
        /// The device's ifindex when planned: rollback acts on this device
        /// whatever its name is now. `None` in records written before it
        /// was recorded (those are matched by name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ifindex: Option<u32>,
        /// The device's permanent MAC when it has one (see
        /// [`crate::names::NicId`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        perm_addr: Option<String>,
        /// The boot and network namespace `ifindex` belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<crate::names::IfScope>,
    },
    /// A file (persist: sysctl.d, modprobe.d, units...).
    File {
        /// Absolute path.
        path: String,
    },
}

impl Target {
    /// The target every NOTRACK change writes: the `inet tcto_tune` table.
    pub fn notrack_table() -> Target {
        Target::NftTable {
            family: TABLE_FAMILY.into(),
            name: TABLE_NAME.into(),
        }
    }

    /// The kind of change, as shown in plans and JSON.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Target::Sysctl { .. } => ChangeKind::Sysctl,
            Target::NftTable { .. } => ChangeKind::Notrack,
            Target::Offload { .. } => ChangeKind::Offload,
            Target::File { .. } => ChangeKind::File,
        }
    }

    /// A short key for display: the sysctl name, `inet tcto_tune`, `eth0 tso`, the path.
    pub fn key(&self) -> String {
        match self {
            Target::Sysctl { key } => key.to_string(),
            Target::NftTable { family, name } => format!("{family} {name}"),
            Target::Offload { iface, feature, .. } => format!("{iface} {feature}"),
            Target::File { path } => path.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.key())
    }
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A sysctl.
    Sysctl,
    /// NOTRACK rules (the `inet tcto_tune` table).
    Notrack,
    /// A NIC offload feature.
    Offload,
    /// A persisted file.
    File,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Sysctl => "sysctl",
            ChangeKind::Notrack => "notrack",
            ChangeKind::Offload => "offload",
            ChangeKind::File => "file",
        })
    }
}

/// What a target holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Value {
    /// The target does not exist (a missing file or table, a missing key).
    Absent,
    /// Text, e.g. a sysctl value as the kernel prints it.
    Text(String),
    /// On or off (an offload feature).
    Bool(bool),
    /// Raw bytes (a file's content). Serialized as a JSON string when it is
    /// UTF-8 (readable plans and journal records), else as an array of bytes;
    /// both forms deserialize.
    Bytes(#[serde(with = "bytes_serde")] Vec<u8>),
    /// The `inet tcto_tune` table. Serialized as it always was, as the
    /// document `{"type": "json", "value": {...}}` (the table's JSON form:
    /// see [`NotrackTable::to_json`]), so journal records read either way.
    #[serde(rename = "json")]
    Table(#[serde(with = "table_serde")] NotrackTable),
    /// A symbolic link holding this target path (persist: the unit's
    /// `.wants/` link, which systemd only honours as a symlink).
    Symlink(String),
}

impl Value {
    /// The value a NOTRACK table is journaled and compared as
    /// (`None`: no table, [`Value::Absent`]).
    pub fn notrack_table(table: Option<&NotrackTable>) -> Value {
        table.map_or(Value::Absent, |t| Value::Table(t.clone()))
    }

    /// Whether `self` (read back from the system) is what `wanted` asked
    /// for. Text compares with whitespace runs folded, since the kernel
    /// prints multi-value sysctls with tabs.
    pub fn matches(&self, wanted: &Value) -> bool {
        match (self, wanted) {
            (Value::Text(a), Value::Text(b)) => normalize(a) == normalize(b),
            (a, b) => a == b,
        }
    }

    /// A one-line rendering for tables and messages.
    pub fn display(&self) -> String {
        match self {
            Value::Absent => "(absent)".into(),
            Value::Text(t) => normalize(t),
            Value::Bool(true) => "on".into(),
            Value::Bool(false) => "off".into(),
            Value::Bytes(b) => format!("({} bytes)", b.len()),
            // A NOTRACK table: say how many rules it holds.
            Value::Table(t) => {
                let n: usize = t
                    .chains
                    .iter()
                    .map(|c| c.rules.len() + c.set_rules.len())
                    .sum();
                let plural = if n == 1 { "" } else { "s" };
                // Content tcto-tune did not write, named (rollback shows it).
                let foreign: Vec<&str> = t.foreign.iter().map(|f| f.what.as_str()).collect();
                if foreign.is_empty() {
                    format!("(table, {n} rule{plural})")
                } else {
                    format!(
                        "(table, {n} rule{plural}; not ours: {})",
                        foreign.join(", ")
                    )
                }
            }
            // A link's target is any bytes but NUL: one line, always (a
            // newline in it would start a fake line of a report).
            Value::Symlink(t) => format!("(link to {})", crate::escape::escape_control(t)),
        }
    }
}

/// A table as the JSON document it has always been journaled as: through
/// [`NotrackTable::to_json`], whose objects list their keys sorted (the
/// field order of the struct would be another byte string).
mod table_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::notrack::NotrackTable;

    pub fn serialize<S: Serializer>(t: &NotrackTable, s: S) -> Result<S::Ok, S::Error> {
        t.to_json().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NotrackTable, D::Error> {
        NotrackTable::deserialize(d)
    }
}

mod bytes_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(b) {
            Ok(t) => s.serialize_str(t),
            Err(_) => s.collect_seq(b),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Raw(Vec<u8>),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Text(t) => t.into_bytes(),
            Repr::Raw(b) => b,
        })
    }
}

/// One planned change. Its kind and display key are its target's
/// ([`Change::kind`], [`Change::key`]); the JSON plan document still
/// carries them, first, as `kind` and `key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "ChangeDoc<String, Target, Value>")]
pub struct Change {
    /// The current value as shown to the user (`None`: absent or unknown).
    pub current: Option<String>,
    /// The desired value as shown to the user.
    pub desired: String,
    /// Exact, at least, at most.
    pub intent: Intent,
    /// Why, from the profile.
    pub reason: Option<String>,
    /// What the transaction touches.
    pub target: Target,
    /// The value observed when planning.
    pub before: Value,
    /// The value the transaction writes.
    pub after: Value,
}

/// A change as the plan document has it: `kind` and `key` first, then the
/// fields of [`Change`]. Read back, the two are the target's anyway.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Change")]
struct ChangeDoc<K, T, V> {
    kind: ChangeKind,
    key: K,
    current: Option<String>,
    desired: String,
    intent: Intent,
    reason: Option<String>,
    target: T,
    before: V,
    after: V,
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ChangeDoc {
            kind: self.kind(),
            key: self.key(),
            current: self.current.clone(),
            desired: self.desired.clone(),
            intent: self.intent,
            reason: self.reason.clone(),
            target: &self.target,
            before: &self.before,
            after: &self.after,
        }
        .serialize(s)
    }
}

impl From<ChangeDoc<String, Target, Value>> for Change {
    fn from(d: ChangeDoc<String, Target, Value>) -> Self {
        Change {
            current: d.current,
            desired: d.desired,
            intent: d.intent,
            reason: d.reason,
            target: d.target,
            before: d.before,
            after: d.after,
        }
    }
}

impl Change {
    /// The kind of change: its target's ([`Target::kind`]).
    pub fn kind(&self) -> ChangeKind {
        self.target.kind()
    }

    /// The display key: its target's ([`Target::key`]).
    pub fn key(&self) -> String {
        self.target.key()
    }

    /// A sysctl change.
    pub fn sysctl(
        key: &SysctlName,
        current: Option<&str>,
        desired: &str,
        intent: Intent,
        reason: Option<String>,
    ) -> Self {
        Change {
            current: current.map(normalize),
            desired: normalize(desired),
            intent,
            reason,
            target: Target::Sysctl { key: key.clone() },
            before: current.map_or(Value::Absent, |c| Value::Text(normalize(c))),
            after: Value::Text(normalize(desired)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_bytes_serialize_as_text_when_utf8_and_round_trip() {
        let text = Value::Bytes(b"a = 1\n".to_vec());
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, r#"{"type":"bytes","value":"a = 1\n"}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), text);
        let raw = Value::Bytes(vec![b'a', 0xff]);
        let json = serde_json::to_string(&raw).unwrap();
        assert_eq!(json, r#"{"type":"bytes","value":[97,255]}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), raw);
        let link = Value::Symlink("/x".into());
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), link);
    }

    /// A link target (read from a persisted.d entry, an image) is shown on
    /// one line with its control characters visible; stored as it is.
    #[test]
    fn a_link_target_displays_on_one_line() {
        let link = Value::Symlink("x\n\u{1b}[31mfake y".into());
        assert_eq!(link.display(), "(link to x\\n\\x1b[31mfake y)");
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), link);
    }

    #[test]
    fn a_table_serializes_as_the_json_document_it_always_was() {
        // A NOTRACK value as journals hold it today (keys sorted, as the
        // old `Value::Json` of the table's `to_json()` wrote them).
        let old = r#"{"type":"json","value":{"chains":[{"name":"prerouting","priority":-300,"rules":[{"daddr":"10.0.2.0/24","dport":8080,"saddr":"10.0.1.0/24","sport":null}]},{"name":"output","priority":-300,"rules":[{"daddr":"10.0.1.0/24","dport":null,"saddr":"10.0.2.0/24","sport":8080}]}],"foreign":[{"remove":"nft delete rule inet tcto_tune output handle 9","what":"rule `accept` in chain output (handle 9)"}]}}"#;
        let v: Value = serde_json::from_str(old).unwrap();
        let Value::Table(t) = &v else {
            panic!("not a table: {v:?}")
        };
        assert_eq!(t.chains.len(), 2);
        assert_eq!(serde_json::to_string(&v).unwrap(), old);
        assert_eq!(
            v.display(),
            "(table, 2 rules; not ours: rule `accept` in chain output (handle 9))"
        );
        // Built, not read: the same bytes as the old document of it.
        let flows = [crate::notrack::ScopedFlow {
            from: "10.0.1.0/24".parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port: 8080,
        }];
        let built = NotrackTable::for_flows(&flows);
        let json = serde_json::to_string(&Value::notrack_table(Some(&built))).unwrap();
        let doc = serde_json::to_string(&built.to_json()).unwrap();
        assert_eq!(json, format!(r#"{{"type":"json","value":{doc}}}"#));
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap(),
            Value::Table(built)
        );
    }

    #[test]
    fn a_change_serializes_kind_and_key_first_from_its_target_and_reads_back() {
        let c = Change::sysctl(
            &"net.core.somaxconn".parse().unwrap(),
            Some("1024"),
            "4096",
            Intent::AtLeast,
            Some("why".into()),
        );
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"sysctl","key":"net.core.somaxconn","current":"1024","desired":"4096","intent":"at_least","reason":"why","target":{"kind":"sysctl","key":"net.core.somaxconn"},"before":{"type":"text","value":"1024"},"after":{"type":"text","value":"4096"}}"#
        );
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), c);
        assert_eq!(c.kind(), ChangeKind::Sysctl);
        assert_eq!(c.key(), "net.core.somaxconn");
    }
}
