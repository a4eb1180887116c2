//! `tcto-tune persist`: write the files that make a profile survive a reboot.
//!
//! Each persisted profile is an entry in /etc/tcto-tune/persisted.d; the
//! other files are rendered from all of them (`tcto_tune::persist::entries`).
//! `--profile` adds or replaces one entry, `--remove` drops one, `--list`
//! shows them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use tcto_tune::apply::{apply, ApplyError, ApplyOptions, Run, TxReport};
use tcto_tune::persist::{self, PersistOptions};
use tcto_tune::system::{read_persist_facts, SimEffects};
use tcto_tune::{ChangeKind, Plan};

use crate::common::{
    apply_error, compute_with_profile, escape_error, finish, flag_hint, report_text, root_error,
    shell_quote, with_user_flags, ProfileArgs,
};
use crate::output::{CliError, Exit, Printer};
use crate::Global;

// Arguments of `persist`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["profile", "remove", "list"])))]
pub struct PersistArgs {
    #[command(flatten)]
    profile: Option<ProfileArgs>,

    /// Stop persisting the profile NAME: drop its entry and rewrite the
    /// files from the others (journaled; `rollback` undoes it).
    #[arg(long, value_name = "NAME", conflicts_with = "ProfileArgs")]
    remove: Option<String>,

    /// List the persisted profiles and what each one persists.
    #[arg(long, conflicts_with_all = ["ProfileArgs", "dry_run", "exec", "force_after_crash"])]
    list: bool,

    /// Print the unified diff of every file it would write; write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Write under DIR instead of `/` (an image or a chroot). DIR must exist.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// The tcto-tune binary the boot unit runs (default: this binary).
    #[arg(long, value_name = "PATH")]
    exec: Option<String>,

    /// Proceed although an earlier transaction was interrupted (its record
    /// is kept; `rollback --to ID` can still undo it).
    #[arg(long)]
    force_after_crash: bool,

