//! Overlapping flows: merged when one holds the other, refused when they
//! cross, before anything is rendered.
//!
//! Past 32 flows the flows become elements of a concatenated interval set,
//! and the kernel refuses an element whose start or end falls inside an
//! element added before it (`File exists`): with `10.0.0.0/15` and
//! `10.1.0.0/16` to one server and port, the real apply failed while the
//! plan and the dry run said fine. So overlaps are settled here, the same
//! way in rule mode and set mode:
//! - a flow whose `from` and `to` both lie inside another's (same family
//!   and port) adds nothing: it is dropped, and an info finding names both;
//! - two flows that overlap without one holding the other (`10.0.0.0/15 ->
//!   10.0.2.0/24` and `10.1.0.0/16 -> 10.0.0.0/16`) cannot be one element:
//!   `notrack-flows-overlap` refuses, naming both.
//!
//! [`first_refused`] is the kernel's rule itself, for the simulated host.

use std::collections::BTreeMap;

use super::scope::range;
use super::table::{FlowElement, ScopedFlow};
use crate::check::{Finding, Severity};

/// How the flows were settled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The flows to render, in the profile's order.
    pub flows: Vec<ScopedFlow>,
    /// `(dropped, the flow that holds it)`.
    pub merged: Vec<(ScopedFlow, ScopedFlow)>,
    /// Pairs that overlap without one holding the other.
    pub crossing: Vec<(ScopedFlow, ScopedFlow)>,
}

type Ranges = [(u128, u128); 2];

fn ranges(f: &ScopedFlow) -> Ranges {
    [range(&f.from), range(&f.to)]
}

fn holds(a: &Ranges, b: &Ranges) -> bool {
    a.iter().zip(b).all(|(a, b)| a.0 <= b.0 && b.1 <= a.1)
}

fn overlap(a: &Ranges, b: &Ranges) -> bool {
    a.iter().zip(b).all(|(a, b)| a.0 <= b.1 && b.0 <= a.1)
}

/// Settle `flows` (deduplicated, each of one family).
pub fn settle(flows: &[ScopedFlow]) -> Settled {
    // Per family and port, widest first: a flow that holds another has
    // no longer prefixes, so it is seen before the flows it holds.
    let mut groups: BTreeMap<(bool, u16), Vec<usize>> = BTreeMap::new();
    for (i, f) in flows.iter().enumerate() {
        groups
            .entry((f.from.is_ipv4(), f.port))
            .or_default()
            .push(i);
    }
    let mut keep = vec![true; flows.len()];
    let mut out = Settled::default();
    for idx in groups.values_mut() {
        if idx.len() < 2 {
            continue;
        }
        idx.sort_by_key(|&i| u16::from(flows[i].from.prefix()) + u16::from(flows[i].to.prefix()));
        let mut kept: Vec<(usize, Ranges)> = Vec::new();
        for &i in idx.iter() {
            let r = ranges(&flows[i]);
            if let Some(&(k, _)) = kept.iter().find(|(_, kr)| holds(kr, &r)) {
                keep[i] = false;
                out.merged.push((flows[i], flows[k]));
                continue;
            }
            if let Some(&(k, _)) = kept.iter().find(|(_, kr)| overlap(kr, &r)) {
                let (a, b) = (flows[k].min(flows[i]), flows[k].max(flows[i]));
                out.crossing.push((a, b));
            }
            kept.push((i, r));
        }
    }
    out.flows = flows
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(f, _)| *f)
        .collect();
    out
}

/// The findings for a settlement.
pub fn findings(s: &Settled) -> Vec<Finding> {
    let mut out = Vec::new();
    for (a, b) in &s.crossing {
        out.push(
            Finding::new(
                "notrack-flows-overlap",
                Severity::Refuse,
                format!(
                    "flows {} and {} overlap without one holding the other: they cannot be merged, and past 32 flows the kernel refuses overlapping set elements",
                    a.label(),
                    b.label()
                ),
            )
            .hint("split or narrow one of them so that the two are apart or one holds the other"),
        );
    }
    for (dropped, by) in &s.merged {
        out.push(Finding::new(
            "notrack-flows-overlap",
            Severity::Info,
            format!(
                "flow {} lies inside flow {}: planned once, as the wider flow",
                dropped.label(),
                by.label()
            ),
        ));
    }
    out
}

