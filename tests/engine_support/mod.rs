//! Shared helpers for the engine tests: the probe guest, its output, and VM configs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use vireo::cpu::guest::{GuestCpuid, GuestTopology};
use vireo::engine::{BootSource, LifecycleAction, Vm, VmConfig, VmState};

/// The test-guest cache, as tools/build-test-guests uses it.
pub fn guest_cache() -> PathBuf {
    match std::env::var_os("VIREO_TEST_GUESTS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/vireo/test-guests"),
    }
}

/// The probe guest, built on first use (it takes binutils and a fraction of a second).
pub fn probe_guest() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/build-test-guests");
            let status = Command::new(script)
                .status()
                .expect("run tools/build-test-guests");
            assert!(status.success(), "tools/build-test-guests failed");
            guest_cache().join("probe.elf")
        })
        .clone()
}

/// Why KVM tests cannot run here, if they cannot.
pub fn kvm_unavailable() -> Option<String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/kvm not usable: {e}")),
    }
}

/// Returns early from a test when /dev/kvm is not usable: a skip with the reason, or a failure
/// under `VIREO_REQUIRE_ENV=1` (see tests/require_env). The test crate declares `mod require_env;`.
#[macro_export]
macro_rules! require_kvm {
    () => {
        if let Some(reason) = engine_support::kvm_unavailable() {
            return require_env::skip_or_fail(reason);
        }
    };
}

/// A probe-guest VM config: `mode` is the probe's `vireo.probe=` letter.
pub fn probe_config(
    name: &str,
    cpuid: GuestCpuid,
    topology: GuestTopology,
    mode: char,
) -> VmConfig {
    VmConfig {
        name: name.into(),
        memory_bytes: 64 << 20,
        topology,
        cpuid,
        boot: BootSource {
            kernel: probe_guest(),
            initrd: None,
            cmdline: format!("console=ttyS0 vireo.probe={mode}"),
        },
        on_poweroff: LifecycleAction::Destroy,
        on_reboot: LifecycleAction::Destroy,
        on_crash: LifecycleAction::Destroy,
        vcpu_pins: Vec::new(),
        emulator_pin: None,
        disks: Vec::new(),
        nics: Vec::new(),
        display: None,
        inputs: Vec::new(),
        ps2_keyboard: false,
    }
}

/// Waits for the VM to end (10 s at most) and returns its final state and console text.
pub fn run_to_end(vm: &Vm) -> (VmState, String) {
    let state = vm
        .wait_timeout(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("VM still {} after 10 s; console: {}", vm.state(), text(vm)));
    (state, text(vm))
}

/// The console output so far.
pub fn text(vm: &Vm) -> String {
    String::from_utf8_lossy(&vm.console().scrollback()).into_owned()
}

/// The CPUID values the probe printed: (leaf, subleaf) → [eax, ebx, ecx, edx].
pub fn parse_probe(output: &str) -> BTreeMap<(u32, u32), [u32; 4]> {
    assert!(
        output.contains("VIREO-PROBE END"),
        "probe output incomplete: {output}"
    );
    output
        .lines()
        .filter_map(|line| line.strip_prefix("CPUID "))
        .map(|rest| {
            let v: Vec<u32> = rest
                .split_whitespace()
                .map(|h| u32::from_str_radix(h, 16).expect("hex"))
                .collect();
            ((v[0], v[1]), [v[2], v[3], v[4], v[5]])
        })
        .collect()
}

/// The host's KVM-supported CPUID, as a guest table.
pub fn kvm_supported() -> GuestCpuid {
    let kvm = vireo::host::kvm::open_kvm().expect("open /dev/kvm");
    let cpuid = kvm
        .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .expect("KVM_GET_SUPPORTED_CPUID");
    vireo::host::kvm::from_kvm_cpuid(&cpuid)
}
