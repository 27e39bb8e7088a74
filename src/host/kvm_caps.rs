//! What this host's KVM can do, as the engine and host validation need it: API version, vCPU
//! limits, the CPUID it supports and whether it is paravirtual (PVM). Whether it enforces the
//! CPUID table it is given needs a guest to run, so that probe lives in the engine
//! (`crate::engine::cpuid_probe`) and its cached answer in `crate::launch`.

use super::kvm::{HostError, open_kvm, supported_guest_cpuid};
use crate::cpu::guest::GuestCpuid;

/// The KVM facts Vireo uses.
#[derive(Debug, Clone)]
pub struct KvmCaps {
    /// KVM_GET_API_VERSION (12 on every supported kernel).
    pub api_version: i32,
    /// The most vCPUs one VM may have.
    pub max_vcpus: usize,
    /// The recommended number of vCPUs (KVM_CAP_NR_VCPUS).
    pub recommended_vcpus: usize,
    /// KVM_GET_SUPPORTED_CPUID.
    pub supported_cpuid: GuestCpuid,
    /// Whether KVM is the paravirtual PVM flavour (no hardware virtualization).
    pub paravirtual: bool,
}

/// Reads the KVM facts (cheap: a few ioctls).
pub fn read() -> Result<KvmCaps, HostError> {
    let kvm = open_kvm()?;
    Ok(KvmCaps {
        api_version: kvm.get_api_version(),
        max_vcpus: kvm.get_max_vcpus(),
        recommended_vcpus: kvm.get_nr_vcpus(),
        supported_cpuid: supported_guest_cpuid(&kvm)?,
        paravirtual: is_pvm(),
    })
}

/// Whether the loaded KVM is PVM (paravirtualised, runs without VT-x/AMD-V).
pub fn is_pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}