    #[command(flatten)]
    wait: crate::common::WaitArg,
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
pub fn run(g: &Global, p: &Printer, args: PersistArgs) -> anyhow::Result<Exit> {
    // Hints carry the user's state dir (the CLI's words say "go ahead
    // after the crash" as this very command, whole).
    with_user_flags(g, run_persist(g, p, args))
}

fn run_persist(g: &Global, p: &Printer, args: PersistArgs) -> anyhow::Result<Exit> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let facts = read_persist_facts(&root).map_err(|e| root_error(&root, e))?;
    if args.list {
        return list(g, p, &args, &facts);
    }
    let plan = match (&args.profile, &args.remove) {
        (Some(pa), None) => {
            if pa.replace {
                // An entry replaces the profile's earlier one anyway; the
                // flag is about the live NOTRACK table, which persist does
                // not touch. Said, rather than silently ignored.
                return Err(CliError::new(
                    "`--replace` is for `plan` and `apply` (the live NOTRACK table); `persist --profile X` always replaces X's persisted entry",
                    Some("drop `--replace`".into()),
                    Exit::Usage,
                )
                .into());
            }
            let (profile, runtime) = compute_with_profile(pa)?;
            let opts = PersistOptions {
                allow: pa.allow.iter().cloned().collect(),
                exec: exec_path(args.exec.clone())?,
                words: crate::words::cli_words(),
            };
            persist::plan_persist(&profile, &runtime, &facts, &opts)
        }
        (None, Some(name)) => {
            let opts = PersistOptions {
                // Another file overriding a key that stays persisted is no
                // reason to keep a profile the user wants gone.
                allow: [persist::codes::OVERRIDDEN.to_string()]
                    .into_iter()
                    .collect(),
                exec: exec_path(args.exec.clone())?,
                words: crate::words::cli_words(),
            };
            let initial = tcto_tune::system::Backends::linux()
                .host
                .in_initial_netns()
                .unwrap_or(true);
            persist::plan_remove(name, &facts, &opts, initial).map_err(|e| {
                let hint = match &e {
                    // Only the user can move a directory out of the way.
                    persist::PersistError::NotAFile { .. } => e.hint().unwrap_or_default(),
                    _ => format!(
                        "`{}` lists what is persisted",
                        with_flags(g, &args, "persist --list")
                    ),
                };
                CliError::new(e.to_string(), Some(hint), Exit::Error)
            })?
        }
        _ => {
            return Err(CliError::new(
                "give `--profile NAME`, `--remove NAME` or `--list`",
                None,
                Exit::Usage,
            )
            .into())
        }
    };
    let mut plan = plan;
    let prefix = with_flags(g, &args, "persist");
    for f in &mut plan.findings {
        flag_hint(f, &prefix);
    }
    let diffs: Vec<FileDiff> = plan
        .changes
        .iter()
        .filter(|c| c.kind() == ChangeKind::File)
        .map(|c| FileDiff {
            path: c.key(),
            diff: persist::diff(c),
        })
        .collect();
    let refused = !plan.refusals().is_empty();
    if refused {
        if p.json() {
            p.json_value(&PersistDoc {
                plan: &plan,
                dry_run: args.dry_run,
                diffs,
                report: None,
            })?;
        } else {
            print_text(p, &plan, if args.dry_run { &diffs } else { &[] });
        }
        return Err(refusal(&plan));
    }
    let opts = ApplyOptions {
        command: "persist".into(),
        force_after_crash: args.force_after_crash,
    };
    if args.dry_run {
        crate::common::dry_run_blocked(g, args.force_after_crash)?;
        // The same transaction as the real run, against a simulated host
        // holding what the plan observed: it decides what would be
        // written, and a simulated refusal shows.
        let mut sim = SimEffects::from_changes(&plan.changes);
        let report = apply(&plan, Run::DryRun(&mut sim), &opts).map_err(apply_error)?;
        let ok = report.succeeded();
        if p.json() {
            p.json_value(&PersistDoc {
                plan: &plan,
                dry_run: true,
                diffs,
                report: Some(report),
            })?;
        } else {
            print_text(p, &plan, &diffs);
            if !ok {
                // Only a failed dry run says more than the plan and diffs.
                p.line(report_text(g, &report));
            }
        }
        return Ok(if ok { Exit::Ok } else { Exit::Error });
    }
    let report = crate::common::apply_journaled(g, p, &plan, &args.wait, &opts)?;
    if p.json() {
        p.json_value(&PersistDoc {
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
        p.line(f);
    }
    finish(g, p, &report)
}

/// The refusal error; codes `--allow` cannot turn off are said to be so
/// instead of suggesting `--allow` for them.
fn refusal(plan: &Plan) -> anyhow::Error {
    let codes: Vec<String> = plan.refusals().iter().map(|f| f.code.to_string()).collect();
    let (never, allowable): (Vec<String>, Vec<String>) = codes
        .iter()
        .cloned()
        .partition(|c| persist::NEVER_ALLOWED.contains(&c.as_str()));
    if never.is_empty() {
        return apply_error(ApplyError::Refused { codes });
    }
    let mut hint = format!(
        "the findings say why and what to do; {} cannot be allowed",
        never
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !allowable.is_empty() {
        hint.push_str(&format!(
            "; the others with {}",
            allowable
                .iter()
                .map(|c| format!("`--allow {c}`"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    CliError::new(
        format!("refused by safety check(s): {}", codes.join(", ")),
        Some(hint),
        Exit::Refused,
    )
    .into()
}

/// `tcto-tune CMD` with the user's `--state-dir` and `--root`, for hints.
fn with_flags(g: &Global, args: &PersistArgs, cmd: &str) -> String {
    let mut s = format!(
        "tcto-tune --state-dir {} {cmd}",
        shell_quote(&g.state_dir.display().to_string())
    );
    if let Some(r) = &args.root {
        s.push_str(&format!(
            " --root {}",
            shell_quote(&r.display().to_string())
        ));
    }
    s
}

#[derive(Serialize)]
struct ListDoc<'a> {
    root: &'a str,
    persisted: Vec<ListEntry<'a>>,
    unreadable: Vec<&'a tcto_tune::Finding>,
}

#[derive(Serialize)]
struct ListEntry<'a> {
    name: &'a str,
    file: &'a str,
    sysctls: BTreeMap<&'a str, &'a str>,
    notrack: usize,
    offloads: usize,
    migrated: bool,
}

fn list(
    g: &Global,
    p: &Printer,
    args: &PersistArgs,
    facts: &persist::PersistFacts,
) -> anyhow::Result<Exit> {
    if let Some(e) = escape_error(facts) {
        return Err(e);
    }
    let (entries, mut bad) = persist::persisted(facts, &crate::words::CLI);
    let prefix = with_flags(g, args, "persist");
    for f in &mut bad {
        flag_hint(f, &prefix);
    }
    let dir = persist::host_path(&facts.root, persist::PERSISTED_PATH);
    let rows: Vec<ListEntry> = entries
        .iter()
        .map(|e| ListEntry {
            name: &e.name,
            file: &e.file,
            sysctls: e
                .sysctls
                .iter()
                .map(|s| (s.key.as_str(), s.value.as_str()))
                .collect(),
            notrack: e.notrack.len(),
            offloads: e.offload.len(),
            migrated: e.file.starts_with(&dir),
        })
        .collect();
    if p.json() {
        p.json_doc(&ListDoc {
            root: &facts.root,
            persisted: rows,
            unreadable: bad.iter().collect(),
        })?;
        return Ok(if bad.is_empty() {
            Exit::Ok
        } else {
            Exit::Error
        });
    }
    if rows.is_empty() && bad.is_empty() {
        p.line(format_args!("nothing persisted ({dir} has no entries)"));
        return Ok(Exit::Ok);
    }
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    p.line(format_args!(
        "{:<name_w$}  SYSCTLS  NOTRACK  OFFLOADS  FILE",
        "NAME"
    ));
    for r in &rows {
        let file = if r.migrated {
            r.file.to_owned()
        } else {
            format!("{} (earlier format, migrated by the next persist)", r.file)
        };
        p.line(format_args!(
            "{:<name_w$}  {:>7}  {:>7}  {:>8}  {file}",
            r.name,
            r.sysctls.len(),
            r.notrack,
            r.offloads
        ));
    }
    for f in &bad {
        p.line(f);
    }
    Ok(if bad.is_empty() {
        Exit::Ok
    } else {
        Exit::Error
    })
}

fn print_text(p: &Printer, plan: &Plan, diffs: &[FileDiff]) {
    p.out(plan.render(p.style()));
    for d in diffs {
        // The old side is a file on disk (maybe in an image): its control
        // characters are shown escaped.
        p.line(format_args!(
            "\n{}",
            tcto_tune::escape_lines(d.diff.trim_end())
        ));
    }
}
