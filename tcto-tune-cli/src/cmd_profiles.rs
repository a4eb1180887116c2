//! `tcto-tune profiles`: list and show the built-in profiles.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde::Serialize;
use tcto_tune::profile::{builtin, builtin_description, builtin_names, load};

use crate::output::{print_json, CliError, Exit};
use crate::Global;

/// `profiles` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List the built-in profiles with their descriptions.
    List,
    /// Print a built-in profile's TOML.
    Show {
        /// Profile name.
        name: String,
    },
}

#[derive(Serialize)]
struct Entry {
    name: &'static str,
    description: String,
}

/// Run `profiles`.
pub fn run(g: &Global, cmd: ProfilesCommand) -> anyhow::Result<Exit> {
    match cmd {
        ProfilesCommand::List => {
            let entries: Vec<Entry> = builtin_names()
                .into_iter()
                .map(|name| {
                    let description = builtin_description(name).unwrap_or_default();
                    Entry { name, description }
                })
                .collect();
            if g.json {
                print_json(&entries)?;
            } else {
                let w = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
                for e in entries {
                    println!("{:<w$}  {}", e.name, e.description);
                }
            }
        }
        ProfilesCommand::Show { name } => {
            let Some(text) = builtin(&name) else {
                // Surface the library's own error and hint.
                let err = load(&name, &BTreeMap::new()).err();
                let hint = err.as_ref().and_then(|e| e.hint());
                return Err(
                    CliError::new(format!("unknown profile `{name}`"), hint, Exit::Error).into(),
                );
            };
            if g.json {
                print_json(&serde_json::json!({ "name": name, "toml": text }))?;
            } else {
                print!("{text}");
            }
        }
    }
    Ok(Exit::Ok)
}
