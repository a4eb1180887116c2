//! Other tables' filter chains, and whether they would drop a NOTRACKed flow.
//!
//! A NOTRACKed packet has conntrack state `untracked`. A filter chain with
//! `policy drop` that lets traffic in only by `ct state
//! established,related` (plus `ct state new` for the port) drops it: the
//! NOTRACK "fix" then causes the very connect timeouts it was meant to
//! cure. This module walks each such chain the way the kernel would for an
//! untracked packet of the flow, rule by rule, and says where it ends.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::expr::{
    DecodedRule, Verdict, CT_ESTABLISHED, CT_RELATED, CT_UNTRACKED, IPPROTO_TCP, NFPROTO_IPV4,
    NFPROTO_IPV6,
};
use super::table::ScopedFlow;
use crate::names::Cidr;

/// A base chain of the filter type in another table, as decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChain {
    /// Table family (`ip`, `ip6`, `inet`).
    pub family: String,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub name: String,
    /// Hook (`input`, `forward`, `output`).
    pub hook: String,
    /// Priority.
    pub priority: i32,
    /// `accept` or `drop`.
    pub policy: String,
    /// Rules, in order.
    pub rules: Vec<DecodedRule>,
}

impl FilterChain {
    /// `inet filter input`.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.name)
    }

    /// Whether some rule accepts by `ct state established` or `related`
    /// (or by a `ct state` set, whose elements are not read).
    pub fn is_stateful(&self) -> bool {
        self.rules.iter().any(|r| {
            r.verdict == Verdict::Accept
                && (r
                    .matches
                    .ct_states
                    .is_some_and(|s| s & (CT_ESTABLISHED | CT_RELATED) != 0)
                    || r.matches.ct_state_set.is_some())
                || matches!(r.verdict, Verdict::Map(_)) && r.matches.ct_state_set.is_some()
        })
    }
}

/// Where an untracked packet ends in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// A rule accepts it (index into the chain's rules), or the policy does (`None`).
    Accepted(Option<usize>),
    /// A rule drops it (index), or the policy does (`None`).
    Dropped(Option<usize>),
    /// A jump or goto decides, and the target is not followed.
    Unknown(usize),
    /// The chain never sees this packet (other family or hook).
    NotSeen,
}

/// One packet of the flow, as a chain sees it.
#[derive(Debug, Clone, Copy)]
struct Packet {
    v4: bool,
    saddr: Cidr,
    daddr: Cidr,
    sport: Option<u16>,
    dport: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

fn and(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::No, _) | (_, Tri::No) => Tri::No,
        (Tri::Yes, Tri::Yes) => Tri::Yes,
        _ => Tri::Maybe,
    }
}

fn subnet(rule: Option<Cidr>, pkt: Cidr) -> Tri {
    let Some(r) = rule else { return Tri::Yes };
    if r.is_ipv4() != pkt.is_ipv4() {
        return Tri::No;
    }
    if r.prefix() <= pkt.prefix() && r.contains(pkt.addr()) {
        Tri::Yes
    } else if pkt.prefix() <= r.prefix() && pkt.contains(r.addr()) {
        Tri::Maybe
    } else {
        Tri::No
    }
}

fn port(rule: Option<u16>, pkt: Option<u16>) -> Tri {
    match (rule, pkt) {
        (None, _) => Tri::Yes,
        (Some(r), Some(p)) if r == p => Tri::Yes,
        (Some(_), Some(_)) => Tri::No,
        (Some(_), None) => Tri::Maybe,
    }
}

