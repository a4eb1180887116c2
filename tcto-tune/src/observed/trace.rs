//! `--trace`: where the kernel dropped packets, from the `skb:kfree_skb`
//! tracepoint (and `tcp:tcp_retransmit_synack` for the return path).
//!
//! Pure parts only: the drop-reason names read from the event's `format`
//! file (the enum's numbers change between kernels, so they are never
//! hard-coded), the kernel-side filter built from them, the parser of the
//! trace lines and the aggregation by reason and kernel location. The
//! tracefs instance itself lives in [`crate::system::TraceSession`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Reason number -> name, from `__print_symbolic(REC->reason, { 2,
/// "NOT_SPECIFIED" }, ...)` in the event's `format`.
pub fn parse_reason_names(format: &str) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    let Some(start) = format.find("__print_symbolic(REC->reason") else {
        return out;
    };
    let mut rest = &format[start..];
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let item = &rest[..close];
        rest = &rest[close + 1..];
        let Some((num, name)) = item.split_once(',') else {
            continue;
        };
        let name = name.trim().trim_matches('"');
        if let Ok(n) = num.trim().parse::<u32>() {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(n, name.to_owned());
            }
        }
    }
    out
}

/// The kernel-side filter: IPv4/IPv6 packets whose reason is a real drop
/// (not `NOT_SPECIFIED`, the generic free). `None` when the format names
/// no `NOT_SPECIFIED` (then only the protocol is filtered).
pub fn kfree_skb_filter(reasons: &BTreeMap<u32, String>) -> String {
    let proto = "(protocol == 2048 || protocol == 34525)";
    match reasons.iter().find(|(_, n)| *n == "NOT_SPECIFIED") {
        Some((n, _)) => format!("reason != {n} && {proto}"),
        None => proto.to_owned(),
    }
}

/// One event of the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// `kfree_skb`: a packet dropped.
    Drop {
        /// Reason name (`NETFILTER_DROP`).
        reason: String,
        /// Kernel function that dropped it (`nft_do_chain`).
        location: String,
    },
    /// `tcp_retransmit_synack`: a SYN-ACK sent again.
    SynackRetransmit {
        /// The listener's `addr:port` as the event prints it.
        local: String,
    },
}

/// Parse one line of an instance's `trace` file.
pub fn parse_trace_line(line: &str) -> Option<TraceEvent> {
    if let Some(i) = line.find(" kfree_skb: ") {
        let body = &line[i..];
        let location = body
            .split_whitespace()
            .find_map(|w| w.strip_prefix("location="))?;
        let func = location.split(['+', '/']).next()?.to_owned();
        let reason = body.rsplit_once("reason: ")?.1.trim().to_owned();
        if reason.is_empty() || func.is_empty() {
            return None;
        }
        return Some(TraceEvent::Drop {
            reason,
            location: func,
        });
    }
    if let Some(i) = line.find(" tcp_retransmit_synack: ") {
        let body = &line[i..];
        let field = |k: &str| {
            body.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_owned)
        };
        let v4 = field("saddr=")?;
        let sport = field("sport=")?;
        let local = if field("family=").as_deref() == Some("AF_INET6") {
            format!("[{}]:{sport}", field("saddrv6=")?)
        } else {
            format!("{v4}:{sport}")
        };
        return Some(TraceEvent::SynackRetransmit { local });
    }
    None
}

/// Drops of one reason at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceDrop {
    /// Reason name.
    pub reason: String,
    /// Kernel function.
    pub location: String,
    /// Events.
    pub count: u64,
    /// The cause code it supports, when it maps to one.
    pub supports: Option<String>,
}

/// What `--trace` saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReport {
    /// Milliseconds traced.
    pub duration_ms: u64,
    /// Drops by reason and location, most first.
    pub drops: Vec<TraceDrop>,
    /// SYN-ACK retransmits by listener.
    pub synack_retransmits: BTreeMap<String, u64>,
    /// Events the kernel lost (the buffer overflowed).
    pub lost_events: u64,
    /// Whether the trace ended early (SIGINT/SIGTERM).
    pub interrupted: bool,
}

/// The cause a drop reason supports.
pub fn supports(reason: &str, location: &str) -> Option<&'static str> {
    match reason {
        // A rule's drop; conntrack's own drop (a full table) is at
        // nf_hook_slow, and is folded in with conntrack's counters.
        "NETFILTER_DROP" if location.starts_with("nft_") => Some("firewall-drop"),
        "IP_RPFILTER" => Some("rp-filter"),
        "CPU_BACKLOG" => Some("softnet-drops"),
        "TCP_LISTEN_OVERFLOW" => Some("accept-queue-full"),
        _ => None,
    }
}

