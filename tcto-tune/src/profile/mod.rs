//! Profiles: a named set of typed fixes, from TOML or built in code.
//!
//! A profile is the user's intent ("this host takes many connections"); the
//! planner turns it into a concrete [`crate::Plan`] for one host. Profiles
//! come from three places: the built-ins embedded in the binary, a TOML file
//! (`--profile ./mine.toml`), or a provisioning tool's code through
//! [`ProfileBuilder`]. TOML profiles may `extends` another and declare
//! variables the user fills with `--set name=value`.

mod builtin;
mod resolve;
mod spec;
mod to_toml;

use std::path::PathBuf;

pub use builtin::{builtin, builtin_description, builtin_names};
pub use resolve::{load, load_text, ProfileOrigin};
pub use to_toml::to_toml;

use crate::fix::{
    BacklogFix, ClientFix, ConntrackFix, Desired, Listener, NotrackFlow, OffloadFix, RawSysctl,
    SysctlTarget,
};
use crate::words::{Action, Words};

/// A resolved profile: variables filled, `extends` merged, every value typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Name (the built-in's name or the file's `name`, else its stem).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// `[conntrack]`.
    pub conntrack: ConntrackFix,
    /// `[backlog]`.
    pub backlog: BacklogFix,
    /// `[client]`.
    pub client: ClientFix,
    /// `[sysctl]`, sorted by key.
    pub sysctl: Vec<RawSysctl>,
    /// `[[listener]]` plus any `--port`/`--app-backlog` the caller added.
    pub listeners: Vec<Listener>,
    /// `[[notrack]]`.
    pub notrack: Vec<NotrackFlow>,
    /// `[[offload]]`.
    pub offloads: Vec<OffloadFix>,
    /// `allow = [...]`: finding and skip codes this profile accepts, as if
    /// given with `--allow` (so a persisted plan keeps what was allowed).
    pub allow: std::collections::BTreeSet<String>,
}

impl Profile {
    /// Start building a profile in code.
    pub fn builder(name: impl Into<String>) -> ProfileBuilder {
        ProfileBuilder(Profile {
            name: name.into(),
            ..Default::default()
        })
    }

    /// Every sysctl the profile sets, in apply order: backlog, conntrack,
    /// client, then the raw table.
    pub fn sysctl_targets(&self) -> Vec<SysctlTarget> {
        let mut out = self.backlog.targets();
        out.extend(self.conntrack.targets());
        out.extend(self.client.targets());
        out.extend(self.sysctl.iter().map(|r| SysctlTarget {
            key: r.key.clone(),
            desired: r.desired.clone(),
            fix: crate::fix::FixKind::Sysctl,
        }));
        out
    }

    /// Add or update a listener: `backlog` replaces a known one when given.
    pub fn add_listener(&mut self, port: u16, backlog: Option<u32>) {
        match self.listeners.iter_mut().find(|l| l.port == port) {
            Some(l) => l.backlog = backlog.or(l.backlog),
            None => self.listeners.push(Listener { port, backlog }),
        }
    }
}

/// Builds a [`Profile`] in code, for provisioning tools that embed the library.
///
/// ```
/// use tcto_tune::{Desired, Profile};
/// let p = Profile::builder("web")
///     .somaxconn(Desired::at_least(4096).because("nginx backlog 4096"))
///     .conntrack_max(Desired::at_least(262144))
///     .listener(8080, Some(4096))
///     .build();
/// assert_eq!(p.sysctl_targets().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct ProfileBuilder(Profile);