/// Whether a key (`from . to . port`, one address each) lies in element `e`.
fn key_in(key: [u128; 2], port: u16, e: &Ranges, e_port: u16) -> bool {
    port == e_port && key.iter().zip(e).all(|(k, r)| r.0 <= *k && *k <= r.1)
}

/// The kernel's rule for a concatenated interval set (nft_set_pipapo):
/// inserted in order, an element whose start or end key falls inside an
/// element inserted before it is refused with EEXIST. Returns the first
/// refused element and the one it falls into.
pub fn first_refused(elements: &[FlowElement]) -> Option<(FlowElement, FlowElement)> {
    let mut inserted: Vec<(Ranges, &FlowElement)> = Vec::with_capacity(elements.len());
    for e in elements {
        let r = ranges(e);
        let start = [r[0].0, r[1].0];
        let end = [r[0].1, r[1].1];
        if let Some((_, hit)) = inserted
            .iter()
            .find(|(ir, ie)| key_in(start, e.port, ir, ie.port) || key_in(end, e.port, ir, ie.port))
        {
            return Some((*e, **hit));
        }
        inserted.push((r, e));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(from: &str, to: &str, port: u16) -> ScopedFlow {
        ScopedFlow {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn a_flow_inside_another_is_merged_away() {
        let wide = flow("10.0.0.0/15", "10.0.2.0/24", 8080);
        let inner = flow("10.1.0.0/16", "10.0.2.0/24", 8080);
        let s = settle(&[inner, wide]);
        assert_eq!(s.flows, [wide]);
        assert_eq!(s.merged, [(inner, wide)]);
        assert!(s.crossing.is_empty());
        let f = findings(&s);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(f[0].message.contains("10.1.0.0/16"), "{f:?}");
        // Another port or family is another flow.
        let s = settle(&[inner, flow("10.0.0.0/15", "10.0.2.0/24", 9090)]);
        assert_eq!(s.flows.len(), 2);
        assert!(s.merged.is_empty() && s.crossing.is_empty());
    }

    #[test]
    fn crossing_flows_are_refused_naming_both() {
        let a = flow("10.0.0.0/15", "10.0.2.0/24", 8080);
        let b = flow("10.1.0.0/16", "10.0.0.0/16", 8080);
        let s = settle(&[a, b]);
        assert_eq!(s.flows.len(), 2);
        assert_eq!(s.crossing.len(), 1);
        let f = findings(&s);
        assert_eq!(f[0].code, "notrack-flows-overlap");
        assert_eq!(f[0].severity, Severity::Refuse);
        assert!(
            f[0].message.contains(&a.label()) && f[0].message.contains(&b.label()),
            "{f:?}"
        );
    }

    #[test]
    fn the_kernels_rule_refuses_an_element_inside_an_earlier_one() {
        let wide = flow("10.0.0.0/15", "10.0.2.0/24", 8080);
        let inner = flow("10.1.0.0/16", "10.0.2.0/24", 8080);
        assert_eq!(first_refused(&[wide, inner]), Some((inner, wide)));
        // The other way round, the wide one's end falls inside.
        assert_eq!(first_refused(&[inner, wide]), Some((wide, inner)));
        assert_eq!(
            first_refused(&[wide, flow("10.1.0.0/16", "10.0.2.0/24", 1)]),
            None
        );
        // Crossing with neither end inside: the kernel accepts it.
        let b = flow("10.1.0.0/16", "10.0.0.0/16", 8080);
        assert_eq!(first_refused(&[wide, b]), None);
    }

    #[test]
    fn a_thousand_flows_settle_without_change() {
        let flows: Vec<_> = (0..1000u32)
            .map(|i| {
                flow(
                    &format!("10.{}.{}.0/24", i / 256, i % 256),
                    "10.200.0.0/24",
                    8080,
                )
            })
            .collect();
        let s = settle(&flows);
        assert_eq!(s.flows, flows);
        assert!(s.merged.is_empty() && s.crossing.is_empty());
    }
}
