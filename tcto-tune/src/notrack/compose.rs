//! Several profiles in one table: what an apply of one profile makes of
//! the table already in place.
//!
//! The table is the union of the applied profiles' flows, each rule (and
//! each per-profile set) tagged with its profile ([`Part`]). Applying a
//! profile adds its flows to its own part and leaves every other part as
//! it is; only `--replace` drops what the same profile applied before.
//! Nothing is replaced silently: flows kept from earlier applies are
//! named in an info finding (`notrack-flows-kept`). Rolling back an apply
//! restores the table journaled before it, so it removes exactly that
//! apply's flows.

use std::collections::HashSet;

use super::overlap::{self, Settled};
use super::table::{tag_of, NotrackTable, Part, ScopedFlow};
use crate::finding::{Finding, FindingCode, Severity};

/// The table an apply of `own` (the flows of profile `profile`) leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The wanted table; `None` when no part has a flow.
    pub table: Option<NotrackTable>,
    /// How this profile's part was settled ([`overlap`]).
    pub settled: Settled,
    /// This profile's flows from earlier applies that it no longer names,
    /// kept (without `--replace`).
    pub kept_own: Vec<ScopedFlow>,
    /// The other parts: tag (`None`: untagged) and flow count, kept.
    pub others: Vec<(Option<String>, usize)>,
}

/// Compose the table for an apply of `own` by `profile` over `current`.
pub fn compose(
    current: Option<&NotrackTable>,
    profile: &str,
    own: &[ScopedFlow],
    replace: bool,
) -> Composed {
    let tag = Some(tag_of(profile));
    let mut parts = current.map(NotrackTable::parts).unwrap_or_default();
    let idx = parts.iter().position(|p| p.profile == tag);
    let before = idx.map_or(vec![], |i| std::mem::take(&mut parts[i].flows));
    let named: HashSet<ScopedFlow> = own.iter().copied().collect();
    let kept_own: Vec<ScopedFlow> = if replace {
        vec![]
    } else {
        before
            .iter()
            .filter(|f| !named.contains(f))
            .copied()
            .collect()
    };
    // Earlier flows keep their place, so a re-apply rewrites nothing.
    let kept = if replace { &[][..] } else { &before[..] };
    let mut placed = HashSet::new();
    let flows: Vec<ScopedFlow> = kept
        .iter()
        .chain(own)
        .copied()
        .filter(|f| placed.insert(*f))
        .collect();
    // Untagged flows (written before tags) that this profile names are
    // taken over as its own, not doubled.
    for part in parts.iter_mut().filter(|p| p.profile.is_none()) {
        part.flows.retain(|f| !named.contains(f));
    }
    let settled = overlap::settle(&flows);
    match idx {
        Some(i) => parts[i].flows = settled.flows.clone(),
        None => parts.push(Part {
            profile: tag.clone(),
            flows: settled.flows.clone(),
        }),
    }
    parts.retain(|p| !p.flows.is_empty());
    let others = parts
        .iter()
        .filter(|p| p.profile != tag)
        .map(|p| (p.profile.clone(), p.flows.len()))
        .collect();
    Composed {
        table: (!parts.is_empty()).then(|| NotrackTable::for_parts(&parts)),
        settled,
        kept_own,
        others,
    }
}

fn list(flows: &[ScopedFlow]) -> String {
    let mut s: Vec<String> = flows.iter().take(3).map(ScopedFlow::label).collect();
    if flows.len() > 3 {
        s.push(format!("and {} more", flows.len() - 3));
    }
    s.join(", ")
}

