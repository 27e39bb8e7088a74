//! The `<cpudata>` parser must never panic, and whatever it accepts must format and re-parse
//! to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vireo::cpu::CpuidData;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = CpuidData::from_xml(text) {
        let again = CpuidData::from_xml(&parsed.to_xml()).expect("formatted cpudata re-parses");
        assert_eq!(parsed, again);
    }
});
