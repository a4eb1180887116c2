//! Words: how a front end names the library's actions.
//!
//! A finding's hint, a cause's next step or a rollback note often ends in
//! something the user can do: allow a code, declare an application's
//! backlog, roll a transaction back, plan a profile. How that is said is
//! the front end's: the CLI says `` pass `--allow CODE` ``, the Ansible
//! module says "add `CODE` to the task's `allow` list". The library names
//! the action as a typed [`Action`] and asks the caller's [`Words`] for
//! the text; the caller passes its words in with the options it already
//! gives (`PlanOptions`, `PersistOptions`, `DiagnoseOptions`) or when it
//! renders a journaled report ([`crate::apply::TxReport::with_words`]).
//!
//! [`Neutral`] is the default: plain English with no command line in it,
//! so an embedder that passes nothing still gets a readable hint. What the
//! journal stores is worded neutrally or kept typed, never in a front
//! end's words, so a record reads the same whoever wrote it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::finding::FindingCode;

/// Something the user can do that a hint or note points at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Proceed despite this finding or skip code.
    Allow(FindingCode),
    /// The allowance itself, no code in particular ("no allowance lifts
    /// this refusal").
    AllowAny,
    /// Declare the backlog the application on `port` asks for in
    /// `listen()`; `None` when it is not known yet (said as `N`).
    AppBacklog {
        /// The listening port.
        port: u16,
        /// The backlog, when the library knows what it will have to be.
        backlog: Option<i64>,
    },
    /// Undo the newest transaction.
    Rollback,
    /// Restore the journaled value over one someone else set since (a
    /// forced rollback).
    Force,
    /// Go ahead past a transaction interrupted by a crash, keeping what it
    /// set.
    ForceAfterCrash,
    /// Drop a persisted profile.
    PersistRemove {
        /// The persisted profile's name.
        name: String,
    },
    /// Plan a profile with variables and ports.
    Plan(PlanCommand),
    /// Diagnose the host, sampling over `interval` (e.g. `5s`) when given.
    Diagnose {
        /// The sampling interval, as the user would type it.
        interval: Option<String>,
    },
    /// Watch the host's drop counters for `duration` (e.g. `60s`).
    Verify {
        /// How long to watch, as the user would type it.
        duration: String,
    },
    /// Give a profile variable a value (`value` may be a placeholder such
    /// as `NAME`).
    SetVariable {
        /// The variable.
        name: String,
        /// Its value or a placeholder.
        value: String,
    },
    /// Time `count` TCP connects to `target` (run on a client).
    Probe {
        /// `ADDRESS:PORT`.
        target: String,
        /// How many connects.
        count: u32,
    },
    /// Give each of these profile variables a value (said with the
    /// placeholder `VALUE`).
    SetVariables(Vec<String>),
    /// Give the profile no variables at all (it declares none).
    DropVariables,
    /// Show every listener of a diagnosis, not only the fullest (by
    /// asking about their ports, or in the machine-readable report).
    ShowEveryListener,
    /// Show a built-in profile's text, e.g. to compare a key's spelling.
    ShowProfile {
        /// The built-in profile's name.
        name: String,
    },
}

/// A profile to plan, as a next step names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanCommand {
    /// The profile's name.
    pub profile: String,
    /// Its variables, in the order given (a value may be a placeholder
    /// such as `CIDR`).
    pub sets: Vec<(String, String)>,
    /// The listening ports it is about.
    pub ports: Vec<u16>,
}

impl PlanCommand {
    /// Plan `profile`.
    pub fn new(profile: impl Into<String>) -> Self {
        PlanCommand {
            profile: profile.into(),
            ..Default::default()
        }
    }
    /// With a variable.
    pub fn set(mut self, key: impl Into<String>, value: impl fmt::Display) -> Self {
        self.sets.push((key.into(), value.to_string()));
        self
    }
    /// With ports.
    pub fn ports(mut self, ports: &[u16]) -> Self {
        self.ports.extend_from_slice(ports);
        self
    }
}

/// How a front end names an [`Action`].
///
/// Two forms, because a sentence uses an action two ways: as an
/// instruction ("..., then {instruct}") and as a name ("drop it with
/// {name}", "{name} restores it"). Both are whole phrases with their own
/// quoting; the library adds nothing around them but the sentence.
pub trait Words: Sync + fmt::Debug {
    /// The action as an instruction: "pass `--allow CODE`", "allow `CODE`".
    fn instruct(&self, action: &Action) -> String;
    /// The action as a name: "`--allow CODE`", "an allowance of `CODE`".
    fn name(&self, action: &Action) -> String;
}

