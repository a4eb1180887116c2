//! The sysctl kind: plan each sysctl of the profile, and the checks about
//! them (in [`crate::check`]).

use crate::change::{Change, ChangeKind};
use crate::check;
use crate::finding::{Finding, FindingCode, Severity};
use crate::fix::{key_info, normalize, Intent, Scope, SysctlTarget, REMOVED_KEYS};
use crate::kind::{CheckInput, FixKind, Plan, PlanOptions, Skipped, Unchanged};
use crate::profile::Profile;
use crate::scope::{in_net_tree, key_scope, runs_program, KeyScope};
use crate::state::SystemState;
use crate::words::Action;

/// Sysctls: `Profile::sysctl_targets()`, one change per key that differs.
pub struct Sysctl;

impl FixKind for Sysctl {
    fn plan(&self, p: &mut Plan, profile: &Profile, state: &SystemState, opts: &PlanOptions) {
        for target in profile.sysctl_targets() {
            plan_sysctl(p, &target, state, opts);
        }
    }
    fn check(&self, input: &CheckInput) -> Vec<Finding> {
        let mut out = Vec::new();
        out.extend(check::backlog_checks(input));
        out.extend(check::conntrack_max_below_count(input));
        out.extend(check::conntrack_memory(input));
        out.extend(check::conntrack_timeout_range(input));
        out.extend(check::value_out_of_range(input));
        out.extend(check::removed_keys(input));
        out
    }
}

/// Loose reverse-path filtering (`net.ipv4.conf.IFACE.rp_filter`, the
/// `rp-filter-loose` profile): planned as sysctls by [`Sysctl`], checked
/// here ([`check::rp_filter_checks`]).
pub struct RpFilter;

impl FixKind for RpFilter {
    fn check(&self, input: &CheckInput) -> Vec<Finding> {
        check::rp_filter_checks(input)
    }
}

