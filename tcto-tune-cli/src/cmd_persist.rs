//! `tcto-tune persist`: write the files that make a profile survive a reboot.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use tcto_tune::apply::{apply, ApplyError, ApplyOptions, TxReport};
use tcto_tune::journal::Journal;
use tcto_tune::persist::{self, PersistOptions};
use tcto_tune::system::{read_persist_facts, LinuxEffects};
use tcto_tune::{ChangeKind, Plan, TextStyle};

use crate::cmd_apply::{apply_error, finish};
use crate::cmd_plan::compute_with_profile;
use crate::common::ProfileArgs;
use crate::output::{print_json, stdout_color, CliError, Exit};
use crate::Global;

/// Arguments of `persist`.
#[derive(Debug, Args)]
pub struct PersistArgs {
    #[command(flatten)]
    profile: ProfileArgs,

    /// Print the unified diff of every file it would write; write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Write under DIR instead of `/` (an image or a chroot). DIR must exist.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// The tcto-tune binary the boot unit runs (default: this binary).
    #[arg(long, value_name = "PATH")]
    exec: Option<String>,
}

#[derive(Serialize)]
struct FileDiff {
    path: String,
    diff: String,
}

#[derive(Serialize)]
struct PersistDoc<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    dry_run: bool,
    diffs: Vec<FileDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<TxReport>,
}

fn exec_path(given: Option<String>) -> anyhow::Result<String> {
    let exec = match given {
        Some(p) => p,
        None => std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map(|p| p.display().to_string())
            .map_err(|e| {
                CliError::new(
                    format!("cannot find this binary's path for the unit's ExecStart: {e}"),
                    Some("pass `--exec /usr/local/bin/tcto-tune`".into()),
                    Exit::Error,
                )
            })?,
    };
    persist::check_exec(&exec).map_err(|e| {
        CliError::new(
            e.to_string(),
            Some("pass an absolute path, e.g. `--exec /usr/local/bin/tcto-tune`".into()),
            Exit::Usage,
        )
    })?;
    Ok(exec)
}

/// Run `persist`.
pub fn run(g: &Global, args: PersistArgs) -> anyhow::Result<Exit> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let facts = read_persist_facts(&root).map_err(|e| {
        let hint = if !root.exists() {
            Some(format!(
                "`--root` must be an existing directory; it is never created (mkdir -p {} if that is really the place)",
                root.display()
            ))
        } else if !root.is_dir() {
            Some("`--root` must be a directory (the root of an image or a chroot), not a file".to_owned())
        } else {
            None
        };
        // The whole cause chain on one line, as for every other error.
        CliError {
            hint,
            ..CliError::from(anyhow::Error::new(e))
        }
    })?;
    let (profile, runtime) = compute_with_profile(&args.profile)?;
    let opts = PersistOptions {
        allow: args.profile.allow.iter().cloned().collect(),
        exec: exec_path(args.exec)?,
    };
    let plan = persist::plan_persist(&profile, &runtime, &facts, &opts);
    let diffs: Vec<FileDiff> = plan
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::File)
        .map(|c| FileDiff {
            path: c.key.clone(),
            diff: persist::diff(c),
        })
        .collect();
    let refused = !plan.refusals().is_empty();
    if args.dry_run || refused {
        if g.json {
            print_json(&PersistDoc {
                plan: &plan,
                dry_run: args.dry_run,
                diffs,
                report: None,
            })?;
        } else {
            print_text(&plan, if args.dry_run { &diffs } else { &[] });
        }
        if refused {
            return Err(apply_error(ApplyError::Refused {
                codes: plan.refusals().iter().map(|f| f.code.clone()).collect(),
            }));
        }
        return Ok(Exit::Ok);
    }
    let journal = Journal::open_or_create(&g.state_dir).map_err(|e| apply_error(e.into()))?;
    let _lock = journal.lock().map_err(|e| apply_error(e.into()))?;
    let opts = ApplyOptions {
        command: "persist".into(),
        force_after_crash: false,
    };
    let report =
        apply(&plan, &mut LinuxEffects::default(), Some(&journal), &opts).map_err(apply_error)?;
    if g.json {
        print_json(&PersistDoc {
            plan: &plan,
            dry_run: false,
            diffs,
            report: Some(report.clone()),
        })?;
        return Ok(if report.succeeded() {
            Exit::Ok
        } else {
            Exit::Error
        });
    }
    for f in &plan.findings {
        println!("{f}");
    }
    finish(g, &report)
}

fn print_text(plan: &Plan, diffs: &[FileDiff]) {
    print!(
        "{}",
        plan.render(TextStyle {
            color: stdout_color()
        })
    );
    for d in diffs {
        // The old side is a file on disk (maybe in an image): its control
        // characters are shown escaped.
        println!("\n{}", tcto_tune::escape::escape_lines(d.diff.trim_end()));
    }
}

/// The persisted profile under `root` (`apply --persisted`).
pub fn persisted_path(root: Option<&Path>) -> PathBuf {
    let root = root.unwrap_or(Path::new("/"));
    PathBuf::from(persist::host_path(
        &root.display().to_string(),
        persist::PERSISTED_PATH,
    ))
}
