//! The `inet tcto_tune` table as plain data: built from the profile's
//! trusted flows, rendered as `nft list ruleset` prints it, encoded into
//! kernel expressions and decoded back.
//!
//! This table is the [`Value::Table`](crate::Value) the transaction
//! journals and compares: the planner builds the wanted one, the backend
//! decodes the one in the kernel, and equality of the two is what "already
//! in place" means. It is canonical (one encoding per meaning), so a read
//! back after a write compares equal exactly when the kernel holds what was
//! meant.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::expr::{
    decode, nft_addr, prefix_of, push_nft_addr, RawExpr, Verdict, BASE_NETWORK, BASE_TRANSPORT,
    CMP_EQ, IPPROTO_TCP, META_L4PROTO, META_NFPROTO, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6,
    REG_1,
};
use crate::fix::NotrackFlow;
use crate::names::Cidr;

/// Family of the table tcto-tune owns.
pub const TABLE_FAMILY: &str = "inet";
/// Name of the table tcto-tune owns.
pub const TABLE_NAME: &str = "tcto_tune";
/// The raw priority (`priority raw`): before conntrack (-200) sees the packet.
pub const RAW_PRIORITY: i32 = -300;

/// Up to this many flows get one rule per direction; more go into
/// concatenated interval sets (`from . to . port`), so the rule count stays
/// at two per address family however many flows there are.
pub const MAX_RULE_FLOWS: usize = 32;

/// A NOTRACK table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotrackTable {
    /// Flow sets (`flows4`, `flows6`), only past `MAX_RULE_FLOWS` flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<FlowSet>,
    /// Chains, in order (prerouting, output).
    pub chains: Vec<NotrackChain>,
    /// Content of the table in the kernel that tcto-tune did not write
    /// (read only: never planned over, never written back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign: Vec<Foreign>,
}

/// Something in our table that tcto-tune did not write: what it is, and
/// the `nft` command that removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Foreign {
    /// `rule `tcp dport 22 accept` in chain prerouting (handle 4)`.
    pub what: String,
    /// `nft delete rule inet tcto_tune prerouting handle 4`.
    pub remove: String,
}

/// `set flows4 { type ipv4_addr . ipv4_addr . inet_service; flags interval; ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSet {
    /// `flows4`/`flows6`, or `flows4-TAG`/`flows6-TAG` for a profile's set.
    pub name: String,
    /// Elements, sorted (the kernel's dump order is its own).
    pub elements: Vec<FlowElement>,
    /// The profile tag whose flows these are (`None`: untagged, as
    /// tcto-tune wrote tables before tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// One element, `from . to . port`: a flow, held in a set.
pub type FlowElement = ScopedFlow;

/// `ip saddr . ip daddr . tcp dport @flows4 notrack` (request) or
/// `ip daddr . ip saddr . tcp sport @flows4 notrack` (reply).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SetRule {
    /// IPv4 (`flows4`) or IPv6 (`flows6`).
    pub ipv4: bool,
    /// The reply direction (server:port -> client).
    pub reply: bool,
    /// The profile tag: the rule's comment, and its set's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// One base chain of the table (hook at raw priority, policy accept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotrackChain {
    /// Chain name, also its hook (`prerouting` or `output`).
    pub name: String,
    /// Hook priority.
    pub priority: i32,
    /// Rules, in order.
    pub rules: Vec<NotrackRule>,
    /// Set lookups, after `rules`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_rules: Vec<SetRule>,
}

/// `ip saddr S [tcp sport P] ip daddr D [tcp dport P] notrack`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotrackRule {
    /// Source subnet.
    pub saddr: Cidr,
    /// Destination subnet (same family as `saddr`).
    pub daddr: Cidr,
    /// TCP source port (reply direction).
    pub sport: Option<u16>,
    /// TCP destination port (request direction).
    pub dport: Option<u16>,
    /// The profile tag (the rule's comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// `127.0.0.0/8`.
fn lo4() -> Cidr {
    Cidr::new(std::net::Ipv4Addr::new(127, 0, 0, 0).into(), 8).expect("127.0.0.0/8 is a subnet")
}

