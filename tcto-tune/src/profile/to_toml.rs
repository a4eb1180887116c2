//! A resolved [`Profile`] written back as profile TOML.
//!
//! `tcto-tune profiles show NAME --resolved` prints what a profile means
//! after `extends` is merged and every `${variable}` is filled: the question
//! an SRE asks before applying someone else's profile ("what exactly does
//! this set here?"). The output is ordinary profile syntax, so it loads
//! again as a profile and gives the same [`Profile`] (a test checks that
//! round trip for every built-in).

use toml::{Table, Value};

use super::Profile;
use crate::fix::{Desired, Intent, Listener, NotrackFlow, OffloadFix, RawSysctl, SysctlValue};

/// The profile as TOML, `extends` merged and variables filled.
pub fn to_toml(profile: &Profile) -> String {
    let mut doc = Table::new();
    doc.insert("name".into(), profile.name.clone().into());
    if !profile.description.is_empty() {
        doc.insert("description".into(), profile.description.clone().into());
    }
    if !profile.allow.is_empty() {
        let codes = profile.allow.iter().cloned().map(Value::from).collect();
        doc.insert("allow".into(), Value::Array(codes));
    }
    typed_sections(&mut doc, profile);
    if !profile.sysctl.is_empty() {
        doc.insert("sysctl".into(), Value::Table(sysctl_table(&profile.sysctl)));
    }
    let listeners = profile.listeners.iter().map(listener_table);
    array_of_tables(&mut doc, "listener", listeners);
    let flows = profile.notrack.iter().map(notrack_table);
    array_of_tables(&mut doc, "notrack", flows);
    let offloads = profile.offloads.iter().map(offload_table);
    array_of_tables(&mut doc, "offload", offloads);
    write(&doc)
}

/// `[conntrack]`, `[backlog]` and `[client]`, each only if it sets a key.
fn typed_sections(doc: &mut Table, profile: &Profile) {
    let c = &profile.conntrack;
    section(
        doc,
        "conntrack",
        &[
            ("max", &c.max),
            ("buckets", &c.buckets),
            ("tcp_timeout_established", &c.tcp_timeout_established),
            ("tcp_timeout_time_wait", &c.tcp_timeout_time_wait),
            ("tcp_timeout_close_wait", &c.tcp_timeout_close_wait),
        ],
    );
    let b = &profile.backlog;
    section(
        doc,
        "backlog",
        &[
            ("somaxconn", &b.somaxconn),
            ("tcp_max_syn_backlog", &b.tcp_max_syn_backlog),
            ("netdev_max_backlog", &b.netdev_max_backlog),
        ],
    );
    let cl = &profile.client;
    section(
        doc,
        "client",
        &[
            ("tcp_tw_reuse", &cl.tcp_tw_reuse),
            ("tcp_syn_retries", &cl.tcp_syn_retries),
        ],
    );
}

/// `[sysctl]`: each raw key with its setting.
fn sysctl_table(sysctl: &[RawSysctl]) -> Table {
    let mut t = Table::new();
    for r in sysctl {
        let value = match &r.desired.value {
            SysctlValue::Int(n) => Value::Integer(*n),
            SysctlValue::Text(s) => Value::String(s.clone()),
        };
        t.insert(
            r.key.to_string(),
            setting(value, r.desired.intent, &r.desired.reason),
        );
    }
    t
}

fn listener_table(l: &Listener) -> Table {
    let mut t = Table::new();
    t.insert("port".into(), i64::from(l.port).into());
    if let Some(b) = l.backlog {
        t.insert("backlog".into(), i64::from(b).into());
    }
    t
}

fn notrack_table(n: &NotrackFlow) -> Table {
    let mut t = Table::new();
    if let Some(from) = n.from {
        t.insert("from".into(), from.to_string().into());
    }
    if let Some(to) = n.to {
        t.insert("to".into(), to.to_string().into());
    }
    if let Some(port) = n.port {
        t.insert("port".into(), i64::from(port).into());
    }
    if let Some(reason) = &n.reason {
        t.insert("reason".into(), reason.clone().into());
    }
    t
}

fn offload_table(o: &OffloadFix) -> Table {
    let mut t = Table::new();
    t.insert("iface".into(), o.iface.as_str().to_owned().into());
    for (name, on) in o.toggles() {
        t.insert(name.into(), on.into());
    }
    if let Some(reason) = &o.reason {
        t.insert("reason".into(), reason.clone().into());
    }
    t
}

