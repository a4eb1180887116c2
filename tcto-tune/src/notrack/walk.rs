//! The walk of one packet of a flow through a base chain, following
//! `jump` and `goto` as the kernel does, and the judgement it leads to.
//!
//! The kernel evaluates a base chain rule by rule; `jump` runs another
//! chain of the same table and comes back, `goto` runs it instead (its end
//! returns to whoever jumped last), `return` or the end of a regular chain
//! comes back, and the end of the base chain applies its policy. iptables-nft,
//! ufw and firewalld put their `ct state established,related accept` in
//! such regular chains, so a check that stops at the first jump sees
//! nothing.
//!
//! A rule may match only some packets of the flow (a narrower subnet) or
//! match on something not modelled (an interface name, an xt match, a
//! set): the walk then follows both outcomes, so it ends in a list of
//! possible [`PathEnd`]s. Where it cannot go on (a verdict map, a missing
//! chain, a loop, the kernel's jump depth of 16, too many branches) the
//! path ends [`End::Undecided`]. [`judge`] turns the ends of the untracked
//! and the tracked packet into a [`Judgement`]; nothing is ever silently
//! passed over.

use std::collections::HashMap;

use super::expr::Verdict;
use super::filter::{matches, verdict_for, FilterChain, Match, Packet};

/// The kernel's jump stack (`NFT_JUMP_STACK_SIZE`).
pub const MAX_DEPTH: usize = 16;
/// Rule evaluations per walk before it gives up (branches multiply).
const MAX_STEPS: usize = 20_000;

/// How a path ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Accepted.
    Accept,
    /// Dropped (or rejected).
    Drop,
    /// The walk cannot tell, and why.
    Undecided(String),
}

/// A rule: (chain index, rule index) in the table walked.
pub type At = (usize, usize);

/// One possible end of a packet's walk. Rules are kept as positions and
/// put into words only for a finding (a walk of 1,000 flows ends many
/// thousand times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEnd {
    /// How it ends.
    pub end: End,
    /// The rule that decided; `None` when the base chain's policy did.
    pub by: Option<At>,
    /// The chains passed through, base chain first.
    pub route: Vec<usize>,
    /// A rule this path assumed matched or not although it could not tell.
    pub unsure: Option<At>,
}

impl PathEnd {
    /// `rule `ct state established,related accept` (chain ufw-before-input)`
    /// or `its policy drop`.
    pub fn by_text(&self, table: &[FilterChain], policy: &str) -> String {
        match self.by {
            Some((c, r)) => format!("rule `{}` (chain {})", table[c].rules[r], table[c].name),
            None => format!("its policy {policy}"),
        }
    }

    /// The chain names passed through.
    pub fn route_names(&self, table: &[FilterChain]) -> Vec<String> {
        self.route.iter().map(|i| table[*i].name.clone()).collect()
    }

    /// A certain drop: no unsure rule on the way.
    fn surely_drops(&self) -> bool {
        self.end == End::Drop && self.unsure.is_none()
    }
}

#[derive(Clone)]
struct State {
    /// (chain index, next rule index), innermost last.
    frames: Vec<(usize, usize)>,
    route: Vec<usize>,
    unsure: Option<At>,
}

/// The chains of one table by name, for jumps.
pub fn index(table: &[FilterChain]) -> HashMap<&str, usize> {
    table
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect()
}

