//! nftables over netlink (libnftnl + libmnl): the only code that talks to
//! nf_tables.
//!
//! Three exchanges, each with its own error step:
//! - write: the whole `inet tcto_tune` table in one batch (add, delete, add:
//!   atomic, and idempotent since the delete empties whatever was there),
//!   or add + delete to remove it; every message is ACKed and checked;
//!   then the table is read back and compared with what was meant;
//! - read our table: GETTABLE, then chain and rule dumps of that table,
//!   decoded into a [`NotrackTable`] (refusing content we did not write);
//! - read the others' filter chains: chain and rule dumps of every family,
//!   decoded into [`FilterChain`]s for the stateful-filter check.
//!
//! No `nft` binary is involved. The expressions themselves are built and
//! decoded as plain data in [`crate::notrack::expr`]; here they only cross
//! into and out of libnftnl objects.

use std::collections::BTreeMap;
use std::ffi::{c_void, CStr, CString};
use std::io;
use std::ptr::NonNull;

use mnl::mnl_sys;
use nftnl::expr::Expression;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table};

use super::{Firewall, SystemError};
use crate::notrack::expr::{RawExpr, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6};
use crate::notrack::table::{set_name, FlowElement, FlowSet, SetRule};
use crate::notrack::{
    expr, FilterChain, NotrackChain, NotrackRule, NotrackTable, TABLE_FAMILY, TABLE_NAME,
};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

fn err(step: impl Into<String>) -> impl FnOnce(io::Error) -> SystemError {
    let step = step.into();
    move |source| SystemError::Nftables { step, source }
}

/// nf_tables through netlink, in this process's network namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nft;

/// A netlink socket for nf_tables with room for large batches.
struct Sock {
    socket: mnl::Socket,
    portid: u32,
}

impl Sock {
    fn open(step: &str, buffer: usize) -> Result<Self, SystemError> {
        let socket = mnl::Socket::new(mnl::Bus::Netfilter)
            .map_err(err(format!("open a netfilter netlink socket to {step}")))?;
        let fd = unsafe { mnl_sys::mnl_socket_get_fd(socket.as_raw_socket()) };
        let size = buffer.clamp(1 << 18, 1 << 28) as libc::c_int;
        let timeout = libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        };
        // SAFETY: fd is the socket's open descriptor; the option values are
        // plain integers/timevals living for the call's duration.
        unsafe {
            for opt in [libc::SO_SNDBUFFORCE, libc::SO_RCVBUFFORCE] {
                // Best effort: without CAP_NET_ADMIN the kernel refuses
                // FORCE and the default buffers stay (fine for small tables).
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as u32,
                );
            }
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            );
        }
        let portid = socket.portid();
        Ok(Sock { socket, portid })
    }
}

/// A receive buffer aligned to `nlmsghdr` (mnl requires it).
struct AlignedBuf(Vec<u64>);

impl AlignedBuf {
    fn new(bytes: usize) -> Self {
        AlignedBuf(vec![0u64; bytes.div_ceil(8)])
    }
    fn bytes(&mut self) -> &mut [u8] {
        let len = self.0.len() * 8;
        // SAFETY: a u64 buffer viewed as bytes: same allocation, any bit
        // pattern is a valid u8, alignment only decreases.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), len) }
    }
}

fn header(msg: &[u8]) -> libc::nlmsghdr {
    // SAFETY: mnl's iterator only yields messages at least one header long,
    // from an aligned buffer.
    unsafe { msg.as_ptr().cast::<libc::nlmsghdr>().read() }
}

fn error_code(msg: &[u8]) -> i32 {
    let off = size_of::<libc::nlmsghdr>();
    if msg.len() < off + 4 {
        return -libc::EBADMSG;
    }
    i32::from_ne_bytes([msg[off], msg[off + 1], msg[off + 2], msg[off + 3]])
}

