//! Whether this host's KVM enforces the CPUID table it is given, measured by running a few
//! bytes of guest code. PVM, for one, keeps leaf 0 but hands the guest the host's feature bits.
//! The answer is cached per host boot by `crate::launch` (see `crate::host::enforcement_cache`).

use kvm_ioctls::VcpuExit;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::EngineError;
use super::boot::cpu_state;
use super::machine::register_memory;
use crate::host::kvm::{open_kvm, supported_guest_cpuid, to_kvm_cpuid};

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

    let mut table = supported_guest_cpuid(&kvm)?;
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
    vcpu.set_cpuid2(&to_kvm_cpuid(&table).map_err(|e| EngineError::Config(e.to_string()))?)
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
