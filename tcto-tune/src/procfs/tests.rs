//! Parsers against files captured from (or laid out like) several kernels.

use super::*;

const CT_618_IDLE: &str = include_str!("fixtures/nf_conntrack-6.18-idle.txt");
const CT_618_FULL: &str = include_str!("fixtures/nf_conntrack-6.18-full.txt");
const CT_510: &str = include_str!("fixtures/nf_conntrack-5.10.txt");
const CT_419: &str = include_str!("fixtures/nf_conntrack-4.19-full.txt");
const NETSTAT_618: &str = include_str!("fixtures/netstat-6.18.txt");
const NETSTAT_419: &str = include_str!("fixtures/netstat-4.19.txt");
const NET_DEV: &str = include_str!("fixtures/net-dev-6.18.txt");
const KMSG: &str = include_str!("fixtures/kmsg-sample.txt");

#[test]
fn conntrack_stat_6x_layout_sums_cpus_and_keeps_entries_once() {
    let s = parse_conntrack_stat(CT_618_FULL).unwrap();
    assert_eq!(s.cpus, 2);
    // 0x28 on both rows: the global count, not 80.
    assert_eq!(s.entries, Some(40));
    assert_eq!(s.columns["drop"], 0x19 + 0x0f);
    assert_eq!(s.columns["insert_failed"], 0x19 + 0x0f);
    assert_eq!(s.columns["chainlength"], 6);
    assert!(s.columns.contains_key("clashres"));
    assert!(!s.columns.contains_key("searched"));
    assert!(!s.columns.contains_key("entries"));
}

#[test]
fn conntrack_stat_captured_idle_host() {
    let s = parse_conntrack_stat(CT_618_IDLE).unwrap();
    assert!(s.cpus >= 1);
    assert_eq!(s.entries, Some(0));
    assert_eq!(s.columns.len(), 16);
    assert!(s.columns.values().all(|v| *v == 0));
}

#[test]
fn conntrack_stat_4x_layout_has_searched_and_delete_list() {
    let s = parse_conntrack_stat(CT_419).unwrap();
    assert_eq!(s.cpus, 4);
    assert_eq!(s.entries, Some(0xfff0));
    assert_eq!(s.columns["searched"], 0);
    assert_eq!(s.columns["delete_list"], 0);
    assert_eq!(s.columns["found"], 1000 + 1001 + 1002 + 1003);
    assert_eq!(s.columns["insert_failed"], 850 + 860 + 870 + 880);
    assert_eq!(s.columns["drop"], 863 + 873 + 883 + 893);
    assert_eq!(s.columns["icmp_error"], 8);
    assert_eq!(s.columns["search_restart"], 5 + 6 + 7 + 8);
    assert!(!s.columns.contains_key("clashres"));
}

#[test]
fn conntrack_stat_5x_layout_has_clashres() {
    let s = parse_conntrack_stat(CT_510).unwrap();
    assert_eq!(s.cpus, 2);
    assert_eq!(s.entries, Some(0x1a2b));
    assert_eq!(s.columns["clashres"], 3 + 4);
    assert_eq!(s.columns["found"], 0x4000 * 2 + 1);
    assert!(s.columns.contains_key("delete_list"));
}

#[test]
fn conntrack_stat_rejects_short_rows_and_bad_hex() {
    let e = parse_conntrack_stat("entries drop\n00000001\n").unwrap_err();
    assert!(matches!(e, ParseError::Width { line: 2, .. }), "{e}");
    let e = parse_conntrack_stat("entries drop\n00000001 zz\n").unwrap_err();
    assert!(e.to_string().contains("`drop` = `zz`"), "{e}");
    assert!(matches!(
        parse_conntrack_stat("").unwrap_err(),
        ParseError::Empty { .. }
    ));
}

#[test]
fn netstat_by_name_on_two_layouts() {
    let new = parse_netstat(NETSTAT_618).unwrap();
    let old = parse_netstat(NETSTAT_419).unwrap();
    for t in [&new, &old] {
        for k in [
            "ListenOverflows",
            "ListenDrops",
            "TCPReqQFullDrop",
            "SyncookiesSent",
        ] {
            assert!(t["TcpExt"].contains_key(k), "{k}");
        }
        assert!(t.contains_key("IpExt"));
    }
    assert_eq!(old["TcpExt"]["ListenOverflows"], 1523);
    assert_eq!(old["TcpExt"]["SyncookiesSent"], 12);
    assert_eq!(old["TcpExt"]["TW"], 88123);
    assert_eq!(old["IpExt"]["InOctets"], 987654321);
    // Fields only newer kernels have.
    assert!(new["TcpExt"].contains_key("TCPMigrateReqSuccess"));
    assert!(!old["TcpExt"].contains_key("TCPMigrateReqSuccess"));
    // Captured file: the header length and the values agree.
    assert!(new["TcpExt"].len() > 100);
}

#[test]
fn netstat_rejects_mismatched_pairs() {
    let e = parse_netstat("TcpExt: A B\nTcpExt: 1\n").unwrap_err();
    assert!(matches!(e, ParseError::Width { line: 2, .. }), "{e}");
    let e = parse_netstat("TcpExt: A B\nIpExt: 1 2\n").unwrap_err();
    assert!(matches!(e, ParseError::Unpaired { .. }), "{e}");
    let e = parse_netstat("TcpExt: A\n").unwrap_err();
    assert!(matches!(e, ParseError::Unpaired { .. }), "{e}");
    let e = parse_netstat("TcpExt: A\nTcpExt: x\n").unwrap_err();
    assert!(matches!(e, ParseError::Number { .. }), "{e}");
    // snmp's one signed field reads as 0.
    let t = parse_netstat("Tcp: MaxConn\nTcp: -1\n").unwrap();
    assert_eq!(t["Tcp"]["MaxConn"], 0);
}

#[test]
fn net_dev_columns() {
    let devs = parse_net_dev(NET_DEV).unwrap();
    let lo = devs.iter().find(|d| d.iface == "lo").expect("lo");
    assert_eq!(lo.rx_errors, 0);
    assert!(lo.rx_packets == lo.tx_packets);
    let text = "h1\nh2\n  eth9: 10 20 1 2 3 4 0 0 30 40 5 6 0 0 0 0\n";
    let d = &parse_net_dev(text).unwrap()[0];
    assert_eq!(
        (d.iface.as_str(), d.rx_packets, d.rx_errors, d.rx_dropped),
        ("eth9", 20, 1, 2)
    );
    assert_eq!((d.rx_fifo, d.rx_frame), (3, 4));
    assert_eq!((d.tx_packets, d.tx_errors, d.tx_dropped), (40, 5, 6));
    assert!(parse_net_dev("h1\nh2\n eth0: 1 2 3\n").is_err());
}

#[test]
fn kmsg_records_and_the_table_full_line() {
    let records: Vec<_> = KMSG
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(parse_kmsg_record)
        .collect();
    assert_eq!(records.len(), 5);
    assert_eq!(records[1].seq, 1202);
    assert_eq!(records[1].usec, 5200000123);
    let full: Vec<_> = records
        .iter()
        .filter(|r| is_conntrack_table_full(&r.message))
        .collect();
    assert_eq!(full.len(), 3);
    assert!(!is_conntrack_table_full(&records[0].message));
    assert_eq!(table_full_netns(&full[0].message), None);
    assert_eq!(table_full_netns(&full[1].message), Some(4026532312));
    assert_eq!(parse_kmsg_record("garbage"), None);
    assert_eq!(parse_kmsg_record("6,x,1,-;m"), None);
}