/// A flow with every field present and one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ScopedFlow {
    /// Client subnet.
    pub from: Cidr,
    /// Server subnet.
    pub to: Cidr,
    /// Server port.
    pub port: u16,
}

impl ScopedFlow {
    /// The flow, if it names both subnets (of one family) and the port.
    pub fn of(f: &NotrackFlow) -> Option<Self> {
        match (f.from, f.to, f.port) {
            (Some(from), Some(to), Some(port)) if from.is_ipv4() == to.is_ipv4() => {
                Some(ScopedFlow { from, to, port })
            }
            _ => None,
        }
    }

    /// `10.0.1.0/24 -> 10.0.2.0/24 port 8080`.
    pub fn label(&self) -> String {
        format!("{} -> {} port {}", self.from, self.to, self.port)
    }

    /// Whether the flow matches loopback traffic: both ends reach into
    /// the loopback range (127.0.0.0/8, ::1), since a packet on `lo`
    /// carries loopback addresses at both ends. Decided by those ranges
    /// only: `0.0.0.0/1 -> 128.0.0.0/1` holds 127.0.0.1 on one side and
    /// is not loopback.
    pub fn touches_loopback(&self) -> bool {
        let lo = |c: &Cidr| match c.addr() {
            IpAddr::V4(_) => super::scope::overlaps(c, &lo4()),
            IpAddr::V6(_) => c.contains(std::net::Ipv6Addr::LOCALHOST.into()),
        };
        lo(&self.from) && lo(&self.to)
    }

    /// The rule for the request direction: client -> server:port.
    fn request(&self, profile: &Option<String>) -> NotrackRule {
        NotrackRule {
            saddr: self.from,
            daddr: self.to,
            sport: None,
            dport: Some(self.port),
            profile: profile.clone(),
        }
    }

    /// The rule for the reply direction: server:port -> client.
    fn reply(&self, profile: &Option<String>) -> NotrackRule {
        NotrackRule {
            saddr: self.to,
            daddr: self.from,
            sport: Some(self.port),
            dport: None,
            profile: profile.clone(),
        }
    }
}

/// The flows one profile put into the table: each rule and set carries
/// its tag, so profiles compose and each one's flows can be told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The profile tag ([`tag_of`]); `None` for untagged (older) content.
    pub profile: Option<String>,
    /// Its flows, in order.
    pub flows: Vec<ScopedFlow>,
}