/// Every possible end of `pkt`'s walk through base chain `base` of
/// `table` (all chains of one table, regular ones included; `by_name` is
/// its [`index`]).
pub fn walk(
    table: &[FilterChain],
    by_name: &HashMap<&str, usize>,
    base: usize,
    pkt: &Packet,
) -> Vec<PathEnd> {
    let mut out = Vec::new();
    let mut work = vec![State {
        frames: vec![(base, 0)],
        route: vec![base],
        unsure: None,
    }];
    let mut steps = 0usize;
    'paths: while let Some(mut s) = work.pop() {
        let finish = |s: &mut State, end: End, by: Option<At>| PathEnd {
            end,
            by,
            route: std::mem::take(&mut s.route),
            unsure: s.unsure,
        };
        loop {
            steps += 1;
            if steps > MAX_STEPS {
                let why = format!(
                    "the walk gave up after {MAX_STEPS} rule evaluations (too many branches)"
                );
                out.push(finish(&mut s, End::Undecided(why), None));
                break 'paths;
            }
            let Some(&(ci, ri)) = s.frames.last() else {
                let end = if table[base].policy == "drop" {
                    End::Drop
                } else {
                    End::Accept
                };
                out.push(finish(&mut s, end, None));
                continue 'paths;
            };
            let chain = &table[ci];
            let Some(rule) = chain.rules.get(ri) else {
                // End of a chain: back to the last jump (or the policy).
                s.frames.pop();
                continue;
            };
            s.frames.last_mut().expect("a frame").1 += 1;
            let at = Some((ci, ri));
            match matches(rule, pkt) {
                Match::No => continue,
                Match::Yes => {}
                // Some packets match, some do not: follow both.
                Match::Partial => work.push(s.clone()),
                Match::Unknown(_) => {
                    let mut other = s.clone();
                    other.unsure.get_or_insert((ci, ri));
                    work.push(other);
                    s.unsure.get_or_insert((ci, ri));
                }
            }
            let verdict = verdict_for(rule, pkt);
            let target = match verdict.as_ref() {
                Verdict::Accept => {
                    out.push(finish(&mut s, End::Accept, at));
                    continue 'paths;
                }
                Verdict::Drop | Verdict::Reject => {
                    out.push(finish(&mut s, End::Drop, at));
                    continue 'paths;
                }
                Verdict::Continue | Verdict::Notrack => continue,
                Verdict::Return => {
                    s.frames.pop();
                    continue;
                }
                Verdict::Map(set) => {
                    let why = format!(
                        "rule `{rule}` (chain {}) takes its verdict from the map {set}, whose elements are not read",
                        chain.name
                    );
                    out.push(finish(&mut s, End::Undecided(why), at));
                    continue 'paths;
                }
                Verdict::Jump(t) | Verdict::Goto(t) => t,
            };
            let undecided = |why: String| {
                End::Undecided(format!("rule `{rule}` (chain {}): {why}", chain.name))
            };
            let Some(&ti) = by_name.get(target.as_str()) else {
                let end = undecided(format!("chain {target} was not read"));
                out.push(finish(&mut s, end, at));
                continue 'paths;
            };
            if s.frames.iter().any(|(c, _)| *c == ti) {
                let end = undecided(format!("chain {target} loops back"));
                out.push(finish(&mut s, end, at));
                continue 'paths;
            }
            if matches!(verdict.as_ref(), Verdict::Goto(_)) {
                s.frames.pop();
            }
            if s.frames.len() >= MAX_DEPTH {
                let end = undecided(format!("deeper than the kernel's {MAX_DEPTH} nested jumps"));
                out.push(finish(&mut s, end, at));
                continue 'paths;
            }
            s.frames.push((ti, 0));
            s.route.push(ti);
        }
    }
    out
}

/// What the walks of a flow's packets through one base chain say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Untracked packets get through (or the chain drops them tracked too:
    /// NOTRACK changes nothing there).
    Fine,
    /// Untracked packets are surely dropped where tracked ones are not.
    Breaks {
        /// The end that drops them.
        drop: PathEnd,
        /// An end that accepts the tracked packet, if the walk found one.
        tracked: Option<PathEnd>,
    },
    /// The walk cannot tell whether untracked packets get through.
    Undecided {
        /// The path end it cannot judge.
        end: PathEnd,
    },
}

/// Judge from the ends of the untracked packet and of the tracked ones.
pub fn judge(untracked: &[PathEnd], tracked: &[PathEnd]) -> Judgement {
    if !tracked.is_empty() && tracked.iter().all(PathEnd::surely_drops) {
        return Judgement::Fine;
    }
    if let Some(d) = untracked.iter().find(|e| e.surely_drops()) {
        return Judgement::Breaks {
            drop: d.clone(),
            tracked: tracked.iter().find(|e| e.end == End::Accept).cloned(),
        };
    }
    match untracked
        .iter()
        .find(|e| matches!(e.end, End::Undecided(_)) || e.end == End::Drop)
    {
        Some(e) => Judgement::Undecided { end: e.clone() },
        None => Judgement::Fine,
    }
}

/// Why an [`Judgement::Undecided`] end cannot be judged, naming the rule.
pub fn undecided_why(table: &[FilterChain], e: &PathEnd, pkt: &Packet) -> String {
    match (&e.end, e.unsure) {
        (End::Undecided(why), _) => why.clone(),
        (_, Some((c, r))) => {
            let rule = &table[c].rules[r];
            let why = match matches(rule, pkt) {
                Match::Unknown(u) => u.to_string(),
                _ => "it matches on something not modelled".into(),
            };
            format!(
                "they may be dropped ({}): whether `{rule}` (chain {}) matches them is unknown: {why}",
                e.by_text(table, "drop"),
                table[c].name
            )
        }
        _ => "the walk cannot tell".into(),
    }
}
