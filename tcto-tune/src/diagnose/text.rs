//! The diagnosis as text: causes with their fix first, the evidence after.
//! Plain (no colour), so what the user reads is what a log or ticket shows.

use std::fmt::{self, Write as _};

use super::{CounterDelta, Diagnosis, LimitedBy, ListenerReport};
use crate::escape::escape_control as esc;
use crate::words::{Action, Words, NEUTRAL};

/// Listeners shown in text when no port was named (JSON has them all);
/// also how many owners the CLI looks up for text.
pub const TEXT_LISTENER_ROWS: usize = 20;

fn counter(c: &CounterDelta) -> String {
    match c.delta {
        Some(d) => format!("{} {} (+{d})", c.name, c.total),
        None => format!("{} {}", c.name, c.total),
    }
}

/// One row of the listeners' table.
fn listener_row(l: &ListenerReport) -> [String; 6] {
    [
        std::net::SocketAddr::new(l.addr, l.port).to_string(),
        l.peak_queue.to_string(),
        l.backlog.to_string(),
        format!("{}%", l.full_pct),
        match l.limited_by {
            LimitedBy::App => "app",
            LimitedBy::Somaxconn => "somaxconn",
            LimitedBy::Unknown => "?",
        }
        .into(),
        l.process
            .as_ref()
            .map_or("-".into(), |p| format!("{} ({})", esc(&p.name), p.pid)),
    ]
}

/// The report as text, with the next steps it names in the caller's words
/// ([`Diagnosis::text`]).
pub struct DiagnosisText<'a> {
    diagnosis: &'a Diagnosis,
    words: &'a dyn Words,
}

impl Diagnosis {
    /// The report as text, naming what to run next in `words` (the
    /// `Display` of a diagnosis uses the neutral words).
    pub fn text<'a>(&'a self, words: &'a dyn Words) -> DiagnosisText<'a> {
        DiagnosisText {
            diagnosis: self,
            words,
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text(&NEUTRAL).fmt(f)
    }
}

impl fmt::Display for DiagnosisText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnosis;
        d.fmt_causes(f)?;
        d.fmt_conntrack(f)?;
        let tcp: Vec<String> = d.tcp_ext.iter().map(counter).collect();
        writeln!(f, "TcpExt: {}", tcp.join(", "))?;
        d.fmt_path(f)?;
        d.fmt_listeners(f, self.words)?;
        d.fmt_sysctls(f)?;
        d.fmt_interfaces(f)?;
        d.fmt_kernel_log(f)?;
        d.fmt_trace(f)?;
        writeln!(f, "checked:")?;
        for c in &d.checked {
            writeln!(f, "  - {}", esc(c))?;
        }
        Ok(())
    }
}

