//! `tcto-tune profiles`: list and show the built-in profiles.

use clap::Subcommand;
use serde::Serialize;
use tcto_tune::profile::{builtin, builtin_description, builtin_names};

use anyhow::Context as _;

use crate::common::{parse_assignment, variables};
use crate::output::{CliError, Exit, Printer};

/// `profiles` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List the built-in profiles with their descriptions.
    List,
    /// Print a built-in profile's TOML; `--resolved`: what it means after
    /// `extends` and variables (a built-in or a profile file).
    Show {
        /// Profile name (or, with `--resolved`, a path to a TOML file).
        name: String,
        /// Print the effective profile: `extends` merged, variables filled.
        #[arg(long)]
        resolved: bool,
        /// With `--resolved`: fill a variable, e.g. `--set backend=10.0.2.0/24`.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment, requires = "resolved")]
        set: Vec<(String, String)>,
    },
}

#[derive(Serialize)]
struct Entry {
    name: &'static str,
    description: String,
}

/// Run `profiles`.
pub fn run(p: &Printer, cmd: ProfilesCommand) -> anyhow::Result<Exit> {
    match cmd {
        ProfilesCommand::List => {
            let entries: Vec<Entry> = builtin_names()
                .into_iter()
                .map(|name| {
                    let description = builtin_description(name).unwrap_or_default();
                    Entry { name, description }
                })
                .collect();
            if p.json() {
                p.json_value(&serde_json::json!({ "schema": 1, "profiles": entries }))?;
            } else {
                let w = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
                for e in entries {
                    p.line(format_args!("{:<w$}  {}", e.name, e.description));
                }
            }
        }
        ProfilesCommand::Show {
            name,
            resolved: true,
            set,
        } => {
            let vars = variables(&set)?;
            let profile = tcto_tune::profile::load(&name, &vars)
                .with_context(|| format!("cannot load profile `{name}`"))?;
            let text = tcto_tune::profile::to_toml(&profile);
            if p.json() {
                p.json_value(
                    &serde_json::json!({ "schema": 1, "name": profile.name, "toml": text }),
                )?;
            } else {
                p.out(text);
            }
        }
        ProfilesCommand::Show { name, .. } => {
            let Some(text) = builtin(&name) else {
                // Only built-ins are shown: a path is never read here.
                let hint = format!(
                    "built-in profiles: {} (a profile file you wrote: read it with `cat`, or see its effect with `--resolved`)",
                    builtin_names().join(", ")
                );
                return Err(CliError::new(
                    format!("unknown profile `{name}`"),
                    Some(hint),
                    Exit::Usage,
                )
                .into());
            };
            if p.json() {
                p.json_value(&serde_json::json!({ "schema": 1, "name": name, "toml": text }))?;
            } else {
                p.out(text);
            }
        }
    }
    Ok(Exit::Ok)
}