fn matches(r: &DecodedRule, p: &Packet) -> Tri {
    let m = &r.matches;
    let mut t = Tri::Yes;
    if let Some(proto) = m.nfproto {
        let want = if p.v4 { NFPROTO_IPV4 } else { NFPROTO_IPV6 };
        t = and(t, if proto == want { Tri::Yes } else { Tri::No });
    }
    if let Some(l4) = m.l4proto {
        t = and(t, if l4 == IPPROTO_TCP { Tri::Yes } else { Tri::No });
    }
    t = and(t, subnet(m.saddr, p.saddr));
    t = and(t, subnet(m.daddr, p.daddr));
    t = and(t, port(m.sport, p.sport));
    t = and(t, port(m.dport, p.dport));
    if let Some(states) = m.ct_states {
        t = and(
            t,
            if states & CT_UNTRACKED != 0 {
                Tri::Yes
            } else {
                Tri::No
            },
        );
    }
    if m.ct_state_set.is_some() || !m.unknown.is_empty() {
        t = and(t, Tri::Maybe);
    }
    t
}

/// The packet of `flow` that `chain` sees, if any: the request
/// (client -> server:port) on input and forward, the reply
/// (server:port -> client) on output.
fn packet_for(chain: &FilterChain, flow: &ScopedFlow) -> Option<Packet> {
    let v4 = flow.from.is_ipv4();
    match (chain.family.as_str(), v4) {
        ("ip", false) | ("ip6", true) => return None,
        ("ip" | "ip6" | "inet", _) => {}
        _ => return None,
    }
    match chain.hook.as_str() {
        "input" | "forward" => Some(Packet {
            v4,
            saddr: flow.from,
            daddr: flow.to,
            sport: None,
            dport: Some(flow.port),
        }),
        "output" => Some(Packet {
            v4,
            saddr: flow.to,
            daddr: flow.from,
            sport: Some(flow.port),
            dport: None,
        }),
        _ => None,
    }
}

/// Walk `chain` for an untracked packet of `flow`. Rules whose match is
/// uncertain (a set, an interface, anything not decoded) are passed over:
/// only a rule certain to match decides.
pub fn fate(chain: &FilterChain, flow: &ScopedFlow) -> Fate {
    let Some(p) = packet_for(chain, flow) else {
        return Fate::NotSeen;
    };
    for (i, r) in chain.rules.iter().enumerate() {
        if matches(r, &p) != Tri::Yes {
            continue;
        }
        match &r.verdict {
            Verdict::Accept => return Fate::Accepted(Some(i)),
            Verdict::Drop | Verdict::Reject => return Fate::Dropped(Some(i)),
            Verdict::Jump(_) | Verdict::Goto(_) | Verdict::Map(_) => return Fate::Unknown(i),
            Verdict::Return => break,
            Verdict::Continue | Verdict::Notrack => {}
        }
    }
    if chain.policy == "drop" {
        Fate::Dropped(None)
    } else {
        Fate::Accepted(None)
    }
}

/// A stateful chain that would drop a NOTRACKed flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakage {
    /// The chain.
    pub chain: String,
    /// Its hook.
    pub hook: String,
    /// The flow.
    pub flow: String,
    /// The rule that drops it, or `None` for the policy.
    pub by: Option<String>,
}

impl Breakage {
    /// The command that mends it.
    pub fn fix(&self) -> String {
        format!("nft insert rule {} ct state untracked accept", self.chain)
    }
}

impl fmt::Display for Breakage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chain `{}` (hook {}) accepts by `ct state established,related` but would drop the NOTRACKed flow {} ({})",
            self.chain,
            self.hook,
            self.flow,
            match &self.by {
                Some(r) => format!("rule `{r}`"),
                None => "its policy drop: no rule accepts `ct state untracked`".into(),
            }
        )
    }
}

