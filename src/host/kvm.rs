//! What KVM can give a guest: KVM_GET_SUPPORTED_CPUID and the feature MSRs, as [`CpuidData`].
//!
//! This is the truth the guest CPU must be checked against — a host CPU feature KVM cannot
//! virtualise (or, under a paravirtual KVM such as PVM, most of them) is not a guest feature.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, Msrs, kvm_cpuid_entry2, kvm_msr_entry};
use kvm_ioctls::Kvm;

use super::cpuid::MSR_ARCH_CAPABILITIES;
use crate::cpu::guest::{GuestCpuid, GuestCpuidEntry};
use crate::cpu::{CpuidData, CpuidLeaf, MsrValue};

/// A problem reaching KVM, saying how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// /dev/kvm could not be opened.
    #[error("cannot open /dev/kvm: {cause}; {hint}")]
    KvmUnavailable {
        /// The OS error.
        cause: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A KVM ioctl on the system fd failed.
    #[error("KVM {op} failed: {cause}")]
    Kvm {
        /// The operation, e.g. "KVM_GET_SUPPORTED_CPUID".
        op: &'static str,
        /// The OS error.
        cause: std::io::Error,
    },
}

impl HostError {
    fn kvm(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |e| Self::Kvm {
            op,
            cause: std::io::Error::from_raw_os_error(e.errno()),
        }
    }
}

/// Opens /dev/kvm, turning the usual failures into an error that says how to fix them. The one
/// place Vireo opens KVM: the engine, the probes and host validation all come through here.
pub fn open_kvm() -> Result<Kvm, HostError> {
    Kvm::new().map_err(|e| {
        let cause = std::io::Error::from_raw_os_error(e.errno());
        let hint = match e.errno() {
            libc::ENOENT => {
                "load the KVM module (modprobe kvm_intel or kvm_amd) and enable virtualization in the firmware"
            }
            libc::EACCES | libc::EPERM => {
                "add your user to the 'kvm' group (sudo usermod -aG kvm $USER) and log in again"
            }
            _ => "check that KVM works on this host (vireoctl host-validate)",
        };
        HostError::KvmUnavailable { cause, hint }
    })
}

/// The CPUID KVM can present to a guest on this host, plus the arch-capabilities MSR value
/// KVM supports (when the kernel reports feature MSRs).
pub fn supported_cpuid() -> Result<CpuidData, HostError> {
    let kvm = open_kvm()?;
    let cpuid = kvm_supported_cpuid(&kvm)?;
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

/// KVM_GET_SUPPORTED_CPUID as a guest table.
pub fn supported_guest_cpuid(kvm: &Kvm) -> Result<GuestCpuid, HostError> {
    kvm_supported_cpuid(kvm).map(|c| from_kvm_cpuid(&c))
}

/// CPUID.1:ECX bit 24, the local APIC's TSC-deadline timer mode.
const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;

/// KVM_GET_SUPPORTED_CPUID plus what KVM offers only as a capability. The one reading of it.
///
/// KVM emulates the TSC-deadline timer in its in-kernel local APIC (which every Vireo VM has)
/// but leaves bit 24 out of the supported table and announces it as
/// `KVM_CAP_TSC_DEADLINE_TIMER` instead; QEMU adds the bit back the same way. Without it, a
/// host-passthrough or host-model guest lacks a feature every KVM host can give (Linux then
/// calibrates its APIC timer against emulated time, which fails under load: "APIC timer
/// disabled due to verification failure"), and named models that list `tsc-deadline`
/// (SandyBridge onwards) would be called unusable on hosts that run them.
fn kvm_supported_cpuid(kvm: &Kvm) -> Result<CpuId, HostError> {
    let mut cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(HostError::kvm("KVM_GET_SUPPORTED_CPUID"))?;
    if kvm.check_extension(kvm_ioctls::Cap::TscDeadlineTimer) {
        add_tsc_deadline(&mut cpuid);
    }
    Ok(cpuid)
}

/// Sets the TSC-deadline bit in leaf 1 (see [`kvm_supported_cpuid`]).
fn add_tsc_deadline(cpuid: &mut CpuId) {
    for entry in cpuid.as_mut_slice() {
        if entry.function == 1 {
            entry.ecx |= LEAF1_ECX_TSC_DEADLINE;
        }
    }
}

/// A CPUID table too large for KVM's fixed-size array.
#[derive(Debug, thiserror::Error)]
#[error("CPUID table of {entries} entries is too large for KVM")]
pub struct CpuidTooLarge {
    /// The table's entry count.
    pub entries: usize,
}

/// Converts a guest table into KVM's representation.
pub fn to_kvm_cpuid(table: &GuestCpuid) -> Result<CpuId, CpuidTooLarge> {
    let entries: Vec<kvm_cpuid_entry2> = table
        .entries()
        .iter()
        .map(|e| kvm_cpuid_entry2 {
            function: e.leaf,
            index: e.subleaf,
            flags: if e.index_significant {
                kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX
            } else {
                0
            },
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
            padding: [0; 3],
        })
        .collect();
    CpuId::from_entries(&entries).map_err(|_| CpuidTooLarge {
        entries: entries.len(),
    })
}

/// Converts KVM's CPUID representation into a guest table.
pub fn from_kvm_cpuid(cpuid: &CpuId) -> GuestCpuid {
    GuestCpuid::from_entries(cpuid.as_slice().iter().map(|e| GuestCpuidEntry {
        leaf: e.function,
        subleaf: e.index,
        index_significant: e.flags & kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0,
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_deadline_is_added_to_leaf_one_only() {
        let entry = |function, ecx| kvm_cpuid_entry2 {
            function,
            ecx,
            ..Default::default()
        };
        let mut cpuid = CpuId::from_entries(&[entry(0, 0), entry(1, 0x8000_0001), entry(7, 0)])
            .expect("three entries fit");
        add_tsc_deadline(&mut cpuid);
        let ecx: Vec<u32> = cpuid.as_slice().iter().map(|e| e.ecx).collect();
        assert_eq!(ecx, [0, 0x8100_0001, 0]);
    }

    /// Where KVM announces the TSC-deadline timer, every reading of the supported table has it
    /// (the bug: KVM_GET_SUPPORTED_CPUID leaves it out, so host-passthrough guests lacked it).
    #[test]
    fn supported_table_has_tsc_deadline_when_kvm_announces_it() {
        let kvm = match open_kvm() {
            Ok(kvm) => kvm,
            Err(e) => return crate::util::skip_or_fail(&e.to_string()),
        };
        let announced = kvm.check_extension(kvm_ioctls::Cap::TscDeadlineTimer);
        let table = supported_guest_cpuid(&kvm).expect("supported CPUID");
        let leaf1 = table.get(1, 0).expect("leaf 1");
        assert_eq!(leaf1.ecx & LEAF1_ECX_TSC_DEADLINE != 0, announced);
        let data = supported_cpuid().expect("supported CPUID data");
        let leaf1 = data.leaves.iter().find(|l| l.eax_in == 1).expect("leaf 1");
        assert_eq!(leaf1.ecx & LEAF1_ECX_TSC_DEADLINE != 0, announced);
    }
}
