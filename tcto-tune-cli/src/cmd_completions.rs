//! `tcto-tune completions SHELL`: the shell completion script, on stdout.
//!
//! Generated from the clap definitions at run time (clap_complete), so a
//! new subcommand or flag is completed without anyone editing a script;
//! the Debian package installs the same output at the paths each shell
//! reads (`scripts/package`). `--profile` completes the built-in profile
//! names: the parser accepts any name or path, so the names are added as
//! possible values only in the command the generator sees.

use clap::Args;
use clap_complete::Shell;

use crate::common::completion_script;
use crate::output::{Exit, Printer};

// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Run `completions`.
pub fn run(p: &Printer, args: CompletionsArgs) -> anyhow::Result<Exit> {
    p.out_whole(&completion_script(args.shell))?;
    Ok(Exit::Ok)
}
