//! `tcto-tune plan`: what a profile would change here. Changes nothing.

use clap::Args;
use serde::Serialize;
use tcto_tune::persist::sysctl_d;
use tcto_tune::persist::SYSCTL_D_PATH;
use tcto_tune::{Plan, Profile};

use crate::common::{compute_with_profile, ProfileArgs};
use crate::output::{Exit, Printer};

// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    profile: ProfileArgs,

    /// Exit 4 when changes are pending (like `git diff --exit-code`).
    #[arg(long)]
    exit_code: bool,

    /// Also print the diff of the sysctl.d file `persist` would write.
    #[arg(long)]
    diff: bool,
}

#[derive(Serialize)]
struct PlanDoc<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    sysctl_d: SysctlD,
}

#[derive(Serialize)]
struct SysctlD {
    path: String,
    diff: String,
    /// The persisted entries that cannot be read: persist refuses while
    /// there is one, and the diff is empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<String>,
}

/// The diff of the sysctl.d file on this host against what `persist`
/// would write (read only when JSON or `--diff` shows it). Empty when
/// nothing would change, including for a profile without sysctls, whose
/// persist leaves the file alone. The file is read as persist reads it
/// (a symbolic link is shown as a link, never followed); when persist's
/// facts cannot be read (no permission, a FIFO there), as a plain file
/// only: anything else is never opened. While a persisted entry cannot be
/// read, persist refuses and writes nothing: no diff, and the entries.
fn sysctl_d_diff(profile: &Profile, plan: &Plan) -> SysctlD {
    let path = SYSCTL_D_PATH;
    let mut unreadable = Vec::new();
    let diff = match tcto_tune::system::read_persist_facts(std::path::Path::new("/")) {
        Ok(facts) => {
            unreadable = tcto_tune::persist::unreadable_entries(&facts);
            tcto_tune::persist::sysctl_d_diff(profile, plan, &facts)
        }
        Err(_) => {
            let entries = sysctl_d::entries(profile, plan);
            if entries.is_empty() {
                String::new()
            } else {
                let old = match std::fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_symlink() => std::fs::read_link(path)
                        .ok()
                        .map(|t| format!("symbolic link to {}\n", t.display())),
                    Ok(m) if m.is_file() => std::fs::read_to_string(path).ok(),
                    // A FIFO would block the read forever: never opened.
                    Ok(_) => Some("not a regular file\n".to_owned()),
                    Err(_) => None,
                };
                let new = sysctl_d::render(&profile.name, &entries);
                sysctl_d::unified_diff(path, old.as_deref(), Some(&new))
            }
        }
    };
    SysctlD {
        path: path.to_owned(),
        diff,
        unreadable,
    }
}

/// Run `plan`.
pub fn run(p: &Printer, args: PlanArgs) -> anyhow::Result<Exit> {
    let (profile, plan) = compute_with_profile(&args.profile)?;
    if p.json() {
        p.json_value(&PlanDoc {
            plan: &plan,
            sysctl_d: sysctl_d_diff(&profile, &plan),
        })?;
    } else {
        p.out(plan.render(p.style()));
        if args.diff {
            let SysctlD {
                path,
                diff,
                unreadable,
            } = sysctl_d_diff(&profile, &plan);
            if !unreadable.is_empty() {
                p.line(format_args!(
                    "\n{path}: `persist` would refuse and leave it as it is: a persisted entry cannot be read"
                ));
                for why in &unreadable {
                    p.line(format_args!("  {}", tcto_tune::escape_control(why)));
                }
            } else if diff.is_empty() {
                p.line(format_args!("\n{path}: `persist` would leave it as it is"));
            } else {
                // The old side is the file on disk: its control characters
                // are shown escaped.
                p.line(format_args!(
                    "\n{path} as `persist` would write it:\n{}",
                    tcto_tune::escape_lines(&diff)
                ));
            }
        }
    }
    Ok(if !plan.refusals().is_empty() {
        Exit::Refused
    } else if args.exit_code && !plan.is_noop() {
        Exit::Pending
    } else {
        Exit::Ok
    })
}
