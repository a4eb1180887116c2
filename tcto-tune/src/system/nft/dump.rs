//! Chain and rule dumps of nf_tables, decoded out of libnftnl objects into
//! plain [`RawChain`]s and [`RawRule`]s (expressions as [`RawExpr`]).
//!
//! Kept apart from their meaning: what a chain or rule says about our
//! table or a stateful filter is decided in [`super::read`], on plain data.

use std::ffi::CStr;

use nftnl::nftnl_sys::{self as sys, libc};

use super::sock::{nft_type, request};
use super::SystemError;
use crate::notrack::expr::RawExpr;

pub(super) fn cstr(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libnftnl returns NUL-terminated strings owned by the object.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A chain as the kernel describes it.
#[derive(Debug, Clone)]
pub(super) struct RawChain {
    pub(super) family: u8,
    pub(super) table: String,
    pub(super) name: String,
    pub(super) hook: Option<u32>,
    pub(super) priority: i32,
    pub(super) kind: String,
    pub(super) policy: u32,
}

/// A rule as the kernel describes it.
#[derive(Debug, Clone)]
pub(super) struct RawRule {
    pub(super) family: u8,
    pub(super) table: String,
    pub(super) chain: String,
    pub(super) exprs: Vec<RawExpr>,
    /// The rule's comment (`NFTNL_UDATA_RULE_COMMENT` in its user data).
    pub(super) comment: Option<String>,
    /// The kernel's handle (`nft -a` prints it; `nft delete rule ... handle N`).
    pub(super) handle: u64,
    /// Packets counted by its `counter`, if it has one.
    pub(super) packets: Option<u64>,
    /// Its `limit` (rate, unit in seconds, burst, bytes?, `over`?).
    pub(super) limit: Option<RawLimit>,
}

/// A `limit` expression.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawLimit {
    pub(super) rate: u64,
    pub(super) unit_s: u64,
    pub(super) burst: u32,
    pub(super) bytes: bool,
    pub(super) over: bool,
}

