//! `tcto-tune plan`: what a profile would change here. Changes nothing.

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tcto_tune::persist::SYSCTL_D_PATH;
use tcto_tune::system::{read_state, Backends};
use tcto_tune::{sysctl_d, Plan, Profile, SystemState, TextStyle};

use crate::common::ProfileArgs;
use crate::output::{print_json, stdout_color, Exit};
use crate::Global;

/// Arguments of `plan`.
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
}

/// Compute the plan for this host, and return the resolved profile with it.
pub fn compute_with_profile(args: &ProfileArgs) -> anyhow::Result<(Profile, Plan)> {
    let (profile, _state, plan) = compute_full(args)?;
    Ok((profile, plan))
}

/// The profile, the state it was planned against, and the plan.
pub fn compute_full(args: &ProfileArgs) -> anyhow::Result<(Profile, SystemState, Plan)> {
    let (profile, opts) = args.resolve()?;
    let state = read_state(&profile, &Backends::linux()).context("cannot read the system state")?;
    let plan = tcto_tune::plan_with(&profile, &state, &opts);
    Ok((profile, state, plan))
}

/// The diff of the sysctl.d file on this host against what `persist`
/// would write (read only when JSON or `--diff` shows it). Empty when
/// nothing would change, including for a profile without sysctls, whose
/// persist leaves the file alone.
fn sysctl_d_diff(profile: &Profile, plan: &Plan) -> SysctlD {
    let path = SYSCTL_D_PATH;
    let entries = sysctl_d::entries(profile, plan);
    let diff = if entries.is_empty() {
        String::new()
    } else {
        let old = std::fs::read_to_string(path).ok();
        // Composed with what is persisted already, as `persist` writes it.
        let new = match tcto_tune::system::read_persist_facts(std::path::Path::new("/")) {
            Ok(facts) => tcto_tune::persist::sysctl_d_preview(profile, plan, &facts),
            Err(_) => sysctl_d::render(&profile.name, &entries),
        };
        sysctl_d::unified_diff(path, old.as_deref(), Some(&new))
    };
    SysctlD {
        path: path.to_owned(),
        diff,
    }
}

/// Run `plan`.
pub fn run(g: &Global, args: PlanArgs) -> anyhow::Result<Exit> {
    let (profile, plan) = compute_with_profile(&args.profile)?;
    if g.json {
        print_json(&PlanDoc {
            plan: &plan,
            sysctl_d: sysctl_d_diff(&profile, &plan),
        })?;
    } else {
        print!(
            "{}",
            plan.render(TextStyle {
                color: stdout_color()
            })
        );
        if args.diff {
            let SysctlD { path, diff } = sysctl_d_diff(&profile, &plan);
            if diff.is_empty() {
                println!("\n{path}: `persist` would leave it as it is");
            } else {
                // The old side is the file on disk: its control characters
                // are shown escaped.
                println!(
                    "\n{path} as `persist` would write it:\n{}",
                    tcto_tune::escape::escape_lines(&diff)
                );
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
