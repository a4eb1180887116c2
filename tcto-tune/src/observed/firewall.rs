//! A firewall ruleset as the netlink backend reads it for `diagnose`:
//! every chain of every table, each rule decoded.

use serde::{Deserialize, Serialize};

use crate::notrack::expr::DecodedRule;

/// A `limit` expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwLimit {
    /// Packets (or bytes) per `per`.
    pub rate: u64,
    /// `second`, `minute`, ...
    pub per: String,
    /// Burst.
    pub burst: u32,
    /// A byte rate.
    pub bytes: bool,
    /// `limit rate over`: matches what exceeds the rate.
    pub over: bool,
}

impl FwLimit {
    /// As nft prints it: `limit rate over 5/second burst 2 packets`.
    pub fn text(&self) -> String {
        let unit = if self.bytes { " bytes" } else { "" };
        let burst = if self.burst > 0 && !self.bytes {
            format!(" burst {} packets", self.burst)
        } else {
            String::new()
        };
        format!(
            "limit rate {}{}{unit}/{}{burst}",
            if self.over { "over " } else { "" },
            self.rate,
            self.per
        )
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwRule {
    /// Handle.
    pub handle: u64,
    /// Decoded matches and verdict.
    pub rule: DecodedRule,
    /// Its counter's packets, if it has a counter.
    pub packets: Option<u64>,
    /// Its rate limit, if any.
    pub limit: Option<FwLimit>,
}

impl FwRule {
    /// The rule as nft prints it (as far as the decoder understands it).
    pub fn text(&self) -> String {
        let mut r = self.rule.clone();
        r.matches.unknown.retain(|u| u != "limit");
        // The counter is printed with its packets below, as nft does.
        if self.packets.is_some() {
            r.matches.counter = false;
        }
        // nft's words for the statements the decoder only names.
        let verdict = r
            .to_string()
            .replace("<connlimit>", "ct count")
            .replace("<quota>", "quota");
        let (head, tail) = match verdict.rfind(' ') {
            Some(i) => (&verdict[..i], &verdict[i + 1..]),
            None => ("", verdict.as_str()),
        };
        let mut parts: Vec<String> = Vec::new();
        if !head.is_empty() {
            parts.push(head.to_owned());
        }
        if let Some(l) = &self.limit {
            parts.push(l.text());
        }
        if let Some(p) = self.packets {
            parts.push(format!("counter packets {p}"));
        }
        if tail != "continue" {
            parts.push(tail.to_owned());
        }
        format!("{} # handle {}", parts.join(" "), self.handle)
    }
}

/// One chain of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwChain {
    /// `ip`, `ip6` or `inet`.
    pub family: String,
    /// Table.
    pub table: String,
    /// Chain.
    pub name: String,
    /// Hook of a base chain (`input`, ...); `None`: a regular chain.
    pub hook: Option<String>,
    /// Priority.
    pub priority: i32,
    /// Policy of a base chain.
    pub policy: Option<String>,
    /// Rules in order.
    pub rules: Vec<FwRule>,
}
