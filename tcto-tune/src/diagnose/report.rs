//! The evidence sections of a diagnosis, each built from the observation
//! (pure): conntrack with who fills it, listeners, sysctl advice,
//! interfaces, the kernel log, the firewall walk, and the `checked:` list.
//! Kept apart from [`super::analyze`], which only puts them together and
//! ranks, and from the causes, which judge them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;
use crate::plan::plan;
use crate::procfs::NetDevStats;
use crate::state::SystemState;
use crate::words::{PlanCommand, Words};

pub(super) fn kernel_log_report(log: &KernelLog, ct: &ConntrackReport, ms: u64) -> KernelLogReport {
    let recent_bound_s = KMSG_RECENT_S + ms.div_ceil(1000);
    // Records of an older observation carry no timestamp list: their
    // last few records stand in.
    let times: Vec<u64> = if log.table_full_usec.is_empty() {
        log.last_table_full.iter().map(|r| r.usec).collect()
    } else {
        log.table_full_usec.clone()
    };
    let cutoff = log.now_usec.saturating_sub(recent_bound_s * 1_000_000);
    let recent = times.iter().filter(|u| **u >= cutoff).count() as u64;
    let recent_lines = recent.min(log.table_full);
    let counters_agree = ct
        .stats
        .iter()
        .any(|s| CONNTRACK_DROP_COLUMNS.contains(&s.name.as_str()) && s.total > 0)
        || ct.use_pct.is_some_and(|p| p >= 95.0);
    KernelLogReport {
        readable: log.readable,
        error: log.error.clone(),
        table_full_lines: log.table_full,
        table_full_elsewhere: log.table_full_elsewhere,
        last_age_s: log
            .last_table_full
            .last()
            .map(|r| log.now_usec.saturating_sub(r.usec) / 1_000_000),
        last: log
            .last_table_full
            .iter()
            .map(|r| format!("[{:.1}s] {}", r.usec as f64 / 1e6, r.message))
            .collect(),
        recent_bound_s,
        counters_agree,
        recent_lines,
        history_lines: log.table_full - recent_lines,
    }
}

/// The plan of `trusted-notrack` (in the caller's words) for the largest group of
/// TCP flows to a local listening port, with the backend subnet taken from
/// the local address's own interface (its connected subnet).
pub(super) fn notrack_command(obs: &Observation, w: &dyn Words) -> Option<String> {
    let g = obs.conntrack_groups.as_ref()?;
    let top =
        g.groups.iter().find(|g| {
            g.protocol == "tcp"
                && g.share_pct >= NOTRACK_SHARE_PCT
                && obs.state.listeners.iter().any(|l| {
                    l.port == g.port && (l.addr == g.destination || l.addr.is_unspecified())
                })
        })?;
    let backend = obs.local_subnets.iter().find_map(|s| {
        let (a, p) = s.split_once('/')?;
        (a.parse::<IpAddr>().ok()? == top.destination)
            .then(|| network(top.destination, p.parse().ok()?))
    })??;
    Some(super::causes::plan(
        w,
        PlanCommand::new("trusted-notrack")
            .set("frontend", &top.source)
            .set("backend", backend)
            .set("port", top.port),
    ))
}

/// `10.0.2.1`, 24 -> `10.0.2.0/24`.
pub(super) fn network(a: IpAddr, prefix: u8) -> Option<String> {
    match a {
        IpAddr::V4(v) if prefix <= 32 => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            Some(format!(
                "{}/{prefix}",
                std::net::Ipv4Addr::from(u32::from(v) & mask)
            ))
        }
        IpAddr::V6(v) if prefix <= 128 => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            Some(format!(
                "{}/{prefix}",
                std::net::Ipv6Addr::from(u128::from(v) & mask)
            ))
        }
        _ => None,
    }
}

