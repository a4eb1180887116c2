//! `firewall-drop`: a netfilter rule or a base chain's policy that drops
//! (or rejects, or rate-limits) new connections to the watched ports.
//!
//! The runbook's step 5 ("look for rules that drop ... NEW state
//! connections", `iptables -L -n -v`) as a function over the ruleset read
//! through netlink: every chain of every table and family (iptables-nft
//! rules are nftables rules too), each rule decoded by the same decoder as
//! the stateful-filter check. The walk follows each base chain on the
//! input path in order, the way a SYN to the port would: rules that cannot
//! match such a SYN are passed, `jump`/`goto` are followed (bounded),
//! an unconditional accept of the port ends the walk, and every drop or
//! reject the SYN can reach is a candidate. A candidate's counter, read
//! twice, says whether it drops *now*. The fix is a sentence naming the
//! rule, never a guess at a replacement.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::causes::{cause, CauseCode};
use super::{Cause, Diagnosis};
use crate::notrack::expr::{DecodedRule, Verdict, CT_NEW};
use crate::notrack::TABLE_NAME;
pub use crate::observed::{FwChain, FwLimit, FwRule};

/// A rule (or policy) that can drop a SYN to a watched port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirewallDrop {
    /// `inet filter input`.
    pub family: String,
    /// Table.
    pub table: String,
    /// Chain holding the rule.
    pub chain: String,
    /// The base chain the walk started from, with its hook and policy.
    pub base: String,
    /// Handle (`None`: the base chain's policy).
    pub handle: Option<u64>,
    /// The rule as nft prints it, or `policy drop`.
    pub rule: String,
    /// Packets counted now.
    pub packets: Option<u64>,
    /// Growth between the samples.
    pub delta: Option<u64>,
    /// The rate limit that lets only some through, when one does.
    pub rate_limit: Option<String>,
}

/// The firewall as diagnose read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirewallReport {
    /// Whether the ruleset was read.
    pub read: bool,
    /// Why not.
    pub error: Option<String>,
    /// Chains read.
    pub chains: usize,
    /// Rules read.
    pub rules: usize,
    /// Drops a new connection to a watched port can meet.
    pub drops: Vec<FirewallDrop>,
    /// Legacy iptables tables whose rules were not read.
    pub legacy_tables: Vec<String>,
}

/// How deep `jump`/`goto` are followed.
const MAX_DEPTH: usize = 16;

fn can_match_syn(r: &DecodedRule, ports: &BTreeSet<u16>) -> bool {
    let m = &r.matches;
    m.l4proto.is_none_or(|p| p == 6)
        && m.sport.is_none()
        && m.dport
            .is_none_or(|p| ports.is_empty() || ports.contains(&p))
        && m.ct_states.is_none_or(|s| s & CT_NEW != 0)
}

/// Matches every SYN to the port (nothing but port, protocol, state).
fn matches_all_syns(r: &FwRule) -> bool {
    let m = &r.rule.matches;
    r.limit.is_none()
        && m.saddr.is_none()
        && m.daddr.is_none()
        && m.unknown.is_empty()
        && m.ct_state_set.is_none()
}

/// A `ct count` (connlimit) or `quota` match on a drop: it lets only some
/// new connections through. Their values are not decoded, the kind is.
fn partial_limit(r: &FwRule) -> Option<String> {
    let u = &r.rule.matches.unknown;
    if u.iter().any(|x| x == "connlimit") {
        Some(format!("a `ct count` limit (handle {})", r.handle))
    } else if u.iter().any(|x| x == "quota") {
        Some(format!("a `quota` (handle {})", r.handle))
    } else {
        None
    }
}

struct Walk<'a> {
    chains: &'a [FwChain],
    before: &'a [FwChain],
    ports: &'a BTreeSet<u16>,
    out: Vec<FirewallDrop>,
}

impl Walk<'_> {
    /// Walk `chain`; true when the SYN's fate is decided (accepted or
    /// dropped for all) and the caller stops.
    fn chain(&mut self, c: &FwChain, base: &str, depth: usize, limit: &mut Option<String>) -> bool {
        for r in &c.rules {
            if !can_match_syn(&r.rule, self.ports) {
                continue;
            }
            match &r.rule.verdict {
                Verdict::Drop | Verdict::Reject => {
                    let rate_limit = r
                        .limit
                        .as_ref()
                        .filter(|l| l.over)
                        .map(|l| format!("{} (handle {})", l.text(), r.handle))
                        .or_else(|| partial_limit(r))
                        .or_else(|| limit.clone());
                    self.push(c, base, Some(r), rate_limit);
                    if matches_all_syns(r) {
                        return true;
                    }
                }
                Verdict::Accept => {
                    if let Some(l) = r.limit.as_ref().filter(|l| !l.over) {
                        *limit = Some(format!("{} (handle {})", l.text(), r.handle));
                    } else if matches_all_syns(r) {
                        return true;
                    }
                }
                Verdict::Jump(t) | Verdict::Goto(t) => {
                    let goto = matches!(r.rule.verdict, Verdict::Goto(_));
                    let target = self
                        .chains
                        .iter()
                        .find(|x| x.family == c.family && x.table == c.table && &x.name == t);
                    if let Some(t) = target.filter(|_| depth < MAX_DEPTH) {
                        if self.chain(t, base, depth + 1, limit) {
                            return true;
                        }
                    }
                    if goto && matches_all_syns(r) {
                        return true;
                    }
                }
                Verdict::Return if matches_all_syns(r) => return false,
                _ => {}
            }
        }
        false
    }

    fn push(&mut self, c: &FwChain, base: &str, r: Option<&FwRule>, rate_limit: Option<String>) {
        let old = r.and_then(|r| {
            self.before
                .iter()
                .find(|b| b.family == c.family && b.table == c.table && b.name == c.name)
                .and_then(|b| b.rules.iter().find(|x| x.handle == r.handle))
                .and_then(|x| x.packets)
        });
        let packets = r.and_then(|r| r.packets);
        self.out.push(FirewallDrop {
            family: c.family.clone(),
            table: c.table.clone(),
            chain: c.name.clone(),
            base: base.to_owned(),
            handle: r.map(|r| r.handle),
            rule: r.map_or("policy drop".into(), FwRule::text),
            packets,
            delta: match (old, packets) {
                (Some(o), Some(n)) => Some(n.saturating_sub(o)),
                _ => None,
            },
            rate_limit,
        });
    }
}

