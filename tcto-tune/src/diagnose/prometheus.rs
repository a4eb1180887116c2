//! The diagnosis as node_exporter text-file metrics: tcto-tune's own view.
//!
//! Only what node_exporter's default collectors do not already export, all
//! under the `tcto_` prefix. The raw counters (`node_nf_conntrack_*`,
//! `node_netstat_TcpExt_*`, `node_softnet_*`) are node_exporter's: a
//! textfile that repeats them makes every scrape fail with "collected
//! before with the same name and label values" (issue 17). What only
//! tcto-tune knows is the judgement: which causes it found, how full each
//! listener's accept queue is against its effective backlog, how full the
//! conntrack table is, and whether the kernel log says it overflowed.
//!
//! Every metric is a gauge with HELP and TYPE lines; label values are
//! escaped; the set of `tcto_cause_found` series is fixed (one per known
//! cause code), so an alert `tcto_cause_found == 1` never sees a series
//! appear or vanish.

use std::fmt::Write as _;

use super::causes::{CauseCode, CAUSE_CODES};
use super::Diagnosis;

/// Escape a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

impl Diagnosis {
    /// Render as Prometheus text exposition format for node_exporter's
    /// textfile collector (`tcto_` metrics only).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        self.cause_metrics(&mut out);
        self.conntrack_metrics(&mut out);
        self.listener_metrics(&mut out);
        self.path_metrics(&mut out);
        if !self.missing_ports.is_empty() {
            let samples: Vec<(String, f64)> = self
                .missing_ports
                .iter()
                .map(|p| (format!("{{port=\"{p}\"}}"), 1.0))
                .collect();
            metric(
                &mut out,
                "tcto_port_without_listener",
                "1 for a port asked about that nothing listens on.",
                &samples,
            );
        }
        metric(
            &mut out,
            "tcto_diagnose_interval_seconds",
            "Time between the two samples the rates and deltas come from (0: one sample).",
            &[(String::new(), self.interval_ms as f64 / 1000.0)],
        );
        out
    }

    /// Every known cause: found, active, and the rank of those found.
    fn cause_metrics(&self, out: &mut String) {
        let found = |code: CauseCode| self.causes.iter().find(|c| c.code == code);
        let by_code = |f: &dyn Fn(Option<&super::Cause>) -> f64| -> Vec<(String, f64)> {
            CAUSE_CODES
                .iter()
                .map(|code| {
                    (
                        format!("{{code=\"{}\"}}", label(code.as_str())),
                        f(found(*code)),
                    )
                })
                .collect()
        };
        metric(
            out,
            "tcto_cause_found",
            "1 when diagnose found this likely cause of connect timeouts, else 0.",
            &by_code(&|c| f64::from(u8::from(c.is_some()))),
        );
        metric(
            out,
            "tcto_cause_active",
            "1 when the cause was dropping connections during the sampling interval (not only a risk).",
            &by_code(&|c| f64::from(u8::from(c.is_some_and(|c| c.status == "active")))),
        );
        let ranked: Vec<(String, f64)> = self
            .causes
            .iter()
            .map(|c| {
                (
                    format!("{{code=\"{}\"}}", label(c.code.as_str())),
                    c.rank as f64,
                )
            })
            .collect();
        if !ranked.is_empty() {
            metric(
                out,
                "tcto_cause_rank",
                "Rank of a cause found (1 is the most likely); absent for causes not found.",
                &ranked,
            );
        }
    }

    /// How full the conntrack table is, and the kernel's "table full" lines.
    fn conntrack_metrics(&self, out: &mut String) {
        let ct = &self.conntrack;
        if let (Some(count), Some(max)) = (ct.count, ct.max.filter(|m| *m > 0)) {
            metric(
                out,
                "tcto_conntrack_usage_ratio",
                "Conntrack table entries divided by its limit (1 is full: new flows are dropped).",
                &[(String::new(), count as f64 / max as f64)],
            );
        }
        if self.kernel_log.readable {
            metric(
                out,
                "tcto_conntrack_table_full_log_lines",
                "Kernel log lines \"nf_conntrack: table full\" about this network namespace in the log buffer.",
                &[(String::new(), self.kernel_log.table_full_lines as f64)],
            );
        }
    }

    /// Who fills the conntrack table (the 10 largest groups only, so label
    /// cardinality stays bounded) and half-open requests per listener.
    /// Softnet counters are node_exporter's own (`node_softnet_*`).
    fn path_metrics(&self, out: &mut String) {
        if let Some(g) = self.conntrack.groups.as_ref().filter(|g| g.error.is_none()) {
            let samples: Vec<(String, f64)> = g
                .groups
                .iter()
                .take(10)
                .map(|x| {
                    (
                        format!(
                            "{{source=\"{}\",destination=\"{}\",port=\"{}\",protocol=\"{}\",state=\"{}\"}}",
                            label(&x.source),
                            label(&x.destination.to_string()),
                            x.port,
                            label(&x.protocol),
                            label(x.state.as_deref().unwrap_or(""))
                        ),
                        x.count as f64,
                    )
                })
                .collect();
            if !samples.is_empty() {
                metric(
                    out,
                    "tcto_conntrack_group_entries",
                    "Conntrack entries of one of the 10 largest groups (source subnet, destination, port, protocol, TCP state).",
                    &samples,
                );
            }
        }
        if !self.syn_recv.is_empty() {
            let samples: Vec<(String, f64)> = self
                .syn_recv
                .iter()
                .map(|r| {
                    (
                        format!(
                            "{{address=\"{}\",port=\"{}\"}}",
                            label(&r.listener.ip().to_string()),
                            r.listener.port()
                        ),
                        r.half_open as f64,
                    )
                })
                .collect();
            metric(
                out,
                "tcto_tcp_syn_recv",
                "Half-open (SYN-RECV) request sockets of a listening TCP socket.",
                &samples,
            );
        }
    }

    fn listener_metrics(&self, out: &mut String) {
        if self.listeners.is_empty() {
            return;
        }
        let labels = |l: &super::ListenerReport| {
            format!(
                "{{address=\"{}\",port=\"{}\"}}",
                label(&l.addr.to_string()),
                l.port
            )
        };
        type Pick = fn(&super::ListenerReport) -> f64;
        let gauges: [(&str, &str, Pick); 3] = [
            (
                "tcto_listen_queue",
                "Current accept queue of a listening TCP socket (ss Recv-Q).",
                |l| f64::from(l.queue),
            ),
            (
                "tcto_listen_backlog",
                "Effective backlog of a listening TCP socket: the smaller of the application's and somaxconn (ss Send-Q).",
                |l| f64::from(l.backlog),
            ),
            (
                "tcto_listen_queue_peak",
                "Largest accept queue seen in either sample.",
                |l| f64::from(l.peak_queue),
            ),
        ];
        for (name, help, pick) in gauges {
            let samples: Vec<(String, f64)> = self
                .listeners
                .iter()
                .map(|l| (labels(l), pick(l)))
                .collect();
            metric(out, name, help, &samples);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
