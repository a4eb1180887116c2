//! Expression sequences as the kernel dumps them, shared by the decoder,
//! filter and planner tests (one copy, so a fix to how `nft` encodes a
//! match is made once).

use super::expr::{DecodedRule, RawExpr, CMP_EQ, CMP_NEQ, CT_STATE, NF_ACCEPT};
use super::filter::FilterChain;

/// `ct state BITS` (any of): ct load, bitwise mask, cmp neq 0, as
/// `nft --debug=netlink` shows it.
pub fn ct(bits: u32) -> Vec<RawExpr> {
    vec![
        RawExpr::Ct {
            key: CT_STATE,
            dreg: 1,
        },
        RawExpr::Bitwise {
            sreg: 1,
            dreg: 1,
            mask: bits.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        },
        RawExpr::Cmp {
            sreg: 1,
            op: CMP_NEQ,
            data: vec![0; 4],
        },
    ]
}

/// `meta l4proto tcp tcp dport PORT`.
pub fn dport(p: u16) -> Vec<RawExpr> {
    vec![
        RawExpr::Meta { key: 16, dreg: 1 },
        RawExpr::Cmp {
            sreg: 1,
            op: CMP_EQ,
            data: vec![6],
        },
        RawExpr::Payload {
            base: 2,
            offset: 2,
            len: 2,
            dreg: 1,
        },
        RawExpr::Cmp {
            sreg: 1,
            op: CMP_EQ,
            data: p.to_be_bytes().to_vec(),
        },
    ]
}

/// The `accept` verdict.
pub fn accept() -> RawExpr {
    RawExpr::Immediate {
        dreg: 0,
        verdict: Some(NF_ACCEPT),
        chain: None,
    }
}

/// `ct state BITS accept`.
pub fn ct_accept(bits: u32) -> Vec<RawExpr> {
    [ct(bits), vec![accept()]].concat()
}

/// `ct state` looked up in the set `set`: `ct state @set` for `dreg:
/// None`, a verdict map (`ct state vmap @set`) for `Some(0)`.
pub fn ct_lookup(set: &str, dreg: Option<u32>) -> Vec<RawExpr> {
    vec![
        RawExpr::Ct {
            key: CT_STATE,
            dreg: 1,
        },
        RawExpr::Lookup {
            sreg: 1,
            set: set.into(),
            dreg,
        },
    ]
}

/// The base chain `inet filter input` (hook input, priority 0, `policy
/// drop`) holding `rules`.
pub fn inet_filter_input(rules: Vec<DecodedRule>) -> FilterChain {
    FilterChain {
        family: "inet".into(),
        table: "filter".into(),
        name: "input".into(),
        hook: "input".into(),
        kind: "filter".into(),
        priority: 0,
        policy: "drop".into(),
        rules,
    }
}

/// A verdict: `drop`, `jump CHAIN` or `goto CHAIN`.
pub fn verdict(code: i32, chain: Option<&str>) -> RawExpr {
    RawExpr::Immediate {
        dreg: 0,
        verdict: Some(code),
        chain: chain.map(str::to_owned),
    }
}

/// `meta KEY` (iif 4, oif 5, iifname 6, oifname 7) `== DATA`.
pub fn iface(key: u32, data: &[u8]) -> Vec<RawExpr> {
    vec![
        RawExpr::Meta { key, dreg: 1 },
        RawExpr::Cmp {
            sreg: 1,
            op: CMP_EQ,
            data: data.to_vec(),
        },
    ]
}

/// A chain of table `inet filter`: a base chain for `hook` `Some((hook,
/// kind, priority, policy))`, else a regular chain; its rules decoded.
pub fn chain(
    name: &str,
    hook: Option<(&str, &str, i32, &str)>,
    rules: &[Vec<RawExpr>],
) -> FilterChain {
    let (hook, kind, priority, policy) = hook.unwrap_or(("", "", 0, "accept"));
    FilterChain {
        family: "inet".into(),
        table: "filter".into(),
        name: name.into(),
        hook: hook.into(),
        kind: kind.into(),
        priority,
        policy: policy.into(),
        rules: rules
            .iter()
            .map(|e| super::expr::decode(super::expr::NFPROTO_INET, e))
            .collect(),
    }
}
