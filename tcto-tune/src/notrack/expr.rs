//! nftables rule expressions as plain data, and a decoder for them.
//!
//! The kernel stores a rule as a list of register-machine expressions
//! (`meta load nfproto => reg 1`, `cmp eq reg 1 0x02`...), not as the text
//! `nft` prints. Keeping that list as plain data ([`RawExpr`]) lets us
//! (1) build our NOTRACK rules and test their exact bytes without a kernel,
//! (2) decode what the kernel hands back, for our own table (read back
//! after a write) and for everybody else's filter chains (the
//! stateful-filter check), from fixture dumps in tests. The netlink code in
//! `system::nft` only converts between [`RawExpr`] and libnftnl objects.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::names::Cidr;

/// `NFPROTO_IPV4`.
pub const NFPROTO_IPV4: u8 = 2;
/// `NFPROTO_IPV6`.
pub const NFPROTO_IPV6: u8 = 10;
/// `NFPROTO_INET`.
pub const NFPROTO_INET: u8 = 1;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `NFT_META_NFPROTO`.
pub const META_NFPROTO: u32 = 15;
/// `NFT_META_L4PROTO`.
pub const META_L4PROTO: u32 = 16;
/// `NFT_META_IIF`, `NFT_META_OIF`, `NFT_META_IIFNAME`, `NFT_META_OIFNAME`.
const META_IFACE: [(u32, &str); 4] = [(4, "iif"), (5, "oif"), (6, "iifname"), (7, "oifname")];
/// `NFT_PAYLOAD_NETWORK_HEADER`.
pub const BASE_NETWORK: u32 = 1;
/// `NFT_PAYLOAD_TRANSPORT_HEADER`.
pub const BASE_TRANSPORT: u32 = 2;
/// `NFT_CMP_EQ`.
pub const CMP_EQ: u32 = 0;
/// `NFT_CMP_NEQ`.
pub const CMP_NEQ: u32 = 1;
/// `NFT_CT_STATE`.
pub const CT_STATE: u32 = 0;
/// `NFT_REG_1`, the register our rules use.
pub const REG_1: u32 = 1;
/// `NF_DROP`.
pub const NF_DROP: i32 = 0;
/// `NF_ACCEPT`.
pub const NF_ACCEPT: i32 = 1;
/// `NFT_JUMP`.
pub const NFT_JUMP: i32 = -3;
/// `NFT_GOTO`.
pub const NFT_GOTO: i32 = -4;
/// `NFT_RETURN`.
pub const NFT_RETURN: i32 = -5;

/// Conntrack state bits as `ct state` matches them (`NF_CT_STATE_BIT`).
pub const CT_INVALID: u32 = 0x01;
/// `established`.
pub const CT_ESTABLISHED: u32 = 0x02;
/// `related`.
pub const CT_RELATED: u32 = 0x04;
/// `new`.
pub const CT_NEW: u32 = 0x08;
/// `untracked`: what a NOTRACKed packet is.
pub const CT_UNTRACKED: u32 = 0x40;

