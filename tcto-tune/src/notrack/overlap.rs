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
use crate::finding::{Finding, FindingCode, Severity};

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

/// The pairs `(a, b)` of `idx` whose ranges in dimension `d` overlap, by a
/// sweep over the nested (laminar) subnet ranges: sorted by start, then
/// widest first, the ranges still open on a stack are exactly those that
/// hold the current one. O(n log n + pairs).
fn nested_pairs(idx: &[usize], r: &[Ranges], d: usize) -> Vec<(usize, usize)> {
    let mut order = idx.to_vec();
    order.sort_by_key(|&i| (r[i][d].0, std::cmp::Reverse(r[i][d].1)));
    let mut stack: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for i in order {
        while stack.last().is_some_and(|&t| r[t][d].1 < r[i][d].0) {
            stack.pop();
        }
        out.extend(stack.iter().map(|&t| (t, i)));
        stack.push(i);
    }
    out
}

/// How many pairs [`nested_pairs`] would list, without listing them.
fn nested_count(idx: &[usize], r: &[Ranges], d: usize) -> usize {
    let mut order = idx.to_vec();
    order.sort_by_key(|&i| (r[i][d].0, std::cmp::Reverse(r[i][d].1)));
    let mut stack: Vec<usize> = Vec::new();
    let mut n = 0usize;
    for i in order {
        while stack.last().is_some_and(|&t| r[t][d].1 < r[i][d].0) {
            stack.pop();
        }
        n += stack.len();
        stack.push(i);
    }
    n
}

/// Settle `flows` (deduplicated, each of one family).
pub fn settle(flows: &[ScopedFlow]) -> Settled {
    let r: Vec<Ranges> = flows.iter().map(ranges).collect();
    let mut groups: BTreeMap<(bool, u16), Vec<usize>> = BTreeMap::new();
    for (i, f) in flows.iter().enumerate() {
        groups
            .entry((f.from.is_ipv4(), f.port))
            .or_default()
            .push(i);
    }
    // Who overlaps whom: candidates from the dimension with fewer nested
    // pairs (a thousand clients of one server nest only in `to`).
    let mut partners: Vec<Vec<usize>> = vec![Vec::new(); flows.len()];
    for idx in groups.values().filter(|idx| idx.len() > 1) {
        let d = if nested_count(idx, &r, 0) <= nested_count(idx, &r, 1) {
            0
        } else {
            1
        };
        for (a, b) in nested_pairs(idx, &r, d) {
            if overlap(&r[a], &r[b]) {
                partners[a].push(b);
                partners[b].push(a);
            }
        }
    }
    // Widest first: a flow that holds another has no longer prefixes,
    // so it is settled before the flows it holds.
    let mut order: Vec<usize> = (0..flows.len())
        .filter(|&i| !partners[i].is_empty())
        .collect();
    order.sort_by_key(|&i| {
        (
            u16::from(flows[i].from.prefix()) + u16::from(flows[i].to.prefix()),
            i,
        )
    });
    let mut keep = vec![true; flows.len()];
    let mut done = vec![false; flows.len()];
    let mut out = Settled::default();
    for i in order {
        let kept = |k: &&usize| done[**k] && keep[**k];
        if let Some(&k) = partners[i]
            .iter()
            .filter(kept)
            .find(|&&k| holds(&r[k], &r[i]))
        {
            keep[i] = false;
            out.merged.push((flows[i], flows[k]));
        } else if let Some(&k) = partners[i].iter().find(kept) {
            let (a, b) = (flows[k].min(flows[i]), flows[k].max(flows[i]));
            out.crossing.push((a, b));
        }
        done[i] = true;
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
                FindingCode::NotrackFlowsOverlap,
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
            FindingCode::NotrackFlowsOverlap,
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
    use crate::names::Cidr;

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

    /// The plain quadratic settlement the sweep must agree with.
    fn reference(flows: &[ScopedFlow]) -> (Vec<ScopedFlow>, usize, usize) {
        let mut order: Vec<usize> = (0..flows.len()).collect();
        order.sort_by_key(|&i| {
            (
                u16::from(flows[i].from.prefix()) + u16::from(flows[i].to.prefix()),
                i,
            )
        });
        let mut kept: Vec<usize> = Vec::new();
        let (mut merged, mut crossing) = (0, 0);
        let mut keep = vec![true; flows.len()];
        for i in order {
            let same = |k: &&usize| flows[**k].port == flows[i].port;
            let r = ranges(&flows[i]);
            if kept
                .iter()
                .filter(same)
                .any(|&k| holds(&ranges(&flows[k]), &r))
            {
                keep[i] = false;
                merged += 1;
                continue;
            }
            if kept
                .iter()
                .filter(same)
                .any(|&k| overlap(&ranges(&flows[k]), &r))
            {
                crossing += 1;
            }
            kept.push(i);
        }
        let f = flows
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(f, _)| *f)
            .collect();
        (f, merged, crossing)
    }

    #[test]
    fn the_sweep_agrees_with_the_quadratic_settlement() {
        // Deterministic pseudo-random nested subnets and ports.
        let mut x: u32 = 12345;
        let mut next = |m: u32| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 8) % m
        };
        let (mut merges, mut crossings) = (0, 0);
        for _ in 0..50 {
            let mut flows = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for _ in 0..60 {
                let pf = 14 + next(4) as u8;
                let pt = 22 + next(3) as u8;
                let subnet = |base: u32, prefix: u8| {
                    let a = base & (u32::MAX << (32 - u32::from(prefix)));
                    Cidr::new(std::net::Ipv4Addr::from(a).into(), prefix).unwrap()
                };
                let from = subnet(0x0a00_0000 | (next(4) << 16), pf);
                let to = subnet(0x0ac8_0000 | (next(4) << 8), pt);
                let f = ScopedFlow {
                    from,
                    to,
                    port: 8080 + next(2) as u16,
                };
                if seen.insert(f) {
                    flows.push(f);
                }
            }
            let s = settle(&flows);
            let (f, merged, crossing) = reference(&flows);
            assert_eq!(s.flows, f);
            assert_eq!((s.merged.len(), s.crossing.len()), (merged, crossing));
            merges += merged;
            crossings += crossing;
        }
        assert!(merges > 0 && crossings > 0, "{merges} {crossings}");
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
