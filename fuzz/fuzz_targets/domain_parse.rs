//! Fuzzes the domain parser: no input may panic it, and any document it accepts must serialize
//! back byte-for-byte (the lossless promise) and survive every typed getter and a setter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vireo::domain::canon::canonicalize;
use vireo::domain::validate::document_problems;
use vireo::domain::{Domain, LifecycleEvent, Memory};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = canonicalize(text);
    let Ok(mut domain) = Domain::parse(text) else {
        return;
    };
    assert_eq!(domain.to_xml(), text, "parse + serialize must be lossless");
    let _ = (domain.name(), domain.uuid(), domain.memory(), domain.vcpu(), domain.os());
    let _ = (domain.cputune(), domain.numatune(), domain.disks(), domain.interfaces());
    let _ = (domain.char_devices(), domain.rngs(), domain.graphics(), domain.cpu_xml());
    let _ = document_problems(&domain);
    domain.set_memory(Memory::mib(1));
    domain.set_lifecycle(LifecycleEvent::Crash, "destroy");
    let edited = domain.to_xml();
    let again = Domain::parse(&edited).expect("an edited document must still parse");
    assert_eq!(again.memory().ok().flatten(), Some(Memory::mib(1)));
});