/// Send one request and hand every reply message to `each` until DONE (a
/// dump) or the ACK (a plain request).
fn request(
    step: &str,
    msg_type: u16,
    family: u8,
    flags: u16,
    build: impl FnOnce(*mut libc::nlmsghdr),
    mut each: impl FnMut(&libc::nlmsghdr),
) -> Result<(), SystemError> {
    let sock = Sock::open(step, 0)?;
    let mut out = AlignedBuf::new(nftnl::nft_nlmsg_maxsize() as usize);
    let seq = 1u32;
    // SAFETY: the buffer holds nft_nlmsg_maxsize bytes, what libnftnl needs.
    let nlh = unsafe {
        sys::nftnl_nlmsg_build_hdr(
            out.bytes().as_mut_ptr().cast(),
            msg_type,
            u16::from(family),
            flags,
            seq,
        )
    };
    build(nlh);
    // SAFETY: nlh points into `out` and nlmsg_len counts the built message.
    let len = unsafe { (*nlh).nlmsg_len } as usize;
    sock.socket
        .send(&out.bytes()[..len])
        .map_err(err(format!("send the request to {step}")))?;
    let mut buf = AlignedBuf::new(1 << 18);
    loop {
        let msgs = sock
            .socket
            .recv(buf.bytes())
            .map_err(err(format!("receive the reply to {step}")))?;
        for m in msgs {
            let m = m.map_err(err(format!("parse the reply to {step}")))?;
            let h = header(m);
            if h.nlmsg_seq != seq || h.nlmsg_pid != sock.portid {
                continue;
            }
            match h.nlmsg_type {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = error_code(m);
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(SystemError::Nftables {
                        step: step.to_owned(),
                        source: io::Error::from_raw_os_error(-code),
                    });
                }
                _ => {
                    // SAFETY: an aligned, complete message from the kernel.
                    each(unsafe { &*m.as_ptr().cast::<libc::nlmsghdr>() });
                    if flags & libc::NLM_F_DUMP as u16 == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn nft_type(t: i32) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | t as u16
}

fn cstr(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libnftnl returns NUL-terminated strings owned by the object.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A chain as the kernel describes it.
#[derive(Debug, Clone)]
struct RawChain {
    family: u8,
    table: String,
    name: String,
    hook: Option<u32>,
    priority: i32,
    kind: String,
    policy: u32,
}

/// A rule as the kernel describes it.
#[derive(Debug, Clone)]
struct RawRule {
    family: u8,
    table: String,
    chain: String,
    exprs: Vec<RawExpr>,
}

fn dump_chains(step: &str, family: u8) -> Result<Vec<RawChain>, SystemError> {
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

fn dump_rules(step: &str, family: u8, table: Option<&CStr>) -> Result<Vec<RawRule>, SystemError> {
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
            let it = sys::nftnl_expr_iter_create(r);
            if !it.is_null() {
                loop {
                    let e = sys::nftnl_expr_iter_next(it);
                    if e.is_null() {
                        break;
                    }
                    exprs.push(read_expr(e));
                }
                sys::nftnl_expr_iter_destroy(it);
            }
            out.push(RawRule {
                family: sys::nftnl_rule_get_u32(r, sys::NFTNL_RULE_FAMILY as u16) as u8,
                table: cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_TABLE as u16)),
                chain: cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_CHAIN as u16)),
                exprs,
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

/// A data attribute of an expression: `(NFTNL_EXPR_*, bytes)`.
type DataAttr<'a> = (u32, &'a [u8]);

/// One of our expressions, as libnftnl builds it.
struct Writable<'a>(&'a RawExpr);

impl Expression for Writable<'_> {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        let (name, u32s, datas): (&CStr, Vec<(u32, u32)>, Vec<DataAttr>) = match self.0 {
            RawExpr::Meta { key, dreg } => (
                c"meta",
                vec![
                    (sys::NFTNL_EXPR_META_KEY, *key),
                    (sys::NFTNL_EXPR_META_DREG, *dreg),
                ],
                vec![],
            ),
            RawExpr::Payload {
                base,
                offset,
                len,
                dreg,
            } => (
                c"payload",
                vec![
                    (sys::NFTNL_EXPR_PAYLOAD_DREG, *dreg),
                    (sys::NFTNL_EXPR_PAYLOAD_BASE, *base),
                    (sys::NFTNL_EXPR_PAYLOAD_OFFSET, *offset),
                    (sys::NFTNL_EXPR_PAYLOAD_LEN, *len),
                ],
                vec![],
            ),
            RawExpr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => (
                c"bitwise",
                vec![
                    (sys::NFTNL_EXPR_BITWISE_SREG, *sreg),
                    (sys::NFTNL_EXPR_BITWISE_DREG, *dreg),
                    (sys::NFTNL_EXPR_BITWISE_LEN, mask.len() as u32),
                ],
                vec![
                    (sys::NFTNL_EXPR_BITWISE_MASK, mask.as_slice()),
                    (sys::NFTNL_EXPR_BITWISE_XOR, xor.as_slice()),
                ],
            ),
            RawExpr::Cmp { sreg, op, data } => (
                c"cmp",
                vec![
                    (sys::NFTNL_EXPR_CMP_SREG, *sreg),
                    (sys::NFTNL_EXPR_CMP_OP, *op),
                ],
                vec![(sys::NFTNL_EXPR_CMP_DATA, data.as_slice())],
            ),
            RawExpr::Counter => (c"counter", vec![], vec![]),
            RawExpr::Lookup { sreg, set, .. } => (
                c"lookup",
                vec![
                    (sys::NFTNL_EXPR_LOOKUP_SREG, *sreg),
                    (sys::NFTNL_EXPR_LOOKUP_SET_ID, set_id(set)),
                ],
                vec![],
            ),
            // Our rules hold nothing else (checked by `writable`); the
            // attribute-less notrack is the fallback.
            _ => (c"notrack", vec![], vec![]),
        };
        // SAFETY: libnftnl copies names and data into the expression.
        unsafe {
            let e = sys::nftnl_expr_alloc(name.as_ptr());
            let Some(e) = NonNull::new(e) else {
                std::process::abort();
            };
            for (attr, v) in u32s {
                sys::nftnl_expr_set_u32(e.as_ptr(), attr as u16, v);
            }
            if let RawExpr::Lookup { set, .. } = self.0 {
                // The set name is a string attribute (NUL-terminated).
                let s = CString::new(set.as_str()).expect("set names hold no NUL");
                sys::nftnl_expr_set_str(e.as_ptr(), sys::NFTNL_EXPR_LOOKUP_SET as u16, s.as_ptr());
            }
            for (attr, d) in datas {
                sys::nftnl_expr_set(
                    e.as_ptr(),
                    attr as u16,
                    d.as_ptr().cast::<c_void>(),
                    d.len() as u32,
                );
            }
            e
        }
    }
}