impl Diagnosis {
    /// The headline and each cause with its evidence and fix.
    fn fmt_causes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sampled = if self.interval_ms == 0 {
            "one sample, no rates".to_owned()
        } else {
            format!("sampled {:.1} s apart", self.interval_ms as f64 / 1000.0)
        };
        if self.causes.is_empty() {
            writeln!(f, "No likely cause of connect timeouts found ({sampled}).")?;
        } else {
            writeln!(
                f,
                "{} likely cause(s) of connect timeouts, most likely first ({sampled}):",
                self.causes.len()
            )?;
        }
        for c in &self.causes {
            writeln!(
                f,
                "\n{}. {} [{}, {}]",
                c.rank,
                esc(&c.title),
                c.code,
                c.status
            )?;
            for e in &c.evidence {
                writeln!(f, "   - {}", esc(e))?;
            }
            if let Some(p) = &c.plan {
                writeln!(f, "   fix: {}", esc(p))?;
            }
            if let Some(p) = &c.host_plan {
                writeln!(
                    f,
                    "   fix on the host (not from this namespace): {}",
                    esc(p)
                )?;
            }
            for n in &c.notes {
                writeln!(f, "   note: {}", esc(n))?;
            }
        }
        Ok(())
    }

    /// The conntrack table: fill, stats and who fills it.
    fn fmt_conntrack(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nconntrack:")?;
        let ct = &self.conntrack;
        if ct.loaded {
            let n = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
            let pct = ct.use_pct.map_or(String::new(), |p| format!(" ({p}%)"));
            writeln!(f, "  {} of {} entries{pct}", n(ct.count), n(ct.max))?;
            let stats: Vec<String> = ct.stats.iter().map(counter).collect();
            writeln!(f, "  stats: {}", stats.join(", "))?;
            if let Some(g) = &ct.groups {
                match &g.error {
                    Some(e) => writeln!(f, "  who fills it: not read ({})", esc(e))?,
                    None => {
                        writeln!(
                            f,
                            "  who fills it ({} entries dumped, {} group(s)):",
                            g.entries, g.groups_total
                        )?;
                        for x in &g.groups {
                            writeln!(
                                f,
                                "    {:>5.1}% {:>7} {} {} -> {}:{} {} ({} idle >= {} s)",
                                x.share_pct,
                                x.count,
                                x.protocol,
                                x.source,
                                x.destination,
                                x.port,
                                x.state.as_deref().unwrap_or("-"),
                                x.idle_established,
                                super::IDLE_S
                            )?;
                        }
                    }
                }
            }
        } else {
            writeln!(f, "  nf_conntrack is not loaded here")?;
        }
        Ok(())
    }

    /// The listeners' queues, fullest first, and the named ports no one listens on.
    fn fmt_listeners(&self, f: &mut fmt::Formatter<'_>, words: &dyn Words) -> fmt::Result {
        writeln!(f, "listeners:")?;
        if self.listeners.is_empty() {
            writeln!(f, "  (none)")?;
        } else {
            let shown = if self.ports.is_empty() {
                TEXT_LISTENER_ROWS
            } else {
                usize::MAX
            };
            let mut rows = vec![[
                "ADDRESS".to_owned(),
                "QUEUE".into(),
                "BACKLOG".into(),
                "FULL".into(),
                "LIMIT".into(),
                "PROCESS".into(),
            ]];
            rows.extend(self.listeners.iter().take(shown).map(listener_row));
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in &rows {
                let mut line = String::from(" ");
                for (i, cell) in r.iter().enumerate() {
                    let _ = write!(line, " {cell:<w$}", w = widths[i]);
                }
                writeln!(f, "{}", line.trim_end())?;
            }
            if self.listeners.len() > shown {
                writeln!(
                    f,
                    "  ... {} more (fullest shown; {} for all)",
                    self.listeners.len() - shown,
                    words.name(&Action::ShowEveryListener)
                )?;
            }
        }
        for p in &self.missing_ports {
            writeln!(f, "  nothing listens on port {p}")?;
        }
        Ok(())
    }

    /// Each sysctl against its recommendation.
    fn fmt_sysctls(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sysctls:")?;
        for s in &self.sysctls {
            // Only an `>=` recommendation is missed from below: a value off
            // an exact or `<=` one is usually too high (conntrack timeouts).
            let verdict = match s.ok {
                Some(true) => "ok",
                Some(false) if s.recommended.starts_with(">=") => "below recommendation",
                Some(false) if s.recommended.starts_with("<=") => "above recommendation",
                Some(false) => "not the recommended value",
                None => "n/a here",
            };
            writeln!(
                f,
                "  {} = {} (recommended {}): {verdict}",
                s.key,
                esc(s.value.as_deref().unwrap_or("(absent)")),
                s.recommended
            )?;
        }
        Ok(())
    }

    /// Each interface's counters and offloads.
    fn fmt_interfaces(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "interfaces:")?;
        for i in &self.interfaces {
            let c: Vec<String> = i.counters.iter().map(counter).collect();
            writeln!(f, "  {}: {}", esc(&i.iface), c.join(", "))?;
            if let Some(o) = self.offloads.iter().find(|o| o.iface == i.iface) {
                writeln!(f, "    offloads: {}", esc(&super::offload_summary(o)))?;
            }
        }
        Ok(())
    }

    /// The kernel log's "table full" lines.
    fn fmt_kernel_log(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.kernel_log;
        if k.readable {
            writeln!(
                f,
                "kernel log: {} \"nf_conntrack: table full\" line(s) here ({} in the last {} s, {} older: history), {} about other namespaces",
                k.table_full_lines, k.recent_lines, k.recent_bound_s, k.history_lines, k.table_full_elsewhere
            )?;
            if k.recent_lines > 0 && !k.counters_agree {
                writeln!(
                    f,
                    "  (not counted: this namespace's conntrack drop counters are 0, so the lines are about another namespace with a reused number)"
                )?;
            }
            for l in &k.last {
                writeln!(f, "  {}", esc(l))?;
            }
        } else {
            writeln!(
                f,
                "kernel log: not readable ({})",
                esc(k.error.as_deref().unwrap_or("?"))
            )?;
        }
        Ok(())
    }

    /// The drops and SYN-ACK retransmits a trace saw, if one ran.
    fn fmt_trace(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.trace {
            writeln!(
                f,
                "trace ({:.1} s, host-wide{}{}):",
                t.duration_ms as f64 / 1000.0,
                if t.interrupted { ", interrupted" } else { "" },
                if t.lost_events > 0 {
                    format!(", {} event(s) lost", t.lost_events)
                } else {
                    String::new()
                }
            )?;
            if t.drops.is_empty() && t.synack_retransmits.is_empty() {
                writeln!(f, "  no drops seen")?;
            }
            for x in &t.drops {
                writeln!(
                    f,
                    "  {:>7} {} at {}{}",
                    x.count,
                    esc(&x.reason),
                    esc(&x.location),
                    x.supports
                        .as_deref()
                        .map_or(String::new(), |c| format!(" [{c}]"))
                )?;
            }
            for (l, n) in &t.synack_retransmits {
                writeln!(f, "  {n:>7} SYN-ACK retransmit(s) from {l}")?;
            }
        }
        Ok(())
    }
}