/// Profile-file layout: top-level keys first (`name` leading), then one
/// `[section]` or `[[array]]` block each, every value inline, as the
/// built-in profiles are written.
fn write(doc: &Table) -> String {
    let mut out = String::new();
    let first = ["name", "description", "allow"];
    for key in first {
        if let Some(v) = doc.get(key) {
            out.push_str(&format!("{key} = {v}\n"));
        }
    }
    for (name, value) in doc.iter().filter(|(k, _)| !first.contains(&k.as_str())) {
        match value {
            Value::Table(t) => {
                out.push_str(&format!("\n[{name}]\n"));
                lines(&mut out, t);
            }
            Value::Array(items) => {
                for item in items {
                    out.push_str(&format!("\n[[{name}]]\n"));
                    if let Value::Table(t) = item {
                        lines(&mut out, t);
                    }
                }
            }
            other => out.push_str(&format!("{name} = {other}\n")),
        }
    }
    out
}

fn lines(out: &mut String, t: &Table) {
    for (k, v) in t {
        // A sysctl name has dots: quote it so it stays one key.
        let key = if k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            k.clone()
        } else {
            Value::String(k.clone()).to_string()
        };
        out.push_str(&format!("{key} = {v}\n"));
    }
}

/// `[name]` with the settings that are present; nothing when none is.
fn section(doc: &mut Table, name: &str, settings: &[(&str, &Option<Desired<i64>>)]) {
    let mut t = Table::new();
    for (key, d) in settings {
        if let Some(d) = d {
            t.insert(
                (*key).into(),
                setting(Value::Integer(d.value), d.intent, &d.reason),
            );
        }
    }
    if !t.is_empty() {
        doc.insert(name.into(), Value::Table(t));
    }
}

/// One setting as the profile syntax writes it: `{ exact = N, reason = ".." }`.
fn setting(value: Value, intent: Intent, reason: &Option<String>) -> Value {
    let mut t = Table::new();
    let key = match intent {
        Intent::Exact => "exact",
        Intent::AtLeast => "at_least",
        Intent::AtMost => "at_most",
    };
    t.insert(key.into(), value);
    if let Some(r) = reason {
        t.insert("reason".into(), r.clone().into());
    }
    Value::Table(t)
}

fn array_of_tables(doc: &mut Table, name: &str, items: impl Iterator<Item = Table>) {
    let items: Vec<Value> = items.map(Value::Table).collect();
    if !items.is_empty() {
        doc.insert(name.into(), Value::Array(items));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::to_toml;
    use crate::profile::{builtin_names, load, load_text, ProfileOrigin};

    /// Values that fill every built-in's variables.
    fn vars() -> BTreeMap<String, String> {
        [
            ("frontend", "10.0.1.0/24"),
            ("backend", "10.0.2.0/24"),
            ("port", "8080"),
            ("iface", "eth0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn every_builtin_round_trips_through_its_resolved_toml() {
        for name in builtin_names() {
            let mut vars = vars();
            // Pass only the variables this built-in declares.
            let declared = crate::profile::builtin(name).unwrap();
            vars.retain(|k, _| declared.contains(&format!("{k} =")));
            let profile = load(name, &vars).unwrap_or_else(|e| panic!("{name}: {e}"));
            let text = to_toml(&profile);
            let again = load_text(
                ProfileOrigin::File(format!("{name}.resolved.toml").into()),
                &text,
                &BTreeMap::new(),
            )
            .unwrap_or_else(|e| panic!("{name}: resolved TOML does not load: {e}\n{text}"));
            assert_eq!(again, profile, "{name}:\n{text}");
            assert!(!text.contains("${"), "{name}: a variable is left:\n{text}");
        }
    }

    #[test]
    fn intents_and_reasons_are_kept() {
        let text =
            "name = \"x\"\n[backlog]\nsomaxconn = { at_least = 4096, reason = \"bursts\" }\n\
                    [sysctl]\n\"net.ipv4.tcp_fin_timeout\" = { at_most = 30 }\n";
        let p = load_text(ProfileOrigin::File("x.toml".into()), text, &BTreeMap::new()).unwrap();
        let out = to_toml(&p);
        assert!(out.contains("at_least = 4096"), "{out}");
        assert!(out.contains("reason = \"bursts\""), "{out}");
        assert!(out.contains("at_most = 30"), "{out}");
    }
}
