//! The /proc counter parsers on arbitrary text: a clear error or a value,
//! never a panic (a hostile or newer kernel layout must not crash diagnose).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcto_tune::fuzzing::procfs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ct) = procfs::parse_conntrack_stat(text) {
        // `entries` is kept apart, never summed as a column.
        assert!(!ct.columns.contains_key("entries"));
        assert!(ct.cpus <= text.lines().count());
    }
    let _ = procfs::parse_netstat(text);
    let _ = procfs::parse_net_dev(text);
    if let Some(r) = procfs::parse_kmsg_record(text) {
        let _ = procfs::table_full_netns(&r.message);
    }
    let _ = procfs::is_conntrack_table_full(text);
    if let Ok(rows) = procfs::parse_softnet_stat(text) {
        assert!(rows.len() <= text.lines().count());
    }
});
