//! Who fills the conntrack table: ctnetlink entries decoded (pure) and
//! aggregated while they stream in.
//!
//! A full table says *that* flows are tracked, not *whose*. The runbook's
//! lasting fix (NOTRACK for trusted frontend -> backend traffic) needs the
//! subnets, so the entries are grouped by original source subnet (/24 for
//! IPv4, /64 for IPv6), destination address and port, protocol and TCP
//! state. The dump is consumed one entry at a time and only the groups are
//! kept (at most [`MAX_GROUPS`]; the rest count as `other`), so memory does
//! not grow with the table. The decoder reads the kernel's netlink
//! attributes by hand: the crates in use have no ctnetlink types, and a
//! hand-written reader of a few nested attributes is easy to fuzz.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// Most groups kept while aggregating.
pub const MAX_GROUPS: usize = 50_000;
/// Groups reported.
pub const TOP_GROUPS: usize = 10;
/// An established flow with no packet for this long counts as idle.
pub const IDLE_S: u32 = 60;

/// One conntrack entry, as far as the grouping needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtEntry {
    /// IP protocol number.
    pub proto: u8,
    /// Original source address.
    pub src: IpAddr,
    /// Original destination address.
    pub dst: IpAddr,
    /// Original destination port (0 without ports).
    pub dport: u16,
    /// TCP state (`TCP_CONNTRACK_*`), for TCP.
    pub tcp_state: Option<u8>,
    /// Seconds left before the entry expires.
    pub timeout_s: Option<u32>,
}

fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        let next = (len + 3) & !3;
        b = if next >= b.len() { &[] } else { &b[next..] };
        Some((kind, payload))
    })
}

