//! The module's options, read from the JSON object Ansible passes.
//!
//! Ansible's binary-module protocol hands the module a JSON file of every
//! option the task gave plus its own `_ansible_*` keys. Python modules get
//! type checking from `AnsibleModule`; a binary module must do it itself.
//! Every option is checked here, before anything is read from the host, so
//! a typo fails the task with a message naming the option and nothing is
//! half done. `_ansible_*` keys the module does not use are ignored (newer
//! Ansible releases add more); any other unknown key is an error, worded as
//! Ansible words it for its own modules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};
use tcto_tune::parse_port;

/// The options the module accepts, in the order `ansible-doc` lists them.
pub const OPTIONS: &[&str] = &[
    "allow",
    "app_backlog",
    "exec",
    "ports",
    "profile",
    "root",
    "set",
    "state",
    "state_dir",
    "to",
];

/// The default `state_dir`, as for the CLI.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tcto-tune";

/// The default `exec` (the `tcto-tune` binary the persisted boot unit runs).
pub const DEFAULT_EXEC: &str = "/usr/local/bin/tcto-tune";

/// What the task asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The profile in effect now (`apply`).
    Applied,
    /// The profile written to survive a reboot (`persist`).
    Persisted,
    /// This module's newest transaction undone, or every one from `to` on.
    RolledBack {
        /// `to: ID`.
        to: Option<String>,
    },
}

/// Validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `profile` (required unless rolling back).
    pub profile: Option<String>,
    /// `set`.
    pub set: BTreeMap<String, String>,
    /// `ports`.
    pub ports: Vec<u16>,
    /// `app_backlog`.
    pub app_backlog: BTreeMap<u16, u32>,
    /// `allow`.
    pub allow: Vec<String>,
    /// `state` (with `to`).
    pub state: State,
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// `root` (persisted only).
    pub root: Option<PathBuf>,
    /// `exec` (persisted only).
    pub exec: String,
    /// `_ansible_check_mode`.
    pub check_mode: bool,
    /// `_ansible_diff`.
    pub diff: bool,
}

/// A bad option: the task fails with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(msg.into()))
}

/// A JSON value as Ansible users see it in messages.
fn shown(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

fn string(name: &str, v: &Json) -> Result<String, ArgError> {
    match v {
        Json::String(s) if !s.is_empty() => Ok(s.clone()),
        Json::String(_) => err(format!("option `{name}` is empty")),
        other => err(format!(
            "option `{name}` must be a string; got {}",
            shown(other)
        )),
    }
}

/// A scalar as text: Jinja and YAML turn `8080` into a number or a string
/// depending on how it was written, so both are accepted where a number or
/// a word is meant.
fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn port(name: &str, v: &Json) -> Result<u16, ArgError> {
    let text = scalar(v).ok_or_else(|| {
        ArgError(format!(
            "option `{name}`: a port must be a number from 1 to 65535; got {}",
            shown(v)
        ))
    })?;
    parse_port(&text).map_err(|e| ArgError(format!("option `{name}`: {e}")))
}

fn boolean(name: &str, v: &Json) -> Result<bool, ArgError> {
    match v {
        Json::Bool(b) => Ok(*b),
        Json::Null => Ok(false),
        other => err(format!("`{name}` must be a boolean; got {}", shown(other))),
    }
}

fn backlog(port: u16, v: &Json) -> Result<u32, ArgError> {
    scalar(v)
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|n| (1..=i32::MAX as u32).contains(n))
        .ok_or_else(|| {
            ArgError(format!(
                "option `app_backlog`: the backlog for port {port} must be an integer from 1 to {}; got {}",
                i32::MAX,
                shown(v)
            ))
        })
}

fn code(v: &Json) -> Result<String, ArgError> {
    match scalar(v)
        .unwrap_or_default()
        .parse::<tcto_tune::FindingCode>()
    {
        Ok(c) => Ok(c.to_string()),
        Err(e) => err(format!(
            "option `allow`: unknown code {}; known codes: {}",
            shown(v),
            e.known.join(", ")
        )),
    }
}

fn path(name: &str, v: &Json) -> Result<PathBuf, ArgError> {
    let s = string(name, v)?;
    if !s.starts_with('/') {
        return err(format!(
            "option `{name}` must be an absolute path on the managed host; got `{s}`"
        ));
    }
    Ok(PathBuf::from(s))
}

