//! Vireo's own CPUID dumps, taken with `vireoctl cpuid-dump` (and `--kvm`) on the project's
//! build machine: an AMD EPYC Milan (family 25, model 1, stepping 1) guest whose KVM is PVM.
//! Expected answers were checked by hand against the register values (see each test).

use vireo::cpu::{
    CpuMap, CpuidData, Policy, decode_host, host_model, missing_features, model_usability,
};

fn dump(name: &str) -> CpuidData {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    CpuidData::from_xml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn pvm_kvm_offers_only_the_oldest_models() {
    // KVM leaf 1 ECX is 0x81202000: SSE3 (bit 0), SSSE3 (9), SSE4.1/4.2 (19/20), POPCNT (23)
    // are all clear, so every model from qemu64/kvm64 on is blocked; EDX 0x078bfbff has
    // FPU/VME/PSE/TSC/MSR/PAE/MCE/CX8/APIC/SEP/MTRR/PGE/MCA/CMOV/MMX/FXSR/SSE/SSE2.
    let map = CpuMap::builtin().unwrap();
    let kvm = dump("pvm-amd-epyc-milan-kvm.xml");
    let usable: Vec<String> = model_usability(&map, &kvm)
        .into_iter()
        .filter(|m| m.usable())
        .map(|m| m.name)
        .collect();
    assert_eq!(
        usable,
        [
            "486",
            "486-v1",
            "pentium",
            "pentium-v1",
            "pentium2",
            "pentium2-v1",
            "pentium3",
            "pentium3-v1",
            "pentiumpro"
        ]
    );
    // qemu64 also needs SVM: KVM leaf 0x80000001 ECX is 0x00400393, bit 2 clear.
    assert_eq!(
        missing_features(&map, "qemu64", &kvm).unwrap(),
        ["pni", "svm"]
    );
    assert!(
        missing_features(&map, "EPYC-Milan", &kvm)
            .unwrap()
            .contains(&"ssse3".to_string())
    );
}

#[test]
fn pvm_host_model_is_kvm64_without_sse3() {
    let map = CpuMap::builtin().unwrap();
    let cpu = host_model(&map, &dump("pvm-amd-epyc-milan-kvm.xml")).unwrap();
    assert_eq!(cpu.model.as_deref(), Some("kvm64"));
    assert_eq!(cpu.vendor.as_deref(), Some("AMD"));
    let disabled: Vec<&str> = cpu
        .features
        .iter()
        .filter(|f| f.policy == Some(Policy::Disable))
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(disabled, ["pni"]);
    let required: Vec<&str> = cpu
        .features
        .iter()
        .filter(|f| f.policy == Some(Policy::Require))
        .map(|f| f.name.as_str())
        .collect();
    // Leaf 1 ECX bits 21/24/31 and EDX bit 1 are set in KVM's table and not part of kvm64.
    for name in ["x2apic", "tsc-deadline", "hypervisor", "vme"] {
        assert!(required.contains(&name), "{name} missing from {required:?}");
    }
    // Bits KVM clears (SSSE3, AVX) are never required.
    assert!(!required.contains(&"ssse3") && !required.contains(&"avx"));
}

#[test]
fn pvm_raw_host_decodes_to_kvm64_with_the_real_signature() {
    // Raw leaf 1 EAX 0x00a00f11: family 0xf + 0xa = 25, model 0x01, stepping 1. The guest
    // lacks SVM, so no EPYC model fits without disabling features and host decode falls back
    // to kvm64-v1 plus extras.
    let map = CpuMap::builtin().unwrap();
    let cpu = decode_host(&map, &dump("pvm-amd-epyc-milan-host.xml")).unwrap();
    assert_eq!(cpu.model.as_deref(), Some("kvm64-v1"));
    let sig = cpu.signature.unwrap();
    assert_eq!((sig.family, sig.model, sig.stepping), (25, 1, 1));
    assert!(cpu.features.iter().any(|f| f.name == "avx2"));
    assert!(!cpu.features.iter().any(|f| f.name == "svm"));
}

#[test]
fn cpu_decode_cli_matches_the_library_on_our_dumps() {
    let map = CpuMap::builtin().unwrap();
    for name in ["pvm-amd-epyc-milan-host.xml", "pvm-amd-epyc-milan-kvm.xml"] {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vireoctl"))
            .args(["cpu-decode", &path])
            .env("XDG_CONFIG_HOME", "/nonexistent-vireo-test-config")
            .output()
            .unwrap();
        assert!(out.status.success());
        let want = decode_host(&map, &dump(name)).unwrap().to_xml();
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }
}
