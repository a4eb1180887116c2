//! /proc/net/softnet_stat: one row of hexadecimal counters per online CPU.
//!
//! Its columns have no header and grew over the years (2.6: 10, 5.10: 13
//! with the CPU id, 6.x: 15 with the queue lengths), so only the columns
//! every kernel has are read by position: `processed`, `dropped` (the
//! per-CPU input queue, `net.core.netdev_max_backlog`, was full),
//! `time_squeeze` (the softirq ran out of budget) and, from 3.x, the flow
//! limit count. The CPU id is column 13 where present; older kernels list
//! online CPUs in order, so the row number stands in.

use serde::{Deserialize, Serialize};

use super::ParseError;

const FILE: &str = "/proc/net/softnet_stat";

/// One CPU's row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftnetCpu {
    /// CPU id (the row number on kernels that do not print it).
    pub cpu: u32,
    /// Packets processed.
    pub processed: u64,
    /// Packets dropped because the input queue was full.
    pub dropped: u64,
    /// Times the receive softirq stopped with work left (budget used up).
    pub time_squeeze: u64,
    /// Packets dropped by the flow limit (column 11), 0 when absent.
    pub flow_limit: u64,
}

/// Parse /proc/net/softnet_stat.
pub fn parse_softnet_stat(text: &str) -> Result<Vec<SoftnetCpu>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(ParseError::Width {
                file: FILE,
                line: i + 1,
                expected: 3,
                found: fields.len(),
            });
        }
        let n = |k: usize, name: &str| -> Result<u64, ParseError> {
            match fields.get(k) {
                None => Ok(0),
                Some(t) => u64::from_str_radix(t, 16).map_err(|_| ParseError::Number {
                    file: FILE,
                    line: i + 1,
                    field: name.to_owned(),
                    text: (*t).to_owned(),
                }),
            }
        };
        let cpu = if fields.len() >= 13 {
            u32::try_from(n(12, "cpu")?).map_err(|_| ParseError::Number {
                file: FILE,
                line: i + 1,
                field: "cpu".into(),
                text: fields[12].to_owned(),
            })?
        } else {
            out.len() as u32
        };
        out.push(SoftnetCpu {
            cpu,
            processed: n(0, "processed")?,
            dropped: n(1, "dropped")?,
            time_squeeze: n(2, "time_squeeze")?,
            flow_limit: n(10, "flow_limit_count")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_6_18_rows_with_cpu_ids() {
        let t = include_str!("fixtures/softnet_stat-6.18.txt");
        let rows = parse_softnet_stat(t).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].cpu, 0);
        assert_eq!(
            rows[1].cpu, 3,
            "offline CPUs are skipped: ids come from the row"
        );
        assert_eq!(
            (
                rows[1].processed,
                rows[1].dropped,
                rows[1].time_squeeze,
                rows[1].flow_limit
            ),
            (0x1cdf, 0x2a, 0x5, 0x7)
        );
    }

    #[test]
    fn old_kernels_without_cpu_column_number_rows() {
        let rows = parse_softnet_stat(
            "00000010 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n00000020 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n",
        )
        .unwrap();
        assert_eq!(rows.iter().map(|r| r.cpu).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!((rows[0].dropped, rows[0].flow_limit), (1, 0));
    }

    #[test]
    fn bad_rows_are_errors_naming_the_line() {
        let e = parse_softnet_stat("00000010 zz 00000000\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/net/softnet_stat: line 1: `dropped` = `zz` is not a number"
        );
        assert!(parse_softnet_stat("1 2\n").is_err());
        assert_eq!(parse_softnet_stat("").unwrap(), vec![]);
    }
}