/// Parse and check the arguments object.
pub fn parse(obj: &Map<String, Json>) -> Result<Args, ArgError> {
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with("_ansible_") && !OPTIONS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return err(format!(
            "Unsupported parameters for (tcto_tune) module: {}. Supported parameters include: {}.",
            unknown.join(", "),
            OPTIONS.join(", ")
        ));
    }
    // An option set to null (`{{ omit }}` aside, `key:` with no value) is
    // the same as leaving it out.
    let get = |k: &str| obj.get(k).filter(|v| !v.is_null());

    let to = get("to")
        .map(|v| {
            scalar(v)
                .filter(|s| !s.is_empty() && !matches!(v, Json::Bool(_)))
                .ok_or_else(|| {
                    ArgError(format!(
                        "option `to` must be a transaction id such as 000003; got {}",
                        shown(v)
                    ))
                })
        })
        .transpose()?;
    let state = get("state").map(|v| string("state", v)).transpose()?;
    let state = match state.as_deref().unwrap_or("applied") {
        "applied" => State::Applied,
        "persisted" => State::Persisted,
        "rolled_back" => State::RolledBack { to: to.clone() },
        other => {
            return err(format!(
                "value of state must be one of: applied, persisted, rolled_back; got: {other}"
            ))
        }
    };
    if to.is_some() && !matches!(state, State::RolledBack { .. }) {
        return err("option `to` only goes with `state: rolled_back`");
    }

    let mut set = BTreeMap::new();
    if let Some(v) = get("set") {
        let Json::Object(m) = v else {
            return err(format!(
                "option `set` must be a dictionary of profile variables, e.g. {{frontend: 10.0.1.0/24}}; got {}",
                shown(v)
            ));
        };
        for (k, val) in m {
            let text = scalar(val).ok_or_else(|| {
                ArgError(format!(
                    "option `set`: the value of `{k}` must be a string; got {}",
                    shown(val)
                ))
            })?;
            if k.is_empty() {
                return err("option `set`: a variable name is empty");
            }
            set.insert(k.clone(), text);
        }
    }

    let mut ports = Vec::new();
    if let Some(v) = get("ports") {
        match v {
            Json::Array(items) => {
                for p in items {
                    ports.push(port("ports", p)?);
                }
            }
            // A single port, as Ansible turns a scalar into a one-item list.
            single => ports.push(port("ports", single)?),
        }
    }

    let mut app_backlog = BTreeMap::new();
    if let Some(v) = get("app_backlog") {
        let Json::Object(m) = v else {
            return err(format!(
                "option `app_backlog` must be a dictionary of PORT: BACKLOG, e.g. {{8080: 8192}}; got {}",
                shown(v)
            ));
        };
        for (k, val) in m {
            let p = port("app_backlog", &Json::String(k.clone()))?;
            app_backlog.insert(p, backlog(p, val)?);
        }
    }

    let mut allow = Vec::new();
    if let Some(v) = get("allow") {
        match v {
            Json::Array(items) => {
                for c in items {
                    allow.push(code(c)?);
                }
            }
            single => allow.push(code(single)?),
        }
    }

    let profile = get("profile").map(|v| string("profile", v)).transpose()?;
    let rolling_back = matches!(state, State::RolledBack { .. });
    if profile.is_none() && !rolling_back {
        return err("missing required option: profile (a built-in name such as high-conn, or a path on the managed host)");
    }
    if rolling_back {
        let given: Vec<&str> = ["profile", "set", "ports", "app_backlog", "allow", "root"]
            .into_iter()
            .filter(|k| get(k).is_some())
            .collect();
        if !given.is_empty() {
            return err(format!(
                "`state: rolled_back` undoes journaled transactions and takes no {}; remove {}",
                given.join(", "),
                if given.len() == 1 { "it" } else { "them" }
            ));
        }
    }

    let root = get("root").map(|v| path("root", v)).transpose()?;
    if root.is_some() && state != State::Persisted {
        return err("option `root` only goes with `state: persisted`");
    }
    let exec = match get("exec") {
        Some(v) if state == State::Persisted => string("exec", v)?,
        Some(_) => return err("option `exec` only goes with `state: persisted`"),
        None => DEFAULT_EXEC.to_owned(),
    };
    let state_dir = get("state_dir")
        .map(|v| path("state_dir", v))
        .transpose()?
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));

    Ok(Args {
        profile,
        set,
        ports,
        app_backlog,
        allow,
        state,
        state_dir,
        root,
        exec,
        check_mode: get("_ansible_check_mode")
            .map(|v| boolean("_ansible_check_mode", v))
            .transpose()?
            .unwrap_or(false),
        diff: get("_ansible_diff")
            .map(|v| boolean("_ansible_diff", v))
            .transpose()?
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(v: Json) -> Result<Args, ArgError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn full_task_parses_with_ansible_keys_ignored() {
        let a = parse_json(json!({
            "profile": "high-conn",
            "set": {"frontend": "10.0.1.0/24", "port": 8080},
            "ports": [8443, "9000"],
            "app_backlog": {"8080": 8192},
            "allow": ["listener-needs-restart"],
            "_ansible_check_mode": true,
            "_ansible_diff": true,
            "_ansible_verbosity": 3,
            "_ansible_some_future_key": {"x": 1},
        }))
        .unwrap();
        assert_eq!(a.profile.as_deref(), Some("high-conn"));
        assert_eq!(a.set["port"], "8080");
        assert_eq!(a.ports, vec![8443, 9000]);
        assert_eq!(a.app_backlog[&8080], 8192);
        assert_eq!(a.state, State::Applied);
        assert!(a.check_mode && a.diff);
        assert_eq!(a.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn unknown_option_is_named_but_ansible_keys_are_not() {
        let e = parse_json(json!({"profile": "x", "profle": "y", "_ansible_debug": false}))
            .unwrap_err();
        assert!(
            e.0.contains("Unsupported parameters for (tcto_tune) module: profle."),
            "{e:?}"
        );
        assert!(!e.0.contains("_ansible_debug"), "{e:?}");
    }

    #[test]
    fn every_bad_value_names_its_option() {
        for (task, want) in [
            (json!({"profile": 3}), "option `profile` must be a string"),
            (
                json!({"profile": "p", "state": "present"}),
                "value of state must be one of",
            ),
            (json!({"profile": "p", "ports": [0]}), "option `ports`"),
            (
                json!({"profile": "p", "ports": [{"a": 1}]}),
                "option `ports`",
            ),
            (
                json!({"profile": "p", "app_backlog": {"8080": 0}}),
                "port 8080 must be an integer",
            ),
            (
                json!({"profile": "p", "app_backlog": {"http": 5}}),
                "option `app_backlog`",
            ),
            (
                json!({"profile": "p", "app_backlog": [1]}),
                "must be a dictionary",
            ),
            (
                json!({"profile": "p", "set": ["a=b"]}),
                "option `set` must be a dictionary",
            ),
            (
                json!({"profile": "p", "set": {"a": [1]}}),
                "the value of `a` must be a string",
            ),
            (
                json!({"profile": "p", "allow": ["no-such-code"]}),
                "unknown code \"no-such-code\"",
            ),
            (
                json!({"profile": "p", "state_dir": "relative"}),
                "absolute path",
            ),
            (
                json!({"profile": "p", "root": "/mnt"}),
                "`root` only goes with `state: persisted`",
            ),
            (json!({"profile": "p", "to": "3"}), "`to` only goes with"),
            (
                json!({"state": "applied"}),
                "missing required option: profile",
            ),
            (
                json!({"state": "rolled_back", "profile": "p"}),
                "takes no profile",
            ),
            (
                json!({"profile": "p", "_ansible_check_mode": "yes"}),
                "must be a boolean",
            ),
        ] {
            let e = parse_json(task.clone()).unwrap_err();
            assert!(e.0.contains(want), "{task}: {e:?}");
        }
    }

    #[test]
    fn rollback_takes_an_id_as_number_or_string() {
        let a = parse_json(json!({"state": "rolled_back", "to": 3})).unwrap();
        assert_eq!(
            a.state,
            State::RolledBack {
                to: Some("3".into())
            }
        );
        let a = parse_json(json!({"state": "rolled_back"})).unwrap();
        assert_eq!(a.state, State::RolledBack { to: None });
    }

    #[test]
    fn null_means_not_given() {
        let a = parse_json(json!({"profile": "p", "root": null, "ports": null})).unwrap();
        assert!(a.root.is_none() && a.ports.is_empty());
    }
}