impl ProfileBuilder {
    /// Description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.0.description = d.into();
        self
    }
    /// `net.core.somaxconn`.
    pub fn somaxconn(mut self, d: Desired<i64>) -> Self {
        self.0.backlog.somaxconn = Some(d);
        self
    }
    /// `net.ipv4.tcp_max_syn_backlog`.
    pub fn tcp_max_syn_backlog(mut self, d: Desired<i64>) -> Self {
        self.0.backlog.tcp_max_syn_backlog = Some(d);
        self
    }
    /// `net.netfilter.nf_conntrack_max`.
    pub fn conntrack_max(mut self, d: Desired<i64>) -> Self {
        self.0.conntrack.max = Some(d);
        self
    }
    /// `nf_conntrack_tcp_timeout_established`.
    pub fn conntrack_timeout_established(mut self, d: Desired<i64>) -> Self {
        self.0.conntrack.tcp_timeout_established = Some(d);
        self
    }
    /// Replace the whole `[conntrack]` fix.
    pub fn conntrack(mut self, fix: ConntrackFix) -> Self {
        self.0.conntrack = fix;
        self
    }
    /// Replace the whole `[backlog]` fix.
    pub fn backlog(mut self, fix: BacklogFix) -> Self {
        self.0.backlog = fix;
        self
    }
    /// Replace the whole `[client]` fix.
    pub fn client(mut self, fix: ClientFix) -> Self {
        self.0.client = fix;
        self
    }
    /// A raw sysctl (the key is already validated by its type).
    pub fn sysctl(mut self, raw: RawSysctl) -> Self {
        self.0.sysctl.retain(|r| r.key != raw.key);
        self.0.sysctl.push(raw);
        self.0.sysctl.sort_by(|a, b| a.key.cmp(&b.key));
        self
    }
    /// An application listener.
    pub fn listener(mut self, port: u16, backlog: Option<u32>) -> Self {
        self.0.add_listener(port, backlog);
        self
    }
    /// A trusted flow to exempt from conntrack.
    pub fn notrack(mut self, flow: NotrackFlow) -> Self {
        self.0.notrack.push(flow);
        self
    }
    /// NIC offload toggles.
    pub fn offload(mut self, fix: OffloadFix) -> Self {
        self.0.offloads.push(fix);
        self
    }
    /// The profile.
    pub fn build(self) -> Profile {
        self.0
    }
}

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A problem at a known place in a profile file.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// File path, or `builtin:NAME`.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The offending key, when there is one.
        key: Option<String>,
        /// The variable whose value is wrong, when the value came
        /// from one (then it is the caller's input, not the file, at fault).
        variable: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read profile `{}`", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Larger than any sane profile.
    #[error("profile `{}` is {size} bytes; the limit is {limit}", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Neither a built-in name nor a path.
    #[error("unknown profile `{name}`")]
    Unknown {
        /// What was asked for.
        name: String,
    },
    /// `extends` loops back.
    #[error("profile `{name}` extends itself: {chain}")]
    Cycle {
        /// The profile that closes the loop.
        name: String,
        /// The chain, `a -> b -> a`.
        chain: String,
    },
    /// Too many levels of `extends`.
    #[error("`extends` chain is deeper than {max} levels: {chain}")]
    TooDeep {
        /// The limit.
        max: usize,
        /// The chain so far.
        chain: String,
    },
    /// A variable no profile in the chain declares was given a value.
    #[error("unknown variable `{name}` for profile `{profile}`")]
    UnknownVariable {
        /// The variable.
        name: String,
        /// The profile.
        profile: String,
        /// What it does declare.
        declared: Vec<String>,
    },
    /// Declared variables without a value or default (all of them at once,
    /// so the user fixes the command line in one go).
    #[error(
        "profile `{profile}` needs variable `{name}` ({description}){}",
        also(others)
    )]
    MissingVariable {
        /// The first missing variable.
        name: String,
        /// The profile.
        profile: String,
        /// Its description.
        description: String,
        /// The other missing variables, if any.
        others: Vec<String>,
    },
    /// A variable's value that cannot be a value at all.
    #[error("invalid value for variable `{name}`: {why}")]
    BadVariable {
        /// The variable.
        name: String,
        /// Why.
        why: String,
    },
}

/// The first built-in that uses a field serde listed as expected in
/// `message` ("unknown field `x`, expected one of `iface`, `tso`, ..."), so
/// the hint shows a profile with that section (`offload-off` for an
/// `[[offload]]` typo), not always `high-conn`.
fn builtin_with_fields(message: &str) -> &'static str {
    let expected = message.split_once("expected").map_or("", |(_, e)| e);
    let fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    // The built-in that sets the most of those fields (the first on a tie).
    let uses = |name: &str| {
        let text = builtin(name).unwrap_or_default();
        fields
            .iter()
            .filter(|f| {
                text.lines().any(|l| {
                    l.strip_prefix(**f)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
            })
            .count()
    };
    builtin_names()
        .into_iter()
        .map(|name| (uses(name), name))
        .filter(|(n, _)| *n > 0)
        .rev()
        .max_by_key(|(n, _)| *n)
        .map_or("high-conn", |(_, name)| name)
}

fn also(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = others.iter().map(|n| format!("`{n}`")).collect();
        format!(", and also {}", names.join(", "))
    }
}

impl ProfileError {
    /// Whether the caller's input is at fault rather than a profile file:
    /// an unknown profile name, or a `--set` that is unknown, missing or
    /// has a bad value. The CLI exits 2 (usage) for these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ProfileError::Unknown { .. }
                | ProfileError::UnknownVariable { .. }
                | ProfileError::MissingVariable { .. }
                | ProfileError::BadVariable { .. }
                | ProfileError::At {
                    variable: Some(_),
                    ..
                }
        )
    }

    /// A one-line suggestion for the user, where there is one, naming
    /// what to do in the caller's `words` (the CLI says `--set`, the
    /// Ansible module its `set` option).
    pub fn hint(&self, words: &dyn Words) -> Option<String> {
        match self {
            ProfileError::Unknown { .. } => Some(format!(
                "built-in profiles: {}; or give a path to a .toml file",
                builtin_names().join(", ")
            )),
            ProfileError::UnknownVariable { declared, .. } if declared.is_empty() => Some(format!(
                "this profile declares no variables; {}",
                words.instruct(&Action::DropVariables)
            )),
            ProfileError::UnknownVariable { declared, .. } => {
                Some(format!("declared variables: {}", declared.join(", ")))
            }
            ProfileError::MissingVariable { name, others, .. } => Some(words.instruct(
                &Action::SetVariables(std::iter::once(name).chain(others).cloned().collect()),
            )),
            ProfileError::At {
                key: Some(_),
                message,
                ..
            } if message.contains("unknown field") => Some(format!(
                "check the spelling against {}",
                words.name(&Action::ShowProfile {
                    name: builtin_with_fields(message).into()
                })
            )),
            // A value that came from a variable: the variable is at fault.
            ProfileError::At {
                variable: Some(v), ..
            } => Some(format!(
                "check {}",
                words.name(&Action::SetVariable {
                    name: v.clone(),
                    value: "...".into()
                })
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
