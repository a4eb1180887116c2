//! The diagnosis as node_exporter text-file metrics.
//!
//! Names match node_exporter's own conntrack and netstat collectors
//! (`node_nf_conntrack_*`, `node_netstat_TcpExt_*`), so dashboards and
//! alerts written for those work unchanged; disable those collectors when
//! using this file, or node_exporter reports duplicate metrics. Per-listener
//! queue gauges have no node_exporter equivalent and use a `tcto_` prefix.

use std::fmt::Write as _;

use super::Diagnosis;

fn help_for_stat(name: &str) -> &'static str {
    match name {
        "found" => "Number of searched entries which were successful.",
        "invalid" => "Number of packets seen which can not be tracked.",
        "ignore" => "Number of packets seen which are already connected to a conntrack entry.",
        "insert" => "Number of entries inserted into the list.",
        "insert_failed" => "Number of entries for which list insertion was attempted but failed.",
        "drop" => "Number of packets dropped due to conntrack failure.",
        "early_drop" => "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
        "search_restart" => "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
        _ => "Conntrack statistic from /proc/net/stat/nf_conntrack, summed over CPUs.",
    }
}

/// Escape a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

impl Diagnosis {
    /// Render as Prometheus text exposition format (node_exporter textfile
    /// collector). Only metric names made of `[a-zA-Z0-9_]` are emitted.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let ct = &self.conntrack;
        if let Some(c) = ct.count {
            metric(
                &mut out,
                "node_nf_conntrack_entries",
                "gauge",
                "Number of currently allocated flow entries for connection tracking.",
                &[(String::new(), c as f64)],
            );
        }
        if let Some(m) = ct.max {
            metric(
                &mut out,
                "node_nf_conntrack_entries_limit",
                "gauge",
                "Maximum size of connection tracking table.",
                &[(String::new(), m as f64)],
            );
        }
        for s in &ct.stats {
            if !valid_name(&s.name) {
                continue;
            }
            metric(
                &mut out,
                &format!("node_nf_conntrack_stat_{}", s.name),
                "gauge",
                help_for_stat(&s.name),
                &[(String::new(), s.total as f64)],
            );
        }
        for t in &self.tcp_ext {
            if !valid_name(&t.name) {
                continue;
            }
            metric(
                &mut out,
                &format!("node_netstat_TcpExt_{}", t.name),
                "untyped",
                &format!("Statistic TcpExt{}.", t.name),
                &[(String::new(), t.total as f64)],
            );
        }
        let labels = |l: &super::ListenerReport| {
            format!(
                "{{address=\"{}\",port=\"{}\"}}",
                label(&l.addr.to_string()),
                l.port
            )
        };
        let queue: Vec<(String, f64)> = self
            .listeners
            .iter()
            .map(|l| (labels(l), l.queue as f64))
            .collect();
        let backlog: Vec<(String, f64)> = self
            .listeners
            .iter()
            .map(|l| (labels(l), l.backlog as f64))
            .collect();
        if !self.listeners.is_empty() {
            metric(
                &mut out,
                "tcto_listen_queue",
                "gauge",
                "Current accept queue of a listening TCP socket (ss Recv-Q).",
                &queue,
            );
            metric(
                &mut out,
                "tcto_listen_backlog",
                "gauge",
                "Effective backlog of a listening TCP socket (ss Send-Q).",
                &backlog,
            );
        }
        self.path_metrics(&mut out);
        if self.kernel_log.readable {
            metric(
                &mut out,
                "tcto_conntrack_table_full_log_lines",
                "gauge",
                "Kernel log lines \"nf_conntrack: table full\" about this network namespace in the log buffer.",
                &[(String::new(), self.kernel_log.table_full_lines as f64)],
            );
        }
        out
    }
}

impl Diagnosis {
    /// node_exporter's softnet names, and half-open connections per listener.
    fn path_metrics(&self, out: &mut String) {
        type Pick = fn(&super::SoftnetReport) -> u64;
        let softnet: [(&str, &str, Pick); 2] = [
            (
                "node_softnet_dropped_total",
                "Number of dropped packets",
                |c| c.dropped.total,
            ),
            (
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
                |c| c.time_squeeze.total,
            ),
        ];
        if !self.softnet.is_empty() {
            for (name, help, pick) in softnet {
                let samples: Vec<(String, f64)> = self
                    .softnet
                    .iter()
                    .map(|c| (format!("{{cpu=\"{}\"}}", c.cpu), pick(c) as f64))
                    .collect();
                metric(out, name, "counter", help, &samples);
            }
        }
        if let Some(g) = self.conntrack.groups.as_ref().filter(|g| g.error.is_none()) {
            // The top 10 groups only: label cardinality stays bounded.
            let samples: Vec<(String, f64)> = g
                .groups
                .iter()
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
            metric(
                out,
                "tcto_conntrack_group_entries",
                "gauge",
                "Conntrack entries of one of the 10 largest groups (source subnet, destination, port, protocol, TCP state).",
                &samples,
            );
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
                "gauge",
                "Half-open (SYN-RECV) request sockets of a listening TCP socket.",
                &samples,
            );
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(valid_name("insert_failed"));
        assert!(!valid_name("bad-name"));
        assert!(!valid_name(""));
    }
}
