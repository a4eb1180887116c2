//! The journal reader on arbitrary bytes: a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcto_tune::fuzzing::parse_record;

fuzz_target!(|data: &[u8]| {
    let _ = parse_record(std::path::Path::new("/fuzz/tx/000001.json"), data);
});