fn writable(e: &RawExpr) -> bool {
    matches!(
        e,
        RawExpr::Meta { .. }
            | RawExpr::Payload { .. }
            | RawExpr::Bitwise { .. }
            | RawExpr::Cmp { .. }
            | RawExpr::Counter
            | RawExpr::Notrack
    ) || matches!(e, RawExpr::Lookup { set, .. } if set_id(set) != 0)
}

/// The batch-local id of our sets (a lookup in the same batch names its
/// set by name and id).
fn set_id(name: &str) -> u32 {
    match name {
        "flows4" => 1,
        "flows6" => 2,
        _ => 0,
    }
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
const ELEMS_PER_MSG: usize = 256;

/// A set (or a chunk of its elements) as one batch message.
struct SetMsg {
    set: NonNull<sys::nftnl_set>,
    elems: bool,
}

impl SetMsg {
    /// The set `name` of our table; with `elements`, a NEWSETELEM message
    /// carrying them, else the NEWSET message.
    fn new(ipv4: bool, elements: Option<&[FlowElement]>) -> Self {
        let name = CString::new(set_name(ipv4)).expect("no NUL");
        let table = CString::new(TABLE_NAME).expect("no NUL");
        // SAFETY: fresh objects; libnftnl copies strings and data; elements
        // added to the set are owned (and freed) by it.
        unsafe {
            let Some(set) = NonNull::new(sys::nftnl_set_alloc()) else {
                std::process::abort();
            };
            let s = set.as_ptr();
            let a = |x: u32| x as u16;
            sys::nftnl_set_set_str(s, a(sys::NFTNL_SET_TABLE), table.as_ptr());
            sys::nftnl_set_set_str(s, a(sys::NFTNL_SET_NAME), name.as_ptr());
            sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_FAMILY), u32::from(NFPROTO_INET));
            sys::nftnl_set_set_u32(s, a(sys::NFTNL_SET_ID), set_id(set_name(ipv4)));
            let alen = if ipv4 { 4u8 } else { 16 };
            if let Some(elements) = elements {
                for el in elements {
                    let (lo, hi) = el.key_range();
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

fn hook_of(name: &str) -> Option<Hook> {
    match name {
        "prerouting" => Some(Hook::PreRouting),
        "output" => Some(Hook::Out),
        _ => None,
    }
}

fn hook_name(hook: u32) -> &'static str {
    match hook {
        0 => "prerouting",
        1 => "input",
        2 => "forward",
        3 => "output",
        4 => "postrouting",
        _ => "other",
    }
}

fn family_name(f: u8) -> Option<&'static str> {
    match f {
        NFPROTO_INET => Some("inet"),
        NFPROTO_IPV4 => Some("ip"),
        NFPROTO_IPV6 => Some("ip6"),
        _ => None,
    }
}

impl Nft {
    /// Replace the `inet tcto_tune` table with `table` (or remove it for
    /// `None`) in one batch, check every ACK, then read it back and
    /// compare.
    pub fn write_table(&self, table: Option<&NotrackTable>) -> Result<(), SystemError> {
        self.send_table(table)?;
        let got = self.read_table()?;
        if got.as_ref() != table {
            return Err(SystemError::NftReadBack {
                wanted: table.map_or("(absent)".into(), NotrackTable::to_nft),
                got: got.map_or("(absent)".into(), |t| t.to_nft()),
            });
        }
        Ok(())
    }

    /// [`write_table`](Self::write_table) without the read back, for
    /// callers that read back themselves (the apply transaction does).
    ///
    /// When the table is absent the batch creates it exclusively (no
    /// delete: a table deletion makes the kernel's commit markedly slower);
    /// should it appear meanwhile, that batch fails as a whole with EEXIST
    /// and the replacing batch (add, delete, add) runs instead.
    pub fn send_table(&self, table: Option<&NotrackTable>) -> Result<(), SystemError> {
        let exists = self.table_exists()?;
        match (table, exists) {
            (None, false) => Ok(()),
            (None, true) => match self.send_batch_for(None, Mode::Delete) {
                // Gone meanwhile: what was asked.
                Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
                other => other,
            },
            (Some(_), false) => match self.send_batch_for(table, Mode::Create) {
                Err(e) if e.errno() == Some(libc::EEXIST) => {
                    self.send_batch_for(table, Mode::Replace)
                }
                other => other,
            },
            (Some(_), true) => self.send_batch_for(table, Mode::Replace),
        }
    }

    fn table_exists(&self) -> Result<bool, SystemError> {
        let name = CString::new(TABLE_NAME).expect("no NUL");
        let exists = request(
            &format!("read table {TABLE_FAMILY} {TABLE_NAME}"),
            nft_type(libc::NFT_MSG_GETTABLE),
            NFPROTO_INET,
            libc::NLM_F_ACK as u16,
            |nlh| unsafe {
                // SAFETY: a fresh table object carrying the name, serialized
                // into the message being built, then freed.
                let t = sys::nftnl_table_alloc();
                if !t.is_null() {
                    sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, name.as_ptr());
                    sys::nftnl_table_nlmsg_build_payload(nlh, t);
                    sys::nftnl_table_free(t);
                }
            },
            |_| {},
        );
        match exists {
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    }

    fn send_batch_for(&self, table: Option<&NotrackTable>, mode: Mode) -> Result<(), SystemError> {
        let name = CString::new(TABLE_NAME).expect("no NUL");
        let t = Table::new(&name, ProtoFamily::Inet);
        // What each message does, formatted only if the kernel refuses it.
        let mut what: Vec<Msg> = Vec::new();
        let mut batch = Batch::new();
        match mode {
            Mode::Create => {
                batch.add(&ExclusiveTable, MsgType::Add);
                what.push(Msg::AddTable);
            }
            Mode::Replace => {
                batch.add(&t, MsgType::Add);
                what.push(Msg::AddTable);
                batch.add(&t, MsgType::Del);
                what.push(Msg::DelTable);
                batch.add(&t, MsgType::Add);
                what.push(Msg::AddTable);
            }
            Mode::Delete => {
                batch.add(&t, MsgType::Del);
                what.push(Msg::DelTable);
            }
        }
        if let Some(doc) = table {
            for (i, set) in doc.sets.iter().enumerate() {
                let ipv4 = match set.name.as_str() {
                    "flows4" => true,
                    "flows6" => false,
                    other => {
                        return Err(SystemError::NftContent {
                            what: format!("set `{other}` is not flows4 or flows6"),
                        })
                    }
                };
                batch.add(&SetMsg::new(ipv4, None), MsgType::Add);
                what.push(Msg::AddSet(i));
                for chunk in set.elements.chunks(ELEMS_PER_MSG) {
                    batch.add(&SetMsg::new(ipv4, Some(chunk)), MsgType::Add);
                    what.push(Msg::AddElements(i));
                }
            }
            let mut chains = Vec::new();
            for c in &doc.chains {
                let hook = hook_of(&c.name).ok_or_else(|| SystemError::NftContent {
                    what: format!("chain `{}` is not prerouting or output", c.name),
                })?;
                let cname = CString::new(c.name.as_str()).map_err(|_| SystemError::NftContent {
                    what: "a chain name holds NUL".into(),
                })?;
                let mut chain = Chain::new(&cname, &t);
                chain.set_hook(hook, c.priority);
                chain.set_type(ChainType::Filter);
                chain.set_policy(Policy::Accept);
                chains.push((c, chain));
            }
            for (i, (_, chain)) in chains.iter().enumerate() {
                batch.add(chain, MsgType::Add);
                what.push(Msg::AddChain(i));
            }
            for (i, (c, chain)) in chains.iter().enumerate() {
                for (j, r) in c.rules.iter().enumerate() {
                    let exprs = r.to_exprs();
                    if !exprs.iter().all(writable) {
                        return Err(SystemError::NftContent {
                            what: format!(
                                "rule `{}` has an expression we cannot write",
                                r.to_nft()
                            ),
                        });
                    }
                    let mut rule = Rule::new(chain);
                    for e in &exprs {
                        rule.add_expr(&Writable(e));
                    }
                    batch.add(&rule, MsgType::Add);
                    what.push(Msg::AddRule(i, j));
                }
                for (j, r) in c.set_rules.iter().enumerate() {
                    let mut rule = Rule::new(chain);
                    for e in &r.to_exprs() {
                        rule.add_expr(&Writable(e));
                    }
                    batch.add(&rule, MsgType::Add);
                    what.push(Msg::AddSetRule(i, j));
                }
            }
        }
        let batch = batch.finalize();
        send_batch(&batch, what.len(), |i| match (what.get(i), table) {
            (Some(Msg::AddTable), _) => format!("add table {TABLE_FAMILY} {TABLE_NAME}"),
            (Some(Msg::DelTable), _) => format!("delete table {TABLE_FAMILY} {TABLE_NAME}"),
            (Some(Msg::AddChain(c)), Some(t)) => format!("add chain {}", t.chains[*c].name),
            (Some(Msg::AddSet(s)), Some(t)) => format!("add set {}", t.sets[*s].name),
            (Some(Msg::AddElements(s)), Some(t)) => {
                format!("add elements to set {}", t.sets[*s].name)
            }
            (Some(Msg::AddSetRule(c, r)), Some(t)) => format!(
                "add rule to chain {}: {}",
                t.chains[*c].name,
                t.chains[*c].set_rules[*r].to_nft()
            ),
            (Some(Msg::AddRule(c, r)), Some(t)) => format!(
                "add rule to chain {}: {}",
                t.chains[*c].name,
                t.chains[*c].rules[*r].to_nft()
            ),
            _ => "send a batch message".into(),
        })
    }

    /// The `inet tcto_tune` table, decoded; `None` when absent.
    pub fn read_table(&self) -> Result<Option<NotrackTable>, SystemError> {
        let name = CString::new(TABLE_NAME).expect("no NUL");
        let step = format!("read table {TABLE_FAMILY} {TABLE_NAME}");
        if !self.table_exists()? {
            return Ok(None);
        }
        let chains: Vec<RawChain> =
            dump_chains(&format!("list the chains of {step}"), NFPROTO_INET)?
                .into_iter()
                .filter(|c| c.table == TABLE_NAME)
                .collect();
        let rules = dump_rules(
            &format!("list the rules of {step}"),
            NFPROTO_INET,
            Some(&name),
        )?;
        let sets = read_sets(&step)?;
        let mut table = decode_our_table(&chains, &rules)?;
        table.sets = sets;
        Ok(Some(table))
    }

    /// Base filter chains of every other ip/ip6/inet table with hook input,
    /// forward or output, and their rules, decoded.
    pub fn read_filter_chains(&self) -> Result<Vec<FilterChain>, SystemError> {
        let chains: Vec<RawChain> = dump_chains("list the chains of every table", 0)?
            .into_iter()
            .filter(|c| {
                family_name(c.family).is_some_and(|f| f != TABLE_FAMILY || c.table != TABLE_NAME)
                    && matches!(c.hook, Some(1..=3))
                    && c.kind == "filter"
            })
            .collect();
        // Rules only of the tables that have such chains (never our own,
        // which may hold thousands).
        let tables: std::collections::BTreeSet<(u8, String)> =
            chains.iter().map(|c| (c.family, c.table.clone())).collect();
        let mut by_chain: BTreeMap<(u8, String, String), Vec<RawRule>> = BTreeMap::new();
        for (family, table) in tables {
            let name = CString::new(table.as_str()).map_err(|_| SystemError::NftContent {
                what: "a table name holds NUL".into(),
            })?;
            let step = format!(
                "list the rules of table {} {table}",
                family_name(family).unwrap_or("?")
            );
            for r in dump_rules(&step, family, Some(&name))? {
                by_chain
                    .entry((r.family, r.table.clone(), r.chain.clone()))
                    .or_default()
                    .push(r);
            }
        }
        let mut out = Vec::new();
        for c in chains {
            let Some(family) = family_name(c.family) else {
                continue;
            };
            let hook = match c.hook {
                Some(h @ 1..=3) => hook_name(h),
                _ => continue,
            };
            if c.kind != "filter" || (family == TABLE_FAMILY && c.table == TABLE_NAME) {
                continue;
            }
            let rules = by_chain
                .remove(&(c.family, c.table.clone(), c.name.clone()))
                .unwrap_or_default()
                .iter()
                .map(|r| expr::decode(c.family, &r.exprs))
                .collect();
            out.push(FilterChain {
                family: family.into(),
                table: c.table,
                name: c.name,
                hook: hook.into(),
                priority: c.priority,
                policy: if c.policy == libc::NF_DROP as u32 {
                    "drop".into()
                } else {
                    "accept".into()
                },
                rules,
            });
        }
        Ok(out)
    }
}

fn decode_our_table(chains: &[RawChain], rules: &[RawRule]) -> Result<NotrackTable, SystemError> {
    let foreign = |what: String| SystemError::NftContent { what };
    let mut out = Vec::new();
    for want in ["prerouting", "output"] {
        let Some(c) = chains.iter().find(|c| c.name == want) else {
            continue;
        };
        if c.hook.map(hook_name) != Some(want) || c.kind != "filter" || c.policy != 1 {
            return Err(foreign(format!(
                "chain `{}` is not a filter chain on hook {want} with policy accept",
                c.name
            )));
        }
        let mut decoded = Vec::new();
        let mut set_rules = Vec::new();
        for r in rules.iter().filter(|r| r.chain == want) {
            if let Some(rule) = NotrackRule::from_exprs(&r.exprs) {
                decoded.push(rule);
            } else if let Some(rule) = SetRule::from_exprs(&r.exprs) {
                set_rules.push(rule);
            } else {
                return Err(foreign(format!(
                    "chain `{want}` holds a rule tcto-tune did not write: {}",
                    expr::decode(r.family, &r.exprs)
                )));
            }
        }
        out.push(NotrackChain {
            name: want.into(),
            priority: c.priority,
            rules: decoded,
            set_rules,
        });
    }
    if let Some(c) = chains
        .iter()
        .find(|c| c.name != "prerouting" && c.name != "output")
    {
        return Err(foreign(format!("it holds a chain `{}`", c.name)));
    }
    Ok(NotrackTable {
        sets: vec![],
        chains: out,
    })
}

/// The sets of our table with their elements, decoded and sorted.
fn read_sets(step: &str) -> Result<Vec<FlowSet>, SystemError> {
    let table = CString::new(TABLE_NAME).expect("no NUL");
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
                sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
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
    for ipv4 in [true, false] {
        let name = set_name(ipv4);
        let Some((_, flags, ktype)) = found.iter().find(|(n, ..)| n == name) else {
            continue;
        };
        if *flags & (NFT_SET_INTERVAL | NFT_SET_CONCAT) != NFT_SET_INTERVAL | NFT_SET_CONCAT
            || *ktype != key_type(ipv4)
        {
            return Err(SystemError::NftContent {
                what: format!("set `{name}` is not an interval set of subnet . subnet . port"),
            });
        }
        let mut elements = read_elements(step, ipv4)?;
        elements.sort();
        out.push(FlowSet {
            name: name.into(),
            elements,
        });
    }
    if let Some((n, ..)) = found
        .iter()
        .find(|(n, ..)| n != set_name(true) && n != set_name(false))
    {
        return Err(SystemError::NftContent {
            what: format!("it holds a set `{n}`"),
        });
    }
    Ok(out)
}

fn read_elements(step: &str, ipv4: bool) -> Result<Vec<FlowElement>, SystemError> {
    let name = set_name(ipv4);
    let query = SetMsg::new(ipv4, Some(&[]));
    let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
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
                    let get = |attr: u32| {
                        let mut len = 0u32;
                        let p = sys::nftnl_set_elem_get(e, attr as u16, &mut len);
                        if p.is_null() {
                            Vec::new()
                        } else {
                            std::slice::from_raw_parts(p.cast::<u8>(), len as usize).to_vec()
                        }
                    };
                    raw.push((
                        get(sys::NFTNL_SET_ELEM_KEY),
                        get(sys::NFTNL_SET_ELEM_KEY_END),
                    ));
                }
                sys::nftnl_set_elems_iter_destroy(it);
            }
            sys::nftnl_set_free(s);
        },
    )?;
    raw.iter()
        .map(|(lo, hi)| {
            FlowElement::from_key_range(ipv4, lo, hi).ok_or_else(|| SystemError::NftContent {
                what: format!("set `{name}` holds an element tcto-tune did not write"),
            })
        })
        .collect()
}

