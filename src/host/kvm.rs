//! What KVM can give a guest: KVM_GET_SUPPORTED_CPUID and the feature MSRs, as [`CpuidData`].
//!
//! This is the truth the guest CPU must be checked against — a host CPU feature KVM cannot
//! virtualise (or, under a paravirtual KVM such as PVM, most of them) is not a guest feature.

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, Msrs, kvm_msr_entry};
use kvm_ioctls::Kvm;

use super::cpuid::MSR_ARCH_CAPABILITIES;
use crate::cpu::{CpuidData, CpuidLeaf, MsrValue};

/// A problem reaching KVM, saying how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "/dev/kvm does not exist: enable virtualisation in the firmware and load the kvm module (modprobe kvm_intel or kvm_amd)"
    )]
    KvmMissing,
    #[error(
        "/dev/kvm is not accessible: add your user to the 'kvm' group (then log in again) or adjust its permissions"
    )]
    KvmPermission,
    #[error("cannot open /dev/kvm: {0}")]
    KvmOpen(std::io::Error),
    #[error("KVM_GET_SUPPORTED_CPUID failed: {0}")]
    SupportedCpuid(std::io::Error),
}

/// Opens `/dev/kvm`, turning the common failures into actionable errors.
pub fn open_kvm() -> Result<Kvm, HostError> {
    Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT => HostError::KvmMissing,
        libc::EACCES | libc::EPERM => HostError::KvmPermission,
        _ => HostError::KvmOpen(std::io::Error::from_raw_os_error(e.errno())),
    })
}

/// The CPUID KVM can present to a guest on this host, plus the arch-capabilities MSR value
/// KVM supports (when the kernel reports feature MSRs).
pub fn supported_cpuid() -> Result<CpuidData, HostError> {
    let kvm = open_kvm()?;
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| HostError::SupportedCpuid(std::io::Error::from_raw_os_error(e.errno())))?;
    let mut leaves: Vec<CpuidLeaf> = cpuid
        .as_slice()
        .iter()
        .map(|e| CpuidLeaf {
            eax_in: e.function,
            ecx_in: e.index,
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
        })
        .collect();
    leaves.sort_by_key(|l| (l.eax_in, l.ecx_in));
    let msrs = feature_msr(&kvm, MSR_ARCH_CAPABILITIES)
        .into_iter()
        .collect();
    Ok(CpuidData { leaves, msrs })
}

/// The value KVM reports for a feature MSR, if the kernel lists it as one.
fn feature_msr(kvm: &Kvm, index: u32) -> Option<MsrValue> {
    let listed = kvm.get_msr_feature_index_list().ok()?;
    if !listed.as_slice().contains(&index) {
        return None;
    }
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index,
        ..Default::default()
    }])
    .ok()?;
    match kvm.get_msrs(&mut msrs) {
        Ok(1) => {
            let value = msrs.as_slice()[0].data;
            Some(MsrValue {
                index,
                eax: value as u32,
                edx: (value >> 32) as u32,
            })
        }
        _ => None,
    }
}
