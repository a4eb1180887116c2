//! `tcto-tune persist`: write the files that make a profile survive a reboot.
//!
//! Each persisted profile is an entry in /etc/tcto-tune/persisted.d; the
//! other files are rendered from all of them (`tcto_tune::persist::entries`).
//! `--profile` adds or replaces one entry, `--remove` drops one, `--list`
//! shows them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use clap::Args;
use serde::Serialize;
use tcto_tune::apply::{apply, ApplyError, ApplyOptions, Run, TxReport};
use tcto_tune::journal::Journal;
use tcto_tune::persist::{self, PersistOptions};
use tcto_tune::system::{read_persist_facts, LinuxEffects};
use tcto_tune::{ChangeKind, Plan, TextStyle};

use crate::cmd_apply::{apply_error, finish};
use crate::cmd_plan::compute_with_profile;
use crate::common::ProfileArgs;
use crate::output::{print_json, print_json_doc, stdout_color, CliError, Exit};
use crate::Global;

/// Arguments of `persist`.
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
    #[arg(long, conflicts_with_all = ["ProfileArgs", "dry_run", "exec"])]
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

fn root_error(root: &Path, e: tcto_tune::system::SystemError) -> anyhow::Error {
    let hint = if !root.exists() {
        Some(format!(
            "`--root` must be an existing directory; it is never created (mkdir -p {} if that is really the place)",
            root.display()
        ))
    } else if !root.is_dir() {
        Some(
            "`--root` must be a directory (the root of an image or a chroot), not a file"
                .to_owned(),
        )
    } else {
        None
    };
    // The whole cause chain on one line, as for every other error.
    CliError {
        hint,
        ..CliError::from(anyhow::Error::new(e))
    }
    .into()
}

