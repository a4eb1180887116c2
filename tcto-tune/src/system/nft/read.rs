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
use super::sets::read_sets;
use super::sock::{nft_type, request};
use super::{Nft, SystemError, TABLE_CNAME};
use crate::notrack::expr::{NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6};
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
        let sets = read_sets(&step)?;
        let mut table = decode_our_table(&chains, &rules)?;
        table.sets = sets;
        Ok(Some(table))
    }

    /// Base filter chains of every other ip/ip6/inet table with hook input,
    /// forward or output, and their rules, decoded.
    pub fn read_filter_chains(&self) -> Result<Vec<FilterChain>, SystemError> {
        // With the family's and the hook's names, so they are decided once.
        let chains: Vec<(RawChain, &str, &str)> = dump_chains("list the chains of every table", 0)?
            .into_iter()
            .filter_map(|c| {
                let family = family_name(c.family)?;
                let hook = match c.hook {
                    Some(h @ 1..=3) => hook_name(h),
                    _ => return None,
                };
                let ours = family == TABLE_FAMILY && c.table == TABLE_NAME;
                (c.kind == "filter" && !ours).then_some((c, family, hook))
            })
            .collect();
        // Rules only of the tables that have such chains (never our own,
        // which may hold thousands).
        let tables: std::collections::BTreeSet<(u8, &str, String)> = chains
            .iter()
            .map(|(c, family, _)| (c.family, *family, c.table.clone()))
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
        for (c, family, hook) in chains {
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
        if c.hook.map(hook_name) != Some(want)
            || c.kind != "filter"
            || c.policy != libc::NF_ACCEPT as u32
        {
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