pub(super) fn firewall_report(obs: &Observation, ports: &[u16]) -> FirewallReport {
    let watched: BTreeSet<u16> = if ports.is_empty() {
        obs.state.listeners.iter().map(|l| l.port).collect()
    } else {
        ports.iter().copied().collect()
    };
    FirewallReport {
        read: obs.ruleset_error.is_none(),
        error: obs.ruleset_error.clone(),
        chains: obs.ruleset.len(),
        rules: obs.ruleset.iter().map(|c| c.rules.len()).sum(),
        // Without a port to watch, any drop would do: nothing to say.
        drops: if watched.is_empty() {
            vec![]
        } else {
            let mut d = find_drops(&obs.ruleset_before, &obs.ruleset, &watched);
            d.sort_by_key(|x| std::cmp::Reverse(x.delta.unwrap_or(0)));
            d
        },
        legacy_tables: obs.legacy_tables.clone(),
    }
}

pub(super) fn conntrack_report(
    before: &CounterSample,
    after: Option<&CounterSample>,
    ms: u64,
) -> ConntrackReport {
    let last = after.unwrap_or(before);
    let count = last
        .conntrack_count
        .or(last.conntrack.as_ref().and_then(|c| c.entries));
    let max = last.conntrack_max;
    let use_pct = match (count, max) {
        (Some(c), Some(m)) if m > 0 => Some((c as f64 * 1000.0 / m as f64).round() / 10.0),
        _ => None,
    };
    let stats = before
        .conntrack
        .as_ref()
        .map(|b| {
            b.columns
                .iter()
                .map(|(name, v)| {
                    let a = after
                        .and_then(|a| a.conntrack.as_ref())
                        .and_then(|c| c.columns.get(name).copied());
                    CounterDelta::new(name, *v, a, ms)
                })
                .collect()
        })
        .unwrap_or_default();
    ConntrackReport {
        loaded: before.conntrack.is_some(),
        count,
        max,
        use_pct,
        stats,
        groups: None,
        notrack_command: None,
    }
}