fn plan_sysctl(p: &mut Plan, t: &SysctlTarget, state: &SystemState, opts: &PlanOptions) {
    let key = t.key.as_str();
    let desired = t.desired.value.render();
    let reason = t.desired.reason.clone();
    let skip = |p: &mut Plan, code: FindingCode, why: String, current: Option<String>| {
        p.skipped.push(Skipped {
            kind: ChangeKind::Sysctl,
            key: key.into(),
            code,
            why,
            current,
            desired: desired.clone(),
            intent: t.desired.intent,
        });
    };
    if REMOVED_KEYS.iter().any(|(k, _)| *k == key) {
        return skip(
            p,
            FindingCode::RemovedKey,
            "removed from the kernel".into(),
            None,
        );
    }
    let reading = state.sysctls.get(key);
    let current = reading.and_then(|r| r.value.clone());
    // Before anything else, and before "already as wanted": a key that
    // runs a program is never planned, kept or persisted.
    if let Some(message) = program_refusal(key, &desired, current.as_deref()) {
        let hint = format!(
            "remove it from the profile; no {} lifts this refusal, because nothing about TCP connect timeouts needs it",
            opts.words.name(&Action::AllowAny)
        );
        p.findings
            .push(Finding::new(FindingCode::KeyRunsProgram, Severity::Refuse, message).hint(hint));
        return skip(
            p,
            FindingCode::KeyRunsProgram,
            "makes the kernel run a program or load code: never written".into(),
            current.as_deref().map(normalize),
        );
    }
    if !in_net_tree(key) {
        p.findings.push(
            Finding::new(
                FindingCode::KeyOutsideScope,
                Severity::Refuse,
                format!("`{key}` is outside `net.`: not a TCP connect-timeout setting, and one value for the whole host"),
            )
            .hint(format!(
                "if this change is deliberate, {}",
                opts.words.instruct(&Action::Allow(FindingCode::KeyOutsideScope))
            )),
        );
    }
    // From a child namespace (a container), a host-wide key would change
    // the host's value: skip it unless allowed. An absent key outside
    // `net.` is not a namespace matter: it is unknown, below.
    if !state.in_initial_netns
        && key_scope(key, state) == KeyScope::Host
        && (current.is_some() || in_net_tree(key))
        && !opts.allow.contains("key-host-wide")
    {
        let why = if current.is_some() {
            "host-wide key: written from this child network namespace it would change the host's value".into()
        } else {
            format!("absent in this child network namespace: a host-wide key only the initial namespace has, or no key at all (on the host, `sysctl {key}` tells)")
        };
        return skip(
            p,
            FindingCode::KeyHostWide,
            why,
            current.as_deref().map(normalize),
        );
    }
    let Some(cur) = current.clone() else {
        let info = key_info(key);
        if info.is_none() {
            p.findings.push(
                Finding::new(
                    FindingCode::UnknownSysctl,
                    Severity::Refuse,
                    if state.in_initial_netns || !in_net_tree(key) {
                        format!("sysctl `{key}` does not exist on this host")
                    } else {
                        format!("sysctl `{key}` does not exist in this network namespace (a host-wide `net.` key exists only in the initial one)")
                    },
                )
                .hint(format!(
                    "check the name with `sysctl -a 2>/dev/null | grep {}`; a module may need loading first",
                    key.rsplit('.').next().unwrap_or(key)
                )),
            );
            return skip(
                p,
                FindingCode::UnknownSysctl,
                "no such key here".into(),
                None,
            );
        }
        let why = match info.and_then(|i| i.module) {
            Some(m) => format!("not present here: is the {m} module loaded? (global keys are also absent in some child network namespaces)"),
            None if info.is_some_and(|i| i.scope == Scope::Global) && !state.in_initial_netns => {
                "global key, absent inside a child network namespace".into()
            }
            None => "not present on this kernel".into(),
        };
        if !opts.allow.contains("key-missing") {
            return skip(p, FindingCode::KeyMissing, why, None);
        }
        p.changes.push(Change::sysctl(
            &t.key,
            None,
            &desired,
            t.desired.intent,
            reason,
        ));
        return;
    };
    let wanted = match (
        t.desired.intent,
        cur.trim().parse::<i64>(),
        t.desired.value.as_int(),
    ) {
        (Intent::AtLeast, Ok(c), Some(v)) if c >= v => None,
        (Intent::AtMost, Ok(c), Some(v)) if c <= v => None,
        (Intent::Exact, ..) if normalize(&cur) == normalize(&desired) => None,
        _ => Some(desired.clone()),
    };
    let Some(wanted) = wanted else {
        p.unchanged.push(Unchanged {
            kind: ChangeKind::Sysctl,
            key: key.into(),
            current: normalize(&cur),
            desired,
            intent: t.desired.intent,
            reason,
        });
        return;
    };
    if !reading.is_some_and(|r| r.writable) && !opts.allow.contains("not-writable-here") {
        let why =
            if key_info(key).is_some_and(|i| i.scope == Scope::Global) && !state.in_initial_netns {
                "global key: only the initial network namespace can change it".to_owned()
            } else {
                "read-only here (the kernel marks it so in this namespace)".to_owned()
            };
        return skip(p, FindingCode::NotWritableHere, why, Some(normalize(&cur)));
    }
    p.changes.push(Change::sysctl(
        &t.key,
        Some(&cur),
        &wanted,
        t.desired.intent,
        reason,
    ));
}

/// The `key-runs-program` message when writing `desired` to `key` would
/// make the kernel run a program, or when the current value is one: then
/// replacing it would make the rollback (or a failed apply's revert) write
/// a program path back, which tcto-tune never does.
fn program_refusal(key: &str, desired: &str, current: Option<&str>) -> Option<String> {
    if let Some(why) = runs_program(key, desired) {
        return Some(format!(
            "`{key} = {desired}` would make the kernel run a program or load code: {why}"
        ));
    }
    let cur = normalize(current?);
    runs_program(key, &cur).map(|why| {
        format!("`{key}` is now `{cur}`: replacing it would make its rollback write a program path back ({why})")
    })
}
