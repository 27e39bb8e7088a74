//! The `<cpu>` parser must never panic; what it accepts must format to XML that parses again,
//! and from then on formatting is a fixed point (the first pass may normalise whitespace in
//! attribute values). Compare and baseline on the parsed CPU must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vireo::cpu::{BaselineFlags, CpuDef, CpuMap, baseline, compare};

fuzz_target!(|data: &[u8]| {
    static MAP: std::sync::OnceLock<CpuMap> = std::sync::OnceLock::new();
    let map = MAP.get_or_init(|| CpuMap::builtin().expect("built-in map loads"));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cpu) = CpuDef::from_xml(text) {
        let again = CpuDef::from_xml(&cpu.to_xml()).expect("formatted cpu re-parses");
        let third = CpuDef::from_xml(&again.to_xml()).expect("formatted cpu re-parses twice");
        assert_eq!(again.to_xml(), third.to_xml());
        let _ = compare(map, &cpu, &cpu);
        let _ = baseline(
            map,
            &[cpu.clone(), again],
            BaselineFlags {
                expand_features: true,
                migratable: true,
            },
        );
    }
});
