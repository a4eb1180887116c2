//! Every chain and rule of every table, of every family, for `diagnose`'s
//! firewall-drop cause: the same dumps as the stateful-filter check, with
//! the handles, counters and limits a drop report needs.

use super::dump::{dump_chains, dump_rules};
use super::read::{family_name, hook_name};
use super::{Nft, SystemError};
use crate::notrack::expr;
use crate::observed::{FwChain, FwLimit, FwRule};

impl Nft {
    /// All chains with their rules, in the kernel's order.
    pub fn read_ruleset(&self) -> Result<Vec<FwChain>, SystemError> {
        super::lazy::load()?;
        let chains = dump_chains("list the chains of every table", 0)?;
        let mut rules = dump_rules("list the rules of every table", 0, None)?;
        let mut out = Vec::new();
        for c in chains {
            let Some(family) = family_name(c.family) else {
                continue;
            };
            let mine: Vec<FwRule> = rules
                .iter_mut()
                .filter(|r| r.family == c.family && r.table == c.table && r.chain == c.name)
                .map(|r| FwRule {
                    handle: r.handle,
                    rule: expr::decode(c.family, &std::mem::take(&mut r.exprs)),
                    packets: r.packets,
                    limit: r.limit.map(|l| FwLimit {
                        rate: l.rate,
                        per: match l.unit_s {
                            1 => "second",
                            60 => "minute",
                            3600 => "hour",
                            86400 => "day",
                            604800 => "week",
                            _ => "period",
                        }
                        .into(),
                        burst: l.burst,
                        bytes: l.bytes,
                        over: l.over,
                    }),
                })
                .collect();
            out.push(FwChain {
                family: family.into(),
                table: c.table,
                name: c.name,
                hook: c.hook.map(|h| hook_name(h).to_owned()),
                priority: c.priority,
                policy: c.hook.map(|_| {
                    if c.policy == nftnl::nftnl_sys::libc::NF_DROP as u32 {
                        "drop".into()
                    } else {
                        "accept".into()
                    }
                }),
                rules: mine,
            });
        }
        Ok(out)
    }
}

/// Tables of legacy (x_tables) iptables and ip6tables in this namespace:
/// their rules are not nftables rules and are not read here.
pub(super) fn legacy_tables() -> Vec<String> {
    let mut out = Vec::new();
    for (file, tool) in [
        ("/proc/net/ip_tables_names", "iptables"),
        ("/proc/net/ip6_tables_names", "ip6tables"),
    ] {
        if let Ok(t) = std::fs::read_to_string(file) {
            out.extend(
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("{tool} {}", l.trim())),
            );
        }
    }
    out
}
