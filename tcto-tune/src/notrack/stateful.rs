//! `notrack-breaks-stateful-filter` and `notrack-filter-undecided`: every
//! base chain of every other `ip`/`ip6`/`inet` table that a flow's packets
//! cross untracked, walked ([`super::walk`]) for the untracked packet and
//! for the tracked ones it replaces, and the findings that follow.
//!
//! Findings are grouped per chain and direction (a table of 1,000 flows
//! broken by one chain is one finding naming the first flows), and quote
//! the rules exactly as read, so the user sees which rule decided.

use std::collections::BTreeMap;

use super::expr::{CT_ESTABLISHED, CT_NEW, CT_UNTRACKED};
use super::filter::{Direction, FilterChain, Packet};
use super::table::ScopedFlow;
use super::walk::{index, judge, undecided_why, walk, Judgement};
use crate::finding::{Finding, FindingCode, Severity};
use crate::words::{Action, Words};

/// One chain's judgement of some flows, in one direction, put into words
/// when first seen (with the table and packet it was judged on).
struct Group {
    finding: Option<Finding>,
    flows: Vec<String>,
}

/// The findings for `flows` against the chains read from the system, their
/// hints in the neutral words.
#[cfg(test)]
pub fn findings(chains: &[FilterChain], flows: &[ScopedFlow]) -> Vec<Finding> {
    worded_findings(chains, flows, &crate::words::NEUTRAL)
}

/// [`findings`], their hints naming actions in `words`.
pub fn worded_findings(
    chains: &[FilterChain],
    flows: &[ScopedFlow],
    words: &dyn Words,
) -> Vec<Finding> {
    // The chains of each table, in the order read (jumps stay in a table).
    let mut tables: BTreeMap<(&str, &str), Vec<FilterChain>> = BTreeMap::new();
    for c in chains {
        tables
            .entry((c.family.as_str(), c.table.as_str()))
            .or_default()
            .push(c.clone());
    }
    let mut groups: BTreeMap<(String, Direction, bool), (usize, Group)> = BTreeMap::new();
    let mut order = 0;
    for table in tables.values() {
        let by_name = index(table);
        for (bi, base) in table.iter().enumerate().filter(|(_, c)| c.is_base()) {
            for flow in flows {
                for dir in base.directions(flow) {
                    let pkt = Packet::of(flow, dir, CT_UNTRACKED);
                    let untracked = walk(table, &by_name, bi, &pkt);
                    let tracked_states: &[u32] = match dir {
                        // Established first: most packets are, and its accept is named.
                        Direction::Request => &[CT_ESTABLISHED, CT_NEW],
                        Direction::Reply => &[CT_ESTABLISHED],
                    };
                    let tracked: Vec<_> = tracked_states
                        .iter()
                        .flat_map(|ct| walk(table, &by_name, bi, &Packet::of(flow, dir, *ct)))
                        .collect();
                    let j = judge(&untracked, &tracked);
                    let breaks = match j {
                        Judgement::Fine => continue,
                        Judgement::Breaks { .. } => true,
                        Judgement::Undecided { .. } => false,
                    };
                    let g = groups
                        .entry((base.label(), dir, breaks))
                        .or_insert_with(|| {
                            order += 1;
                            let finding = finding(table, base, dir, &j, &pkt, words);
                            (
                                order,
                                Group {
                                    finding,
                                    flows: vec![],
                                },
                            )
                        });
                    g.1.flows.push(flow.label());
                }
            }
        }
    }
    let mut out: Vec<(usize, Group)> = groups.into_values().collect();
    out.sort_by_key(|(n, _)| *n);
    out.into_iter()
        .filter_map(|(_, g)| {
            let mut f = g.finding?;
            f.message = f.message.replace(FLOWS, &flows_text(&g.flows));
            Some(f)
        })
        .collect()
}

/// Stands for the flows in a finding's text until they are all known.
const FLOWS: &str = "\u{0}FLOWS\u{0}";

fn flows_text(flows: &[String]) -> String {
    match flows.len() {
        1 => format!("flow {}", flows[0]),
        2..=3 => format!("flows {}", flows.join(", ")),
        n => format!("flows {} and {} more", flows[..3].join(", "), n - 3),
    }
}

fn route_text(route: &[String]) -> String {
    if route.len() > 1 {
        format!(" (through {})", route.join(" -> "))
    } else {
        String::new()
    }
}

