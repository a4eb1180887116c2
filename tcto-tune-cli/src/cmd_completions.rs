//! `tcto-tune completions SHELL`: the shell completion script, on stdout.
//!
//! Generated from the clap definitions at run time (clap_complete), so a
//! new subcommand or flag is completed without anyone editing a script;
//! the Debian package installs the same output at the paths each shell
//! reads (`scripts/package`). `--profile` completes the built-in profile
//! names: the parser accepts any name or path, so the names are added as
//! possible values only in the command the generator sees.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::output::Exit;
use crate::Cli;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The command as the completion generators see it: `--profile` offers
/// the built-in profile names.
pub fn completion_command() -> clap::Command {
    fn profile_names(cmd: clap::Command) -> clap::Command {
        let cmd = cmd.mut_subcommands(profile_names);
        if cmd.get_arguments().any(|a| a.get_id() == "profile") {
            cmd.mut_arg("profile", |a| {
                a.value_parser(clap::builder::PossibleValuesParser::new(
                    tcto_tune::profile::builtin_names(),
                ))
            })
        } else {
            cmd
        }
    }
    // Without the hidden subcommands: clap_complete's bash generator offers
    // them anyway, so they are left out of the command it sees.
    let full = Cli::command();
    let visible = clap::Command::new("tcto-tune")
        .version(env!("TCTO_TUNE_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    profile_names(visible)
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = completion_command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tcto-tune", &mut out);
    if shell == Shell::Bash {
        // clap_complete 4.6's bash generator escapes the `-` of a binary
        // name two ways: the walk over the words names a subcommand
        // `tcto__tune__subcmd__plan`, its case arm
        // `tcto__subcmd__tune__subcmd__plan`, so nothing after the first
        // word would complete. One spelling, the walk's, fixes it.
        let text = String::from_utf8_lossy(&out).replace("tcto__subcmd__tune", "tcto__tune");
        return text.into_bytes();
    }
    out
}

/// Run `completions`.
pub fn run(args: CompletionsArgs) -> anyhow::Result<Exit> {
    use std::io::Write as _;
    std::io::stdout().write_all(&script(args.shell))?;
    Ok(Exit::Ok)
}