/// Bytes per datagram slot when receiving ACKs (an error ACK carries the
/// refused message back: a rule is well under this).
const ACK_SLOT: usize = 16 << 10;
/// Datagrams per receive call: a 2,000-rule batch is ACKed in ~32 calls,
/// not 2,000.
const ACK_SLOTS: usize = 64;

/// Receive up to [`ACK_SLOTS`] datagrams in one `recvmmsg`, blocking (up
/// to SO_RCVTIMEO) for the first only; slot `i` starts at `i * ACK_SLOT`.
fn recv_many(fd: libc::c_int, buf: &mut AlignedBuf) -> io::Result<Vec<usize>> {
    let base = buf.bytes().as_mut_ptr();
    let mut iov: Vec<libc::iovec> = (0..ACK_SLOTS)
        .map(|i| libc::iovec {
            // SAFETY: every slot lies inside `buf` (ACK_SLOT * ACK_SLOTS bytes).
            iov_base: unsafe { base.add(i * ACK_SLOT) }.cast(),
            iov_len: ACK_SLOT,
        })
        .collect();
    // SAFETY: mmsghdr is plain C data; zero is a valid empty header.
    let mut hdrs: Vec<libc::mmsghdr> = (0..ACK_SLOTS)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: hdrs and iov outlive the call and describe valid buffers.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            ACK_SLOTS as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let hdrs = &hdrs[..n as usize];
    if hdrs
        .iter()
        .any(|h| h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "an ACK did not fit its receive slot",
        ));
    }
    Ok(hdrs.iter().map(|h| h.msg_len as usize).collect())
}

