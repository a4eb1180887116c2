//! Reading nf_tables back: our `inet tcto_tune` table, decoded into a
//! [`NotrackTable`] (refusing content we did not write), and the other
//! tables' filter chains, decoded into [`FilterChain`]s.
//!
//! Kept apart from the dumps ([`super::dump`]) because this is where the
//! kernel's chains and rules are given a meaning, and from the write side
//! ([`super::write`]) which reads back through [`Nft::read_table`].

use std::collections::BTreeMap;
use std::ffi::CString;

use nftnl::nftnl_sys::{self as sys, libc};

use super::dump::{dump_chains, dump_rules, RawChain, RawRule};
use super::sets::{read_ct_set, read_sets};
use super::sock::{nft_type, request};
use super::{Nft, SystemError, TABLE_CNAME};
use crate::notrack::expr::{CtElement, DecodedRule};
use crate::notrack::expr::{NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6};
use crate::notrack::table::Foreign;
use crate::notrack::table::SetRule;
use crate::notrack::{
    expr, FilterChain, NotrackChain, NotrackRule, NotrackTable, TABLE_FAMILY, TABLE_NAME,
};

pub(super) fn hook_name(hook: u32) -> &'static str {
    match hook {
        0 => "prerouting",
        1 => "input",
        2 => "forward",
        3 => "output",
        4 => "postrouting",
        _ => "other",
    }
}

pub(super) fn family_name(f: u8) -> Option<&'static str> {
    match f {
        NFPROTO_INET => Some("inet"),
        NFPROTO_IPV4 => Some("ip"),
        NFPROTO_IPV6 => Some("ip6"),
        _ => None,
    }
}

impl Nft {
    pub(super) fn table_exists(&self) -> Result<bool, SystemError> {
        super::lazy::load()?;
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
                    sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, TABLE_CNAME.as_ptr());
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

