//! The `inet tcto_tune` table as plain data: built from the profile's
//! trusted flows, rendered as `nft list ruleset` prints it, encoded into
//! kernel expressions and decoded back.
//!
//! This document is the [`Value::Json`](crate::Value) the transaction
//! journals and compares: the planner builds the wanted one, the backend
//! decodes the one in the kernel, and equality of the two is what "already
//! in place" means. It is canonical (one encoding per meaning), so a read
//! back after a write compares equal exactly when the kernel holds what was
//! meant.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::expr::{
    decode, nft_addr, RawExpr, Verdict, BASE_NETWORK, BASE_TRANSPORT, CMP_EQ, IPPROTO_TCP,
    META_L4PROTO, META_NFPROTO, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6, REG_1,
};
use crate::fix::NotrackFlow;
use crate::names::Cidr;

/// Family of the table tcto-tune owns.
pub const TABLE_FAMILY: &str = "inet";
/// Name of the table tcto-tune owns.
pub const TABLE_NAME: &str = "tcto_tune";
/// The raw priority (`priority raw`): before conntrack (-200) sees the packet.
pub const RAW_PRIORITY: i32 = -300;

/// A NOTRACK table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotrackTable {
    /// Chains, in order (prerouting, output).
    pub chains: Vec<NotrackChain>,
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
}

/// `ip saddr S [tcp sport P] ip daddr D [tcp dport P] notrack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotrackRule {
    /// Source subnet.
    pub saddr: Cidr,
    /// Destination subnet (same family as `saddr`).
    pub daddr: Cidr,
    /// TCP source port (reply direction).
    pub sport: Option<u16>,
    /// TCP destination port (request direction).
    pub dport: Option<u16>,
}

/// A flow with every field present and one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// Whether either end is loopback (127.0.0.0/8 or ::1).
    pub fn touches_loopback(&self) -> bool {
        let lo = |c: &Cidr| match c.addr() {
            IpAddr::V4(a) => {
                a.is_loopback() || (c.prefix() < 8 && c.contains([127, 0, 0, 1].into()))
            }
            IpAddr::V6(_) => c.contains(std::net::Ipv6Addr::LOCALHOST.into()),
        };
        lo(&self.from) || lo(&self.to)
    }
}

impl NotrackTable {
    /// The table for these flows: per flow, the request direction in
    /// prerouting and the reply direction in output; a loopback flow also
    /// gets its request direction in output, where loopback packets are
    /// first seen by conntrack.
    pub fn for_flows(flows: &[ScopedFlow]) -> Self {
        let mut pre = Vec::new();
        let mut out = Vec::new();
        for f in flows {
            let request = NotrackRule {
                saddr: f.from,
                daddr: f.to,
                sport: None,
                dport: Some(f.port),
            };
            let reply = NotrackRule {
                saddr: f.to,
                daddr: f.from,
                sport: Some(f.port),
                dport: None,
            };
            push_new(&mut pre, request.clone());
            if f.touches_loopback() {
                push_new(&mut out, request);
            }
            push_new(&mut out, reply);
        }
        NotrackTable {
            chains: vec![
                NotrackChain {
                    name: "prerouting".into(),
                    priority: RAW_PRIORITY,
                    rules: pre,
                },
                NotrackChain {
                    name: "output".into(),
                    priority: RAW_PRIORITY,
                    rules: out,
                },
            ],
        }
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    /// The table as `nft list ruleset` prints it.
    pub fn to_nft(&self) -> String {
        let mut s = format!("table {TABLE_FAMILY} {TABLE_NAME} {{\n");
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
            s.push_str("\t}\n");
        }
        s.push_str("}\n");
        s
    }

    /// As a JSON value for [`crate::Value::Json`].
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a table serializes")
    }
}

fn push_new(v: &mut Vec<NotrackRule>, r: NotrackRule) {
    if !v.contains(&r) {
        v.push(r);
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

    /// Decode a rule of our table; `None` for anything we did not write.
    pub fn from_exprs(exprs: &[RawExpr]) -> Option<Self> {
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
        };
        // Canonical form only: a rule that decodes to the same meaning
        // with other bytes is not one we wrote.
        (ok && rule.to_exprs() == exprs).then_some(rule)
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
        assert_eq!(NotrackRule::from_exprs(&e).as_ref(), Some(r));
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
        assert_eq!(NotrackRule::from_exprs(&e).as_ref(), Some(r));
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
            NotrackRule::from_exprs(&e).as_ref(),
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
    }

    #[test]
    fn foreign_rules_do_not_decode() {
        let mut e = NotrackTable::for_flows(&[flow("10.0.1.0/24", "10.0.2.0/24", 8080)]).chains[0]
            .rules[0]
            .to_exprs();
        e.pop();
        e.push(RawExpr::Immediate {
            dreg: 0,
            verdict: Some(1),
            chain: None,
        });
        assert_eq!(NotrackRule::from_exprs(&e), None);
    }

    #[test]
    fn priorities_are_named_as_nft_names_them() {
        assert_eq!(priority_name(-300), "raw");
        assert_eq!(priority_name(0), "filter");
        assert_eq!(priority_name(5), "filter + 5");
        assert_eq!(priority_name(-1000), "-1000");
    }
}
