//! `notrack-unscoped`: how much address space the flows exempt, judged on
//! their union, and subnet arithmetic shared with the overlap merge.
//!
//! A literal `0.0.0.0/0` is only one way to NOTRACK everything:
//! `0.0.0.0/1` plus `128.0.0.0/1` covers every IPv4 source too. So the
//! check merges the flows' `from` subnets (and their `to` subnets) per
//! family into intervals and judges those: the whole space refuses, a
//! block wider than a /8 (IPv4) or a /32 (IPv6) warns, and a flow whose
//! `from` equals its `to` (every host of that subnet talking to every
//! other) warns.

use std::net::IpAddr;

use crate::finding::{Finding, FindingCode, Severity};
use crate::names::Cidr;
use crate::profile::Profile;

use super::table::ScopedFlow;

/// A subnet as an inclusive range of addresses (IPv4 in the low 32 bits).
pub fn range(c: &Cidr) -> (u128, u128) {
    let (bits, width) = match c.addr() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host = width - u32::from(c.prefix());
    let span = if host == 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    (bits, bits | span)
}

/// Whether two subnets (of one family) share an address. Subnets never
/// partly overlap: one holds the other or they are apart.
pub fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.addr()) || b.contains(a.addr()))
}

/// Whether `a` holds all of `b`.
#[cfg(test)]
pub fn holds(a: &Cidr, b: &Cidr) -> bool {
    a.is_ipv4() == b.is_ipv4() && a.prefix() <= b.prefix() && a.contains(b.addr())
}

/// The merged intervals of `cidrs` (all of one family), sorted.
fn union(cidrs: impl Iterator<Item = Cidr>) -> Vec<(u128, u128)> {
    let mut r: Vec<(u128, u128)> = cidrs.map(|c| range(&c)).collect();
    r.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Prefix-length thresholds: a merged block wider than this warns.
const WIDE_V4: u32 = 8;
const WIDE_V6: u32 = 32;

/// The union checks over every usable flow.
pub fn union_findings(flows: &[ScopedFlow]) -> Vec<Finding> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let fam: Vec<&ScopedFlow> = flows.iter().filter(|f| f.from.is_ipv4() == v4).collect();
        if fam.is_empty() {
            continue;
        }
        let (bits, wide, family) = if v4 {
            (32u32, WIDE_V4, "IPv4")
        } else {
            (128, WIDE_V6, "IPv6")
        };
        let full = if v4 { u128::from(u32::MAX) } else { u128::MAX };
        for (side, pick) in [
            (
                "source (`from`)",
                (|f: &ScopedFlow| f.from) as fn(&ScopedFlow) -> Cidr,
            ),
            ("server (`to`)", |f: &ScopedFlow| f.to),
        ] {
            let u = union(fam.iter().map(|f| pick(f)));
            let subnets = || {
                let mut s: Vec<String> = fam.iter().map(|f| pick(f).to_string()).collect();
                s.sort();
                s.dedup();
                s.truncate(4);
                s.join(", ")
            };
            if u == [(0, full)] {
                out.push(
                    Finding::new(
                        FindingCode::NotrackUnscoped,
                        Severity::Refuse,
                        format!(
                            "the flows' {side} subnets together cover every {family} address ({}): all such traffic would leave conntrack and any stateful filter",
                            subnets()
                        ),
                    )
                    .hint("name the client subnet (`from`) and the server subnet (`to`) of the trusted traffic only"),
                );
                continue;
            }
            // The widest merged block, as a prefix length (rounded down).
            if let Some((lo, hi)) = u.iter().max_by_key(|(lo, hi)| hi - lo) {
                let size = hi - lo + 1;
                let prefix = bits - (127 - size.leading_zeros()).min(bits);
                if prefix < wide {
                    out.push(
                        Finding::new(
                            FindingCode::NotrackUnscoped,
                            Severity::Warn,
                            format!(
                                "the flows' {side} subnets ({}) together span a block wider than a /{wide} ({} addresses): make sure all of it is trusted",
                                subnets(),
                                size
                            ),
                        )
                        .hint("narrow `from`/`to` to the hosts that talk to each other"),
                    );
                }
            }
        }
    }
    for f in flows.iter().filter(|f| f.from == f.to) {
        out.push(
            Finding::new(
                FindingCode::NotrackUnscoped,
                Severity::Warn,
                format!(
                    "flow {} has `from` equal to `to`: every host of {} talking to every other on port {} leaves conntrack, not only frontend -> backend",
                    f.label(),
                    f.from,
                    f.port
                ),
            )
            .hint("if clients and servers share the subnet, narrow `to` to the servers' addresses"),
        );
    }
    out
}