/// The drops a new TCP connection to `ports` (empty: any) can meet on the
/// input path, from two readings of the ruleset.
pub fn find_drops(
    before: &[FwChain],
    after: &[FwChain],
    ports: &BTreeSet<u16>,
) -> Vec<FirewallDrop> {
    let mut w = Walk {
        chains: after,
        before,
        ports,
        out: vec![],
    };
    for c in after {
        let (Some(hook), Some(policy)) = (&c.hook, &c.policy) else {
            continue;
        };
        if !matches!(hook.as_str(), "prerouting" | "input" | "forward")
            || (c.family == "inet" && c.table == TABLE_NAME)
        {
            continue;
        }
        let base = format!(
            "{} {} {} (hook {hook}, policy {policy})",
            c.family, c.table, c.name
        );
        let mut limit = None;
        if !w.chain(c, &base, 0, &mut limit) && policy == "drop" {
            w.push(c, &base, None, limit);
        }
    }
    w.out
}

/// `firewall-drop` causes, one per drop, most active first (at most 5).
pub(super) fn firewall_drop(d: &Diagnosis) -> Vec<Cause> {
    let f = &d.firewall;
    let port = ports_text(&d.ports);
    let mut out: Vec<Cause> = f
        .drops
        .iter()
        .take(5)
        .map(|x| drop_cause(x, &port, d.interval_ms))
        .collect();
    if !f.legacy_tables.is_empty() && !out.is_empty() {
        out[0].notes.push(format!(
            "legacy iptables tables ({}) were not read: list them with `iptables-legacy -L -n -v` (and `ip6tables-legacy`)",
            f.legacy_tables.join(", ")
        ));
    }
    out
}

/// `port 80`, `ports 80, 443`, or `a listening port`.
fn ports_text(ports: &[u16]) -> String {
    match ports {
        [] => "a listening port".to_owned(),
        [p] => format!("port {p}"),
        ps => format!(
            "ports {}",
            ps.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// One drop as a cause: growing counters rank first, then a policy drop.
fn drop_cause(x: &FirewallDrop, port: &str, interval_ms: u64) -> Cause {
    let growing = x.delta.is_some_and(|n| n > 0);
    let score = match (growing, x.handle, x.packets) {
        (true, _, _) => 150,
        (false, None, _) => 50,
        (false, Some(_), Some(p)) if p > 0 => 10,
        _ => 5,
    };
    let what = match (&x.rate_limit, x.handle) {
        (Some(_), _) => format!("rate-limits new connections to {port}"),
        (None, None) => format!("drops new connections to {port} by its policy"),
        (None, Some(_)) => format!("drops new connections to {port}"),
    };
    let mut c = cause(
        CauseCode::FirewallDrop,
        format!("{} {} {} {what}", x.family, x.table, x.chain),
        score,
        growing,
    );
    c.evidence = drop_evidence(x, interval_ms);
    c.notes.push(drop_note(x, port));
    c
}

/// Where the drop is, what its counter says, and its rate limit.
fn drop_evidence(x: &FirewallDrop, interval_ms: u64) -> Vec<String> {
    let mut evidence = Vec::new();
    match x.handle {
        Some(h) => {
            evidence.push(format!(
                "rule {} {} {} handle {h}: {}",
                x.family, x.table, x.chain, x.rule
            ));
            evidence.push(format!("reached from {}", x.base));
        }
        None => evidence.push(format!(
            "base chain {}: nothing before its policy accepts them",
            x.base
        )),
    }
    match (x.packets, x.delta) {
        (Some(p), Some(n)) => evidence.push(format!(
            "counter +{n} packets in {:.1} s, {p} in total",
            interval_ms as f64 / 1000.0
        )),
        (Some(p), None) => evidence.push(format!("counter {p} packets in total")),
        _ if x.handle.is_some() => {
            evidence.push("no counter on it: add `counter` to the rule to see its drops".into())
        }
        _ => {}
    }
    if let Some(l) = &x.rate_limit {
        evidence.push(format!(
            "rate limit: {l}; new connections beyond it are dropped"
        ));
    }
    evidence
}

/// What to change: the rate limit, the rule, or the chain's policy.
fn drop_note(x: &FirewallDrop, port: &str) -> String {
    let list = format!("`nft -a list chain {} {} {}`", x.family, x.table, x.chain);
    match (x.handle, &x.rate_limit) {
        (_, Some(l)) => format!(
            "the rate limit {l} in {} {} {} lets only some new connections through: raise or remove it ({list}) if these clients are legitimate",
            x.family, x.table, x.chain
        ),
        (Some(h), None) => format!(
            "change or delete rule handle {h} of {} {} {} ({list}) if these connections are wanted",
            x.family, x.table, x.chain
        ),
        (None, None) => format!(
            "nothing in {} accepts new connections to {port} before its policy drop: add an accept rule for it",
            x.base
        ),
    }
}
