//! Other tables' chains, and whether they would drop a NOTRACKed flow.
//!
//! A NOTRACKed packet has conntrack state `untracked`. A chain with
//! `policy drop` that lets traffic in only by `ct state
//! established,related` (plus `ct state new` for the port) drops it: the
//! NOTRACK "fix" then causes the very connect timeouts it was meant to
//! cure. Real rulesets (iptables-nft, ufw, firewalld) put those accepts in
//! regular chains reached by `jump` and `goto`, so the check walks every
//! base chain the flow's packets traverse the way the kernel would,
//! following jumps and gotos ([`super::walk`]), once for the untracked
//! packet and once as it is tracked today: a chain breaks the flow when
//! the tracked packet gets through and the untracked one is dropped.
//!
//! This file holds the chains as read ([`FilterChain`]) and how one rule
//! matches one packet of a flow ([`matches`]); the walk is in
//! [`super::walk`].

use serde::{Deserialize, Serialize};

use super::expr::{DecodedRule, Verdict, IPPROTO_TCP, NFPROTO_IPV4, NFPROTO_IPV6};
use super::table::{ScopedFlow, RAW_PRIORITY};
use crate::names::Cidr;

/// A chain of another table, as decoded: a base chain (with a hook) or a
/// regular chain that base chains reach by `jump`/`goto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChain {
    /// Table family (`ip`, `ip6`, `inet`).
    pub family: String,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub name: String,
    /// Hook (`prerouting`, `input`, `forward`, `output`, `postrouting`);
    /// empty for a regular chain.
    pub hook: String,
    /// Base chain type (`filter`, `route`); empty for a regular chain.
    #[serde(default = "filter_kind", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Priority (0 for a regular chain).
    pub priority: i32,
    /// `accept` or `drop` (a regular chain's is never used).
    pub policy: String,
    /// Rules, in order.
    pub rules: Vec<DecodedRule>,
}

fn filter_kind() -> String {
    "filter".into()
}

impl FilterChain {
    /// `inet filter input`.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.name)
    }

    /// Whether this is a base chain (hooked), not a regular one.
    pub fn is_base(&self) -> bool {
        !self.hook.is_empty()
    }

    /// The directions of `flow` whose packets this base chain sees
    /// untracked, or none: chains of another family, of another type
    /// (`nat` chains never see untracked packets), or hooked before our
    /// raw-priority notrack rule.
    pub fn directions(&self, flow: &ScopedFlow) -> Vec<Direction> {
        let v4 = flow.from.is_ipv4();
        let family_sees = match self.family.as_str() {
            "ip" => v4,
            "ip6" => !v4,
            "inet" => true,
            _ => false,
        };
        if !family_sees || !matches!(self.kind.as_str(), "filter" | "route") {
            return vec![];
        }
        let lo = flow.touches_loopback();
        use Direction::{Reply, Request};
        match self.hook.as_str() {
            "prerouting" | "output" if self.priority < RAW_PRIORITY => vec![],
            // Loopback packets are sent locally and come back in, so a
            // loopback flow crosses every hook in both directions.
            _ if lo => vec![Request, Reply],
            "prerouting" | "input" => vec![Request],
            "forward" => vec![Request, Reply],
            "output" | "postrouting" => vec![Reply],
            _ => vec![],
        }
    }
}

/// Which packets of a flow: client -> server:port, or the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Client -> server:port.
    Request,
    /// Server:port -> client.
    Reply,
}

impl Direction {
    /// `requests` / `replies`.
    pub fn noun(self) -> &'static str {
        match self {
            Direction::Request => "requests",
            Direction::Reply => "replies",
        }
    }
}

/// One packet of a flow, as a chain sees it.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    v4: bool,
    saddr: Cidr,
    daddr: Cidr,
    sport: Option<u16>,
    dport: Option<u16>,
    /// On loopback.
    lo: bool,
    /// Its `ct state` bit (`untracked`, `new`, `established`).
    pub ct: u32,
}

impl Packet {
    /// The packet of `flow` going in `dir`, with conntrack state bit `ct`.
    pub fn of(flow: &ScopedFlow, dir: Direction, ct: u32) -> Self {
        let (saddr, daddr, sport, dport) = match dir {
            Direction::Request => (flow.from, flow.to, None, Some(flow.port)),
            Direction::Reply => (flow.to, flow.from, Some(flow.port), None),
        };
        Packet {
            v4: flow.from.is_ipv4(),
            saddr,
            daddr,
            sport,
            dport,
            lo: flow.touches_loopback(),
            ct,
        }
    }
}

