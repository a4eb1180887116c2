//! The `flows4`/`flows6` interval sets of our table: each set and each
//! chunk of its elements as one batch message ([`SetMsg`]), and the sets
//! read back with their elements into [`FlowSet`]s.
//!
//! Kept apart because sets have their own messages (NEWSET, NEWSETELEM,
//! their dumps) and their own batch-local ids and key type, shared by the
//! write and the read.

use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;

use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::MsgType;

use super::dump::cstr;
use super::sock::{nft_type, request};
use super::{SystemError, TABLE_CNAME};
use crate::notrack::expr::NFPROTO_INET;
use crate::notrack::table::{set_family, FlowElement, FlowSet, Foreign};
use crate::notrack::{TABLE_FAMILY, TABLE_NAME};

/// The batch-local id of set number `index` of the table (a lookup in
/// the same batch names its set by name and id; 0 is no id).
pub(super) fn set_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// nft's id of the concatenated key type `ipvN_addr . ipvN_addr .
/// inet_service` (6 bits per member type: ipv4_addr 7, ipv6_addr 8,
/// inet_service 13), which `nft list` prints the set's type from.
fn key_type(ipv4: bool) -> u32 {
    let addr = if ipv4 { 7 } else { 8 };
    ((addr << 6) | addr) << 6 | 13
}

const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_CONCAT: u32 = 0x80;
/// Elements per NEWSETELEM message (each message must stay under 64 KiB).
pub(super) const ELEMS_PER_MSG: usize = 256;

/// A set (or a chunk of its elements) as one batch message.
pub(super) struct SetMsg {
    set: NonNull<sys::nftnl_set>,
    elems: bool,
}

impl SetMsg {
    /// The set `name` (batch-local `id`) of our table; with `elements`, a
    /// NEWSETELEM message carrying them, else the NEWSET message.
    pub(super) fn new(name: &str, id: u32, ipv4: bool, elements: Option<&[FlowElement]>) -> Self {
        // Our set names are `flows4[-TAG]` (checked by `set_family`): no NUL.
        let name = CString::new(name).unwrap_or_default();
        // SAFETY: fresh objects; libnftnl copies strings and data; elements
        // added to the set are owned (and freed) by it.
        unsafe {
            let Some(set) = NonNull::new(sys::nftnl_set_alloc()) else {
                std::process::abort();
            };
            let s = set.as_ptr();
            let a = |x: u32| x as u16;
            sys::nftnl_set_set_str(s, a(sys::NFTNL_SET_TABLE), TABLE_CNAME.as_ptr());
            sys::nftnl_set_set_str(s, a(sys::NFTNL_SET_NAME), name.as_ptr());
            sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_FAMILY), u32::from(NFPROTO_INET));
            sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_ID), id);
            let alen = if ipv4 { 4u8 } else { 16 };
            if let Some(elements) = elements {
                let (mut lo, mut hi) = (Vec::with_capacity(36), Vec::with_capacity(36));
                for el in elements {
                    el.key_range_into(&mut lo, &mut hi);
                    let e = sys::nftnl_set_elem_alloc();
                    if e.is_null() {
                        std::process::abort();
                    }
                    sys::nftnl_set_elem_set(
                        e,
                        a(sys::NFTNL_SET_ELEM_KEY),
                        lo.as_ptr().cast(),
                        lo.len() as u32,
                    );
                    sys::nftnl_set_elem_set(
                        e,
                        a(sys::NFTNL_SET_ELEM_KEY_END),
                        hi.as_ptr().cast(),
                        hi.len() as u32,
                    );
                    sys::nftnl_set_elem_add(s, e);
                }
            } else {
                sys::nftnl_set_set_u32(
                    s,
                    a(sys::NFTNL_SET_FLAGS),
                    NFT_SET_INTERVAL | NFT_SET_CONCAT,
                );
                sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_KEY_TYPE), key_type(ipv4));
                sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_KEY_LEN), u32::from(alen) * 2 + 4);
                let fields = [alen, alen, 2u8];
                sys::nftnl_set_set_data(
                    s,
                    a(sys::NFTNL_SET_DESC_CONCAT),
                    fields.as_ptr().cast(),
                    fields.len() as u32,
                );
            }
            SetMsg {
                set,
                elems: elements.is_some(),
            }
        }
    }
}