/// The tag a profile's rules carry (their `comment`) and its sets' name
/// suffix: the profile name with anything but letters, digits, `.`, `_`
/// and `-` replaced by `_`, at most 64 bytes.
pub fn tag_of(profile: &str) -> String {
    let t: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

impl NotrackTable {
    /// The table for these flows, untagged (one part).
    pub fn for_flows(flows: &[ScopedFlow]) -> Self {
        Self::for_parts(&[Part {
            profile: None,
            flows: flows.to_vec(),
        }])
    }

    /// The table for these parts: per flow, the request direction in
    /// prerouting and the reply direction in output (a loopback flow also
    /// gets its request direction in output, where loopback packets are
    /// first seen by conntrack); a part of more than `MAX_RULE_FLOWS`
    /// flows gets its own sets instead, looked up by two rules per family.
    /// Per-flow rules come first, part by part, then the set rules.
    pub fn for_parts(parts: &[Part]) -> Self {
        let mut pre = Rules::default();
        let mut out = Rules::default();
        let mut sets = Vec::new();
        let mut pre_sets = Vec::new();
        let mut out_sets = Vec::new();
        for part in parts {
            let tag = &part.profile;
            if part.flows.len() <= MAX_RULE_FLOWS {
                for f in &part.flows {
                    pre.push(f.request(tag));
                    if f.touches_loopback() {
                        out.push(f.request(tag));
                    }
                    out.push(f.reply(tag));
                }
                continue;
            }
            for ipv4 in [true, false] {
                let mut elements: Vec<FlowElement> = part
                    .flows
                    .iter()
                    .filter(|f| f.from.is_ipv4() == ipv4)
                    .copied()
                    .collect();
                if elements.is_empty() {
                    continue;
                }
                elements.sort();
                elements.dedup();
                sets.push(FlowSet {
                    name: set_name(ipv4, tag.as_deref()),
                    elements,
                    profile: tag.clone(),
                });
                let rule = |reply| SetRule {
                    ipv4,
                    reply,
                    profile: tag.clone(),
                };
                pre_sets.push(rule(false));
                out_sets.push(rule(true));
            }
            for f in part.flows.iter().filter(|f| f.touches_loopback()) {
                out.push(f.request(tag));
            }
        }
        NotrackTable {
            foreign: vec![],
            sets,
            chains: vec![
                NotrackChain {
                    name: "prerouting".into(),
                    priority: RAW_PRIORITY,
                    rules: pre.rules,
                    set_rules: pre_sets,
                },
                NotrackChain {
                    name: "output".into(),
                    priority: RAW_PRIORITY,
                    rules: out.rules,
                    set_rules: out_sets,
                },
            ],
        }
    }

    /// The parts this table holds, each tag once, in order of first
    /// appearance (per-flow rules, then sets): [`for_parts`](Self::for_parts)
    /// of them gives this table back when it is one tcto-tune wrote.
    pub fn parts(&self) -> Vec<Part> {
        let mut out: Vec<Part> = Vec::new();
        let mut add = |profile: &Option<String>, f: ScopedFlow| match out
            .iter_mut()
            .find(|p| &p.profile == profile)
        {
            Some(p) => p.flows.push(f),
            None => out.push(Part {
                profile: profile.clone(),
                flows: vec![f],
            }),
        };
        for c in self.chains.iter().filter(|c| c.name == "prerouting") {
            for r in &c.rules {
                if let Some(port) = r.dport {
                    let f = ScopedFlow {
                        from: r.saddr,
                        to: r.daddr,
                        port,
                    };
                    add(&r.profile, f);
                }
            }
        }
        for set in &self.sets {
            for e in &set.elements {
                add(&set.profile, *e);
            }
        }
        out
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.chains
            .iter()
            .map(|c| c.rules.len() + c.set_rules.len())
            .sum()
    }

    /// Number of flows (per-flow request rules plus set elements).
    pub fn flow_count(&self) -> usize {
        let rules = self
            .chains
            .iter()
            .filter(|c| c.name == "prerouting")
            .map(|c| c.rules.len())
            .sum::<usize>();
        rules + self.sets.iter().map(|s| s.elements.len()).sum::<usize>()
    }

    /// The table as `nft list ruleset` prints it.
    pub fn to_nft(&self) -> String {
        // About 50 bytes per element or rule: one allocation, not ~20 regrowths.
        let items: usize =
            self.sets.iter().map(|s| s.elements.len()).sum::<usize>() + self.rule_count();
        let mut s = String::with_capacity(512 + 64 * items);
        let _ = writeln!(s, "table {TABLE_FAMILY} {TABLE_NAME} {{");
        for set in &self.sets {
            let ty = if set_family(&set.name).is_some_and(|(v4, _)| v4) {
                "ipv4_addr . ipv4_addr . inet_service"
            } else {
                "ipv6_addr . ipv6_addr . inet_service"
            };
            let _ = writeln!(
                s,
                "\tset {} {{\n\t\ttype {ty}\n\t\tflags interval",
                set.name
            );
            s.push_str("\t\telements = { ");
            for (i, e) in set.elements.iter().enumerate() {
                if i > 0 {
                    s.push_str(",\n\t\t\t     ");
                }
                e.push_nft(&mut s);
            }
            s.push_str(" }\n");
            s.push_str("\t}\n\n");
        }
        for (i, c) in self.chains.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            let _ = writeln!(s, "\tchain {} {{", c.name);
            let _ = writeln!(
                s,
                "\t\ttype filter hook {} priority {}; policy accept;",
                c.name,
                priority_name(c.priority)
            );
            for r in &c.rules {
                let _ = writeln!(s, "\t\t{}", r.to_nft());
            }
            for r in &c.set_rules {
                let _ = writeln!(s, "\t\t{}", r.to_nft());
            }
            s.push_str("\t}\n");
        }
        s.push_str("}\n");
        s
    }

    /// As a JSON value (how [`crate::Value::Table`] is serialized).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a table serializes")
    }
}