/// Every stateful chain that would drop one of `flows` once untracked.
pub fn breakages(chains: &[FilterChain], flows: &[ScopedFlow]) -> Vec<Breakage> {
    let mut out = Vec::new();
    for c in chains.iter().filter(|c| c.is_stateful()) {
        for f in flows {
            let by = match fate(c, f) {
                Fate::Dropped(by) => by,
                _ => continue,
            };
            out.push(Breakage {
                chain: c.label(),
                hook: c.hook.clone(),
                flow: f.label(),
                by: by.map(|i| c.rules[i].to_string()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::expr::{decode, RawExpr, CT_NEW};
    use super::super::fixtures::{accept, ct, ct_lookup, dport, inet_filter_input};
    use super::*;

    /// The dump of the chain: `policy drop; ct state
    /// established,related accept; ct state new tcp dport 8080 accept`.
    fn stateful_input(extra: Vec<Vec<RawExpr>>) -> FilterChain {
        let mut rules = vec![
            [ct(CT_ESTABLISHED | CT_RELATED), vec![accept()]].concat(),
            [ct(CT_NEW), dport(8080), vec![accept()]].concat(),
        ];
        rules.extend(extra);
        inet_filter_input(rules.iter().map(|e| decode(1, e)).collect())
    }

    fn flow() -> ScopedFlow {
        ScopedFlow {
            from: "10.0.1.0/24".parse().unwrap(),
            to: "10.0.2.0/24".parse().unwrap(),
            port: 8080,
        }
    }

    #[test]
    fn a_stateful_drop_chain_drops_untracked_packets() {
        let c = stateful_input(vec![]);
        assert!(c.is_stateful());
        assert_eq!(fate(&c, &flow()), Fate::Dropped(None));
        let b = breakages(&[c], &[flow()]);
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].fix(),
            "nft insert rule inet filter input ct state untracked accept"
        );
        assert!(b[0].to_string().contains("policy drop"), "{}", b[0]);
    }

    #[test]
    fn ct_state_untracked_accept_mends_it() {
        let c = stateful_input(vec![[ct(CT_UNTRACKED), vec![accept()]].concat()]);
        assert_eq!(fate(&c, &flow()), Fate::Accepted(Some(2)));
        assert!(breakages(&[c], &[flow()]).is_empty());
    }

    #[test]
    fn an_accept_of_the_port_without_ct_mends_it() {
        let c = stateful_input(vec![[dport(8080), vec![accept()]].concat()]);
        assert!(breakages(&[c], &[flow()]).is_empty());
        // ... but not an accept of another port.
        let c = stateful_input(vec![[dport(9090), vec![accept()]].concat()]);
        assert_eq!(breakages(&[c], &[flow()]).len(), 1);
    }

    #[test]
    fn output_chains_see_the_reply_direction() {
        let mut c = stateful_input(vec![]);
        c.hook = "output".into();
        c.name = "output".into();
        assert_eq!(breakages(std::slice::from_ref(&c), &[flow()]).len(), 1);
        // tcp sport 8080 accept covers the reply.
        let mut sport = dport(8080);
        if let RawExpr::Payload { offset, .. } = &mut sport[2] {
            *offset = 0;
        }
        c.rules.push(decode(1, &[sport, vec![accept()]].concat()));
        assert!(breakages(&[c], &[flow()]).is_empty());
    }

    #[test]
    fn policy_accept_and_stateless_chains_are_fine() {
        let mut c = stateful_input(vec![]);
        c.policy = "accept".into();
        assert!(breakages(&[c], &[flow()]).is_empty());
        let c = FilterChain {
            rules: vec![decode(1, &[dport(8080), vec![accept()]].concat())],
            ..stateful_input(vec![])
        };
        assert!(!c.is_stateful());
        assert!(breakages(&[c], &[flow()]).is_empty());
    }

    #[test]
    fn ip6_tables_do_not_see_ipv4_flows() {
        let mut c = stateful_input(vec![]);
        c.family = "ip6".into();
        assert_eq!(fate(&c, &flow()), Fate::NotSeen);
    }

    #[test]
    fn a_ct_state_verdict_map_is_stateful_and_breaks_untracked_flows() {
        // `policy drop; ct state vmap { established : accept, related : accept }`,
        // the nftables wiki's server ruleset.
        let chain = inet_filter_input(vec![decode(1, &ct_lookup("__map0", Some(0)))]);
        assert_eq!(chain.rules[0].verdict, Verdict::Map("__map0".into()));
        assert!(chain.is_stateful());
        assert_eq!(breakages(std::slice::from_ref(&chain), &[flow()]).len(), 1);
        // A plain set lookup without a verdict is not a vmap.
        assert_eq!(
            decode(1, &ct_lookup("__set0", None)).verdict,
            Verdict::Continue
        );
    }
}