// SAFETY: `write` builds one message of at most nft_nlmsg_maxsize bytes
// (elements are chunked by ELEMS_PER_MSG) into the batch's buffer.
unsafe impl nftnl::NlMsg for SetMsg {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _msg_type: MsgType) {
        let (t, flags) = if self.elems {
            (
                libc::NFT_MSG_NEWSETELEM,
                libc::NLM_F_CREATE | libc::NLM_F_ACK,
            )
        } else {
            (libc::NFT_MSG_NEWSET, libc::NLM_F_CREATE | libc::NLM_F_ACK)
        };
        // SAFETY: nftnl hands a buffer of nft_nlmsg_maxsize bytes for this
        // message; the set (or its chunk of elements) fits in it, and
        // `self.set` is alive until `drop`.
        unsafe {
            let nlh = sys::nftnl_nlmsg_build_hdr(
                buf.cast(),
                t as u16,
                u16::from(NFPROTO_INET),
                flags as u16,
                seq,
            );
            if self.elems {
                sys::nftnl_set_elems_nlmsg_build_payload(nlh, self.set.as_ptr());
            } else {
                sys::nftnl_set_nlmsg_build_payload(nlh, self.set.as_ptr());
            }
        }
    }
}

impl Drop for SetMsg {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once (with its elements).
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) }
    }
}

/// The sets of our table with their elements, decoded and sorted, and the
/// sets (or elements) tcto-tune did not write, named.
pub(super) fn read_sets(step: &str) -> Result<(Vec<FlowSet>, Vec<Foreign>), SystemError> {
    let mut found: Vec<(String, u32, u32)> = Vec::new();
    request(
        &format!("list the sets of {step}"),
        nft_type(libc::NFT_MSG_GETSET),
        NFPROTO_INET,
        (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16,
        |nlh| unsafe {
            // SAFETY: a fresh set carrying the table name, serialized, freed.
            let s = sys::nftnl_set_alloc();
            if !s.is_null() {
                sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, TABLE_CNAME.as_ptr());
                sys::nftnl_set_nlmsg_build_payload(nlh, s);
                sys::nftnl_set_free(s);
            }
        },
        |nlh| unsafe {
            // SAFETY: allocation checked; parse reads only within nlh.
            let s = sys::nftnl_set_alloc();
            if s.is_null() || sys::nftnl_set_nlmsg_parse(nlh, s) < 0 {
                if !s.is_null() {
                    sys::nftnl_set_free(s);
                }
                return;
            }
            let a = |x: u32| x as u16;
            if cstr(sys::nftnl_set_get_str(s, a(sys::NFTNL_SET_TABLE))) == TABLE_NAME {
                found.push((
                    cstr(sys::nftnl_set_get_str(s, a(sys::NFTNL_SET_NAME))),
                    sys::nftnl_set_get_u32(s, a(sys::NFTNL_SET_FLAGS)),
                    sys::nftnl_set_get_u32(s, a(sys::NFTNL_SET_KEY_TYPE)),
                ));
            }
            sys::nftnl_set_free(s);
        },
    )?;
    let mut out = Vec::new();
    let mut foreign = Vec::new();
    let remove = |name: &str| format!("nft delete set {TABLE_FAMILY} {TABLE_NAME} {name}");
    for (name, flags, ktype) in &found {
        let ours = set_family(name).filter(|(ipv4, _)| {
            *flags & (NFT_SET_INTERVAL | NFT_SET_CONCAT) == NFT_SET_INTERVAL | NFT_SET_CONCAT
                && *ktype == key_type(*ipv4)
        });
        let Some((ipv4, profile)) = ours else {
            foreign.push(Foreign {
                what: format!("set `{name}`"),
                remove: remove(name),
            });
            continue;
        };
        let (mut elements, strangers) = read_elements(step, name, ipv4)?;
        if strangers > 0 {
            foreign.push(Foreign {
                what: format!(
                    "{strangers} element(s) of set `{name}` that are not subnet . subnet . port"
                ),
                remove: remove(name),
            });
        }
        elements.sort();
        out.push(FlowSet {
            name: name.clone(),
            elements,
            profile,
        });
    }
    // In the kernel's order, which is the order they were added in.
    Ok((out, foreign))
}