/// One kernel expression, with the attributes the decoder understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "expr", rename_all = "snake_case")]
pub enum RawExpr {
    /// `meta load KEY => reg DREG`.
    Meta {
        /// `NFT_META_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `payload load LEN b @ BASE + OFFSET => reg DREG`.
    Payload {
        /// `NFT_PAYLOAD_*_HEADER`.
        base: u32,
        /// Byte offset.
        offset: u32,
        /// Byte length.
        len: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `bitwise reg DREG = (reg SREG & MASK) ^ XOR`.
    Bitwise {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// Mask bytes.
        mask: Vec<u8>,
        /// Xor bytes.
        xor: Vec<u8>,
    },
    /// `cmp OP reg SREG DATA`.
    Cmp {
        /// Source register.
        sreg: u32,
        /// `NFT_CMP_*`.
        op: u32,
        /// Bytes compared, as the packet holds them (network order).
        data: Vec<u8>,
    },
    /// `ct load KEY => reg DREG`.
    Ct {
        /// `NFT_CT_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `immediate reg 0 VERDICT [CHAIN]`, or data into another register.
    Immediate {
        /// Destination register (0: the verdict register).
        dreg: u32,
        /// Verdict code when `dreg` is 0.
        verdict: Option<i32>,
        /// Chain of a jump or goto.
        chain: Option<String>,
    },
    /// `lookup reg SREG set NAME`.
    Lookup {
        /// Source register.
        sreg: u32,
        /// Set name.
        set: String,
        /// Destination register: `Some(0)` for a verdict map (`vmap`).
        dreg: Option<u32>,
    },
    /// `notrack`.
    Notrack,
    /// `counter` (no effect on matching).
    Counter,
    /// Any other expression, by name.
    Other {
        /// libnftnl's name (`reject`, `log`, `limit`...).
        name: String,
    },
}

/// What a rule does with a packet it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No verdict: evaluation goes on with the next rule.
    Continue,
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `reject` (a drop with an answer).
    Reject,
    /// `notrack` (then the next rule).
    Notrack,
    /// `jump CHAIN`.
    Jump(String),
    /// `goto CHAIN`.
    Goto(String),
    /// `return`.
    Return,
    /// Decided by a verdict map (`vmap`) whose elements are not read.
    Map(String),
}

/// What the decoder understood of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// `meta nfproto` (explicit, or implied by an `ip`/`ip6` table).
    pub nfproto: Option<u8>,
    /// `meta l4proto`.
    pub l4proto: Option<u8>,
    /// Source subnet.
    pub saddr: Option<Cidr>,
    /// Destination subnet.
    pub daddr: Option<Cidr>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// The `ct state` bits this rule matches (any of them).
    pub ct_states: Option<u32>,
    /// `ct state` matched through a set lookup (`ct state { ... }`); the
    /// set's elements are not read, so the states are unknown.
    pub ct_state_set: Option<String>,
    /// An interface match on loopback (`iif "lo"`, `oifname != "lo"`...):
    /// the only interface the walk can decide for a flow, since every
    /// namespace's `lo` is ifindex 1 and named `lo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_iface: Option<LoIface>,
    /// A `counter` (no effect on matching; kept so the rule reads as written).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counter: bool,
    /// The elements of the `ct state` set or verdict map, once read: each
    /// state bit, with its verdict for a map (`None` for a plain set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct_state_elements: Option<Vec<CtElement>>,
    /// Matches the decoder does not model, as text.
    pub unknown: Vec<String>,
}

/// One element of a `ct state` set or verdict map: the state bit, and for
/// a map its verdict.
pub type CtElement = (u32, Option<Verdict>);

/// `iif`/`oif`/`iifname`/`oifname` compared with loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoIface {
    /// `iif`, `oif`, `iifname` or `oifname`.
    pub key: String,
    /// `==` (true) or `!=` (false).
    pub eq: bool,
}

/// A decoded rule: its matches and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodedRule {
    /// Matches.
    #[serde(flatten)]
    pub matches: RuleMatch,
    /// Verdict.
    pub verdict: Verdict,
}

#[derive(Clone, Debug)]
enum Loaded {
    Meta(u32),
    Payload { base: u32, offset: u32, len: u32 },
    Ct(u32),
    Masked(Box<Loaded>, Vec<u8>),
    Unknown,
}

/// Leading one bits of a mask, if the mask is a prefix mask.
pub(super) fn prefix_of(mask: impl IntoIterator<Item = u8>) -> Option<u8> {
    let mut bits = 0u32;
    let mut ended = false;
    for b in mask {
        let ones = b.leading_ones();
        if ended && b != 0 {
            return None;
        }
        if ones < 8 {
            if b << ones != 0 {
                return None;
            }
            ended = true;
        }
        bits += ones;
    }
    u8::try_from(bits).ok()
}