/// How the write batch starts.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// The table is absent: create it, failing if it exists.
    Create,
    /// Add, delete, add: replace whatever is there.
    Replace,
    /// Delete it.
    Delete,
}

/// NEWTABLE `inet tcto_tune` with NLM_F_EXCL: EEXIST if it exists.
struct ExclusiveTable;

// SAFETY: builds one small message into the batch's buffer.
unsafe impl nftnl::NlMsg for ExclusiveTable {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _msg_type: MsgType) {
        let name = CString::new(TABLE_NAME).expect("no NUL");
        unsafe {
            let nlh = sys::nftnl_nlmsg_build_hdr(
                buf.cast(),
                libc::NFT_MSG_NEWTABLE as u16,
                u16::from(NFPROTO_INET),
                (libc::NLM_F_CREATE | libc::NLM_F_EXCL | libc::NLM_F_ACK) as u16,
                seq,
            );
            let t = sys::nftnl_table_alloc();
            if t.is_null() {
                std::process::abort();
            }
            sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, name.as_ptr());
            sys::nftnl_table_set_u32(t, sys::NFTNL_TABLE_FAMILY as u16, u32::from(NFPROTO_INET));
            sys::nftnl_table_nlmsg_build_payload(nlh, t);
            sys::nftnl_table_free(t);
        }
    }
}

