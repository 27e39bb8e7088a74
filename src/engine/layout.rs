//! Where things live in guest-physical memory. The low-memory map follows the usual PC layout
//! (and the one Firecracker and cloud-hypervisor use), so Linux finds what it expects.

use vm_memory::GuestAddress;

/// GDT for the 64-bit boot state.
pub const GDT_ADDR: u64 = 0x500;
/// An empty IDT: any exception before the kernel installs its own is a triple fault.
pub const IDT_ADDR: u64 = 0x520;
/// Linux zero page (`struct boot_params`).
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Initial stack pointer (grows down below the zero page's neighbour).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Identity page tables: PML4, one PDPT, one PD of 2 MiB pages (maps the first 1 GiB).
pub const PML4_ADDR: u64 = 0x9000;
/// Page-directory-pointer table.
pub const PDPT_ADDR: u64 = 0xa000;
/// Page directory.
pub const PD_ADDR: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Room for the command line (Linux accepts 2 KiB on x86 by default, newer ones more).
pub const CMDLINE_MAX: usize = 4096;
/// End of conventional low RAM; the EBDA and the BIOS area start here.
pub const EBDA_START: u64 = 0x9fc00;
/// ACPI tables: in the BIOS read-only area, where the RSDP search looks.
pub const ACPI_ADDR: u64 = 0xe0000;
/// Where kernels are loaded ("high memory" in the boot protocol).
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the hole below 4 GiB kept free of RAM for device MMIO.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of that hole.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// PCI Express enhanced configuration space (ECAM) for bus 0, announced in the ACPI MCFG and
/// reserved in the e820 map: 32 devices × 8 functions × 4 KiB.
pub const PCI_ECAM_BASE: u64 = 0xe000_0000;
/// Size of the ECAM window (bus 0 only).
pub const PCI_ECAM_SIZE: u64 = 1 << 20;
/// The 32-bit window for PCI device BARs, below the ECAM window.
pub const PCI_MMIO32_START: u64 = MMIO_GAP_START;
/// End (exclusive) of the 32-bit BAR window.
pub const PCI_MMIO32_END: u64 = PCI_ECAM_BASE;

/// The guest RAM regions for `memory_bytes` of RAM: below the MMIO gap, and the rest above 4 GiB.
pub fn ram_regions(memory_bytes: u64) -> Vec<(GuestAddress, usize)> {
    let low = memory_bytes.min(MMIO_GAP_START);
    let mut regions = vec![(GuestAddress(0), low as usize)];
    if memory_bytes > low {
        regions.push((GuestAddress(MMIO_GAP_END), (memory_bytes - low) as usize));
    }
    regions
}

/// The end of the RAM below the MMIO gap.
pub fn low_ram_end(memory_bytes: u64) -> u64 {
    memory_bytes.min(MMIO_GAP_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_region() {
        assert_eq!(ram_regions(256 << 20), vec![(GuestAddress(0), 256 << 20)]);
    }

    #[test]
    fn large_memory_skips_the_mmio_gap() {
        let r = ram_regions(4 << 30);
        assert_eq!(r[0], (GuestAddress(0), MMIO_GAP_START as usize));
        assert_eq!(r[1], (GuestAddress(MMIO_GAP_END), (1 << 30) as usize));
    }
}