/// `notrack-unscoped` per flow: a missing field, mixed families, `/0`.
pub fn per_flow(profile: &Profile) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, f) in profile.notrack.iter().enumerate() {
        let n = i + 1;
        let mut missing = Vec::new();
        if f.from.is_none() {
            missing.push("`from`");
        }
        if f.to.is_none() {
            missing.push("`to`");
        }
        if f.port.is_none() {
            missing.push("`port`");
        }
        let msg = if !missing.is_empty() {
            Some(format!(
                "NOTRACK flow #{n} has no {}: it would exempt more than the trusted flow from conntrack (it is not planned)",
                missing.join(" or ")
            ))
        } else if let (Some(a), Some(b)) = (f.from, f.to) {
            if a.is_ipv4() != b.is_ipv4() {
                Some(format!(
                    "NOTRACK flow #{n} mixes IPv4 and IPv6 ({a} -> {b}): no packet matches it (it is not planned)"
                ))
            } else if a.is_any() || b.is_any() {
                Some(format!(
                    "NOTRACK flow #{n} ({a} -> {b}) covers every address: all such traffic would leave conntrack and any stateful filter"
                ))
            } else {
                None
            }
        } else {
            None
        };
        if let Some(msg) = msg {
            out.push(
                Finding::new(FindingCode::NotrackUnscoped, Severity::Refuse, msg).hint(
                    "name the client subnet (`from`), the server subnet (`to`) and the server `port`, e.g. from = \"10.0.1.0/24\", to = \"10.0.2.0/24\", port = 8080",
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(from: &str, to: &str) -> ScopedFlow {
        ScopedFlow {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            port: 8080,
        }
    }

    fn sev(f: &[Finding]) -> Vec<Severity> {
        f.iter().map(|f| f.severity).collect()
    }

    #[test]
    fn two_halves_cover_every_address_and_refuse() {
        let f = union_findings(&[
            flow("0.0.0.0/1", "10.0.2.0/24"),
            flow("128.0.0.0/1", "10.0.2.0/24"),
        ]);
        assert_eq!(sev(&f), [Severity::Refuse], "{f:?}");
        assert!(f[0].message.contains("cover every IPv4 address"), "{f:?}");
        let f = union_findings(&[flow("::/1", "fd00::/64"), flow("8000::/1", "fd00::/64")]);
        assert_eq!(sev(&f), [Severity::Refuse], "{f:?}");
        // Adjacent blocks merge: 4 /2s are the whole space too.
        let quarters: Vec<_> = (0..4)
            .map(|i| flow(&format!("{}.0.0.0/2", i * 64), "10.0.2.0/24"))
            .collect();
        assert_eq!(sev(&union_findings(&quarters)), [Severity::Refuse]);
    }

    #[test]
    fn a_block_wider_than_a_slash_8_warns_and_a_narrow_one_does_not() {
        let f = union_findings(&[flow("10.0.0.0/8", "10.0.2.0/24")]);
        assert!(f.is_empty(), "{f:?}");
        let f = union_findings(&[
            flow("10.0.0.0/8", "10.0.2.0/24"),
            flow("11.0.0.0/8", "10.0.2.0/24"),
        ]);
        assert_eq!(sev(&f), [Severity::Warn], "{f:?}");
        assert!(f[0].message.contains("wider than a /8"), "{f:?}");
        assert!(union_findings(&[flow("10.0.1.0/24", "10.0.2.0/24")]).is_empty());
    }

    #[test]
    fn from_equal_to_warns() {
        let f = union_findings(&[flow("10.0.1.0/24", "10.0.1.0/24")]);
        assert_eq!(sev(&f), [Severity::Warn], "{f:?}");
        assert!(f[0].message.contains("`from` equal to `to`"), "{f:?}");
    }

    #[test]
    fn ranges_and_overlaps() {
        let c = |s: &str| s.parse::<Cidr>().unwrap();
        assert_eq!(range(&c("10.0.0.0/15")), (0x0a00_0000, 0x0a01_ffff));
        assert_eq!(range(&c("0.0.0.0/0")), (0, 0xffff_ffff));
        assert_eq!(range(&c("::/0")), (0, u128::MAX));
        assert!(overlaps(&c("10.0.0.0/15"), &c("10.1.0.0/16")));
        assert!(holds(&c("10.0.0.0/15"), &c("10.1.0.0/16")));
        assert!(!holds(&c("10.1.0.0/16"), &c("10.0.0.0/15")));
        assert!(!overlaps(&c("10.0.0.0/16"), &c("10.1.0.0/16")));
        assert!(!overlaps(&c("10.0.0.0/8"), &c("::/0")));
    }
}