/// One message of the write batch.
enum Msg {
    AddTable,
    DelTable,
    AddSet(usize),
    AddElements(usize),
    AddChain(usize),
    AddRule(usize, usize),
    AddSetRule(usize, usize),
}

/// Send a finalized batch in one datagram and check one ACK per message;
/// `describe(i)` names our `i`th message for the error.
fn send_batch(
    batch: &nftnl::FinalizedBatch,
    count: usize,
    describe: impl Fn(usize) -> String,
) -> Result<(), SystemError> {
    let mut data: Vec<u8> = Vec::new();
    for page in batch.iter() {
        data.extend_from_slice(page);
    }
    let seqs = batch.sequence_numbers();
    let total = seqs.len();
    let sock = Sock::open("write the table", data.len() * 2 + total * 2048 + (1 << 16))?;
    sock.socket
        .send(&data)
        .map_err(err("send the batch that writes the table"))?;
    // Sequence numbers cover the batch begin and end messages when the
    // kernel ACKs them, our messages otherwise.
    let first = seqs.start;
    let offset = usize::from(total == count + 2);
    let describe = |seq: u32| -> String {
        let i = seq.wrapping_sub(first) as usize;
        match i.checked_sub(offset) {
            Some(j) if j < count => describe(j),
            _ if i == 0 && offset == 1 => "begin the batch".into(),
            _ => "commit the batch".into(),
        }
    };
    let mut pending: std::collections::BTreeSet<u32> = seqs.clone().collect();
    let fd = unsafe { mnl_sys::mnl_socket_get_fd(sock.socket.as_raw_socket()) };
    let mut buf = AlignedBuf::new(ACK_SLOT * ACK_SLOTS);
    while !pending.is_empty() {
        let lens = recv_many(fd, &mut buf).map_err(err("receive the ACKs of the batch"))?;
        let bytes = buf.bytes();
        let msgs = lens
            .iter()
            .enumerate()
            .flat_map(|(i, len)| mnl::NlMessages::new(&bytes[i * ACK_SLOT..i * ACK_SLOT + len]));
        for m in msgs {
            let m = m.map_err(err("parse the ACKs of the batch"))?;
            let h = header(m);
            if h.nlmsg_type != NLMSG_ERROR || h.nlmsg_pid != sock.portid {
                continue;
            }
            let code = error_code(m);
            if code != 0 {
                return Err(SystemError::Nftables {
                    step: describe(h.nlmsg_seq),
                    source: io::Error::from_raw_os_error(-code),
                });
            }
            pending.remove(&h.nlmsg_seq);
        }
    }
    Ok(())
}