/// A front end's [`Words`] as the options carry them (a vocabulary is a
/// static value: it has nothing to own).
#[derive(Clone, Copy)]
pub struct WordsRef(pub &'static dyn Words);

impl WordsRef {
    /// The words.
    pub fn get(self) -> &'static dyn Words {
        self.0
    }
}

impl Default for WordsRef {
    fn default() -> Self {
        WordsRef(&NEUTRAL)
    }
}

impl fmt::Debug for WordsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for WordsRef {
    fn eq(&self, other: &Self) -> bool {
        // The same vocabulary: the same static value.
        std::ptr::addr_eq(self.0, other.0)
    }
}

impl Eq for WordsRef {}

impl std::ops::Deref for WordsRef {
    type Target = dyn Words;
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

/// Plain English, no command line: the library's default words, and the
/// words of what the journal stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neutral;

/// The neutral words, as a value the options can point at.
pub static NEUTRAL: Neutral = Neutral;

fn backlog(b: Option<i64>) -> String {
    b.map_or("N".to_owned(), |b| b.to_string())
}

impl Words for Neutral {
    fn instruct(&self, action: &Action) -> String {
        match action {
            Action::Allow(code) => format!("allow `{code}`"),
            Action::AllowAny => "allow it".into(),
            Action::AppBacklog { port, backlog: b } => {
                format!("declare backlog {} for port {port}", backlog(*b))
            }
            Action::Rollback => "roll the transaction back".into(),
            Action::Force => "force the restore".into(),
            Action::ForceAfterCrash => "go ahead past the crash".into(),
            Action::PersistRemove { name } => format!("remove the persisted profile `{name}`"),
            Action::Plan(_) => format!("plan {}", self.name(action)),
            Action::Diagnose { .. } | Action::Verify { .. } | Action::Probe { .. } => {
                format!("run {}", self.name(action))
            }
            Action::SetVariable { .. } | Action::SetVariables(_) => {
                format!("set {}", self.name(action))
            }
            Action::DropVariables => "drop the variables given".into(),
            Action::ShowProfile { .. } => format!("read {}", self.name(action)),
            Action::ShowEveryListener => format!("read {}", self.name(action)),
        }
    }
    fn name(&self, action: &Action) -> String {
        match action {
            Action::Allow(code) => format!("an allowance of `{code}`"),
            Action::AllowAny => "allowance".into(),
            Action::AppBacklog { port, backlog: b } => {
                format!("a declared backlog of {} for port {port}", backlog(*b))
            }
            Action::Rollback => "a rollback".into(),
            Action::Force => "force".into(),
            Action::ForceAfterCrash => "forced past the crash".into(),
            Action::PersistRemove { name } => {
                format!("a removal of the persisted profile `{name}`")
            }
            Action::Plan(c) => {
                let mut s = format!("profile `{}`", c.profile);
                let mut with: Vec<String> =
                    c.sets.iter().map(|(k, v)| format!("{k}={v}")).collect();
                with.extend(c.ports.iter().map(|p| format!("port {p}")));
                if !with.is_empty() {
                    s.push_str(&format!(" with {}", with.join(", ")));
                }
                s
            }
            Action::SetVariable { name, value } => format!("the variable `{name}={value}`"),
            Action::Diagnose { interval: None } => "a diagnosis".into(),
            Action::Diagnose { interval: Some(i) } => format!("a diagnosis sampled over {i}"),
            Action::Verify { duration } => format!("a verification over {duration}"),
            Action::Probe { target, count } => format!("a probe of {count} connects to {target}"),
            Action::SetVariables(names) => {
                let v: Vec<String> = names.iter().map(|n| format!("`{n}=VALUE`")).collect();
                format!("the variables {}", v.join(", "))
            }
            Action::DropVariables => "no variable values".into(),
            Action::ShowProfile { name } => format!("the built-in profile `{name}`"),
            Action::ShowEveryListener => "a port list or the JSON report".into(),
        }
    }
}

/// What the user can do about a journaled step's error. The record keeps
/// it typed beside the error's facts, so a record names no front end's
/// command; a report or history shows it in the reader's words
/// ([`crate::apply::TxReport::with_words`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Remedy {
    /// The value was changed by someone else since: a forced rollback
    /// restores the journaled one ([`Action::Force`]).
    ForceRestores,
    /// A forced rollback replaced someone else's value; the error says
    /// what it replaced.
    Forced,
    /// The step was written in another network namespace: a rollback
    /// there can restore it ([`Action::Rollback`]).
    RollbackInItsNamespace,
    /// A remedy this version does not know (written by a newer one, or
    /// any JSON value that is not one of the names above): the error is
    /// shown as it is, the record stays readable, and the value is written
    /// back as it was read when this version rewrites the record (a
    /// rollback), so the newer version still finds it.
    #[serde(untagged)]
    Unknown(serde_json::Value),
}

