//! Writing our table: our expressions as libnftnl objects ([`Writable`]),
//! and the one batch that creates, replaces or deletes `inet tcto_tune`
//! with every message named for the error should the kernel refuse it.
//!
//! Kept apart from the read side: this is the only code that changes
//! nf_tables, and it reads only through [`super::read`] (whether the
//! table exists, and the read back of [`Nft::write_table`]).

use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;

use nftnl::expr::Expression;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table};

use super::sets::{set_id, SetMsg, ELEMS_PER_MSG};
use super::sock::send_batch;
use super::{Nft, SystemError, TABLE_CNAME};
use crate::notrack::expr::{RawExpr, NFPROTO_INET};
use crate::notrack::table::set_family;
use crate::notrack::{NotrackTable, TABLE_FAMILY, TABLE_NAME};

/// A data attribute of an expression: `(NFTNL_EXPR_*, bytes)`.
type DataAttr<'a> = (u32, &'a [u8]);

/// One of our expressions, as libnftnl builds it, with the batch-local id
/// of the set a lookup names (0 otherwise).
struct Writable<'a>(&'a RawExpr, u32);

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
            RawExpr::Lookup { sreg, .. } => (
                c"lookup",
                vec![
                    (sys::NFTNL_EXPR_LOOKUP_SREG, *sreg),
                    (sys::NFTNL_EXPR_LOOKUP_SET_ID, self.1),
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

/// The batch-local id of the set `e` looks up, if it is a lookup of one
/// of `sets`; `Some(0)` for the other expressions we write, `None` for one
/// we cannot.
fn writable(e: &RawExpr, sets: &[String]) -> Option<u32> {
    match e {
        RawExpr::Meta { .. }
        | RawExpr::Payload { .. }
        | RawExpr::Bitwise { .. }
        | RawExpr::Cmp { .. }
        | RawExpr::Counter
        | RawExpr::Notrack => Some(0),
        RawExpr::Lookup { set, .. } => sets.iter().position(|s| s == set).map(set_id),
        _ => None,
    }
}

/// A rule of `chain` holding `exprs` with comment `tag`, refused when one
/// expression is not [`writable`] (`nft` prints the rule for the error).
fn rule<'a>(
    chain: &'a Chain<'_>,
    exprs: &[RawExpr],
    tag: Option<&str>,
    sets: &[String],
    nft: impl Fn() -> String,
) -> Result<Rule<'a>, SystemError> {
    let cannot = |why: &str| SystemError::NftContent {
        what: format!("rule `{}` {why}", nft()),
    };
    let mut rule = Rule::new(chain);
    for e in exprs {
        let id = writable(e, sets).ok_or_else(|| cannot("has an expression we cannot write"))?;
        rule.add_expr(&Writable(e, id));
    }
    if let Some(tag) = tag {
        let c = CString::new(tag).map_err(|_| cannot("has a comment holding NUL"))?;
        rule.set_comment(c)
            .map_err(|_| cannot("has a comment too long for the kernel"))?;
    }
    Ok(rule)
}

fn hook_of(name: &str) -> Option<Hook> {
    match name {
        "prerouting" => Some(Hook::PreRouting),
        "output" => Some(Hook::Out),
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
        super::lazy::load()?;
        if let Some(f) = table.and_then(|t| t.foreign.first()) {
            return Err(SystemError::NftContent {
                what: format!(
                    "cannot write back {}: it was not written by tcto-tune",
                    f.what
                ),
            });
        }
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

    pub(super) fn send_batch_for(
        &self,
        table: Option<&NotrackTable>,
        mode: Mode,
    ) -> Result<(), SystemError> {
        super::lazy::load()?;
        let t = Table::new(TABLE_CNAME, ProtoFamily::Inet);
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
        let set_names: Vec<String> =
            table.map_or(vec![], |t| t.sets.iter().map(|s| s.name.clone()).collect());
        if let Some(doc) = table {
            for (i, set) in doc.sets.iter().enumerate() {
                let (ipv4, _) = set_family(&set.name)
                    .filter(|(_, tag)| *tag == set.profile)
                    .ok_or_else(|| SystemError::NftContent {
                        what: format!("set `{}` is not flows4 or flows6 of its tag", set.name),
                    })?;
                let id = set_id(i);
                batch.add(&SetMsg::new(&set.name, id, ipv4, None), MsgType::Add);
                what.push(Msg::AddSet(i));
                for chunk in set.elements.chunks(ELEMS_PER_MSG) {
                    batch.add(&SetMsg::new(&set.name, id, ipv4, Some(chunk)), MsgType::Add);
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
                    let tag = r.profile.as_deref();
                    let rule = rule(chain, &r.to_exprs(), tag, &set_names, || r.to_nft())?;
                    batch.add(&rule, MsgType::Add);
                    what.push(Msg::AddRule(i, j));
                }
                for (j, r) in c.set_rules.iter().enumerate() {
                    let tag = r.profile.as_deref();
                    let rule = rule(chain, &r.to_exprs(), tag, &set_names, || r.to_nft())?;
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
}

/// How the write batch starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mode {
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
        // SAFETY: nftnl hands a buffer of nft_nlmsg_maxsize bytes; a header
        // and a table name fit, and the table object is freed after use.
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
            sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, TABLE_CNAME.as_ptr());
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