/// The comment in a rule's user data: type-length-value records, type 0
/// (`NFTNL_UDATA_RULE_COMMENT`) holding a NUL-terminated string.
pub(super) fn udata_comment(mut data: &[u8]) -> Option<String> {
    while data.len() >= 2 {
        let (ty, len) = (data[0], usize::from(data[1]));
        let value = data.get(2..2 + len)?;
        if ty == 0 {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        data = &data[2 + len..];
    }
    None
}

pub(super) fn dump_chains(step: &str, family: u8) -> Result<Vec<RawChain>, SystemError> {
    let mut out = Vec::new();
    let flags = (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16;
    request(
        step,
        nft_type(libc::NFT_MSG_GETCHAIN),
        family,
        flags,
        |_| {},
        |nlh| unsafe {
            // SAFETY: allocation checked; parse reads only within nlh.
            let c = sys::nftnl_chain_alloc();
            if c.is_null() || sys::nftnl_chain_nlmsg_parse(nlh, c) < 0 {
                if !c.is_null() {
                    sys::nftnl_chain_free(c);
                }
                return;
            }
            let a = |attr: u32| attr as u16;
            let hooked = sys::nftnl_chain_is_set(c, a(sys::NFTNL_CHAIN_HOOKNUM));
            out.push(RawChain {
                family: sys::nftnl_chain_get_u32(c, a(sys::NFTNL_CHAIN_FAMILY)) as u8,
                table: cstr(sys::nftnl_chain_get_str(c, a(sys::NFTNL_CHAIN_TABLE))),
                name: cstr(sys::nftnl_chain_get_str(c, a(sys::NFTNL_CHAIN_NAME))),
                hook: hooked.then(|| sys::nftnl_chain_get_u32(c, a(sys::NFTNL_CHAIN_HOOKNUM))),
                priority: sys::nftnl_chain_get_s32(c, a(sys::NFTNL_CHAIN_PRIO)),
                kind: if sys::nftnl_chain_is_set(c, a(sys::NFTNL_CHAIN_TYPE)) {
                    cstr(sys::nftnl_chain_get_str(c, a(sys::NFTNL_CHAIN_TYPE)))
                } else {
                    String::new()
                },
                policy: if sys::nftnl_chain_is_set(c, a(sys::NFTNL_CHAIN_POLICY)) {
                    sys::nftnl_chain_get_u32(c, a(sys::NFTNL_CHAIN_POLICY))
                } else {
                    libc::NF_ACCEPT as u32
                },
            });
            sys::nftnl_chain_free(c);
        },
    )?;
    Ok(out)
}

pub(super) fn dump_rules(
    step: &str,
    family: u8,
    table: Option<&CStr>,
) -> Result<Vec<RawRule>, SystemError> {
    let mut out = Vec::new();
    let flags = (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16;
    request(
        step,
        nft_type(libc::NFT_MSG_GETRULE),
        family,
        flags,
        |nlh| {
            if let Some(t) = table {
                // SAFETY: a fresh rule object carrying only the table name,
                // serialized into the message being built, then freed.
                unsafe {
                    let r = sys::nftnl_rule_alloc();
                    if !r.is_null() {
                        sys::nftnl_rule_set_str(r, sys::NFTNL_RULE_TABLE as u16, t.as_ptr());
                        sys::nftnl_rule_nlmsg_build_payload(nlh, r);
                        sys::nftnl_rule_free(r);
                    }
                }
            }
        },
        |nlh| unsafe {
            // SAFETY: allocation checked; parse reads only within nlh; the
            // expression iterator borrows the rule, freed after it.
            let r = sys::nftnl_rule_alloc();
            if r.is_null() || sys::nftnl_rule_nlmsg_parse(nlh, r) < 0 {
                if !r.is_null() {
                    sys::nftnl_rule_free(r);
                }
                return;
            }
            let mut exprs = Vec::new();
            let (mut packets, mut limit) = (None, None);
            let it = sys::nftnl_expr_iter_create(r);
            if !it.is_null() {
                loop {
                    let e = sys::nftnl_expr_iter_next(it);
                    if e.is_null() {
                        break;
                    }
                    let a = |attr: u32| attr as u16;
                    match cstr(sys::nftnl_expr_get_str(e, a(sys::NFTNL_EXPR_NAME))).as_str() {
                        "counter" => {
                            packets =
                                Some(sys::nftnl_expr_get_u64(e, a(sys::NFTNL_EXPR_CTR_PACKETS)))
                        }
                        "limit" => {
                            limit = Some(RawLimit {
                                rate: sys::nftnl_expr_get_u64(e, a(sys::NFTNL_EXPR_LIMIT_RATE)),
                                unit_s: sys::nftnl_expr_get_u64(e, a(sys::NFTNL_EXPR_LIMIT_UNIT)),
                                burst: sys::nftnl_expr_get_u32(e, a(sys::NFTNL_EXPR_LIMIT_BURST)),
                                bytes: sys::nftnl_expr_get_u32(e, a(sys::NFTNL_EXPR_LIMIT_TYPE))
                                    == 1,
                                over: sys::nftnl_expr_get_u32(e, a(sys::NFTNL_EXPR_LIMIT_FLAGS))
                                    & 1
                                    == 1,
                            })
                        }
                        _ => {}
                    }
                    exprs.push(read_expr(e));
                }
                sys::nftnl_expr_iter_destroy(it);
            }
            let udata = {
                let mut len = 0u32;
                let p = sys::nftnl_rule_get_data(r, sys::NFTNL_RULE_USERDATA as u16, &mut len);
                if p.is_null() {
                    &[][..]
                } else {
                    // SAFETY: libnftnl's copy, alive until the rule is freed.
                    std::slice::from_raw_parts(p.cast::<u8>(), len as usize)
                }
            };
            out.push(RawRule {
                comment: udata_comment(udata),
                handle: sys::nftnl_rule_get_u64(r, sys::NFTNL_RULE_HANDLE as u16),
                family: sys::nftnl_rule_get_u32(r, sys::NFTNL_RULE_FAMILY as u16) as u8,
                table: cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_TABLE as u16)),
                chain: cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_CHAIN as u16)),
                exprs,
                packets,
                limit,
            });
            sys::nftnl_rule_free(r);
        },
    )?;
    Ok(out)
}