fn find(b: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(b).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

/// Decode one ctnetlink message's payload (after the 16-byte `nlmsghdr`:
/// the 4-byte `nfgenmsg`, then attributes). `None` for anything that is
/// not an entry with an original tuple.
pub fn parse_ct_entry(payload: &[u8]) -> Option<CtEntry> {
    let a = payload.get(4..)?;
    let orig = find(a, 1)?; // CTA_TUPLE_ORIG
    let ip = find(orig, 1)?; // CTA_TUPLE_IP
    let proto = find(orig, 2)?; // CTA_TUPLE_PROTO
    let v4 = |k| {
        find(ip, k)
            .and_then(|d| <[u8; 4]>::try_from(d).ok())
            .map(|d| IpAddr::V4(Ipv4Addr::from(d)))
    };
    let v6 = |k| {
        find(ip, k)
            .and_then(|d| <[u8; 16]>::try_from(d).ok())
            .map(|d| IpAddr::V6(Ipv6Addr::from(d)))
    };
    let (src, dst) = match (v4(1), v4(2)) {
        (Some(s), Some(d)) => (s, d),
        _ => (v6(3)?, v6(4)?),
    };
    let num = *find(proto, 1)?.first()?;
    let dport = find(proto, 3)
        .and_then(|d| <[u8; 2]>::try_from(d).ok())
        .map_or(0, u16::from_be_bytes);
    let tcp_state = find(a, 4) // CTA_PROTOINFO
        .and_then(|p| find(p, 1)) // CTA_PROTOINFO_TCP
        .and_then(|t| find(t, 1)) // CTA_PROTOINFO_TCP_STATE
        .and_then(|s| s.first().copied());
    let timeout_s = find(a, 7) // CTA_TIMEOUT
        .and_then(|d| <[u8; 4]>::try_from(d).ok())
        .map(u32::from_be_bytes);
    Some(CtEntry {
        proto: num,
        src,
        dst,
        dport,
        tcp_state: tcp_state.filter(|_| num == 6),
        timeout_s,
    })
}

/// A TCP conntrack state's name.
pub fn tcp_state_name(s: u8) -> &'static str {
    match s {
        0 => "NONE",
        1 => "SYN_SENT",
        2 => "SYN_RECV",
        3 => "ESTABLISHED",
        4 => "FIN_WAIT",
        5 => "CLOSE_WAIT",
        6 => "LAST_ACK",
        7 => "TIME_WAIT",
        8 => "CLOSE",
        9 => "SYN_SENT2",
        _ => "UNKNOWN",
    }
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

/// The source subnet an address is grouped under.
pub fn source_subnet(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v) => {
            let mut s = v.segments();
            s[4..].fill(0);
            format!("{}/64", Ipv6Addr::from(s))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: String,
    dst: IpAddr,
    dport: u16,
    proto: u8,
    state: Option<u8>,
}

/// Groups entries as they stream in.
#[derive(Debug, Default)]
pub struct CtAggregator {
    groups: HashMap<Key, (u64, u64, IpAddr)>,
    total: u64,
    other: u64,
    idle_below: Option<u32>,
}

impl CtAggregator {
    /// `established_timeout_s`: `nf_conntrack_tcp_timeout_established`, so
    /// an entry's idle time is that minus its remaining timeout.
    pub fn new(established_timeout_s: Option<u32>) -> Self {
        CtAggregator {
            idle_below: established_timeout_s.map(|t| t.saturating_sub(IDLE_S)),
            ..Default::default()
        }
    }

    /// Count one entry.
    pub fn add(&mut self, e: &CtEntry) {
        self.total += 1;
        let key = Key {
            source: source_subnet(e.src),
            dst: e.dst,
            dport: e.dport,
            proto: e.proto,
            state: e.tcp_state,
        };
        let idle = e.tcp_state == Some(3)
            && matches!((e.timeout_s, self.idle_below), (Some(t), Some(b)) if t <= b);
        let full = self.groups.len() >= MAX_GROUPS;
        match self.groups.get_mut(&key) {
            Some(g) => {
                g.0 += 1;
                g.1 += u64::from(idle);
            }
            None if full => self.other += 1,
            None => {
                self.groups.insert(key, (1, u64::from(idle), e.src));
            }
        }
    }

    /// The top groups, largest first.
    pub fn finish(self) -> ConntrackGroups {
        let total = self.total;
        let mut v: Vec<(Key, (u64, u64, IpAddr))> = self.groups.into_iter().collect();
        v.sort_by(|a, b| {
            b.1 .0.cmp(&a.1 .0).then_with(|| {
                (&a.0.source, a.0.dst, a.0.dport).cmp(&(&b.0.source, b.0.dst, b.0.dport))
            })
        });
        let groups_total = v.len();
        let groups = v
            .into_iter()
            .take(TOP_GROUPS)
            .map(|(k, (count, idle, example))| CtGroup {
                source: k.source,
                destination: k.dst,
                port: k.dport,
                protocol: proto_name(k.proto),
                state: k.state.map(|s| tcp_state_name(s).to_owned()),
                count,
                share_pct: if total == 0 {
                    0.0
                } else {
                    (count as f64 * 1000.0 / total as f64).round() / 10.0
                },
                idle_established: idle,
                example: Some(example),
            })
            .collect();
        ConntrackGroups {
            read: true,
            error: None,
            entries: total,
            groups_total,
            other: self.other,
            groups,
        }
    }
}

/// One group of conntrack entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtGroup {
    /// Original source subnet (/24, /64).
    pub source: String,
    /// Original destination address.
    pub destination: IpAddr,
    /// Destination port (0: none).
    pub port: u16,
    /// `tcp`, `udp`, ...
    pub protocol: String,
    /// TCP state.
    pub state: Option<String>,
    /// Entries.
    pub count: u64,
    /// Share of the entries dumped, percent.
    pub share_pct: f64,
    /// Established entries idle for [`IDLE_S`] or more.
    pub idle_established: u64,
    /// The first source address seen in the group (a client to look the
    /// route back up for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<IpAddr>,
}