    /// The `inet tcto_tune` table, decoded; `None` when absent.
    pub fn read_table(&self) -> Result<Option<NotrackTable>, SystemError> {
        super::lazy::load()?;
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
            Some(TABLE_CNAME),
        )?;
        let (sets, foreign_sets) = read_sets(&step)?;
        let mut table = decode_our_table(&chains, &rules);
        table.sets = sets;
        table.foreign.extend(foreign_sets);
        Ok(Some(table))
    }

    /// The chains of every other ip/ip6/inet table that has a base chain
    /// of type filter or route (any hook), with their rules, decoded:
    /// those base chains, and every regular chain of those tables, which
    /// the base chains may reach by `jump` or `goto`.
    pub fn read_filter_chains(&self) -> Result<Vec<FilterChain>, SystemError> {
        super::lazy::load()?;
        let all: Vec<(RawChain, &str)> = dump_chains("list the chains of every table", 0)?
            .into_iter()
            .filter_map(|c| {
                let family = family_name(c.family)?;
                let ours = family == TABLE_FAMILY && c.table == TABLE_NAME;
                (!ours).then_some((c, family))
            })
            .collect();
        let is_walked_base = |c: &RawChain| {
            matches!(c.kind.as_str(), "filter" | "route") && matches!(c.hook, Some(0..=4))
        };
        // Rules only of the tables that have such base chains (never our
        // own, which may hold thousands).
        let tables: std::collections::BTreeSet<(u8, &str, String)> = all
            .iter()
            .filter(|(c, _)| is_walked_base(c))
            .map(|(c, family)| (c.family, *family, c.table.clone()))
            .collect();
        let chains: Vec<(RawChain, &str, &str)> = all
            .into_iter()
            .filter(|(c, _)| {
                (c.hook.is_none() || is_walked_base(c))
                    && tables
                        .iter()
                        .any(|(f, _, t)| *f == c.family && *t == c.table)
            })
            .map(|(c, family)| {
                let hook = c.hook.map_or("", hook_name);
                (c, family, hook)
            })
            .collect();
        let mut by_chain: BTreeMap<(u8, String, String), Vec<RawRule>> = BTreeMap::new();
        for (nfproto, family, table) in tables {
            let name = CString::new(table.as_str()).map_err(|_| SystemError::NftContent {
                what: "a table name holds NUL".into(),
            })?;
            let step = format!("list the rules of table {family} {table}");
            for r in dump_rules(&step, nfproto, Some(&name))? {
                by_chain
                    .entry((r.family, r.table.clone(), r.chain.clone()))
                    .or_default()
                    .push(r);
            }
        }
        let mut out = Vec::new();
        // The `ct state` sets and verdict maps the rules look up, read
        // once per table and set.
        let mut ct_sets: BTreeMap<(u8, String, String), Vec<CtElement>> = BTreeMap::new();
        for (c, family, hook) in chains {
            let mut rules: Vec<DecodedRule> = by_chain
                .remove(&(c.family, c.table.clone(), c.name.clone()))
                .unwrap_or_default()
                .iter()
                .map(|r| expr::decode(c.family, &r.exprs))
                .collect();
            for r in &mut rules {
                let Some(set) = r.matches.ct_state_set.clone() else {
                    continue;
                };
                let key = (c.family, c.table.clone(), set.clone());
                if !ct_sets.contains_key(&key) {
                    let table =
                        CString::new(c.table.as_str()).map_err(|_| SystemError::NftContent {
                            what: "a table name holds NUL".into(),
                        })?;
                    // By state bit: the kernel's order is its own.
                    let mut raw = read_ct_set(c.family, &table, &set)?;
                    raw.sort_by_key(|(bits, _)| *bits);
                    let els = raw
                        .into_iter()
                        .map(|(bits, v)| {
                            (bits, v.map(|(code, chain)| expr::verdict_of(code, chain)))
                        })
                        .collect();
                    ct_sets.insert(key.clone(), els);
                }
                r.matches.ct_state_elements = ct_sets.get(&key).cloned();
            }
            out.push(FilterChain {
                family: family.into(),
                table: c.table,
                name: c.name,
                hook: hook.into(),
                kind: if hook.is_empty() {
                    String::new()
                } else {
                    c.kind
                },
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

/// `nft` names a rule's text in the rule's own family.
fn removal(chain: &str, handle: u64) -> String {
    format!("nft delete rule {TABLE_FAMILY} {TABLE_NAME} {chain} handle {handle}")
}

/// Our table's chains and rules, decoded; whatever tcto-tune did not
/// write is listed in `foreign` (named, with the command that removes it)
/// instead of failing the read, so plan and rollback can say what it is.
fn decode_our_table(chains: &[RawChain], rules: &[RawRule]) -> NotrackTable {
    let mut foreign = Vec::new();
    let mut out = Vec::new();
    for want in ["prerouting", "output"] {
        let Some(c) = chains.iter().find(|c| c.name == want) else {
            continue;
        };
        if c.hook.map(hook_name) != Some(want)
            || c.kind != "filter"
            || c.policy != libc::NF_ACCEPT as u32
        {
            foreign.push(Foreign {
                what: format!(
                    "chain `{want}` is not a filter chain on hook {want} with policy accept"
                ),
                remove: format!("nft delete table {TABLE_FAMILY} {TABLE_NAME}"),
            });
        }
        let mut decoded = Vec::new();
        let mut set_rules = Vec::new();
        for r in rules.iter().filter(|r| r.chain == want) {
            let comment = r.comment.as_deref();
            if let Some(rule) = NotrackRule::from_exprs(&r.exprs, comment) {
                decoded.push(rule);
            } else if let Some(rule) = SetRule::from_exprs(&r.exprs, comment) {
                set_rules.push(rule);
            } else {
                let comment = r
                    .comment
                    .as_ref()
                    .map_or(String::new(), |c| format!(" comment {c:?}"));
                foreign.push(Foreign {
                    what: format!(
                        "rule `{}{comment}` in chain {want} (handle {})",
                        expr::decode(r.family, &r.exprs),
                        r.handle
                    ),
                    remove: removal(want, r.handle),
                });
            }
        }
        out.push(NotrackChain {
            name: want.into(),
            priority: c.priority,
            rules: decoded,
            set_rules,
        });
    }
    for c in chains
        .iter()
        .filter(|c| c.name != "prerouting" && c.name != "output")
    {
        let n = rules.iter().filter(|r| r.chain == c.name).count();
        foreign.push(Foreign {
            what: format!("chain `{}` ({n} rule(s))", c.name),
            remove: format!(
                "nft flush chain {TABLE_FAMILY} {TABLE_NAME} {0}; nft delete chain {TABLE_FAMILY} {TABLE_NAME} {0}",
                c.name
            ),
        });
    }
    NotrackTable {
        sets: vec![],
        chains: out,
        foreign,
    }
}
