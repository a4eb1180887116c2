//! `tcto-tune generate-assets --out DIR` (hidden): what the package installs
//! besides the binary, generated from this binary's own definitions.
//!
//! `scripts/package` runs it on the release build, so the man pages and
//! completions can never drift from the clap definitions and the unit from
//! the one `persist` would write; a hidden subcommand rather than a
//! build.rs, so no ordinary build pays for it. It writes:
//!
//! - `man/tcto-tune.1` and one page per subcommand (`tcto-tune-plan.1`,
//!   `tcto-tune-profiles-list.1`, ...), by clap_mangen;
//! - `completions/tcto-tune.bash`, `_tcto-tune`, `tcto-tune.fish`;
//! - `tcto-tune-restore.service`, the packaged unit.
//!
//! `tcto-tune-profiles.5` is written by hand (packaging/): prose about the
//! TOML format has no clap definition to come from.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
#[cfg(test)]
use clap::Parser as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use tcto_tune::persist::unit;

use crate::cli::FullCli;
use crate::common::completion_script;
use crate::output::Exit;

// Arguments of `generate-assets`.
#[derive(Debug, Args)]
pub struct AssetsArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The shells the package installs a completion for, and their file names.
pub const COMPLETIONS: &[(Shell, &str)] = &[
    (Shell::Bash, "tcto-tune.bash"),
    (Shell::Zsh, "_tcto-tune"),
    (Shell::Fish, "tcto-tune.fish"),
];