/// Whether a rule matches the packets of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'a> {
    /// Every packet of the flow.
    Yes,
    /// None.
    No,
    /// Some packets of the flow and not others (a narrower subnet): both
    /// outcomes happen, each to some of the flow's packets.
    Partial,
    /// Not known: the rule matches on something not modelled.
    Unknown(Unmodelled<'a>),
}

/// What a rule matches on that the walk does not model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmodelled<'a> {
    /// `ct state` looked up in this set.
    CtSet(&'a str),
    /// This decoded expression.
    Expr(&'a str),
}

impl std::fmt::Display for Unmodelled<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmodelled::CtSet(set) => {
                write!(f, "`ct state` is looked up in the set {set}, not read")
            }
            Unmodelled::Expr(e) => write!(f, "it matches on <{e}>, not modelled"),
        }
    }
}

fn and<'a>(a: Match<'a>, b: Match<'a>) -> Match<'a> {
    use Match::*;
    match (a, b) {
        (No, _) | (_, No) => No,
        (Unknown(w), _) | (_, Unknown(w)) => Unknown(w),
        (Partial, _) | (_, Partial) => Partial,
        (Yes, Yes) => Yes,
    }
}

fn subnet(rule: Option<Cidr>, pkt: Cidr) -> Match<'static> {
    let Some(r) = rule else { return Match::Yes };
    if r.is_ipv4() != pkt.is_ipv4() {
        return Match::No;
    }
    if r.prefix() <= pkt.prefix() && r.contains(pkt.addr()) {
        Match::Yes
    } else if pkt.prefix() <= r.prefix() && pkt.contains(r.addr()) {
        Match::Partial
    } else {
        Match::No
    }
}

fn port(rule: Option<u16>, pkt: Option<u16>) -> Match<'static> {
    match (rule, pkt) {
        (None, _) => Match::Yes,
        (Some(r), Some(p)) if r == p => Match::Yes,
        (Some(_), Some(_)) => Match::No,
        // The client's ephemeral port: a few of them.
        (Some(_), None) => Match::Partial,
    }
}

fn yes_if(b: bool) -> Match<'static> {
    if b {
        Match::Yes
    } else {
        Match::No
    }
}

/// The verdict rule `r` gives packet `p` when it matches: its own, or
/// for a `ct state` verdict map whose elements were read, the element's.
pub fn verdict_for<'a>(r: &'a DecodedRule, p: &Packet) -> std::borrow::Cow<'a, Verdict> {
    match (&r.verdict, &r.matches.ct_state_elements) {
        (Verdict::Map(_), Some(els)) => std::borrow::Cow::Owned(
            els.iter()
                .find(|(bits, _)| bits & p.ct != 0)
                .and_then(|(_, v)| v.clone())
                .unwrap_or(Verdict::Continue),
        ),
        (v, _) => std::borrow::Cow::Borrowed(v),
    }
}

/// Whether rule `r` matches packet `p`.
pub fn matches<'a>(r: &'a DecodedRule, p: &Packet) -> Match<'a> {
    let m = &r.matches;
    let mut t = Match::Yes;
    if let Some(proto) = m.nfproto {
        t = and(
            t,
            yes_if(proto == if p.v4 { NFPROTO_IPV4 } else { NFPROTO_IPV6 }),
        );
    }
    if let Some(l4) = m.l4proto {
        t = and(t, yes_if(l4 == IPPROTO_TCP));
    }
    t = and(t, subnet(m.saddr, p.saddr));
    t = and(t, subnet(m.daddr, p.daddr));
    t = and(t, port(m.sport, p.sport));
    t = and(t, port(m.dport, p.dport));
    if let Some(lo) = &m.lo_iface {
        t = and(t, yes_if(lo.eq == p.lo));
    }
    if let Some(states) = m.ct_states {
        t = and(t, yes_if(states & p.ct != 0));
    }
    if let Some(set) = &m.ct_state_set {
        t = and(
            t,
            match &m.ct_state_elements {
                // The packet's state is one bit: in the set or not.
                Some(els) => yes_if(els.iter().any(|(bits, _)| bits & p.ct != 0)),
                None => Match::Unknown(Unmodelled::CtSet(set)),
            },
        );
    }
    if let Some(u) = m.unknown.first() {
        t = and(t, Match::Unknown(Unmodelled::Expr(u)));
    }
    t
}