/// Rules in order, each once.
#[derive(Default)]
struct Rules {
    seen: std::collections::HashSet<NotrackRule>,
    rules: Vec<NotrackRule>,
}

impl Rules {
    fn push(&mut self, r: NotrackRule) {
        if self.seen.insert(r.clone()) {
            self.rules.push(r);
        }
    }
}

/// `raw`, `raw + 5`, `-150`... as `nft` names inet filter priorities.
pub fn priority_name(p: i32) -> String {
    let named = [
        (-300, "raw"),
        (-150, "mangle"),
        (-100, "dstnat"),
        (0, "filter"),
        (50, "security"),
        (100, "srcnat"),
    ];
    for (base, name) in named {
        let d = p - base;
        if d == 0 {
            return name.into();
        }
        if d.abs() <= 10 {
            return format!("{name} {} {}", if d > 0 { '+' } else { '-' }, d.abs());
        }
    }
    p.to_string()
}

impl NotrackRule {
    /// IPv4 or IPv6.
    pub fn is_ipv4(&self) -> bool {
        self.saddr.is_ipv4()
    }

    /// The rule as `nft` prints it.
    pub fn to_nft(&self) -> String {
        let ip = if self.is_ipv4() { "ip" } else { "ip6" };
        let mut s = format!("{ip} saddr {}", nft_addr(&self.saddr));
        if let Some(p) = self.sport {
            let _ = write!(s, " tcp sport {p}");
        }
        let _ = write!(s, " {ip} daddr {}", nft_addr(&self.daddr));
        if let Some(p) = self.dport {
            let _ = write!(s, " tcp dport {p}");
        }
        s.push_str(" notrack");
        push_comment(&mut s, &self.profile);
        s
    }

    /// The kernel expressions, as `nft -f` would generate them for
    /// [`to_nft`](Self::to_nft): `meta nfproto`, the source address,
    /// `meta l4proto tcp` before the first port, the ports big-endian,
    /// byte-aligned prefixes as shorter loads, other prefixes masked.
    pub fn to_exprs(&self) -> Vec<RawExpr> {
        let v4 = self.is_ipv4();
        let (proto, s_off, d_off) = if v4 {
            (NFPROTO_IPV4, 12, 16)
        } else {
            (NFPROTO_IPV6, 8, 24)
        };
        let mut e = vec![
            RawExpr::Meta {
                key: META_NFPROTO,
                dreg: REG_1,
            },
            cmp(vec![proto]),
        ];
        addr_exprs(&mut e, &self.saddr, s_off);
        let mut l4 = false;
        if let Some(p) = self.sport {
            port_exprs(&mut e, &mut l4, 0, p);
        }
        addr_exprs(&mut e, &self.daddr, d_off);
        if let Some(p) = self.dport {
            port_exprs(&mut e, &mut l4, 2, p);
        }
        e.push(RawExpr::Notrack);
        e
    }

    /// Decode a rule of our table with its comment; `None` for anything
    /// we did not write.
    pub fn from_exprs(exprs: &[RawExpr], comment: Option<&str>) -> Option<Self> {
        let r = decode(NFPROTO_INET, exprs);
        let m = r.matches;
        let (saddr, daddr) = (m.saddr?, m.daddr?);
        let ok = r.verdict == Verdict::Notrack
            && m.unknown.is_empty()
            && m.ct_states.is_none()
            && m.ct_state_set.is_none()
            && m.l4proto == Some(IPPROTO_TCP)
            && m.sport.is_some() != m.dport.is_some();
        let rule = NotrackRule {
            saddr,
            daddr,
            sport: m.sport,
            dport: m.dport,
            profile: comment.map(str::to_owned),
        };
        // Canonical form only: a rule that decodes to the same meaning
        // with other bytes is not one we wrote.
        let canonical = comment.is_none_or(|c| tag_of(c) == c);
        (ok && canonical && rule.to_exprs() == exprs).then_some(rule)
    }
}

