//! The nftables rule decoder (used by the stateful-filter check on other
//! tables' rules, which tcto-tune does not control) on arbitrary expression
//! sequences: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcto_tune::fuzzing::{decode, RawExpr};

/// Build one expression from the front of `data`.
fn expr(data: &mut &[u8]) -> Option<RawExpr> {
    let (&tag, rest) = data.split_first()?;
    *data = rest;
    fn int(data: &mut &[u8]) -> u32 {
        let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
        *data = rest;
        u32::from(b % 24)
    }
    let e = match tag % 10 {
        0 => RawExpr::Meta {
            key: int(data),
            dreg: int(data),
        },
        1 => RawExpr::Payload {
            base: int(data),
            offset: int(data),
            len: int(data),
            dreg: int(data),
        },
        2 | 3 => {
            let (sreg, n) = (int(data), int(data) as usize);
            let bytes: Vec<u8> = data.iter().take(n).copied().collect();
            *data = &data[bytes.len()..];
            if tag % 10 == 2 {
                RawExpr::Cmp {
                    sreg,
                    op: n as u32 % 6,
                    data: bytes,
                }
            } else {
                RawExpr::Bitwise {
                    sreg,
                    dreg: int(data),
                    xor: vec![0; bytes.len()],
                    mask: bytes,
                }
            }
        }
        4 => RawExpr::Ct {
            key: int(data),
            dreg: int(data),
        },
        5 => RawExpr::Immediate {
            dreg: int(data),
            verdict: Some(int(data) as i32 - 5),
            chain: None,
        },
        6 => RawExpr::Lookup {
            sreg: int(data),
            set: "s".into(),
            dreg: (tag % 3 == 0).then_some(0),
        },
        7 => RawExpr::Notrack,
        8 => RawExpr::Counter,
        _ => RawExpr::Other {
            name: "limit".into(),
        },
    };
    Some(e)
}

fuzz_target!(|data: &[u8]| {
    let Some((&family, mut rest)) = data.split_first() else {
        return;
    };
    let mut exprs = Vec::new();
    while let Some(e) = expr(&mut rest) {
        exprs.push(e);
        if exprs.len() > 64 {
            break;
        }
    }
    let _ = decode([1, 2, 10][usize::from(family % 3)], &exprs);
});
