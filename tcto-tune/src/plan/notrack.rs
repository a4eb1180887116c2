//! The NOTRACK kind: the profile's trusted flows become one change that
//! writes the whole `inet tcto_tune` table, and the NOTRACK checks. The
//! rule model and its analyses are [`crate::notrack`].

use crate::change::{Change, ChangeKind, Target, Value};
use crate::finding::{Finding, FindingCode, Severity};
use crate::fix::Intent;
use crate::kind::{CheckInput, FixKind, Plan, PlanOptions, Skipped, Unchanged};
use crate::notrack::{
    compose, key, scope, scoped_flows, stateful, usable_flows, NotrackTable, ScopedFlow,
};
use crate::profile::Profile;
use crate::state::SystemState;

/// NOTRACK rules for trusted flows (`Profile.notrack`).
pub struct Notrack;

impl FixKind for Notrack {
    fn plan(&self, p: &mut Plan, profile: &Profile, state: &SystemState, opts: &PlanOptions) {
        plan_notrack(p, profile, state, opts.notrack_replace);
    }
    fn check(&self, input: &CheckInput) -> Vec<Finding> {
        checks(input)
    }
}

/// Planner step: one `notrack` change writing the whole table (the table
/// in place with this profile's flows added, or with `replace` replacing
/// the ones it applied before: [`compose`]), or an "already in place"
/// entry; flows missing a field are skipped.
pub fn plan_notrack(p: &mut Plan, profile: &Profile, state: &SystemState, replace: bool) {
    for f in &profile.notrack {
        if ScopedFlow::of(f).is_none() {
            let show = |c: Option<String>| c.unwrap_or_else(|| "?".into());
            p.skipped.push(Skipped {
                kind: ChangeKind::Notrack,
                key: format!(
                    "{} -> {} port {}",
                    show(f.from.map(|c| c.to_string())),
                    show(f.to.map(|c| c.to_string())),
                    show(f.port.map(|c| c.to_string()))
                ),
                code: FindingCode::NotrackUnscoped,
                why: "a NOTRACK flow needs `from`, `to` (one address family) and `port`".into(),
                current: None,
                desired: String::new(),
                intent: Default::default(),
            });
        }
    }
    let own = usable_flows(profile);
    if own.is_empty() {
        return;
    }
    let current = state.notrack_table.as_ref();
    if let Some(t) = current.filter(|t| !t.foreign.is_empty()) {
        // Writing the table would delete what someone else put there.
        p.findings.push(foreign_finding(t));
        return;
    }
    let composed = compose::compose(current, &profile.name, &own, replace);
    p.findings
        .extend(compose::findings(&composed, &profile.name));
    let Some(want) = composed.table else {
        return;
    };
    let mut reasons: Vec<String> = Vec::new();
    for r in profile.notrack.iter().filter_map(|f| f.reason.clone()) {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    if current == Some(&want) {
        // Rendered once: a table of 1,000 flows is some 50 KiB of text.
        let text = want.to_nft();
        p.unchanged.push(Unchanged {
            kind: ChangeKind::Notrack,
            key: key(),
            current: text.clone(),
            desired: text,
            intent: Intent::Exact,
            reason,
        });
        return;
    }
    p.changes.push(Change {
        current: current.map(NotrackTable::to_nft),
        desired: want.to_nft(),
        intent: Intent::Exact,
        reason,
        target: Target::notrack_table(),
        before: Value::notrack_table(current),
        after: Value::notrack_table(Some(&want)),
    });
}

/// `notrack-foreign-content`: the table holds what tcto-tune did not write.
fn foreign_finding(t: &NotrackTable) -> Finding {
    let what: Vec<&str> = t.foreign.iter().map(|f| f.what.as_str()).collect();
    let remove: Vec<&str> = t.foreign.iter().map(|f| f.remove.as_str()).collect();
    Finding::new(
        FindingCode::NotrackForeignContent,
        Severity::Refuse,
        format!(
            "table {} holds content tcto-tune did not write: {}; tcto-tune writes the whole table, so it plans no NOTRACK change over it",
            key(),
            what.join(", ")
        ),
    )
    .hint(format!(
        "move it into a table of your own, or remove it: `{}`",
        remove.join("`, `")
    ))
}

/// Every NOTRACK check: `notrack-unscoped`,
/// `notrack-breaks-stateful-filter`, `notrack-filter-undecided`, `notrack-loopback`,
/// `notrack-bypasses-conntrack`.
pub fn checks(input: &CheckInput) -> Vec<Finding> {
    let mut out = scope::per_flow(input.profile);
    // Overlaps are the planner's findings (on the composed part).
    let flows = scoped_flows(input.profile);
    if flows.is_empty() {
        return out;
    }
    out.extend(scope::union_findings(&flows));
    out.extend(stateful::worded_findings(
        &input.state.filter_chains,
        &flows,
        input.words.get(),
    ));
    for f in flows.iter().filter(|f| f.touches_loopback()) {
        out.push(
            Finding::new(
                FindingCode::NotrackLoopback,
                Severity::Warn,
                format!(
                    "flow {} is on loopback: conntrack sees loopback packets first at OUTPUT, so the table also NOTRACKs its request direction in the output chain",
                    f.label()
                ),
            )
            .hint("local clients of this port are untracked too: make sure every filter chain on `lo` accepts `ct state untracked`"),
        );
    }
    let which = if flows.len() <= 3 {
        flows
            .iter()
            .map(ScopedFlow::label)
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!("{} flows", flows.len())
    };
    out.push(
        Finding::new(
            FindingCode::NotrackBypassesConntrack,
            Severity::Info,
            format!(
                "NOTRACKed flows ({which}) bypass NAT (DNAT, masquerade) and conntrack-based accounting: `conntrack -L`, ct counters, ct-based limits no longer see them"
            ),
        )
        .hint("do not NOTRACK flows that are NATed on this host"),
    );
    out
}