/// ` comment "TAG"`, as `nft` prints a rule's comment.
fn push_comment(s: &mut String, profile: &Option<String>) {
    if let Some(tag) = profile {
        let _ = write!(s, " comment \"{tag}\"");
    }
}

/// `flows4` / `flows6`, with `-TAG` for a profile's set.
pub fn set_name(ipv4: bool, profile: Option<&str>) -> String {
    let base = if ipv4 { "flows4" } else { "flows6" };
    match profile {
        Some(tag) => format!("{base}-{tag}"),
        None => base.to_owned(),
    }
}

/// The family and tag of set `name` (the inverse of [`set_name`]); `None`
/// for a set that is not ours.
pub fn set_family(name: &str) -> Option<(bool, Option<String>)> {
    let (ipv4, rest) = if let Some(r) = name.strip_prefix("flows4") {
        (true, r)
    } else {
        (false, name.strip_prefix("flows6")?)
    };
    match rest.strip_prefix('-') {
        None if rest.is_empty() => Some((ipv4, None)),
        Some(tag) if tag_of(tag) == tag => Some((ipv4, Some(tag.to_owned()))),
        _ => None,
    }
}

impl FlowElement {
    /// `10.0.1.0/24 . 10.0.2.0/24 . 8080`.
    pub fn to_nft(&self) -> String {
        let mut s = String::new();
        self.push_nft(&mut s);
        s
    }

    /// [`to_nft`](Self::to_nft) appended to `out`.
    pub fn push_nft(&self, out: &mut String) {
        push_nft_addr(out, &self.from);
        out.push_str(" . ");
        push_nft_addr(out, &self.to);
        let _ = write!(out, " . {}", self.port);
    }

    /// The set key bounds (`key`, `key_end`): each field padded to 4
    /// bytes, addresses as low and high end of the subnet, the port the
    /// same in both, big-endian.
    pub fn key_range(&self) -> (Vec<u8>, Vec<u8>) {
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        self.key_range_into(&mut lo, &mut hi);
        (lo, hi)
    }

    /// [`key_range`](Self::key_range) into reused buffers (cleared
    /// first): writing 1,000 elements allocated eight vectors for each.
    pub fn key_range_into(&self, lo: &mut Vec<u8>, hi: &mut Vec<u8>) {
        lo.clear();
        hi.clear();
        for c in [&self.from, &self.to] {
            let octets = match c.addr() {
                IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
                IpAddr::V6(a) => u128::from(a),
            };
            let len = if c.is_ipv4() { 4 } else { 16 };
            let host = u128::MAX.checked_shr(u32::from(c.prefix())).unwrap_or(0);
            lo.extend_from_slice(&octets.to_be_bytes()[..len]);
            hi.extend_from_slice(&(octets | host).to_be_bytes()[..len]);
        }
        let port = [self.port.to_be_bytes()[0], self.port.to_be_bytes()[1], 0, 0];
        lo.extend_from_slice(&port);
        hi.extend_from_slice(&port);
    }

    /// Decode a key range of set `flows4`/`flows6`; `None` if it is not
    /// one subnet . subnet . port.
    pub fn from_key_range(ipv4: bool, lo: &[u8], hi: &[u8]) -> Option<Self> {
        let a = if ipv4 { 4 } else { 16 };
        if lo.len() != 2 * a + 4 || hi.len() != lo.len() {
            return None;
        }
        let from = cidr_of(&lo[..a], &hi[..a])?;
        let to = cidr_of(&lo[a..2 * a], &hi[a..2 * a])?;
        let p = &lo[2 * a..];
        if p != &hi[2 * a..] || p[2] != 0 || p[3] != 0 {
            return None;
        }
        Some(FlowElement {
            from,
            to,
            port: u16::from_be_bytes([p[0], p[1]]),
        })
    }
}

