//! Parsers for the kernel's counter files, as pure functions over text.
//!
//! Why our own: the `procfs` crate parses neither /proc/net/netstat nor
//! /proc/net/stat/nf_conntrack, and the columns of both change between
//! kernels (4.x has `searched` and `delete_list`, 5.x `clashres`, 6.x
//! `chainlength`). So every parser here goes by the header's *names*, never
//! by position, and a column a kernel lacks is simply absent from the map.
//! Being pure, they are tested on files captured from several kernels
//! (`fixtures/`); the reading itself lives in `system::counters`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod softnet;
pub use softnet::{parse_softnet_stat, SoftnetCpu};

/// Why a counter file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file has no header line.
    #[error("{file}: empty file")]
    Empty {
        /// Which file.
        file: &'static str,
    },
    /// A row has a different number of fields than its header.
    #[error("{file}: line {line} has {found} fields, the header has {expected}")]
    Width {
        /// Which file.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// Fields in the header.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// A field is not a number in the file's base.
    #[error("{file}: line {line}: `{field}` = `{text}` is not a number")]
    Number {
        /// Which file.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// The column name.
        field: String,
        /// The text found.
        text: String,
    },
    /// A header line without its value line, or the reverse.
    #[error("{file}: line {line}: `{prefix}` header without a matching value line")]
    Unpaired {
        /// Which file.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// The section prefix, e.g. `TcpExt`.
        prefix: String,
    },
}

/// /proc/net/stat/nf_conntrack, summed over CPUs by column name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackStat {
    /// The `entries` column: the namespace's entry count. Every CPU row
    /// repeats it, so it is taken once, not summed.
    pub entries: Option<u64>,
    /// Every other column, summed over the CPU rows, by the kernel's name.
    pub columns: BTreeMap<String, u64>,
    /// Number of CPU rows.
    pub cpus: usize,
}

const CT_FILE: &str = "/proc/net/stat/nf_conntrack";

/// Parse /proc/net/stat/nf_conntrack: a header of names, then one row of
/// hexadecimal numbers per possible CPU.
pub fn parse_conntrack_stat(text: &str) -> Result<ConntrackStat, ParseError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(ParseError::Empty { file: CT_FILE })?;
    let names: Vec<&str> = header.split_whitespace().collect();
    let mut out = ConntrackStat::default();
    for (i, line) in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != names.len() {
            return Err(ParseError::Width {
                file: CT_FILE,
                line: i + 1,
                expected: names.len(),
                found: fields.len(),
            });
        }
        for (name, text) in names.iter().zip(&fields) {
            let v = u64::from_str_radix(text, 16).map_err(|_| ParseError::Number {
                file: CT_FILE,
                line: i + 1,
                field: (*name).to_owned(),
                text: (*text).to_owned(),
            })?;
            if *name == "entries" {
                out.entries = Some(v);
            } else {
                let slot = out.columns.entry((*name).to_owned()).or_default();
                *slot = slot.saturating_add(v);
            }
        }
        out.cpus += 1;
    }
    Ok(out)
}

/// /proc/net/netstat (and /proc/net/snmp): pairs of lines `Prefix: names`
/// and `Prefix: values`. Returns section -> name -> value.
pub fn parse_netstat(text: &str) -> Result<BTreeMap<String, BTreeMap<String, u64>>, ParseError> {
    const FILE: &str = "/proc/net/netstat";
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    while let Some((i, names_line)) = lines.next() {
        let (prefix, names) = names_line.split_once(':').ok_or(ParseError::Unpaired {
            file: FILE,
            line: i + 1,
            prefix: names_line.chars().take(20).collect(),
        })?;
        let unpaired = || ParseError::Unpaired {
            file: FILE,
            line: i + 1,
            prefix: prefix.to_owned(),
        };
        let (j, values_line) = lines.next().ok_or_else(unpaired)?;
        let values = match values_line.split_once(':') {
            Some((p, v)) if p == prefix => v,
            _ => return Err(unpaired()),
        };
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(ParseError::Width {
                file: FILE,
                line: j + 1,
                expected: names.len(),
                found: values.len(),
            });
        }
        let section = out.entry(prefix.to_owned()).or_default();
        for (name, text) in names.iter().zip(values) {
            // /proc/net/snmp has one signed field (Tcp MaxConn = -1); a
            // negative value carries no counter meaning, so it reads as 0.
            let v = match text.parse::<u64>() {
                Ok(v) => v,
                Err(_) if text.parse::<i64>().is_ok() => 0,
                Err(_) => {
                    return Err(ParseError::Number {
                        file: FILE,
                        line: j + 1,
                        field: (*name).to_owned(),
                        text: text.to_owned(),
                    })
                }
            };
            section.insert((*name).to_owned(), v);
        }
    }
    Ok(out)
}

/// Drop and error counters of one interface, from /proc/net/dev.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDevStats {
    /// Interface name.
    pub iface: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped (the kernel adds `rx_missed_errors` here).
    pub rx_dropped: u64,
    /// Receive FIFO overruns.
    pub rx_fifo: u64,
    /// Frame, CRC and length errors.
    pub rx_frame: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Transmit drops.
    pub tx_dropped: u64,
}

/// Parse /proc/net/dev. It is per network namespace (unlike /sys/class/net,
/// which shows the namespace /sys was mounted in), so it is the right source
/// inside `unshare -n`.
pub fn parse_net_dev(text: &str) -> Result<Vec<NetDevStats>, ParseError> {
    const FILE: &str = "/proc/net/dev";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() != 16 {
            return Err(ParseError::Width {
                file: FILE,
                line: i + 1,
                expected: 16,
                found: fields.len(),
            });
        }
        let n = |k: usize, name: &str| {
            fields[k].parse::<u64>().map_err(|_| ParseError::Number {
                file: FILE,
                line: i + 1,
                field: name.to_owned(),
                text: fields[k].to_owned(),
            })
        };
        out.push(NetDevStats {
            iface: iface.trim().to_owned(),
            rx_packets: n(1, "rx packets")?,
            rx_errors: n(2, "rx errs")?,
            rx_dropped: n(3, "rx drop")?,
            rx_fifo: n(4, "rx fifo")?,
            rx_frame: n(5, "rx frame")?,
            tx_packets: n(9, "tx packets")?,
            tx_errors: n(10, "tx errs")?,
            tx_dropped: n(11, "tx drop")?,
        });
    }
    Ok(out)
}

/// One /dev/kmsg record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgRecord {
    /// Sequence number.
    pub seq: u64,
    /// Microseconds since boot.
    pub usec: u64,
    /// The message text.
    pub message: String,
}

/// Parse one /dev/kmsg record: `prio,seq,usec,flags;message` followed by
/// optional ` KEY=value` continuation lines (ignored).
pub fn parse_kmsg_record(record: &str) -> Option<KmsgRecord> {
    let first = record.lines().next()?;
    let (head, message) = first.split_once(';')?;
    let mut parts = head.split(',');
    let _prio = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    let usec = parts.next()?.parse().ok()?;
    Some(KmsgRecord {
        seq,
        usec,
        message: message.to_owned(),
    })
}

/// Whether a kernel message is conntrack's "table full, dropping packet"
/// (with or without "in netns N", which newer kernels add).
pub fn is_conntrack_table_full(message: &str) -> bool {
    message.contains("nf_conntrack: table full")
}

/// The network namespace a "table full in netns N" message names (its
/// inode number, as in `/proc/self/ns/net`); `None` for kernels that do not
/// say.
pub fn table_full_netns(message: &str) -> Option<u64> {
    let rest = message.split_once("table full in netns ")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests;
