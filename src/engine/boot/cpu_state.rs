//! The register state a vCPU starts in: the BSP in 64-bit long mode at the kernel entry
//! (Linux's 64-bit boot protocol), every vCPU with sane FPU, MSR and local-APIC settings.

use kvm_bindings::{Msrs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::engine::error::EngineError;
use crate::engine::layout::{
    BOOT_STACK_POINTER, GDT_ADDR, IDT_ADDR, PD_ADDR, PDPT_ADDR, PML4_ADDR, ZERO_PAGE_ADDR,
};

/// Flat GDT: null, 64-bit code, data, and a TSS descriptor that KVM needs for a valid TR.
const GDT: [u64; 4] = [
    0,
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x808b, 0, 0xfffff),
];
const CODE_SELECTOR: u16 = 0x08;
const DATA_SELECTOR: u16 = 0x10;
const TSS_SELECTOR: u16 = 0x18;

const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
}

/// The `kvm_segment` a GDT descriptor describes (what the CPU would load into the hidden part).
fn segment_from_gdt(entry: u64, selector: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let limit_raw = (entry & 0xffff) | ((entry >> 32) & 0xf_0000);
    let granular = (entry >> 55) & 1;
    kvm_segment {
        base,
        // With 4 KiB granularity the limit counts pages.
        limit: if granular == 1 {
            ((limit_raw << 12) | 0xfff) as u32
        } else {
            limit_raw as u32
        },
        selector,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g: granular as u8,
        avl: ((entry >> 52) & 1) as u8,
        unusable: if (entry >> 47) & 1 == 1 { 0 } else { 1 },
        padding: 0,
    }
}

/// Writes the GDT, an empty IDT and identity page tables for the first 1 GiB (2 MiB pages).
pub fn write_boot_tables(mem: &GuestMemoryMmap) -> Result<(), EngineError> {
    let write = |addr: u64, value: u64| {
        mem.write_obj(value, GuestAddress(addr))
            .map_err(|e| EngineError::Boot(format!("writing boot table at {addr:#x}: {e}")))
    };
    for (i, entry) in GDT.iter().enumerate() {
        write(GDT_ADDR + 8 * i as u64, *entry)?;
    }
    write(IDT_ADDR, 0)?;
    // Present + writable; PDEs also "page size" (2 MiB).
    write(PML4_ADDR, PDPT_ADDR | 0x3)?;
    write(PDPT_ADDR, PD_ADDR | 0x3)?;
    for i in 0..512u64 {
        write(PD_ADDR + 8 * i, (i << 21) | 0x83)?;
    }
    Ok(())
}

/// Puts the boot vCPU into 64-bit mode at `entry` with RSI pointing at the zero page.
pub fn set_long_mode_entry(vcpu: &VcpuFd, entry: u64) -> Result<(), EngineError> {
    let mut sregs: kvm_sregs = vcpu
        .get_sregs()
        .map_err(EngineError::kvm("KVM_GET_SREGS"))?;
    let code = segment_from_gdt(GDT[1], CODE_SELECTOR);
    let data = segment_from_gdt(GDT[2], DATA_SELECTOR);
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (std::mem::size_of_val(&GDT) - 1) as u16;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = segment_from_gdt(GDT[3], TSS_SELECTOR);
    const CR0_PE: u64 = 1;
    const CR0_ET: u64 = 1 << 4;
    const CR0_PG: u64 = 1 << 31;
    const CR4_PAE: u64 = 1 << 5;
    const EFER_LME: u64 = 1 << 8;
    const EFER_LMA: u64 = 1 << 10;
    sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 |= CR4_PAE;
    sregs.efer |= EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs)
        .map_err(EngineError::kvm("KVM_SET_SREGS"))?;

    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_ADDR,
        ..Default::default()
    };
    vcpu.set_regs(&regs)
        .map_err(EngineError::kvm("KVM_SET_REGS"))
}

/// FPU control word and MXCSR at their architectural reset values.
pub fn set_fpu(vcpu: &VcpuFd) -> Result<(), EngineError> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(EngineError::kvm("KVM_SET_FPU"))
}

/// Boot MSRs: fast strings on, and MTRRs enabled with write-back as the default memory type
/// (without it a guest with hardware KVM runs all of RAM uncached).
pub fn set_boot_msrs(vcpu: &VcpuFd) -> Result<(), EngineError> {
    const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
    const MISC_ENABLE_FAST_STRING: u64 = 1;
    const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
    const MTRR_ENABLE_WRITEBACK: u64 = (1 << 11) | 6;
    let entries = [
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK),
    ]
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    });
    let msrs = Msrs::from_entries(&entries)
        .map_err(|e| EngineError::Boot(format!("building the MSR list: {e:?}")))?;
    let written = vcpu
        .set_msrs(&msrs)
        .map_err(EngineError::kvm("KVM_SET_MSRS"))?;
    if written != entries.len() {
        // Not fatal: some KVMs (PVM) refuse MTRR writes; the guest then programs them itself.
        tracing::debug!(written, "KVM accepted only part of the boot MSRs");
    }
    Ok(())
}

/// Local APIC LINT0 as ExtINT (the legacy PIC's output) and LINT1 as NMI, as firmware leaves them.
pub fn set_lapic_lints(vcpu: &VcpuFd) -> Result<(), EngineError> {
    const APIC_LVT0: usize = 0x350;
    const APIC_LVT1: usize = 0x360;
    const DELIVERY_EXTINT: u32 = 0x7 << 8;
    const DELIVERY_NMI: u32 = 0x4 << 8;
    let mut lapic = vcpu
        .get_lapic()
        .map_err(EngineError::kvm("KVM_GET_LAPIC"))?;
    for (offset, mode) in [(APIC_LVT0, DELIVERY_EXTINT), (APIC_LVT1, DELIVERY_NMI)] {
        let bytes: [u8; 4] = lapic.regs[offset..offset + 4]
            .iter()
            .map(|b| *b as u8)
            .collect::<Vec<u8>>()
            .try_into()
            .expect("four bytes");
        let value = (u32::from_le_bytes(bytes) & !0x700) | mode;
        for (i, b) in value.to_le_bytes().iter().enumerate() {
            lapic.regs[offset + i] = *b as _;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(EngineError::kvm("KVM_SET_LAPIC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_segment_is_64_bit_present_flat() {
        let cs = segment_from_gdt(GDT[1], CODE_SELECTOR);
        assert_eq!((cs.l, cs.db, cs.present, cs.s, cs.type_), (1, 0, 1, 1, 0xb));
        assert_eq!((cs.base, cs.limit, cs.g), (0, 0xffff_ffff, 1));
    }

    #[test]
    fn tss_is_a_busy_system_segment() {
        let tr = segment_from_gdt(GDT[3], TSS_SELECTOR);
        assert_eq!((tr.s, tr.type_, tr.present), (0, 0xb, 1));
    }
}