fn finding(
    table: &[FilterChain],
    base: &FilterChain,
    dir: Direction,
    j: &Judgement,
    pkt: &Packet,
    words: &dyn Words,
) -> Option<Finding> {
    let chain = base.label();
    let fix = format!("nft insert rule {chain} ct state untracked accept");
    let head = format!(
        "chain `{chain}` (hook {}, policy {})",
        base.hook, base.policy
    );
    Some(match j {
        Judgement::Breaks { drop, tracked } => {
            let tracked = match tracked {
                Some(t) => format!(
                    "; tracked, they are accepted by {}{}",
                    t.by_text(table, &base.policy),
                    if t.route == drop.route {
                        String::new()
                    } else {
                        route_text(&t.route_names(table))
                    }
                ),
                None => String::new(),
            };
            Finding::new(
                FindingCode::NotrackBreaksStatefulFilter,
                Severity::Refuse,
                format!(
                    "{head} would drop the untracked {} of the NOTRACKed {FLOWS}: they end at {}{}{tracked}: its connections would time out",
                    dir.noun(),
                    drop.by_text(table, &base.policy),
                    route_text(&drop.route_names(table)),
                ),
            )
            .hint(format!(
                "add `ct state untracked accept` to that chain before its drop, e.g. `{fix}`"
            ))
        }
        Judgement::Undecided { end } => Finding::new(
            FindingCode::NotrackFilterUndecided,
            Severity::Refuse,
            format!(
                "cannot tell whether {head} lets the untracked {} of the NOTRACKed {FLOWS} through{}: {}",
                dir.noun(),
                route_text(&end.route_names(table)),
                undecided_why(table, end, pkt),
            ),
        )
        .hint(format!(
            "make it certain with `{fix}`, or read the chain (`nft list chain {chain}`) and, if untracked packets get through, {}",
            words.instruct(&Action::Allow(FindingCode::NotrackFilterUndecided))
        )),
        Judgement::Fine => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::expr::{RawExpr, CT_RELATED, NFT_GOTO, NFT_JUMP, NF_DROP};
    use super::super::fixtures::{accept, chain, ct, ct_accept, ct_lookup, dport, iface, verdict};
    use super::*;

    fn flow() -> ScopedFlow {
        ScopedFlow {
            from: "10.0.1.0/24".parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port: 8080,
        }
    }

    const INPUT_DROP: Option<(&str, &str, i32, &str)> = Some(("input", "filter", 0, "drop"));
    const EST: u32 = CT_ESTABLISHED | CT_RELATED;

    fn est_accept() -> Vec<RawExpr> {
        ct_accept(EST)
    }
    fn new_8080_accept() -> Vec<RawExpr> {
        [ct(CT_NEW), dport(8080), vec![accept()]].concat()
    }
    fn jump(c: &str) -> Vec<RawExpr> {
        vec![verdict(NFT_JUMP, Some(c))]
    }
    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    /// The ufw layout: `policy drop; counter jump ufw-before-input`.
    fn ufw(extra: Vec<Vec<RawExpr>>) -> Vec<FilterChain> {
        let mut before = vec![est_accept(), new_8080_accept()];
        before.splice(0..0, extra);
        vec![
            chain(
                "input",
                INPUT_DROP,
                &[[vec![RawExpr::Counter], jump("ufw-before-input")].concat()],
            ),
            chain("ufw-before-input", None, &before),
        ]
    }

    #[test]
    fn a_ufw_style_jump_to_the_stateful_accept_is_followed() {
        let f = findings(&ufw(vec![]), &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
        let m = &f[0].message;
        assert!(m.contains("through input -> ufw-before-input"), "{m}");
        assert!(m.contains("its policy drop"), "{m}");
        // The rule as read, not a generic text.
        assert!(
            m.contains("rule `ct state established,related accept` (chain ufw-before-input)"),
            "{m}"
        );
        assert!(f[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("nft insert rule inet filter input ct state untracked accept"));
        // Mended in the jumped-to chain.
        let f = findings(&ufw(vec![ct_accept(CT_UNTRACKED)]), &[flow()]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn the_finding_quotes_the_rule_it_read() {
        let chains = [chain(
            "input",
            INPUT_DROP,
            &[ct_accept(CT_ESTABLISHED), new_8080_accept()],
        )];
        let f = findings(&chains, &[flow()]);
        assert!(
            f[0].message
                .contains("accepted by rule `ct state established accept` (chain input)"),
            "{f:?}"
        );
    }

    #[test]
    fn a_goto_to_a_chain_ending_in_drop_breaks_the_flow() {
        let chains = [
            chain(
                "input",
                Some(("input", "filter", 0, "accept")),
                &[est_accept(), vec![verdict(NFT_GOTO, Some("deny"))]],
            ),
            chain(
                "deny",
                None,
                &[
                    [dport(22), vec![accept()]].concat(),
                    vec![verdict(NF_DROP, None)],
                ],
            ),
        ];
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
        assert!(
            f[0].message
                .contains("rule `drop` (chain deny) (through input -> deny)"),
            "{f:?}"
        );
    }

    #[test]
    fn a_goto_returns_to_the_last_jump_not_to_the_goto() {
        // input: jump a; ct state untracked accept. a: goto b. b: (empty).
        // The end of b returns to input after `jump a`: accepted.
        let chains = [
            chain(
                "input",
                INPUT_DROP,
                &[jump("a"), ct_accept(CT_UNTRACKED | EST), new_8080_accept()],
            ),
            chain("a", None, &[vec![verdict(NFT_GOTO, Some("b"))]]),
            chain("b", None, &[]),
        ];
        assert!(findings(&chains, &[flow()]).is_empty());
    }

    #[test]
    fn a_jump_to_a_counter_only_chain_before_the_stateful_accept_is_followed() {
        let chains = [
            chain(
                "input",
                INPUT_DROP,
                &[jump("count"), est_accept(), new_8080_accept()],
            ),
            chain("count", None, &[vec![RawExpr::Counter]]),
        ];
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
    }

    #[test]
    fn prerouting_filter_and_route_output_chains_are_walked() {
        let pre = [chain(
            "pre",
            Some(("prerouting", "filter", 0, "drop")),
            &[est_accept(), new_8080_accept()],
        )];
        let f = findings(&pre, &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
        assert!(f[0].message.contains("untracked requests"), "{f:?}");
        let out = [chain(
            "out",
            Some(("output", "route", 0, "drop")),
            &[est_accept()],
        )];
        let f = findings(&out, &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
        assert!(f[0].message.contains("untracked replies"), "{f:?}");
        // Before our raw notrack (-300), a chain never sees them untracked.
        let early = [chain(
            "pre",
            Some(("prerouting", "filter", -400, "drop")),
            &[est_accept(), new_8080_accept()],
        )];
        assert!(findings(&early, &[flow()]).is_empty());
        // nat chains never see untracked packets.
        let nat = [chain("pre", Some(("prerouting", "nat", 0, "drop")), &[])];
        assert!(findings(&nat, &[flow()]).is_empty());
    }

    #[test]
    fn a_chain_that_drops_the_tracked_flow_too_is_not_ours_to_report() {
        let chains = [chain("input", INPUT_DROP, &[est_accept()])];
        // The SYN (ct state new) is dropped tracked too... but established
        // packets are accepted, so the flow "works" only for those: still
        // reported, since the tracked walk accepts some.
        assert_eq!(findings(&chains, &[flow()]).len(), 1);
        let chains = [chain("input", INPUT_DROP, &[])];
        assert!(findings(&chains, &[flow()]).is_empty());
    }

    #[test]
    fn what_the_walk_cannot_read_is_undecided_naming_the_chain() {
        // A verdict map.
        let chains = [chain("input", INPUT_DROP, &[ct_lookup("__map0", Some(0))])];
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-filter-undecided"], "{f:?}");
        assert!(f[0].message.contains("chain `inet filter input`"), "{f:?}");
        assert!(f[0].message.contains("map __map0"), "{f:?}");
        // An interface it cannot know.
        let eth0 = [iface(6, b"eth0\0\0\0\0\0\0\0\0\0\0\0\0"), vec![accept()]].concat();
        let chains = [chain("input", INPUT_DROP, &[est_accept(), eth0])];
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-filter-undecided"], "{f:?}");
        assert!(f[0].message.contains("may be dropped"), "{f:?}");
        // A missing chain, a loop.
        let chains = [chain("input", INPUT_DROP, &[jump("gone"), est_accept()])];
        let f = findings(&chains, &[flow()]);
        assert!(f[0].message.contains("chain gone was not read"), "{f:?}");
        let chains = [
            chain("input", INPUT_DROP, &[jump("a"), est_accept()]),
            chain("a", None, &[jump("b")]),
            chain("b", None, &[jump("a")]),
        ];
        let f = findings(&chains, &[flow()]);
        assert!(f[0].message.contains("loops back"), "{f:?}");
    }

    #[test]
    fn the_jump_depth_bound_is_undecided() {
        let mut chains = vec![chain("input", INPUT_DROP, &[jump("c0"), est_accept()])];
        for i in 0..20 {
            chains.push(chain(
                &format!("c{i}"),
                None,
                &[jump(&format!("c{}", i + 1))],
            ));
        }
        chains.push(chain("c20", None, &[]));
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-filter-undecided"], "{f:?}");
        assert!(f[0].message.contains("16 nested jumps"), "{f:?}");
        // Within the bound the walk decides.
        chains.truncate(10);
        chains.push(chain("c9", None, &[ct_accept(CT_UNTRACKED)]));
        let f = findings(&chains, &[flow()]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn loopback_interface_matches_are_decided() {
        let lo = [iface(6, b"lo\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), vec![accept()]].concat();
        let chains = [chain(
            "input",
            INPUT_DROP,
            &[lo, est_accept(), new_8080_accept()],
        )];
        // Not a loopback flow: `iifname "lo" accept` does not match it.
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
        // A loopback flow is accepted by it.
        let lo_flow = ScopedFlow {
            from: "127.0.0.0/8".parse().unwrap(),
            to: "127.0.0.1/32".parse().unwrap(),
            port: 8080,
        };
        assert!(findings(&chains, &[lo_flow]).is_empty());
    }

    #[test]
    fn a_narrower_untracked_accept_leaves_the_rest_of_the_flow_broken() {
        let mut half = ct_accept(CT_UNTRACKED);
        half.splice(
            0..0,
            [
                RawExpr::Meta { key: 15, dreg: 1 },
                RawExpr::Cmp {
                    sreg: 1,
                    op: 0,
                    data: vec![2],
                },
                RawExpr::Payload {
                    base: 1,
                    offset: 12,
                    len: 4,
                    dreg: 1,
                },
                RawExpr::Bitwise {
                    sreg: 1,
                    dreg: 1,
                    mask: vec![255, 255, 255, 128],
                    xor: vec![0; 4],
                },
                RawExpr::Cmp {
                    sreg: 1,
                    op: 0,
                    data: vec![10, 0, 1, 0],
                },
            ],
        );
        let chains = [chain(
            "input",
            INPUT_DROP,
            &[half, est_accept(), new_8080_accept()],
        )];
        let f = findings(&chains, &[flow()]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
    }

    #[test]
    fn many_flows_broken_by_one_chain_make_one_finding() {
        let flows: Vec<_> = (0..50u16)
            .map(|i| ScopedFlow {
                port: 1000 + i,
                ..flow()
            })
            .collect();
        let chains = [chain("input", INPUT_DROP, &[est_accept()])];
        let f = findings(&chains, &flows);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("and 47 more"), "{f:?}");
    }

    #[test]
    fn ip_and_ip6_tables_see_their_own_family() {
        let v6 = ScopedFlow {
            from: "fd00:1::/64".parse().unwrap(),
            to: "fd00:2::/64".parse().unwrap(),
            port: 8080,
        };
        let mut c = chain("input", INPUT_DROP, &[est_accept()]);
        c.family = "ip6".into();
        let f = findings(std::slice::from_ref(&c), &[v6]);
        assert_eq!(codes(&f), ["notrack-breaks-stateful-filter"], "{f:?}");
        assert!(f[0].message.contains("chain `ip6 filter input`"), "{f:?}");
        c.family = "ip".into();
        assert!(findings(std::slice::from_ref(&c), &[v6]).is_empty());
        assert_eq!(findings(&[c], &[flow()]).len(), 1);
    }

    #[test]
    fn other_families_do_not_see_the_flow() {
        let mut c = chain("input", INPUT_DROP, &[est_accept()]);
        c.family = "ip6".into();
        assert!(findings(&[c], &[flow()]).is_empty());
    }
}
