//! What this host's KVM can do, as the engine and host validation need it: API version, vCPU
//! limits, the CPUID it supports, whether it is paravirtual (PVM), and whether it enforces the
//! CPUID table it is given — measured by running a few bytes of guest code.

use kvm_ioctls::{Kvm, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::cpu::guest::GuestCpuid;
use crate::engine::boot::cpu_state;
use crate::engine::machine::register_memory;
use crate::engine::{EngineError, from_kvm_cpuid, open_kvm, to_kvm_cpuid};

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
pub fn read() -> Result<KvmCaps, EngineError> {
    let kvm = open_kvm()?;
    Ok(KvmCaps {
        api_version: kvm.get_api_version(),
        max_vcpus: kvm.get_max_vcpus(),
        recommended_vcpus: kvm.get_nr_vcpus(),
        supported_cpuid: supported_cpuid(&kvm)?,
        paravirtual: is_pvm(),
    })
}

/// KVM_GET_SUPPORTED_CPUID as a guest table.
pub fn supported_cpuid(kvm: &Kvm) -> Result<GuestCpuid, EngineError> {
    kvm.get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .map(|c| from_kvm_cpuid(&c))
        .map_err(EngineError::kvm("KVM_GET_SUPPORTED_CPUID"))
}

/// Whether the loaded KVM is PVM (paravirtualised, runs without VT-x/AMD-V).
pub fn is_pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

/// The value written into leaf 0 EBX of the test table ("VIRO"): no real CPU reports it.
const MARKER: u32 = u32::from_le_bytes(*b"VIRO");
/// The port the test guest writes its CPUID result to.
const RESULT_PORT: u16 = 0x510;
/// Where the test code is placed and entered (long mode, identity mapped).
const CODE_ADDR: u64 = 0x10_0000;
/// Leaf 1 ECX in the test table: only the hypervisor bit, so any other feature bit the guest
/// sees came from the host, not from the table.
const LEAF1_ECX: u32 = 1 << 31;
/// Reports leaf 0 EBX, then leaf 1 ECX, on the result port:
/// xor eax,eax; xor ecx,ecx; cpuid; mov eax,ebx; mov dx,0x510; out dx,eax;
/// mov eax,1; xor ecx,ecx; cpuid; mov eax,ecx; mov dx,0x510; out dx,eax; hlt; jmp $-3
const CPUID_TEST_CODE: [u8; 34] = [
    0x31, 0xc0, 0x31, 0xc9, 0x0f, 0xa2, 0x89, 0xd8, 0x66, 0xba, 0x10, 0x05, 0xef, //
    0xb8, 0x01, 0x00, 0x00, 0x00, 0x31, 0xc9, 0x0f, 0xa2, 0x89, 0xc8, 0x66, 0xba, 0x10, 0x05,
    0xef, //
    0xf4, 0xeb, 0xfd, 0x90, 0x90,
];

/// [`cpuid_is_enforced`], answered from the per-boot cache when this host state has been
/// measured before (see [`super::enforcement_cache`]); `api_version` is KVM_GET_API_VERSION.
pub fn cpuid_is_enforced_cached(api_version: i32) -> Result<bool, EngineError> {
    let path = super::enforcement_cache::default_path();
    let key = super::enforcement_cache::ProbeKey::current(api_version);
    super::enforcement_cache::cached_or_probe(path.as_deref(), key.as_ref(), cpuid_is_enforced)
}

/// Whether this host's KVM enforces guest CPUID, from the per-boot cache where it can be
/// (for callers without a KVM handle of their own: the GUI, `validate`).
pub fn cpuid_enforcement() -> Result<bool, EngineError> {
    cpuid_is_enforced_cached(open_kvm()?.get_api_version())
}

/// Runs a tiny guest that executes CPUID against a deliberately altered table (a made-up vendor
/// word in leaf 0, almost every feature bit of leaf 1 cleared) and reports whether the guest saw
/// exactly that table. PVM, for one, keeps leaf 0 but hands the guest the host's feature bits.
pub fn cpuid_is_enforced() -> Result<bool, EngineError> {
    let kvm = open_kvm()?;
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).map_err(|e| {
        EngineError::Memory {
            bytes: 4 << 20,
            reason: e.to_string(),
        }
    })?;
    // Declared after `memory`, so the VM (and its vCPU) are dropped before the memory is.
    let vm = kvm.create_vm().map_err(EngineError::kvm("KVM_CREATE_VM"))?;
    register_memory(&vm, &memory)?;
    cpu_state::write_boot_tables(&memory)?;
    memory
        .write_slice(&CPUID_TEST_CODE, GuestAddress(CODE_ADDR))
        .map_err(|e| EngineError::Boot(e.to_string()))?;

    let mut table = supported_cpuid(&kvm)?;
    let Some(leaf0) = table.get_mut(0, 0) else {
        return Err(EngineError::Config(
            "KVM reports no CPUID leaf 0; this KVM is unusable".into(),
        ));
    };
    leaf0.ebx = MARKER;
    if let Some(leaf1) = table.get_mut(1, 0) {
        leaf1.ecx = LEAF1_ECX;
    }
    let mut vcpu = vm
        .create_vcpu(0)
        .map_err(EngineError::kvm("KVM_CREATE_VCPU"))?;
    vcpu.set_cpuid2(&to_kvm_cpuid(&table)?)
        .map_err(EngineError::kvm("KVM_SET_CPUID2"))?;
    cpu_state::set_long_mode_entry(&vcpu, CODE_ADDR)?;
    let mut seen = Vec::new();
    for _ in 0..16 {
        match vcpu.run().map_err(EngineError::kvm("KVM_RUN"))? {
            VcpuExit::IoOut(RESULT_PORT, data) if data.len() == 4 => {
                seen.push(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
                if seen.len() == 2 {
                    return Ok(seen == [MARKER, LEAF1_ECX]);
                }
            }
            VcpuExit::IoOut(..) | VcpuExit::IoIn(..) => continue,
            other => {
                return Err(EngineError::Boot(format!(
                    "the CPUID test guest stopped unexpectedly: {other:?}"
                )));
            }
        }
    }
    Err(EngineError::Boot(
        "the CPUID test guest never reported".into(),
    ))
}