pub(super) fn listener_reports(
    obs: &Observation,
    ports: &[u16],
    somaxconn: Option<i64>,
) -> Vec<ListenerReport> {
    let mut out: Vec<ListenerReport> = obs
        .state
        .listeners
        .iter()
        .filter(|l| wanted(ports, l.port))
        .map(|l| {
            let earlier = obs
                .listeners_before
                .iter()
                .find(|b| b.inode == l.inode && b.port == l.port)
                .map_or(0, |b| b.queue);
            let peak_queue = l.queue.max(earlier);
            let full_pct = if l.backlog == 0 {
                if peak_queue > 0 {
                    100.0
                } else {
                    0.0
                }
            } else {
                (peak_queue as f64 * 1000.0 / l.backlog as f64).round() / 10.0
            };
            let limited_by = match somaxconn {
                Some(s) if i64::from(l.backlog) >= s => LimitedBy::Somaxconn,
                Some(_) => LimitedBy::App,
                None => LimitedBy::Unknown,
            };
            ListenerReport {
                addr: l.addr,
                port: l.port,
                queue: l.queue,
                peak_queue,
                backlog: l.backlog,
                full_pct,
                limited_by,
                process: obs.owners.get(&l.inode).cloned(),
                inode: l.inode,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.full_pct
            .total_cmp(&a.full_pct)
            .then((a.port, a.addr).cmp(&(b.port, b.addr)))
    });
    out
}

pub(super) fn sysctl_advice(state: &SystemState) -> Vec<SysctlAdvice> {
    let profile = advice_profile();
    let p = plan(&profile, state);
    let word = |i: crate::Intent| match i {
        crate::Intent::Exact => "",
        crate::Intent::AtLeast => ">= ",
        crate::Intent::AtMost => "<= ",
    };
    let mut out = Vec::new();
    for c in &p.changes {
        out.push(SysctlAdvice {
            key: c.key(),
            value: c.current.clone(),
            recommended: format!("{}{}", word(c.intent), c.desired),
            ok: Some(false),
            reason: c.reason.clone(),
        });
    }
    for u in &p.unchanged {
        out.push(SysctlAdvice {
            key: u.key.clone(),
            value: Some(u.current.clone()),
            recommended: format!("{}{}", word(u.intent), u.desired),
            ok: Some(true),
            reason: u.reason.clone(),
        });
    }
    let targets = profile.sysctl_targets();
    for s in &p.skipped {
        let intent = targets
            .iter()
            .find(|t| t.key.as_str() == s.key)
            .map_or(crate::Intent::Exact, |t| t.desired.intent);
        out.push(SysctlAdvice {
            key: s.key.clone(),
            value: s.current.clone(),
            recommended: format!("{}{}", word(intent), s.desired),
            ok: None,
            reason: Some(s.why.clone()),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

pub(super) fn interface_reports(
    before: &CounterSample,
    after: Option<&CounterSample>,
    ms: u64,
) -> Vec<InterfaceReport> {
    type Pick = fn(&NetDevStats) -> u64;
    let fields: [(&str, Pick); 6] = [
        ("rx_dropped", |d| d.rx_dropped),
        ("rx_fifo", |d| d.rx_fifo),
        ("rx_errors", |d| d.rx_errors),
        ("rx_frame", |d| d.rx_frame),
        ("tx_dropped", |d| d.tx_dropped),
        ("tx_errors", |d| d.tx_errors),
    ];
    before
        .interfaces
        .iter()
        .map(|b| {
            let a = after.and_then(|a| a.interfaces.iter().find(|i| i.iface == b.iface));
            InterfaceReport {
                iface: b.iface.clone(),
                counters: fields
                    .iter()
                    .map(|(name, pick)| CounterDelta::new(name, pick(b), a.map(pick), ms))
                    .collect(),
            }
        })
        .collect()
}

/// What the diagnosis looked at, one line each, as `checked:` lists it.
pub(super) fn checked(d: &Diagnosis, all_listeners: usize) -> Vec<String> {
    let mut out = vec![conntrack_checked(&d.conntrack)];
    let names: Vec<&str> = d.tcp_ext.iter().map(|t| t.name.as_str()).collect();
    out.push(format!("TcpExt counters: {}", names.join(", ")));
    out.push(listeners_checked(d, all_listeners));
    out.push(format!(
        "{} sysctls against the `{ADVICE_PROFILE}` profile",
        d.sysctls.len()
    ));
    out.push(format!(
        "drop and error counters of {} interface(s) from /proc/net/dev",
        d.interfaces.len()
    ));
    out.push(format!(
        "offload toggles (tso, gso, gro, lro) of {} interface(s) through SIOCETHTOOL{}",
        d.offloads.iter().filter(|o| o.error.is_none()).count(),
        match d.offloads.iter().filter(|o| o.error.is_some()).count() {
            0 => String::new(),
            n => format!(", {n} unreadable"),
        }
    ));
    firewall_checked(&d.firewall, &mut out);
    out.push(if d.kernel_log.readable {
        format!(
            "kernel log: {} \"nf_conntrack: table full\" line(s); evidence only when younger than {} s and the conntrack counters agree",
            d.kernel_log.table_full_lines, d.kernel_log.recent_bound_s
        )
    } else {
        format!(
            "kernel log: not readable ({})",
            d.kernel_log.error.as_deref().unwrap_or("unknown")
        )
    });
    out
}

fn conntrack_checked(c: &ConntrackReport) -> String {
    if c.loaded {
        format!(
            "conntrack table: {} of {} entries; {} stat columns from /proc/net/stat/nf_conntrack",
            c.count.map_or("?".into(), |n| n.to_string()),
            c.max.map_or("?".into(), |n| n.to_string()),
            c.stats.len()
        )
    } else {
        "conntrack: nf_conntrack is not loaded here (nothing is tracked)".into()
    }
}

fn listeners_checked(d: &Diagnosis, all_listeners: usize) -> String {
    if d.ports.is_empty() {
        format!("{all_listeners} listening sockets (accept queue against backlog)")
    } else {
        format!(
            "{} listening sockets on port(s) {} (of {all_listeners})",
            d.listeners.len(),
            d.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The ruleset read (or why not), and the legacy tables not read.
fn firewall_checked(fw: &FirewallReport, out: &mut Vec<String>) {
    out.push(match &fw.error {
        None => format!(
            "nftables ruleset through netlink: {} chain(s), {} rule(s) of every table and family; {} drop(s) a new connection to the watched port(s) can meet",
            fw.chains,
            fw.rules,
            fw.drops.len()
        ),
        Some(e) => format!("nftables ruleset: not readable ({e})"),
    });
    if !fw.legacy_tables.is_empty() {
        out.push(format!(
            "legacy iptables tables not read: {} (`iptables-legacy -L -n -v` lists them)",
            fw.legacy_tables.join(", ")
        ));
    }
}