/// Aggregate the lines of a `trace` file.
pub fn aggregate<'a>(lines: impl IntoIterator<Item = &'a str>, duration_ms: u64) -> TraceReport {
    let mut drops: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut r = TraceReport {
        duration_ms,
        ..Default::default()
    };
    for l in lines {
        if l.contains("LOST") && l.contains("EVENTS") {
            r.lost_events += l
                .split_whitespace()
                .find_map(|w| w.parse::<u64>().ok())
                .unwrap_or(0);
        }
        match parse_trace_line(l) {
            Some(TraceEvent::Drop { reason, location }) => {
                *drops.entry((reason, location)).or_default() += 1;
            }
            Some(TraceEvent::SynackRetransmit { local }) => {
                *r.synack_retransmits.entry(local).or_default() += 1;
            }
            None => {}
        }
    }
    r.drops = drops
        .into_iter()
        .map(|((reason, location), count)| TraceDrop {
            supports: supports(&reason, &location).map(str::to_owned),
            reason,
            location,
            count,
        })
        .collect();
    r.drops
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: &str = r#"print fmt: "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s", REC->skbaddr, REC->rx_sk, REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { 12, "NETFILTER_DROP" }, { 16, "IP_RPFILTER" }, { 999, "bad name!" })"#;

    #[test]
    fn reason_names_come_from_the_format_file() {
        let r = parse_reason_names(FORMAT);
        assert_eq!(r.get(&12).map(String::as_str), Some("NETFILTER_DROP"));
        assert_eq!(r.get(&16).map(String::as_str), Some("IP_RPFILTER"));
        assert_eq!(r.get(&999), None, "names are identifiers only");
        assert_eq!(r.len(), 4);
        assert_eq!(
            kfree_skb_filter(&r),
            "reason != 2 && (protocol == 2048 || protocol == 34525)"
        );
        // Another kernel, other numbers: still by name.
        let other = FORMAT.replace("{ 2, \"NOT_SPECIFIED\" }", "{ 1, \"NOT_SPECIFIED\" }");
        assert!(kfree_skb_filter(&parse_reason_names(&other)).starts_with("reason != 1 &&"));
        assert!(parse_reason_names("no symbols").is_empty());
    }

    #[test]
    fn trace_lines_become_drops_by_reason_and_place() {
        let lines = [
            "          <idle>-0       [001] ..s1.  1234.567890: kfree_skb: skbaddr=00000000a1b2c3d4 rx_sk=0000000000000000 protocol=2048 location=nft_do_chain+0x4a8/0x5e0 [nf_tables] reason: NETFILTER_DROP",
            "          <idle>-0       [001] ..s1.  1234.567891: kfree_skb: skbaddr=00000000a1b2c3d5 rx_sk=0000000000000000 protocol=2048 location=nft_do_chain+0x4a8/0x5e0 [nf_tables] reason: NETFILTER_DROP",
            "   tcto-tune-77   [000] ..s1.  1234.6: kfree_skb: skbaddr=0000000011 rx_sk=0000000000000000 protocol=34525 location=ip_rcv_finish_core+0x1/0x2 reason: IP_RPFILTER",
            "  <idle>-0 [000] ..s1. 1235.0: tcp_retransmit_synack: family=AF_INET sport=8080 dport=40001 saddr=10.0.1.1 daddr=10.0.1.2 saddrv6=::ffff:10.0.1.1 daddrv6=::ffff:10.0.1.2",
            "CPU:1 [LOST 7 EVENTS]",
            "# tracer: nop",
            "garbage kfree_skb: location= reason:",
        ];
        let r = aggregate(lines, 1000);
        assert_eq!(r.drops[0].reason, "NETFILTER_DROP");
        assert_eq!(r.drops[0].location, "nft_do_chain");
        assert_eq!(r.drops[0].count, 2);
        assert_eq!(r.drops[0].supports.as_deref(), Some("firewall-drop"));
        assert_eq!(r.drops[1].supports.as_deref(), Some("rp-filter"));
        assert_eq!(r.synack_retransmits.get("10.0.1.1:8080"), Some(&1));
        assert_eq!(r.lost_events, 7);
    }
}