/// The elements of set `name` that decode, and how many did not.
fn read_elements(
    step: &str,
    name: &str,
    ipv4: bool,
) -> Result<(Vec<FlowElement>, usize), SystemError> {
    let query = SetMsg::new(name, 0, ipv4, Some(&[]));
    // Decoded as they arrive (no copy of each key); `None` for a key
    // that is not ours, reported after the dump.
    let mut decoded: Vec<Option<FlowElement>> = Vec::new();
    request(
        &format!("list the elements of set {name} of {step}"),
        nft_type(libc::NFT_MSG_GETSETELEM),
        NFPROTO_INET,
        (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16,
        |nlh| unsafe {
            // SAFETY: the query set (table, name, no elements) serialized.
            sys::nftnl_set_elems_nlmsg_build_payload(nlh, query.set.as_ptr());
        },
        |nlh| unsafe {
            // SAFETY: allocation checked; the elements belong to `s` and
            // are read before it is freed.
            let s = sys::nftnl_set_alloc();
            if s.is_null() || sys::nftnl_set_elems_nlmsg_parse(nlh, s) < 0 {
                if !s.is_null() {
                    sys::nftnl_set_free(s);
                }
                return;
            }
            let it = sys::nftnl_set_elems_iter_create(s);
            if !it.is_null() {
                loop {
                    let e = sys::nftnl_set_elems_iter_next(it);
                    if e.is_null() {
                        break;
                    }
                    let get = |attr: u32| -> &[u8] {
                        let mut len = 0u32;
                        let p = sys::nftnl_set_elem_get(e, attr as u16, &mut len);
                        if p.is_null() {
                            &[]
                        } else {
                            // SAFETY: libnftnl's copy of the attribute,
                            // alive until `s` is freed below.
                            std::slice::from_raw_parts(p.cast::<u8>(), len as usize)
                        }
                    };
                    decoded.push(FlowElement::from_key_range(
                        ipv4,
                        get(sys::NFTNL_SET_ELEM_KEY),
                        get(sys::NFTNL_SET_ELEM_KEY_END),
                    ));
                }
                sys::nftnl_set_elems_iter_destroy(it);
            }
            sys::nftnl_set_free(s);
        },
    )?;
    let strangers = decoded.iter().filter(|e| e.is_none()).count();
    Ok((decoded.into_iter().flatten().collect(), strangers))
}

/// A `ct state` set element as the kernel holds it: the state bits, and
/// for a verdict map the verdict code and jump/goto chain.
pub(super) type RawCtElement = (u32, Option<(i32, Option<String>)>);

/// The elements of another table's set that a `ct state` lookup names
/// (`ct state { established, related }`, `ct state vmap { ... }`): each
/// key as conntrack state bits, and for a verdict map its verdict code
/// and jump/goto chain.
pub(super) fn read_ct_set(
    family: u8,
    table: &CStr,
    set: &str,
) -> Result<Vec<RawCtElement>, SystemError> {
    let name = CString::new(set).map_err(|_| SystemError::NftContent {
        what: "a set name holds NUL".into(),
    })?;
    let mut out = Vec::new();
    request(
        &format!("list the elements of set {set}"),
        nft_type(libc::NFT_MSG_GETSETELEM),
        family,
        (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16,
        |nlh| unsafe {
            // SAFETY: a fresh set naming table and set, serialized, freed.
            let s = sys::nftnl_set_alloc();
            if !s.is_null() {
                let a = |x: u32| x as u16;
                sys::nftnl_set_set_str(s, a(sys::NFTNL_SET_TABLE), table.as_ptr());
                sys::nftnl_set_set_str(s, a(sys::NFTNL_SET_NAME), name.as_ptr());
                sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_FAMILY), u32::from(family));
                sys::nftnl_set_elems_nlmsg_build_payload(nlh, s);
                sys::nftnl_set_free(s);
            }
        },
        |nlh| unsafe {
            // SAFETY: allocation checked; the elements belong to `s` and
            // are read before it is freed.
            let s = sys::nftnl_set_alloc();
            if s.is_null() || sys::nftnl_set_elems_nlmsg_parse(nlh, s) < 0 {
                if !s.is_null() {
                    sys::nftnl_set_free(s);
                }
                return;
            }
            let it = sys::nftnl_set_elems_iter_create(s);
            if !it.is_null() {
                loop {
                    let e = sys::nftnl_set_elems_iter_next(it);
                    if e.is_null() {
                        break;
                    }
                    let mut len = 0u32;
                    let p = sys::nftnl_set_elem_get(e, sys::NFTNL_SET_ELEM_KEY as u16, &mut len);
                    if p.is_null() || len != 4 {
                        continue;
                    }
                    let mut key = [0u8; 4];
                    key.copy_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), 4));
                    let verdict = sys::nftnl_set_elem_is_set(e, sys::NFTNL_SET_ELEM_VERDICT as u16)
                        .then(|| {
                            let v =
                                sys::nftnl_set_elem_get_u32(e, sys::NFTNL_SET_ELEM_VERDICT as u16);
                            let chain =
                                sys::nftnl_set_elem_is_set(e, sys::NFTNL_SET_ELEM_CHAIN as u16)
                                    .then(|| {
                                        cstr(sys::nftnl_set_elem_get_str(
                                            e,
                                            sys::NFTNL_SET_ELEM_CHAIN as u16,
                                        ))
                                    });
                            (v as i32, chain)
                        });
                    out.push((u32::from_ne_bytes(key), verdict));
                }
                sys::nftnl_set_elems_iter_destroy(it);
            }
            sys::nftnl_set_free(s);
        },
    )?;
    Ok(out)
}