/// Lenient: any value that is not a known name (another string, a number,
/// an object a newer version might write) reads as [`Remedy::Unknown`] with
/// the value kept, so one step's remedy never makes a whole journal record
/// unreadable and a rewrite never loses it.
impl<'de> Deserialize<'de> for Remedy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(match value.as_str() {
            Some("force-restores") => Remedy::ForceRestores,
            Some("forced") => Remedy::Forced,
            Some("rollback-in-its-namespace") => Remedy::RollbackInItsNamespace,
            _ => Remedy::Unknown(value),
        })
    }
}

/// One of each action, for tests of a [`Words`] implementation.
pub fn every_action() -> Vec<Action> {
    vec![
        Action::Allow(FindingCode::KeyOutsideScope),
        Action::AllowAny,
        Action::AppBacklog {
            port: 8080,
            backlog: Some(4096),
        },
        Action::AppBacklog {
            port: 8080,
            backlog: None,
        },
        Action::Rollback,
        Action::Force,
        Action::ForceAfterCrash,
        Action::PersistRemove { name: "web".into() },
        Action::Plan(
            PlanCommand::new("trusted-notrack")
                .set("frontend", "CIDR")
                .ports(&[80, 443]),
        ),
        Action::Diagnose { interval: None },
        Action::Diagnose {
            interval: Some("5s".into()),
        },
        Action::Verify {
            duration: "60s".into(),
        },
        Action::Probe {
            target: "10.0.0.1:443".into(),
            count: 20,
        },
        Action::SetVariable {
            name: "iface".into(),
            value: "NAME".into(),
        },
        Action::SetVariables(vec!["frontend".into(), "port".into()]),
        Action::DropVariables,
        Action::ShowEveryListener,
        Action::ShowProfile {
            name: "high-conn".into(),
        },
    ]
}

/// `s` as one POSIX shell word: as it is when every byte is plain, else in
/// single quotes (a `'` inside written `'\''`). Every front end that prints
/// a command with a user's path or name in it quotes through this, so the
/// command runs as printed.
pub fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@=".contains(&b));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The words of the command line, one list with tests/cli_words.rs.
    include!("../tests/support/cli_words.rs");

    /// Beyond the command lines of that list: the program's own name.
    /// (The library's sources may name it in paths and in the files it
    /// writes; the neutral words never do.)
    const PROGRAM: &str = "tcto-tune";

    #[test]
    fn neutral_words_name_no_cli_word() {
        for a in every_action() {
            for text in [Neutral.instruct(&a), Neutral.name(&a)] {
                assert!(!text.is_empty(), "{a:?}");
                for w in CLI_WORDS.iter().chain([&PROGRAM]) {
                    assert!(!text.contains(w), "{a:?}: `{w}` in {text:?}");
                }
            }
        }
    }

    #[test]
    fn neutral_plan_names_profile_variables_and_ports() {
        let a = &every_action()[8];
        assert_eq!(
            Neutral.name(a),
            "profile `trusted-notrack` with frontend=CIDR, port 80, port 443"
        );
        assert_eq!(
            Neutral.instruct(a),
            "plan profile `trusted-notrack` with frontend=CIDR, port 80, port 443"
        );
    }

    #[test]
    fn words_ref_defaults_to_neutral_and_compares_by_vocabulary() {
        assert_eq!(WordsRef::default(), WordsRef(&NEUTRAL));
        assert_eq!(
            WordsRef::default().instruct(&Action::Rollback),
            "roll the transaction back"
        );
    }
}