impl Firewall for Nft {
    fn notrack_table(&self) -> Result<Option<NotrackTable>, SystemError> {
        self.read_table()
    }

    fn filter_chains(&self) -> Result<Vec<FilterChain>, SystemError> {
        self.read_filter_chains()
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;
    use std::process::Command;

    /// Run `f` on a thread moved into a fresh network namespace (the
    /// host's namespace is never touched); `None` when that is not
    /// possible here (not root), which fails under CI=true.
    pub fn in_own_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        std::thread::spawn(move || {
            // SAFETY: unshare affects only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                let why = io::Error::last_os_error();
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "cannot unshare a network namespace under CI: {why}"
                );
                eprintln!("skipped: cannot unshare a network namespace: {why}");
                return None;
            }
            Some(f())
        })
        .join()
        .expect("test thread")
    }

    pub fn nft(args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write as _;
        let mut child = Command::new("nft")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nft runs");
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nft {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;
    use crate::notrack::{filter, ScopedFlow};

    fn flows() -> Vec<ScopedFlow> {
        vec![
            ScopedFlow {
                from: "10.0.1.0/24".parse().unwrap(),
                to: "10.0.2.0/25".parse().unwrap(),
                port: 8080,
            },
            ScopedFlow {
                from: "fd00:1::/64".parse().unwrap(),
                to: "fd00:2::7/128".parse().unwrap(),
                port: 443,
            },
        ]
    }

    #[test]
    fn writes_exactly_what_nft_lists_and_reads_it_back() {
        in_own_netns(|| {
            let t = NotrackTable::for_flows(&flows());
            Nft.write_table(Some(&t)).unwrap();
            assert_eq!(nft(&["list", "ruleset"], None), t.to_nft());
            assert_eq!(Nft.read_table().unwrap(), Some(t.clone()));
            // Idempotent: the same batch again leaves one copy.
            Nft.write_table(Some(&t)).unwrap();
            assert_eq!(nft(&["list", "ruleset"], None), t.to_nft());
            // Removing, and removing what is absent.
            Nft.write_table(None).unwrap();
            assert_eq!(nft(&["list", "ruleset"], None), "");
            Nft.write_table(None).unwrap();
            assert_eq!(Nft.read_table().unwrap(), None);
        });
    }

    #[test]
    fn a_refused_message_is_named_and_nothing_is_half_applied() {
        in_own_netns(|| {
            let t = NotrackTable::for_flows(&flows());
            Nft.write_table(Some(&t)).unwrap();
            let before = nft(&["list", "ruleset"], None);
            // The exclusive create, against a table that exists: the
            // kernel refuses its first message, the whole batch goes.
            let other = NotrackTable::for_flows(&flows()[..1]);
            let e = Nft.send_batch_for(Some(&other), Mode::Create).unwrap_err();
            assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
            assert_eq!(
                e.to_string(),
                "nftables: cannot add table inet tcto_tune",
                "{e:?}"
            );
            assert_eq!(nft(&["list", "ruleset"], None), before);
            // send_table falls back to replacing.
            Nft.write_table(Some(&other)).unwrap();
            assert_eq!(nft(&["list", "ruleset"], None), other.to_nft());
        });
    }

    #[test]
    fn refuses_a_table_holding_foreign_rules() {
        in_own_netns(|| {
            nft(
                &["-f", "-"],
                Some("table inet tcto_tune { chain prerouting { type filter hook prerouting priority raw; policy accept; tcp dport 22 accept; }; }"),
            );
            let e = Nft.read_table().unwrap_err();
            assert!(matches!(e, SystemError::NftContent { .. }), "{e}");
            assert!(e.to_string().contains("tcp dport 22 accept"), "{e}");
        });
    }

    #[test]
    fn decodes_other_tables_filter_chains() {
        in_own_netns(|| {
            nft(
                &["-f", "-"],
                Some(
                    "table inet filter {
                        chain input { type filter hook input priority filter; policy drop;
                            ct state established,related accept
                            ct state new tcp dport 8080 accept; }
                        chain fw { type filter hook forward priority 0; policy accept; }
                        chain helper { tcp dport 22 accept; }
                    }
                    table ip nat { chain pre { type nat hook prerouting priority dstnat; }; }",
                ),
            );
            let chains = Nft.read_filter_chains().unwrap();
            let labels: Vec<String> = chains.iter().map(FilterChain::label).collect();
            assert_eq!(labels, ["inet filter input", "inet filter fw"]);
            let input = &chains[0];
            assert_eq!(input.policy, "drop");
            assert_eq!(
                input.rules[0].to_string(),
                "ct state established,related accept"
            );
            assert_eq!(
                input.rules[1].to_string(),
                "tcp dport 8080 ct state new accept"
            );
            assert_eq!(filter::breakages(&chains, &flows()[..1]).len(), 1);
            nft(
                &[
                    "insert",
                    "rule",
                    "inet",
                    "filter",
                    "input",
                    "ct",
                    "state",
                    "untracked",
                    "accept",
                ],
                None,
            );
            let chains = Nft.read_filter_chains().unwrap();
            assert!(filter::breakages(&chains, &flows()[..1]).is_empty());
        });
    }
}

