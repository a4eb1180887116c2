//! diagnose's own decoders on arbitrary input: ctnetlink entries (bytes
//! from the kernel, decoded by hand), trace lines and the `format` file's
//! reason names, and the rtnetlink route answers and inet_diag messages
//! of the reverse-path evidence. A value or nothing, never a panic, and
//! the aggregation keeps its invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcto_tune::fuzzing::{
    aggregate_trace, kfree_skb_filter, parse_ct_entry, parse_reason_names, parse_trace_line,
    CtAggregator,
};

fuzz_target!(|data: &[u8]| {
    let _ = tcto_tune::fuzzing::decode_reply(data);
    let _ = tcto_tune::fuzzing::decode_diag(data);
    let mut agg = CtAggregator::new(Some(432_000));
    if let Some(e) = parse_ct_entry(data) {
        agg.add(&e);
        agg.add(&e);
        let g = agg.finish();
        assert_eq!(g.entries, 2);
        assert_eq!(g.groups.iter().map(|x| x.count).sum::<u64>() + g.other, 2);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let reasons = parse_reason_names(text);
    let filter = kfree_skb_filter(&reasons);
    assert!(!filter.contains('\n'), "the filter is one line");
    for l in text.lines() {
        let _ = parse_trace_line(l);
    }
    let r = aggregate_trace(text.lines(), 1000);
    assert!(r.drops.iter().all(|d| d.count > 0));
});