/// Run `persist`.
pub fn run(g: &Global, args: PersistArgs) -> anyhow::Result<Exit> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let facts = read_persist_facts(&root).map_err(|e| root_error(&root, e))?;
    if args.list {
        return list(g, &args, &facts);
    }
    let plan = match (&args.profile, &args.remove) {
        (Some(p), None) => {
            if p.replace {
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
            let (profile, runtime) = compute_with_profile(p)?;
            let opts = PersistOptions {
                allow: p.allow.iter().cloned().collect(),
                exec: exec_path(args.exec.clone())?,
            };
            persist::plan_persist(&profile, &runtime, &facts, &opts)
        }
        (None, Some(name)) => {
            let opts = PersistOptions {
                // Another file overriding a key that stays persisted is no
                // reason to keep a profile the user wants gone.
                allow: [persist::codes::OVERRIDDEN.to_owned()]
                    .into_iter()
                    .collect(),
                exec: exec_path(args.exec.clone())?,
            };
            let initial = tcto_tune::system::Backends::linux()
                .host
                .in_initial_netns()
                .unwrap_or(true);
            persist::plan_remove(name, &facts, &opts, initial).map_err(|e| {
                CliError::new(
                    e.to_string(),
                    Some(format!(
                        "`{}` lists what is persisted",
                        with_flags(g, &args, "persist --list")
                    )),
                    Exit::Error,
                )
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
            return Err(refusal(&plan));
        }
        return Ok(Exit::Ok);
    }
    let journal = Journal::open_or_create(&g.state_dir).map_err(|e| apply_error(e.into()))?;
    let locked =
        crate::common::lock_journal(&journal, &args.wait).map_err(|e| apply_error(e.into()))?;
    let opts = ApplyOptions {
        command: "persist".into(),
        force_after_crash: false,
    };
    let report = apply(
        &plan,
        Run::Journaled(&mut LinuxEffects::default(), &locked),
        &opts,
    )
    .map_err(apply_error)?;
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

/// The refusal error; codes `--allow` cannot turn off are said to be so
/// instead of suggesting `--allow` for them.
fn refusal(plan: &Plan) -> anyhow::Error {
    let codes: Vec<String> = plan.refusals().iter().map(|f| f.code.clone()).collect();
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

/// Paths leading out of the root make `--list` and `apply --persisted` fail.
fn escape_error(facts: &persist::PersistFacts) -> Option<anyhow::Error> {
    let e = facts.escapes.first()?;
    let f = persist::root_escape(e);
    Some(CliError::new(format!("refused: {}", f.message), f.hint, Exit::Error).into())
}

/// A hint naming `tcto-tune persist --...` gets the user's flags, so that
/// it runs as printed.
fn flag_hint(f: &mut tcto_tune::Finding, prefix: &str) {
    if let Some(h) = &mut f.hint {
        *h = h.replace("`tcto-tune persist --", &format!("`{prefix} --"));
    }
}

/// `tcto-tune CMD` with the user's `--state-dir` and `--root`, for hints.
fn with_flags(g: &Global, args: &PersistArgs, cmd: &str) -> String {
    let mut s = format!("tcto-tune --state-dir {} {cmd}", g.state_dir.display());
    if let Some(r) = &args.root {
        s.push_str(&format!(" --root {}", r.display()));
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

fn list(g: &Global, args: &PersistArgs, facts: &persist::PersistFacts) -> anyhow::Result<Exit> {
    if let Some(e) = escape_error(facts) {
        return Err(e);
    }
    let (entries, mut bad) = persist::persisted(facts);
    let prefix = with_flags(g, args, "persist");
    for f in &mut bad {
        flag_hint(f, &prefix);
    }
    let dir = persist::host_path(&facts.root, persist::PERSISTED_PATH);
    let rows: Vec<ListEntry> = entries
        .iter()
        .map(|p| ListEntry {
            name: &p.name,
            file: &p.file,
            sysctls: p
                .sysctls
                .iter()
                .map(|e| (e.key.as_str(), e.value.as_str()))
                .collect(),
            notrack: p.notrack.len(),
            offloads: p.offload.len(),
            migrated: p.file.starts_with(&dir),
        })
        .collect();
    if g.json {
        print_json_doc(&ListDoc {
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
        println!("nothing persisted ({dir} has no entries)");
        return Ok(Exit::Ok);
    }
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!("{:<name_w$}  SYSCTLS  NOTRACK  OFFLOADS  FILE", "NAME");
    for r in &rows {
        let file = if r.migrated {
            r.file.to_owned()
        } else {
            format!("{} (earlier format, migrated by the next persist)", r.file)
        };
        println!(
            "{:<name_w$}  {:>7}  {:>7}  {:>8}  {file}",
            r.name,
            r.sysctls.len(),
            r.notrack,
            r.offloads
        );
    }
    for f in &bad {
        println!("{f}");
    }
    Ok(if bad.is_empty() {
        Exit::Ok
    } else {
        Exit::Error
    })
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

/// The profile `apply --persisted` plans: the NOTRACK rules and offloads
/// of every persisted entry under `root`, as one profile.
pub fn persisted_profile(g: &Global, root: Option<&Path>) -> anyhow::Result<tcto_tune::Profile> {
    let prefix = match root {
        Some(r) => format!(
            "tcto-tune --state-dir {} persist --root {}",
            g.state_dir.display(),
            r.display()
        ),
        None => format!("tcto-tune --state-dir {} persist", g.state_dir.display()),
    };
    let fail = |f: &tcto_tune::Finding| -> anyhow::Error {
        let mut f = f.clone();
        flag_hint(&mut f, &prefix);
        CliError::new(f.message, f.hint, Exit::Error).into()
    };
    let root = root.unwrap_or(Path::new("/"));
    let facts = read_persist_facts(root).map_err(|e| root_error(root, e))?;
    if let Some(e) = escape_error(&facts) {
        return Err(e);
    }
    let dir = persist::host_path(&facts.root, persist::PERSISTED_PATH);
    let (entries, bad) = persist::persisted(&facts);
    if let Some(f) = bad.first() {
        return Err(fail(f));
    }
    if let Some(f) = persist::entries::conflicts(&entries).first() {
        return Err(fail(f));
    }
    if !entries.iter().any(persist::Persisted::restores) {
        return Err(CliError::new(
            format!("nothing persisted: no entry in `{dir}` has NOTRACK rules or offloads"),
            Some(format!("`{prefix} --list` shows what is persisted; persist a profile with `[[notrack]]` or `[[offload]]` first")),
            Exit::Error,
        )
        .into());
    }
    let text = persist::entries::boot_profile(&entries);
    tcto_tune::profile::load_text(
        tcto_tune::profile::ProfileOrigin::File(PathBuf::from(&dir).join("persisted.toml")),
        &text,
        &BTreeMap::new(),
    )
    .with_context(|| format!("cannot load the persisted entries in `{dir}`"))
}