/// `notrack-flows-kept` (info), and the overlap findings of this part.
pub fn findings(c: &Composed, profile: &str) -> Vec<Finding> {
    let mut out = overlap::findings(&c.settled);
    if !c.kept_own.is_empty() {
        out.push(
            Finding::new(
                FindingCode::NotrackFlowsKept,
                Severity::Info,
                format!(
                    "the table keeps {} flow(s) that profile `{profile}` applied before and this run does not name: {}",
                    c.kept_own.len(),
                    list(&c.kept_own)
                ),
            )
            .hint("pass --replace to replace them with this run's flows, or roll back the apply that added them"),
        );
    }
    if !c.others.is_empty() {
        let names: Vec<String> = c
            .others
            .iter()
            .map(|(tag, n)| match tag {
                Some(t) => format!("{n} of profile `{t}`"),
                None => format!("{n} untagged (written before profiles were tagged)"),
            })
            .collect();
        out.push(Finding::new(
            FindingCode::NotrackFlowsKept,
            Severity::Info,
            format!(
                "the table also keeps the flows other profiles applied: {}",
                names.join(", ")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(from: &str, port: u16) -> ScopedFlow {
        ScopedFlow {
            from: from.parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port,
        }
    }

    #[test]
    fn a_second_profile_adds_to_the_first_and_each_is_tagged() {
        let a = compose(None, "front", &[flow("10.0.1.0/24", 8080)], false);
        let t = a.table.clone().unwrap();
        assert!(t
            .to_nft()
            .contains("tcp dport 8080 notrack comment \"front\""));
        let b = compose(Some(&t), "other", &[flow("10.0.3.0/24", 9090)], false);
        let t2 = b.table.clone().unwrap();
        assert_eq!(t2.flow_count(), 2);
        let text = t2.to_nft();
        assert!(
            text.contains(
                "10.0.1.0/24 ip daddr 10.0.2.0/24 tcp dport 8080 notrack comment \"front\""
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "10.0.3.0/24 ip daddr 10.0.2.0/24 tcp dport 9090 notrack comment \"other\""
            ),
            "{text}"
        );
        assert_eq!(b.others, [(Some("front".into()), 1)]);
        assert!(findings(&b, "other")[0]
            .message
            .contains("1 of profile `front`"));
        // Applying the first again changes nothing.
        let again = compose(Some(&t2), "front", &[flow("10.0.1.0/24", 8080)], false);
        assert_eq!(again.table.as_ref(), Some(&t2));
    }

    #[test]
    fn the_same_profile_with_other_flows_keeps_the_old_ones_unless_replace() {
        let t = compose(None, "p", &[flow("10.0.1.0/24", 8080)], false)
            .table
            .unwrap();
        let c = compose(Some(&t), "p", &[flow("10.0.3.0/24", 9090)], false);
        assert_eq!(c.table.as_ref().unwrap().flow_count(), 2);
        assert_eq!(c.kept_own, [flow("10.0.1.0/24", 8080)]);
        let f = findings(&c, "p");
        assert_eq!(f[0].code, "notrack-flows-kept");
        assert!(f[0].hint.as_deref().unwrap().contains("--replace"));
        let r = compose(Some(&t), "p", &[flow("10.0.3.0/24", 9090)], true);
        assert_eq!(r.table.as_ref().unwrap().flow_count(), 1);
        assert!(r.kept_own.is_empty());
        assert!(findings(&r, "p").is_empty());
    }

    #[test]
    fn replace_keeps_other_profiles_and_a_big_part_gets_its_own_sets() {
        let many: Vec<_> = (0..40u16)
            .map(|i| flow(&format!("10.9.{i}.0/24"), 80))
            .collect();
        let t = compose(None, "big", &many, false).table.unwrap();
        assert_eq!(t.sets[0].name, "flows4-big");
        let c = compose(Some(&t), "small", &[flow("10.0.1.0/24", 8080)], true);
        let t2 = c.table.unwrap();
        assert_eq!(t2.sets, t.sets, "the other profile's set is untouched");
        assert_eq!(t2.flow_count(), 41);
        assert!(t2.to_nft().contains("@flows4-big notrack comment \"big\""));
        // Parts read back give the same table.
        assert_eq!(NotrackTable::for_parts(&t2.parts()), t2);
    }

    #[test]
    fn untagged_flows_this_profile_names_are_taken_over_not_doubled() {
        let old = NotrackTable::for_flows(&[flow("10.0.1.0/24", 8080), flow("10.0.9.0/24", 80)]);
        let c = compose(Some(&old), "p", &[flow("10.0.1.0/24", 8080)], false);
        let t = c.table.unwrap();
        assert_eq!(t.flow_count(), 2, "{}", t.to_nft());
        assert!(t.to_nft().contains("tcp dport 8080 notrack comment \"p\""));
        assert!(t.to_nft().contains("tcp dport 80 notrack\n"));
    }

    #[test]
    fn tags_are_safe_names() {
        assert_eq!(tag_of("trusted-notrack"), "trusted-notrack");
        assert_eq!(tag_of("my \"prof\"\n"), "my__prof__");
        assert_eq!(tag_of(""), "_");
        assert_eq!(tag_of(&"x".repeat(100)).len(), 64);
    }
}