/// The subnet whose low and high ends are `lo` and `hi`.
fn cidr_of(lo: &[u8], hi: &[u8]) -> Option<Cidr> {
    // The bits the ends share form the mask.
    let prefix = prefix_of(lo.iter().zip(hi).map(|(l, h)| !(l ^ h)))?;
    let addr: IpAddr = match lo.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(lo).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(lo).ok()?),
        _ => return None,
    };
    Cidr::new(addr, prefix).ok()
}

impl SetRule {
    /// The rule as `nft` prints it.
    pub fn to_nft(&self) -> String {
        let ip = if self.ipv4 { "ip" } else { "ip6" };
        let set = set_name(self.ipv4, self.profile.as_deref());
        let mut s = if self.reply {
            format!("{ip} daddr . {ip} saddr . tcp sport @{set} notrack")
        } else {
            format!("{ip} saddr . {ip} daddr . tcp dport @{set} notrack")
        };
        push_comment(&mut s, &self.profile);
        s
    }

    /// The kernel expressions, as `nft -f` generates them: the three
    /// fields into consecutive registers (32-bit ones for IPv4: 1, 9, 10;
    /// 128-bit ones for IPv6: 1, 2, 3), then the lookup.
    pub fn to_exprs(&self) -> Vec<RawExpr> {
        let (proto, s_off, d_off, len, regs) = if self.ipv4 {
            (NFPROTO_IPV4, 12, 16, 4, [1, 9, 10])
        } else {
            (NFPROTO_IPV6, 8, 24, 16, [1, 2, 3])
        };
        let (first, second, port_off) = if self.reply {
            (d_off, s_off, 0)
        } else {
            (s_off, d_off, 2)
        };
        let load = |base, offset, len, dreg| RawExpr::Payload {
            base,
            offset,
            len,
            dreg,
        };
        vec![
            RawExpr::Meta {
                key: META_NFPROTO,
                dreg: REG_1,
            },
            cmp(vec![proto]),
            RawExpr::Meta {
                key: META_L4PROTO,
                dreg: REG_1,
            },
            cmp(vec![IPPROTO_TCP]),
            load(BASE_NETWORK, first, len, regs[0]),
            load(BASE_NETWORK, second, len, regs[1]),
            load(BASE_TRANSPORT, port_off, 2, regs[2]),
            RawExpr::Lookup {
                sreg: REG_1,
                set: set_name(self.ipv4, self.profile.as_deref()),
                dreg: None,
            },
            RawExpr::Notrack,
        ]
    }

    /// Decode a set rule of our table with its comment (which must name
    /// the set it looks up).
    pub fn from_exprs(exprs: &[RawExpr], comment: Option<&str>) -> Option<Self> {
        let profile = comment.map(str::to_owned);
        [true, false]
            .into_iter()
            .flat_map(|ipv4| {
                [false, true].map(|reply| SetRule {
                    ipv4,
                    reply,
                    profile: profile.clone(),
                })
            })
            .find(|r| r.to_exprs() == exprs)
    }
}

fn cmp(data: Vec<u8>) -> RawExpr {
    RawExpr::Cmp {
        sreg: REG_1,
        op: CMP_EQ,
        data,
    }
}

fn addr_exprs(e: &mut Vec<RawExpr>, c: &Cidr, offset: u32) {
    let bytes: Vec<u8> = match c.addr() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let prefix = usize::from(c.prefix());
    if prefix > 0 && prefix % 8 == 0 {
        let len = prefix / 8;
        e.push(RawExpr::Payload {
            base: BASE_NETWORK,
            offset,
            len: len as u32,
            dreg: REG_1,
        });
        e.push(cmp(bytes[..len].to_vec()));
    } else {
        e.push(RawExpr::Payload {
            base: BASE_NETWORK,
            offset,
            len: bytes.len() as u32,
            dreg: REG_1,
        });
        e.push(RawExpr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask: c.mask_bytes(),
            xor: vec![0; bytes.len()],
        });
        e.push(cmp(bytes));
    }
}

