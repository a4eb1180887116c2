//! The profile parser and resolver on arbitrary text: never a panic, and a
//! profile that loads has only validated values.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tcto_tune::fuzzing::{load_text, ProfileOrigin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars: BTreeMap<String, String> = [
        ("port", "8080"),
        ("backend", "10.0.2.0/24"),
        ("iface", "eth0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for set in [BTreeMap::new(), vars] {
        if let Ok(p) = load_text(ProfileOrigin::File("/fuzz/p.toml".into()), text, &set) {
            for t in p.sysctl_targets() {
                let v = t.desired.value.render();
                assert!(
                    !v.contains('\n'),
                    "a value with a newline got through: {v:?}"
                );
                if let Some(r) = &t.desired.reason {
                    assert!(!r.contains('\n'));
                }
            }
        }
    }
});