/// The table grouped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConntrackGroups {
    /// Whether the table was dumped.
    pub read: bool,
    /// Why not.
    pub error: Option<String>,
    /// Entries dumped.
    pub entries: u64,
    /// Distinct groups.
    pub groups_total: usize,
    /// Entries not grouped (beyond `MAX_GROUPS` groups).
    pub other: u64,
    /// The largest `TOP_GROUPS` groups.
    pub groups: Vec<CtGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attribute: length, type, payload, padding.
    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = 4 + payload.len();
        let mut v = (len as u16).to_ne_bytes().to_vec();
        v.extend(kind.to_ne_bytes());
        v.extend(payload);
        v.resize((len + 3) & !3, 0);
        v
    }

    fn nested(kind: u16, inner: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | 0x8000, &inner.concat())
    }

    /// A ctnetlink entry payload as the kernel sends it.
    pub(crate) fn entry(
        src: [u8; 4],
        dst: [u8; 4],
        dport: u16,
        state: u8,
        timeout: u32,
    ) -> Vec<u8> {
        let tuple = nested(
            1,
            &[
                nested(1, &[attr(1, &src), attr(2, &dst)]),
                nested(
                    2,
                    &[
                        attr(1, &[6]),
                        attr(2, &40000u16.to_be_bytes()),
                        attr(3, &dport.to_be_bytes()),
                    ],
                ),
            ],
        );
        let mut p = vec![2, 0, 0, 0];
        p.extend(tuple);
        p.extend(attr(3, &0u32.to_be_bytes()));
        p.extend(nested(4, &[nested(1, &[attr(1, &[state])])]));
        p.extend(attr(7, &timeout.to_be_bytes()));
        p
    }

    #[test]
    fn decodes_an_ipv4_tcp_entry() {
        let e = parse_ct_entry(&entry([10, 0, 1, 7], [10, 0, 2, 1], 8080, 3, 431_000)).unwrap();
        assert_eq!(e.src, "10.0.1.7".parse::<IpAddr>().unwrap());
        assert_eq!(e.dst, "10.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (e.proto, e.dport, e.tcp_state, e.timeout_s),
            (6, 8080, Some(3), Some(431_000))
        );
    }

    #[test]
    fn truncated_or_foreign_messages_are_skipped() {
        let full = entry([10, 0, 1, 7], [10, 0, 2, 1], 8080, 3, 1);
        for n in 0..full.len() {
            // Never a panic; a cut inside the tuple is no entry.
            let _ = parse_ct_entry(&full[..n]);
        }
        assert_eq!(parse_ct_entry(&full[..20]), None);
        assert_eq!(parse_ct_entry(&[2, 0, 0, 0, 0xff, 0xff, 1, 0]), None);
        assert_eq!(parse_ct_entry(&[]), None);
    }

    #[test]
    fn groups_by_source_subnet_destination_port_and_state() {
        let mut agg = CtAggregator::new(Some(432_000));
        for i in 0..70u8 {
            // Idle for 1000 s.
            let e = parse_ct_entry(&entry([10, 0, 1, i], [10, 0, 2, 1], 8080, 3, 431_000)).unwrap();
            agg.add(&e);
        }
        for i in 0..20u8 {
            let e = parse_ct_entry(&entry([10, 0, 1, i], [10, 0, 2, 1], 8080, 3, 431_990)).unwrap();
            agg.add(&e);
        }
        for i in 0..10u8 {
            let e = parse_ct_entry(&entry([192, 168, 5, i], [10, 0, 2, 1], 22, 7, 100)).unwrap();
            agg.add(&e);
        }
        let g = agg.finish();
        assert_eq!((g.entries, g.groups_total, g.other), (100, 2, 0));
        let top = &g.groups[0];
        assert_eq!(top.source, "10.0.1.0/24");
        assert_eq!(
            (top.port, top.count, top.share_pct, top.idle_established),
            (8080, 90, 90.0, 70)
        );
        assert_eq!(top.state.as_deref(), Some("ESTABLISHED"));
        assert_eq!(g.groups[1].state.as_deref(), Some("TIME_WAIT"));
        assert_eq!(
            source_subnet("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn memory_is_bounded_by_the_group_cap() {
        let mut agg = CtAggregator::new(None);
        for i in 0..(MAX_GROUPS as u32 + 10) {
            let b = i.to_be_bytes();
            let e = CtEntry {
                proto: 6,
                src: IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], 1)),
                dst: "10.0.0.1".parse().unwrap(),
                dport: (i % 60_000) as u16,
                tcp_state: Some(3),
                timeout_s: None,
            };
            agg.add(&e);
        }
        let g = agg.finish();
        assert_eq!(g.groups_total, MAX_GROUPS);
        assert_eq!(g.other, 10);
        assert_eq!(g.groups.len(), TOP_GROUPS);
    }
}