fn port_exprs(e: &mut Vec<RawExpr>, l4: &mut bool, offset: u32, port: u16) {
    if !*l4 {
        e.push(RawExpr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        });
        e.push(cmp(vec![IPPROTO_TCP]));
        *l4 = true;
    }
    e.push(RawExpr::Payload {
        base: BASE_TRANSPORT,
        offset,
        len: 2,
        dreg: REG_1,
    });
    e.push(cmp(port.to_be_bytes().to_vec()));
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::accept;
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn flow(from: &str, to: &str, port: u16) -> ScopedFlow {
        ScopedFlow {
            from: c(from),
            to: c(to),
            port,
        }
    }

    #[test]
    fn v4_request_rule_matches_what_nft_generates() {
        // `nft --debug=netlink` for
        // `ip saddr 10.0.1.0/24 ip daddr 10.0.2.0/24 tcp dport 8080 notrack`:
        // 3-byte loads for /24, port 8080 = 0x1f90 in network order.
        let t = NotrackTable::for_flows(&[flow("10.0.1.0/24", "10.0.2.0/24", 8080)]);
        let r = &t.chains[0].rules[0];
        let e = r.to_exprs();
        assert_eq!(
            e,
            vec![
                RawExpr::Meta { key: 15, dreg: 1 },
                cmp(vec![2]),
                RawExpr::Payload {
                    base: 1,
                    offset: 12,
                    len: 3,
                    dreg: 1
                },
                cmp(vec![10, 0, 1]),
                RawExpr::Payload {
                    base: 1,
                    offset: 16,
                    len: 3,
                    dreg: 1
                },
                cmp(vec![10, 0, 2]),
                RawExpr::Meta { key: 16, dreg: 1 },
                cmp(vec![6]),
                RawExpr::Payload {
                    base: 2,
                    offset: 2,
                    len: 2,
                    dreg: 1
                },
                cmp(vec![0x1f, 0x90]),
                RawExpr::Notrack,
            ]
        );
        assert_eq!(NotrackRule::from_exprs(&e, None).as_ref(), Some(r));
    }

    #[test]
    fn v4_reply_rule_has_the_source_port_before_the_destination() {
        let t = NotrackTable::for_flows(&[flow("10.0.1.0/24", "10.0.2.0/24", 8080)]);
        let r = &t.chains[1].rules[0];
        assert_eq!(
            r.to_nft(),
            "ip saddr 10.0.2.0/24 tcp sport 8080 ip daddr 10.0.1.0/24 notrack"
        );
        let e = r.to_exprs();
        assert_eq!(
            e[4..8],
            [
                RawExpr::Meta { key: 16, dreg: 1 },
                cmp(vec![6]),
                RawExpr::Payload {
                    base: 2,
                    offset: 0,
                    len: 2,
                    dreg: 1
                },
                cmp(vec![0x1f, 0x90]),
            ]
        );
        assert_eq!(NotrackRule::from_exprs(&e, None).as_ref(), Some(r));
    }

    #[test]
    fn v6_and_unaligned_prefixes_use_masks() {
        let t = NotrackTable::for_flows(&[flow("fd00:1::/64", "fd00:2::/60", 443)]);
        let e = t.chains[0].rules[0].to_exprs();
        assert_eq!(e[1], cmp(vec![10]));
        assert_eq!(
            e[2],
            RawExpr::Payload {
                base: 1,
                offset: 8,
                len: 8,
                dreg: 1
            }
        );
        assert_eq!(e[3], cmp(vec![0xfd, 0, 0, 1, 0, 0, 0, 0]));
        assert_eq!(
            e[4],
            RawExpr::Payload {
                base: 1,
                offset: 24,
                len: 16,
                dreg: 1
            }
        );
        let RawExpr::Bitwise { mask, .. } = &e[5] else {
            panic!("{e:?}")
        };
        assert_eq!(mask[..8], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]);
        assert_eq!(e[10], cmp(443u16.to_be_bytes().to_vec()));
        assert_eq!(e[10], cmp(vec![0x01, 0xbb]));
        assert_eq!(
            NotrackRule::from_exprs(&e, None).as_ref(),
            Some(&t.chains[0].rules[0])
        );
    }

    #[test]
    fn renders_like_nft_list_ruleset() {
        let t = NotrackTable::for_flows(&[
            flow("10.0.1.0/24", "10.0.2.0/24", 8080),
            flow("fd00:1::/64", "fd00:2::/128", 8080),
        ]);
        assert_eq!(
            t.to_nft(),
            "table inet tcto_tune {
\tchain prerouting {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tip saddr 10.0.1.0/24 ip daddr 10.0.2.0/24 tcp dport 8080 notrack
\t\tip6 saddr fd00:1::/64 ip6 daddr fd00:2:: tcp dport 8080 notrack
\t}

\tchain output {
\t\ttype filter hook output priority raw; policy accept;
\t\tip saddr 10.0.2.0/24 tcp sport 8080 ip daddr 10.0.1.0/24 notrack
\t\tip6 saddr fd00:2:: tcp sport 8080 ip6 daddr fd00:1::/64 notrack
\t}
}
"
        );
    }

    #[test]
    fn loopback_flows_get_the_request_rule_in_output_too() {
        let t = NotrackTable::for_flows(&[flow("127.0.0.0/8", "127.0.0.1/32", 8080)]);
        assert_eq!(t.chains[1].rules.len(), 2);
        assert_eq!(t.chains[1].rules[0].dport, Some(8080));
        let t = NotrackTable::for_flows(&[flow("10.0.1.0/24", "10.0.2.0/24", 8080)]);
        assert_eq!(t.chains[1].rules.len(), 1);
        // Decided by the loopback ranges only: one side holding 127.0.0.1
        // is not loopback traffic.
        assert!(!flow("0.0.0.0/1", "128.0.0.0/1", 8080).touches_loopback());
        assert!(flow("0.0.0.0/0", "127.0.0.1/32", 8080).touches_loopback());
        assert!(flow("::1/128", "::1/128", 8080).touches_loopback());
        assert!(!flow("::/1", "fd00::/64", 8080).touches_loopback());
        let t = NotrackTable::for_flows(&[flow("0.0.0.0/1", "128.0.0.0/1", 8080)]);
        assert_eq!(t.chains[1].rules.len(), 1, "no extra output rule");
    }

    #[test]
    fn foreign_rules_do_not_decode() {
        let mut e = NotrackTable::for_flows(&[flow("10.0.1.0/24", "10.0.2.0/24", 8080)]).chains[0]
            .rules[0]
            .to_exprs();
        e.pop();
        e.push(accept());
        assert_eq!(NotrackRule::from_exprs(&e, None), None);
    }

    #[test]
    fn a_table_journaled_before_tags_reads_back_untagged() {
        // What an older tcto-tune journaled: no `profile`, sets `flows4`.
        let old = r#"{"sets":[{"name":"flows4","elements":[{"from":"10.9.0.0/24","to":"10.0.2.0/24","port":80}]}],
            "chains":[{"name":"prerouting","priority":-300,"rules":[],"set_rules":[{"ipv4":true,"reply":false}]},
                      {"name":"output","priority":-300,"rules":[],"set_rules":[{"ipv4":true,"reply":true}]}]}"#;
        let t: NotrackTable = serde_json::from_str(old).unwrap();
        assert_eq!(t.sets[0].profile, None);
        assert!(t
            .to_nft()
            .contains("\t\tip saddr . ip daddr . tcp dport @flows4 notrack\n"));
        assert_eq!(t.parts()[0].profile, None);
        assert!(t.foreign.is_empty());
    }

    #[test]
    fn priorities_are_named_as_nft_names_them() {
        assert_eq!(priority_name(-300), "raw");
        assert_eq!(priority_name(0), "filter");
        assert_eq!(priority_name(5), "filter + 5");
        assert_eq!(priority_name(-1000), "-1000");
    }
}