/// The man pages, by file name: the command and every visible subcommand.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    clap_mangen::generate_to(FullCli::command(), dir)
        .with_context(|| format!("cannot write man pages into `{}`", dir.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write `{}`", path.display()))
}

/// Run `generate-assets`.
pub fn run(args: AssetsArgs) -> anyhow::Result<Exit> {
    man_pages(&args.out.join("man"))?;
    let comp = args.out.join("completions");
    fs::create_dir_all(&comp).with_context(|| format!("cannot create `{}`", comp.display()))?;
    for (shell, name) in COMPLETIONS {
        write(&comp.join(name), &completion_script(*shell))?;
    }
    write(
        &args.out.join(unit::UNIT_NAME),
        unit::render_packaged().as_bytes(),
    )?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    //! Man pages and completions cover every subcommand and flag: a new one
    //! that the generators would miss (hidden by mistake, a page filtered
    //! out) fails here.

    use super::*;

    /// Every visible subcommand, as its path of names, with its flags
    /// (long names, globals included) and positionals.
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            walk(sub, p, out);
        }
    }

    fn commands() -> Vec<(Vec<String>, clap::Command)> {
        let mut cmd = FullCli::command();
        cmd.build();
        let mut out = vec![];
        walk(&cmd, vec![], &mut out);
        out
    }

    fn longs(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    }

    #[test]
    fn every_subcommand_and_flag_has_a_man_page_entry() {
        let dir = std::env::temp_dir().join(format!("tcto-tune-man-{}", std::process::id()));
        man_pages(&dir).unwrap();
        let mut pages: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        pages.sort();
        let cmds = commands();
        assert!(cmds.len() >= 10, "{}", cmds.len());
        let mut want = vec![];
        for (path, cmd) in &cmds {
            let name = std::iter::once("tcto-tune".to_owned())
                .chain(path.iter().cloned())
                .collect::<Vec<_>>()
                .join("-");
            let file = format!("{name}.1");
            let page = fs::read_to_string(dir.join(&file))
                .unwrap_or_else(|e| panic!("no man page {file} for `{}`: {e}", path.join(" ")));
            for long in longs(cmd) {
                // roff escapes every `-` of an option as `\-`.
                let flag = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(page.contains(&flag), "{file} lacks {flag}");
            }
            for pos in cmd.get_positionals() {
                let v = pos
                    .get_value_names()
                    .map_or(pos.get_id().as_str().to_uppercase(), |v| v[0].to_string());
                assert!(page.contains(&v), "{file} lacks the argument {v}");
            }
            if let Some(about) = cmd.get_about() {
                let first = about.to_string();
                let first = first.split_whitespace().next().unwrap();
                assert!(page.contains(first), "{file} lacks its description");
            }
            want.push(file);
        }
        want.sort();
        // No page without a subcommand (a hidden one, `help`).
        assert_eq!(pages, want);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_subcommand_and_flag_completes_in_every_shell() {
        for (shell, _) in COMPLETIONS {
            let script = String::from_utf8(completion_script(*shell)).unwrap();
            for (path, cmd) in commands() {
                if let Some(name) = path.last() {
                    assert!(
                        script.contains(name.as_str()),
                        "{shell}: no subcommand {name}"
                    );
                }
                for long in longs(&cmd) {
                    let flag = match shell {
                        // fish: `complete -c tcto-tune ... -l state-dir`
                        Shell::Fish => format!("-l {long}"),
                        _ => format!("--{long}"),
                    };
                    assert!(
                        script.contains(&flag),
                        "{shell}: `{}` lacks {flag}",
                        path.join(" ")
                    );
                }
            }
            // Hidden subcommands are not offered.
            assert!(!script.contains("generate-assets"), "{shell}");
        }
    }

    #[test]
    fn profile_completes_the_builtin_names() {
        let names = tcto_tune::profile::builtin_names();
        assert!(names.contains(&"high-conn"));
        for (shell, _) in COMPLETIONS {
            let script = String::from_utf8(completion_script(*shell)).unwrap();
            // A line about --profile, with the names on it or on the few
            // after it (bash: a `--profile)` case; fish: one name a line).
            let lines: Vec<&str> = script.lines().collect();
            let found = lines.iter().enumerate().any(|(i, l)| {
                let next = lines[i..(i + 8).min(lines.len())].join("\n");
                l.contains("profile") && names.iter().all(|n| next.contains(n))
            });
            assert!(found, "{shell}: --profile does not offer {names:?}");
        }
        // The parser itself still takes a path.
        let cli =
            crate::cli::Cli::try_parse_from(["tcto-tune", "plan", "--profile", "/tmp/mine.toml"]);
        assert!(cli.is_ok());
    }

    /// What bash offers for `words` (the last one being completed).
    fn bash_complete(words: &[&str]) -> String {
        let dir = std::env::temp_dir().join(format!("tcto-tune-bash-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tcto-tune.bash");
        fs::write(&file, completion_script(Shell::Bash)).unwrap();
        let line = words.join(" ");
        let prog = format!(
            ". '{}'; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             _tcto__tune tcto-tune '{}' '{}'; echo \"${{COMPREPLY[*]}}\"",
            file.display(),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(prog)
            .output()
            .unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn bash_completes_subcommands_their_flags_and_profiles() {
        assert_eq!(bash_complete(&["tcto-tune", "pl"]), "plan");
        assert_eq!(bash_complete(&["tcto-tune", "plan", "--prof"]), "--profile");
        assert_eq!(
            bash_complete(&["tcto-tune", "persist", "--dry"]),
            "--dry-run"
        );
        assert_eq!(
            bash_complete(&["tcto-tune", "plan", "--profile", "hi"]),
            "high-conn"
        );
        assert_eq!(bash_complete(&["tcto-tune", "profiles", "sh"]), "show");
    }

    #[test]
    fn the_packaged_unit_is_the_library_s() {
        let dir = std::env::temp_dir().join(format!("tcto-tune-assets-{}", std::process::id()));
        run(AssetsArgs { out: dir.clone() }).unwrap();
        let unit = fs::read_to_string(dir.join(unit::UNIT_NAME)).unwrap();
        assert_eq!(unit, unit::render_packaged());
        for (_, name) in COMPLETIONS {
            assert!(dir.join("completions").join(name).is_file(), "{name}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