fn addr_of(family: u8, data: &[u8]) -> Option<IpAddr> {
    match family {
        NFPROTO_IPV4 if data.len() <= 4 => {
            let mut b = [0u8; 4];
            b[..data.len()].copy_from_slice(data);
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        NFPROTO_IPV6 if data.len() <= 16 => {
            let mut b = [0u8; 16];
            b[..data.len()].copy_from_slice(data);
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

fn hex(data: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `(is_saddr, family)` for a network-header load, if it is an address.
fn addr_field(nfproto: Option<u8>, offset: u32, len: u32) -> Option<(bool, u8)> {
    match (nfproto?, offset) {
        (NFPROTO_IPV4, 12) if (1..=4).contains(&len) => Some((true, NFPROTO_IPV4)),
        (NFPROTO_IPV4, 16) if (1..=4).contains(&len) => Some((false, NFPROTO_IPV4)),
        (NFPROTO_IPV6, 8) if (1..=16).contains(&len) => Some((true, NFPROTO_IPV6)),
        (NFPROTO_IPV6, 24) if (1..=16).contains(&len) => Some((false, NFPROTO_IPV6)),
        _ => None,
    }
}

fn describe(l: &Loaded) -> String {
    match l {
        Loaded::Meta(k) => format!("meta key {k}"),
        Loaded::Payload { base, offset, len } => format!("payload {len}b @ {base} + {offset}"),
        Loaded::Ct(k) => format!("ct key {k}"),
        Loaded::Masked(inner, mask) => format!("({} & {})", describe(inner), hex(mask)),
        Loaded::Unknown => "register".into(),
    }
}

/// Decode a rule's expressions. `table_family` is the table's
/// `NFPROTO_*` (an `ip` table implies IPv4 without a `meta nfproto` match).
pub fn decode(table_family: u8, exprs: &[RawExpr]) -> DecodedRule {
    let mut d = Decoder {
        m: RuleMatch {
            nfproto: matches!(table_family, NFPROTO_IPV4 | NFPROTO_IPV6).then_some(table_family),
            ..Default::default()
        },
        verdict: Verdict::Continue,
        regs: Default::default(),
    };
    for e in exprs {
        d.step(e);
    }
    DecodedRule {
        matches: d.m,
        verdict: d.verdict,
    }
}

/// The decoder's state along a rule: what it matched so far, its verdict,
/// and what each register holds.
struct Decoder {
    m: RuleMatch,
    verdict: Verdict,
    regs: std::collections::BTreeMap<u32, Loaded>,
}

impl Decoder {
    /// One expression: a load into a register, a comparison or lookup of
    /// one, a verdict, or a statement.
    fn step(&mut self, e: &RawExpr) {
        match e {
            RawExpr::Meta { .. }
            | RawExpr::Payload { .. }
            | RawExpr::Ct { .. }
            | RawExpr::Bitwise { .. } => self.load(e),
            RawExpr::Cmp { sreg, op, data } => self.cmp(*sreg, *op, data),
            RawExpr::Lookup { sreg, set, dreg } => self.lookup(*sreg, set, *dreg),
            RawExpr::Immediate {
                dreg: 0,
                verdict: Some(v),
                chain,
            } => self.verdict = verdict_of(*v, chain.clone()),
            RawExpr::Immediate { dreg, .. } => {
                self.regs.insert(*dreg, Loaded::Unknown);
            }
            RawExpr::Notrack => self.verdict = Verdict::Notrack,
            RawExpr::Counter => self.m.counter = true,
            RawExpr::Other { name } => match name.as_str() {
                "reject" => self.verdict = Verdict::Reject,
                "counter" => self.m.counter = true,
                "log" => {}
                _ => self.m.unknown.push(name.clone()),
            },
        }
    }

    /// A load into a register: meta, payload, ct, or a mask of a register.
    fn load(&mut self, e: &RawExpr) {
        let (dreg, loaded) = match e {
            RawExpr::Meta { key, dreg } => (dreg, Loaded::Meta(*key)),
            RawExpr::Payload {
                base,
                offset,
                len,
                dreg,
            } => (
                dreg,
                Loaded::Payload {
                    base: *base,
                    offset: *offset,
                    len: *len,
                },
            ),
            RawExpr::Ct { key, dreg } => (dreg, Loaded::Ct(*key)),
            RawExpr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                let src = self.regs.get(sreg).cloned().unwrap_or(Loaded::Unknown);
                let l = if xor.iter().all(|b| *b == 0) {
                    Loaded::Masked(Box::new(src), mask.clone())
                } else {
                    self.m.unknown.push(format!("bitwise xor {}", hex(xor)));
                    Loaded::Unknown
                };
                (dreg, l)
            }
            _ => return,
        };
        self.regs.insert(*dreg, loaded);
    }

    /// `cmp`: a match we model, or one kept as text.
    fn cmp(&mut self, sreg: u32, op: u32, data: &[u8]) {
        let l = self.regs.get(&sreg).cloned().unwrap_or(Loaded::Unknown);
        if !decode_cmp(&mut self.m, &l, op, data) {
            let op = match op {
                CMP_EQ => "==",
                CMP_NEQ => "!=",
                _ => "<>",
            };
            self.m
                .unknown
                .push(format!("{} {op} {}", describe(&l), hex(data)));
        }
    }

    /// `lookup`: a `ct state` set or verdict map, or one kept as text.
    fn lookup(&mut self, sreg: u32, set: &str, dreg: Option<u32>) {
        match self.regs.get(&sreg) {
            Some(Loaded::Ct(CT_STATE)) => {
                self.m.ct_state_set = Some(set.to_owned());
                // `ct state vmap { established : accept, ... }`: the
                // verdict comes from the map, whose elements are not read.
                if dreg == Some(0) {
                    self.verdict = Verdict::Map(set.to_owned());
                }
            }
            other => self.m.unknown.push(format!(
                "{} @{set}",
                describe(other.unwrap_or(&Loaded::Unknown))
            )),
        }
    }
}

/// Fold one comparison into `m`; false when it is not one we model.
fn decode_cmp(m: &mut RuleMatch, l: &Loaded, op: u32, data: &[u8]) -> bool {
    match (l, op) {
        (Loaded::Meta(META_NFPROTO), CMP_EQ) if data.len() == 1 => {
            m.nfproto = Some(data[0]);
            true
        }
        (Loaded::Meta(META_L4PROTO), CMP_EQ) if data.len() == 1 => {
            m.l4proto = Some(data[0]);
            true
        }
        (
            Loaded::Payload {
                base: BASE_TRANSPORT,
                offset,
                len: 2,
            },
            CMP_EQ,
        ) if data.len() == 2 && *offset <= 2 => set_port(m, *offset, data),
        (
            Loaded::Payload {
                base: BASE_NETWORK,
                offset,
                len,
            },
            CMP_EQ,
        ) => set_addr(m, *offset, *len, None, data),
        (Loaded::Masked(inner, mask), CMP_EQ)
            if matches!(
                **inner,
                Loaded::Payload {
                    base: BASE_NETWORK,
                    ..
                }
            ) =>
        {
            let Loaded::Payload { offset, len, .. } = **inner else {
                return false;
            };
            set_addr(m, offset, len, Some(mask), data)
        }
        (Loaded::Masked(inner, mask), CMP_NEQ | CMP_EQ)
            if matches!(**inner, Loaded::Ct(CT_STATE)) && data.iter().all(|b| *b == 0) =>
        {
            set_ct_mask(m, mask, op)
        }
        (Loaded::Ct(CT_STATE), CMP_EQ) if data.len() == 4 => {
            m.ct_states = Some(u32::from_ne_bytes([data[0], data[1], data[2], data[3]]));
            true
        }
        (Loaded::Meta(k), CMP_EQ | CMP_NEQ) if m.lo_iface.is_none() && is_lo(*k, data) => {
            set_lo_iface(m, *k, op)
        }
        _ => false,
    }
}

/// `th sport`/`th dport` (offset 0 or 2 of the transport header).
fn set_port(m: &mut RuleMatch, offset: u32, data: &[u8]) -> bool {
    let port = u16::from_be_bytes([data[0], data[1]]);
    if offset == 0 {
        m.sport = Some(port);
    } else {
        m.dport = Some(port);
    }
    true
}

/// `ct state established,related`: the state register masked and compared
/// with zero (`!=`: any of the mask's bits; `==`: none of them).
fn set_ct_mask(m: &mut RuleMatch, mask: &[u8], op: u32) -> bool {
    let mut b = [0u8; 4];
    let n = mask.len().min(4);
    b[..n].copy_from_slice(&mask[..n]);
    let bits = u32::from_ne_bytes(b);
    m.ct_states = Some(if op == CMP_NEQ { bits } else { !bits & 0x7f });
    true
}

/// `iif "lo"`, `oifname != "lo"`...: interface key `k` compared with loopback.
fn set_lo_iface(m: &mut RuleMatch, k: u32, op: u32) -> bool {
    let key = META_IFACE.iter().find(|(mk, _)| *mk == k).map(|(_, n)| *n);
    m.lo_iface = key.map(|key| LoIface {
        key: key.into(),
        eq: op == CMP_EQ,
    });
    m.lo_iface.is_some()
}

/// Whether `data` names loopback for interface key `k`: ifindex 1 for
/// `iif`/`oif`, the exact name `lo` (NUL-padded; a name without a NUL is a
/// wildcard like `lo*`) for `iifname`/`oifname`.
fn is_lo(k: u32, data: &[u8]) -> bool {
    match k {
        4 | 5 => data == 1u32.to_ne_bytes(),
        6 | 7 => data.len() > 2 && data.starts_with(b"lo") && data[2..].iter().all(|b| *b == 0),
        _ => false,
    }
}

fn set_addr(m: &mut RuleMatch, offset: u32, len: u32, mask: Option<&[u8]>, data: &[u8]) -> bool {
    let Some((is_saddr, family)) = addr_field(m.nfproto, offset, len) else {
        return false;
    };
    if data.len() != len as usize {
        return false;
    }
    let prefix = match mask {
        None => len as u8 * 8,
        Some(mask) if mask.len() == len as usize => match prefix_of(mask.iter().copied()) {
            Some(p) => p,
            None => return false,
        },
        Some(_) => return false,
    };
    let Some(addr) = addr_of(family, data) else {
        return false;
    };
    let Ok(cidr) = Cidr::new(addr, prefix) else {
        return false;
    };
    let slot = if is_saddr { &mut m.saddr } else { &mut m.daddr };
    if slot.is_some() {
        return false;
    }
    *slot = Some(cidr);
    true
}

/// The subnet as `nft` prints it: a host address without `/32`/`/128`.
pub fn nft_addr(c: &Cidr) -> String {
    let mut s = String::new();
    push_nft_addr(&mut s, c);
    s
}

/// [`nft_addr`] appended to `out` (no intermediate string: a table of
/// 1,000 flows renders 2,000 of them).
pub fn push_nft_addr(out: &mut String, c: &Cidr) {
    let full = if c.is_ipv4() { 32 } else { 128 };
    let text = c.text();
    out.push_str(if c.prefix() == full {
        text.addr()
    } else {
        text.as_str()
    });
}

/// A verdict as `nft` prints it.
pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Continue => "continue".into(),
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Reject => "reject".into(),
        Verdict::Notrack => "notrack".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
        Verdict::Return => "return".into(),
        Verdict::Map(set) => format!("vmap @{set}"),
    }
}

/// The verdict for a kernel verdict code (`NF_ACCEPT`, `NFT_JUMP`...).
pub fn verdict_of(code: i32, chain: Option<String>) -> Verdict {
    let chain = chain.unwrap_or_default();
    match code {
        NF_ACCEPT => Verdict::Accept,
        NF_DROP => Verdict::Drop,
        NFT_JUMP => Verdict::Jump(chain),
        NFT_GOTO => Verdict::Goto(chain),
        NFT_RETURN => Verdict::Return,
        _ => Verdict::Continue,
    }
}

/// Names of the `ct state` bits, as `nft` prints them.
pub fn ct_state_names(bits: u32) -> String {
    let names = [
        (CT_INVALID, "invalid"),
        (CT_ESTABLISHED, "established"),
        (CT_RELATED, "related"),
        (CT_NEW, "new"),
        (CT_UNTRACKED, "untracked"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        format!("{bits:#x}")
    } else {
        v.join(",")
    }
}

impl fmt::Display for DecodedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.matches;
        let mut parts: Vec<String> = Vec::new();
        if let Some(lo) = &m.lo_iface {
            let op = if lo.eq { "" } else { "!= " };
            parts.push(format!("{} {op}\"lo\"", lo.key));
        }
        m.push_addrs(&mut parts);
        m.push_ports(&mut parts);
        if let Some(bits) = m.ct_states {
            parts.push(format!("ct state {}", ct_state_names(bits)));
        }
        let vmap = matches!(&self.verdict, Verdict::Map(v) if m.ct_state_set.as_ref() == Some(v));
        let elements = m.ct_state_elements_text();
        if let Some(set) = m.ct_state_set.as_ref().filter(|_| !vmap) {
            match &elements {
                Some(e) => parts.push(format!("ct state {e}")),
                None => parts.push(format!("ct state @{set}")),
            }
        }
        for u in &m.unknown {
            parts.push(format!("<{u}>"));
        }
        if m.counter {
            parts.push("counter".into());
        }
        parts.push(match &self.verdict {
            Verdict::Map(_) if vmap && elements.is_some() => {
                format!("ct state vmap {}", elements.unwrap_or_default())
            }
            Verdict::Map(set) if vmap => format!("ct state vmap @{set}"),
            v => verdict_text(v),
        });
        f.write_str(&parts.join(" "))
    }
}

impl RuleMatch {
    /// `ip saddr ...`, `ip6 daddr ...`, as `nft` prints them.
    fn push_addrs(&self, parts: &mut Vec<String>) {
        let ip = if self.nfproto == Some(NFPROTO_IPV6) {
            "ip6"
        } else {
            "ip"
        };
        if let Some(s) = &self.saddr {
            parts.push(format!("{ip} saddr {}", nft_addr(s)));
        }
        if let Some(d) = &self.daddr {
            parts.push(format!("{ip} daddr {}", nft_addr(d)));
        }
    }

    /// `tcp dport 80`, or `meta l4proto tcp` when no port is matched.
    fn push_ports(&self, parts: &mut Vec<String>) {
        let l4 = match self.l4proto {
            Some(IPPROTO_TCP) => "tcp".to_owned(),
            Some(17) => "udp".to_owned(),
            Some(p) => format!("th(l4proto {p})"),
            None => "th".to_owned(),
        };
        if self.sport.is_none() && self.dport.is_none() {
            if let Some(p) = self.l4proto {
                parts.push(format!(
                    "meta l4proto {}",
                    if p == IPPROTO_TCP {
                        "tcp".into()
                    } else {
                        p.to_string()
                    }
                ));
            }
        }
        if let Some(p) = self.sport {
            parts.push(format!("{l4} sport {p}"));
        }
        if let Some(p) = self.dport {
            parts.push(format!("{l4} dport {p}"));
        }
    }

    /// The `ct state` set's or map's elements as `nft` prints them, once read.
    fn ct_state_elements_text(&self) -> Option<String> {
        self.ct_state_elements.as_ref().map(|els| {
            let items: Vec<String> = els
                .iter()
                .map(|(bits, v)| match v {
                    Some(v) => format!("{} : {}", ct_state_names(*bits), verdict_text(v)),
                    None => ct_state_names(*bits),
                })
                .collect();
            format!("{{ {} }}", items.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{accept, ct_accept, ct_lookup, dport};
    use super::*;

    #[test]
    fn prefix_masks() {
        assert_eq!(prefix_of([0xff, 0xff, 0xff, 0x00]), Some(24));
        assert_eq!(prefix_of([0xff, 0xff, 0xff, 0x80]), Some(25));
        assert_eq!(prefix_of([0xff, 0xf0, 0, 0]), Some(12));
        assert_eq!(prefix_of([0, 0, 0, 0]), Some(0));
        assert_eq!(prefix_of([0xff, 0x0f, 0, 0]), None);
        assert_eq!(prefix_of([0xf0, 0xff, 0, 0]), None);
    }

    #[test]
    fn decodes_ct_state_accepts() {
        let r = decode(NFPROTO_INET, &ct_accept(CT_ESTABLISHED | CT_RELATED));
        assert_eq!(r.matches.ct_states, Some(6));
        assert_eq!(r.verdict, Verdict::Accept);
        assert_eq!(r.to_string(), "ct state established,related accept");
        let r = decode(NFPROTO_INET, &ct_accept(CT_UNTRACKED));
        assert_eq!(r.to_string(), "ct state untracked accept");
    }

    #[test]
    fn decodes_new_on_a_port_in_an_ip_table() {
        // `ct state new tcp dport 8080 accept` in `table ip filter`.
        let mut e = ct_accept(CT_NEW);
        let verdict = e.pop().unwrap();
        e.extend(dport(8080));
        e.push(verdict);
        let r = decode(NFPROTO_IPV4, &e);
        assert_eq!(r.matches.nfproto, Some(NFPROTO_IPV4));
        assert_eq!(r.matches.dport, Some(8080));
        assert_eq!(r.matches.ct_states, Some(CT_NEW));
        assert!(r.matches.unknown.is_empty());
        assert_eq!(r.to_string(), "tcp dport 8080 ct state new accept");
    }

    #[test]
    fn unknown_expressions_are_kept_as_text() {
        let r = decode(
            NFPROTO_INET,
            &[
                RawExpr::Meta { key: 6, dreg: 1 },
                RawExpr::Cmp {
                    sreg: 1,
                    op: CMP_EQ,
                    data: b"eth0\0".to_vec(),
                },
                accept(),
            ],
        );
        assert_eq!(r.matches.unknown.len(), 1, "{r:?}");
        assert_eq!(r.matches.lo_iface, None);
        // Loopback is decoded: every namespace's `lo`.
        let r = decode(
            NFPROTO_INET,
            &[
                RawExpr::Meta { key: 6, dreg: 1 },
                RawExpr::Cmp {
                    sreg: 1,
                    op: CMP_EQ,
                    data: b"lo\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
                },
                accept(),
            ],
        );
        assert_eq!(r.to_string(), "iifname \"lo\" accept");
        assert_eq!(r.verdict, Verdict::Accept);
    }

    #[test]
    fn lookups_on_ct_state_are_recorded() {
        let r = decode(
            NFPROTO_INET,
            &[ct_lookup("__set0", None), vec![accept()]].concat(),
        );
        assert_eq!(r.matches.ct_state_set.as_deref(), Some("__set0"));
        assert!(r.matches.unknown.is_empty());
    }
}