impl Diagnosis {
    /// The path to a port: softnet, half-open connections, syncookies,
    /// rp_filter and firewall drops.
    fn fmt_path(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_softnet(f)?;
        self.fmt_syn_recv(f)?;
        writeln!(
            f,
            "tcp_syncookies: {}",
            self.syncookies.map_or("?".into(), |v| v.to_string())
        )?;
        let rp: Vec<String> = self
            .rp_filter
            .interfaces
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    esc(&i.iface),
                    i.effective.map_or("?", super::netpath::rp_mode)
                )
            })
            .collect();
        writeln!(
            f,
            "rp_filter: all {}; effective: {}",
            self.rp_filter.all.map_or("?".into(), |v| v.to_string()),
            rp.join(", ")
        )?;
        self.fmt_firewall_drops(f)?;
        Ok(())
    }

    /// Per-CPU softnet drops and time squeezes.
    fn fmt_softnet(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.softnet.is_empty() {
            let cpus: Vec<String> = self
                .softnet
                .iter()
                .map(|c| {
                    format!(
                        "cpu{} {}, {}",
                        c.cpu,
                        counter(&c.dropped),
                        counter(&c.time_squeeze)
                    )
                })
                .collect();
            writeln!(f, "softnet: {}", cpus.join("; "))?;
        }
        Ok(())
    }

    /// Half-open connections per listener.
    fn fmt_syn_recv(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "half-open (SYN-RECV): {}",
            if self.syn_recv.is_empty() {
                "none".to_owned()
            } else {
                self.syn_recv
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} ({} retransmitted{})",
                            r.listener,
                            r.half_open,
                            r.retransmitted,
                            r.persisting
                                .map_or(String::new(), |p| format!(", {p} in both samples"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )?;
        Ok(())
    }

    /// Firewall rules that dropped packets on the way to the port(s).
    fn fmt_firewall_drops(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.firewall.drops.is_empty() {
            writeln!(f, "firewall drops on the way to the port(s):")?;
            for x in &self.firewall.drops {
                writeln!(
                    f,
                    "  {} {} {}: {}{}",
                    esc(&x.family),
                    esc(&x.table),
                    esc(&x.chain),
                    esc(&x.rule),
                    x.delta.map_or(String::new(), |n| format!(" (+{n})"))
                )?;
            }
        }
        Ok(())
    }
}