#[cfg(test)]
mod set_tests {
    use super::tests_support::*;
    use super::*;
    use crate::notrack::ScopedFlow;

    #[test]
    fn many_flows_go_into_sets_that_nft_lists_and_we_read_back() {
        in_own_netns(|| {
            let mut flows: Vec<ScopedFlow> = (0..40u16)
                .map(|i| ScopedFlow {
                    from: format!("10.1.{i}.0/24").parse().unwrap(),
                    to: "10.0.2.0/25".parse().unwrap(),
                    port: 8000 + i,
                })
                .collect();
            flows.push(ScopedFlow {
                from: "fd00:1::/64".parse().unwrap(),
                to: "fd00:2::7/128".parse().unwrap(),
                port: 443,
            });
            let t = NotrackTable::for_flows(&flows);
            assert_eq!(t.rule_count(), 4);
            Nft.write_table(Some(&t)).unwrap();
            let listed = nft(&["list", "ruleset"], None);
            for line in [
                "type ipv4_addr . ipv4_addr . inet_service",
                "type ipv6_addr . ipv6_addr . inet_service",
                "flags interval",
                "10.1.0.0/24 . 10.0.2.0/25 . 8000",
                "10.1.39.0/24 . 10.0.2.0/25 . 8039",
                "fd00:1::/64 . fd00:2::7 . 443",
                "ip saddr . ip daddr . tcp dport @flows4 notrack",
                "ip daddr . ip saddr . tcp sport @flows4 notrack",
                "ip6 saddr . ip6 daddr . tcp dport @flows6 notrack",
                "ip6 daddr . ip6 saddr . tcp sport @flows6 notrack",
            ] {
                assert!(listed.contains(line), "{line} missing in\n{listed}");
            }
            assert_eq!(Nft.read_table().unwrap(), Some(t.clone()));
            assert_eq!(listed, t.to_nft());
            // Back to per-flow rules: the sets go with the table.
            let small = NotrackTable::for_flows(&flows[..1]);
            Nft.write_table(Some(&small)).unwrap();
            assert_eq!(nft(&["list", "ruleset"], None), small.to_nft());
        });
    }
}
