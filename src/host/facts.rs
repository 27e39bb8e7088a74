//! What Vireo knows about the host it runs on: one vocabulary for building and checking
//! definitions (the wizard, Preferences, `define`, `validate --host`) and for starting them.
//!
//! Two constructors fill it, because the facts differ in cost: `HostFacts::detect` (in
//! `crate::domain::validate`) reads what describing a new VM needs — memory, CPUs, whether KVM is
//! hardware-backed, the KVM CPUID and the nearest usable named model — without running a guest;
//! `HostFacts::probe` (in `crate::launch::prepare`) reads what starting one needs — KVM's limits,
//! the CPUID as KVM programs it, and whether KVM enforces it, which takes a probe guest (its
//! answer cached per host boot). Fields neither filled keep their `Default` ("unknown", which
//! turns the check that needs them off). Passing facts in, rather than reading them inside each
//! check, lets tests and tools describe any host.

use crate::cpu::CpuidData;
use crate::cpu::guest::GuestCpuid;

/// Facts about one host.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// `MemTotal` from /proc/meminfo, in KiB; `None` when unknown.
    pub mem_total_kib: Option<u64>,
    /// Host CPUs online now; 0 when unknown (no oversubscription warning then).
    pub online_cpus: usize,
    /// Whether KVM runs guests on hardware virtualization (VMX/SVM) and so can pass the host
    /// CPU through; false on paravirtualized KVM (PVM) or when /dev/kvm is missing.
    pub hardware_kvm: bool,
    /// The nearest named CPU model whose every feature this host's KVM can give (for the
    /// "Nearest CPU model" preference); `None` when no model is usable or it is unknown.
    pub nearest_usable_model: Option<String>,
    /// KVM_GET_SUPPORTED_CPUID (with the arch-capabilities MSR) as CPU-map data, for deciding
    /// which named features a guest may have; `None` without KVM or when not read.
    pub kvm_cpuid: Option<CpuidData>,
    /// KVM_GET_SUPPORTED_CPUID exactly as KVM hands it (index flags included), the table a
    /// guest's CPUID is built from; empty when not read.
    pub kvm_supported: GuestCpuid,
    /// Whether KVM makes guests see the CPUID table they are given (false on PVM).
    pub cpuid_enforced: bool,
    /// The most vCPUs KVM allows per VM; 0 when not read.
    pub max_vcpus: usize,
}

impl HostFacts {
    /// Host memory in bytes, if known.
    pub fn mem_total_bytes(&self) -> Option<u64> {
        self.mem_total_kib.map(|kib| kib.saturating_mul(1024))
    }
}

/// `MemTotal` from /proc/meminfo, in KiB.
pub fn mem_total_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo.lines().find_map(|l| {
        l.strip_prefix("MemTotal:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Host CPUs online now (0 when unknown).
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// Hardware KVM needs a CPU with VMX or SVM; PVM offers /dev/kvm without them.
pub fn cpu_has_vmx_or_svm() -> bool {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_reports_memory_and_cpus() {
        let kib = mem_total_kib().expect("/proc/meminfo has MemTotal");
        assert!(kib > 16 << 10, "{kib} KiB");
        assert!(online_cpus() >= 1);
        let facts = HostFacts {
            mem_total_kib: Some(kib),
            ..HostFacts::default()
        };
        assert_eq!(facts.mem_total_bytes(), Some(kib * 1024));
        assert_eq!(HostFacts::default().mem_total_bytes(), None);
    }
}