/// Read one libnftnl expression into plain data.
///
/// # Safety
/// `e` must be a valid expression of a live rule.
unsafe fn read_expr(e: *mut sys::nftnl_expr) -> RawExpr {
    let a = |attr: u32| attr as u16;
    // SAFETY: `e` is a live expression (the caller's contract); libnftnl's
    // getters return NUL-terminated strings or `len` bytes it owns, copied
    // here before the rule is freed.
    unsafe {
        let set = |attr: u32| sys::nftnl_expr_is_set(e, a(attr));
        let u32_ = |attr: u32| sys::nftnl_expr_get_u32(e, a(attr));
        let bytes = |attr: u32| {
            let mut len = 0u32;
            let p = sys::nftnl_expr_get(e, a(attr), &mut len);
            if p.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.cast::<u8>(), len as usize).to_vec()
            }
        };
        let name = cstr(sys::nftnl_expr_get_str(e, a(sys::NFTNL_EXPR_NAME)));
        match name.as_str() {
            "meta" if set(sys::NFTNL_EXPR_META_DREG) => RawExpr::Meta {
                key: u32_(sys::NFTNL_EXPR_META_KEY),
                dreg: u32_(sys::NFTNL_EXPR_META_DREG),
            },
            "payload" if set(sys::NFTNL_EXPR_PAYLOAD_DREG) => RawExpr::Payload {
                base: u32_(sys::NFTNL_EXPR_PAYLOAD_BASE),
                offset: u32_(sys::NFTNL_EXPR_PAYLOAD_OFFSET),
                len: u32_(sys::NFTNL_EXPR_PAYLOAD_LEN),
                dreg: u32_(sys::NFTNL_EXPR_PAYLOAD_DREG),
            },
            "bitwise"
                if !set(sys::NFTNL_EXPR_BITWISE_OP) || u32_(sys::NFTNL_EXPR_BITWISE_OP) == 0 =>
            {
                RawExpr::Bitwise {
                    sreg: u32_(sys::NFTNL_EXPR_BITWISE_SREG),
                    dreg: u32_(sys::NFTNL_EXPR_BITWISE_DREG),
                    mask: bytes(sys::NFTNL_EXPR_BITWISE_MASK),
                    xor: bytes(sys::NFTNL_EXPR_BITWISE_XOR),
                }
            }
            "cmp" => RawExpr::Cmp {
                sreg: u32_(sys::NFTNL_EXPR_CMP_SREG),
                op: u32_(sys::NFTNL_EXPR_CMP_OP),
                data: bytes(sys::NFTNL_EXPR_CMP_DATA),
            },
            "ct" if set(sys::NFTNL_EXPR_CT_DREG) => RawExpr::Ct {
                key: u32_(sys::NFTNL_EXPR_CT_KEY),
                dreg: u32_(sys::NFTNL_EXPR_CT_DREG),
            },
            "immediate" => RawExpr::Immediate {
                dreg: u32_(sys::NFTNL_EXPR_IMM_DREG),
                verdict: set(sys::NFTNL_EXPR_IMM_VERDICT)
                    .then(|| u32_(sys::NFTNL_EXPR_IMM_VERDICT) as i32),
                chain: set(sys::NFTNL_EXPR_IMM_CHAIN)
                    .then(|| cstr(sys::nftnl_expr_get_str(e, a(sys::NFTNL_EXPR_IMM_CHAIN)))),
            },
            "lookup" => RawExpr::Lookup {
                sreg: u32_(sys::NFTNL_EXPR_LOOKUP_SREG),
                set: cstr(sys::nftnl_expr_get_str(e, a(sys::NFTNL_EXPR_LOOKUP_SET))),
                dreg: set(sys::NFTNL_EXPR_LOOKUP_DREG).then(|| u32_(sys::NFTNL_EXPR_LOOKUP_DREG)),
            },
            "notrack" => RawExpr::Notrack,
            "counter" => RawExpr::Counter,
            "meta" | "ct" | "payload" | "bitwise" => RawExpr::Other {
                name: format!("{name} (set)"),
            },
            _ => RawExpr::Other { name },
        }
    }
}
