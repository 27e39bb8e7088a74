//! Direct kernel boot: load a bzImage or ELF kernel, the initrd and the command line, and write
//! Linux's zero page (boot params with the e820 map and the ACPI RSDP address).
//!
//! Both formats are entered through Linux's 64-bit boot protocol: long mode, identity paging,
//! RSI = zero page. For a bzImage that is the protected-mode kernel's start + 0x200; for an ELF
//! it is the ELF entry point.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::loader::{Cmdline, KernelLoader, bzimage::BzImage, elf::Elf, load_cmdline};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use crate::engine::config::BootSource;
use crate::engine::error::EngineError;
use crate::engine::layout::{
    ACPI_ADDR, CMDLINE_ADDR, CMDLINE_MAX, EBDA_START, HIMEM_START, MMIO_GAP_END, PCI_ECAM_BASE,
    PCI_ECAM_SIZE, ZERO_PAGE_ADDR, low_ram_end,
};

const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448; // "HdrS"
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT: u32 = 0x100_0000;
const XLF_KERNEL_64: u16 = 1;
const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;
/// Offset of the 64-bit entry point from the start of a bzImage's protected-mode kernel.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;

/// Where the loaded kernel is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The 64-bit entry point.
    pub entry: u64,
}

/// Loads everything `boot` names into `mem` and writes the zero page.
pub fn load(
    mem: &GuestMemoryMmap,
    memory_bytes: u64,
    boot: &BootSource,
) -> Result<LoadedKernel, EngineError> {
    let kernel_err = |reason: String| EngineError::Kernel {
        path: boot.kernel.clone(),
        reason,
    };
    let mut kernel = File::open(&boot.kernel)
        .map_err(|e| kernel_err(format!("{e}; check the path in <os><kernel>")))?;
    let is_elf = starts_with_elf_magic(&mut kernel).map_err(|e| kernel_err(e.to_string()))?;

    let (entry, mut params) = if is_elf {
        let loaded = Elf::load(mem, None, &mut kernel, Some(GuestAddress(HIMEM_START)))
            .map_err(|e| kernel_err(format!("not a loadable x86-64 ELF kernel: {e}")))?;
        let mut params = boot_params::default();
        params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
        params.hdr.header = KERNEL_HDR_MAGIC;
        params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT;
        (loaded.kernel_load.raw_value(), params)
    } else {
        let loaded = BzImage::load(mem, None, &mut kernel, Some(GuestAddress(HIMEM_START)))
            .map_err(|e| {
                kernel_err(format!(
                    "neither an ELF nor a bzImage kernel ({e}); give a Linux bzImage or vmlinux"
                ))
            })?;
        let hdr = loaded.setup_header.ok_or_else(|| {
            kernel_err("bzImage without a setup header; the file is damaged".into())
        })?;
        if hdr.xloadflags & XLF_KERNEL_64 == 0 {
            return Err(kernel_err(
                "this bzImage has no 64-bit entry point (boot protocol 2.12+ with a 64-bit kernel is needed)"
                    .into(),
            ));
        }
        let params = boot_params {
            hdr,
            ..Default::default()
        };
        (
            loaded.kernel_load.raw_value() + BZIMAGE_64BIT_ENTRY_OFFSET,
            params,
        )
    };
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;

    write_cmdline(mem, &boot.cmdline, &mut params)?;
    if let Some(initrd) = &boot.initrd {
        load_initrd(mem, memory_bytes, initrd, &mut params)?;
    }
    fill_e820(&mut params, memory_bytes)?;
    params.acpi_rsdp_addr = ACPI_ADDR;

    let boot_params = BootParams::new::<boot_params>(&params, GuestAddress(ZERO_PAGE_ADDR));
    LinuxBootConfigurator::write_bootparams::<GuestMemoryMmap>(&boot_params, mem)
        .map_err(|e| EngineError::Boot(format!("writing the zero page: {e}")))?;
    Ok(LoadedKernel { entry })
}

fn starts_with_elf_magic(file: &mut File) -> std::io::Result<bool> {
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(n == 4 && magic == *b"\x7fELF")
}

fn write_cmdline(
    mem: &GuestMemoryMmap,
    text: &str,
    params: &mut boot_params,
) -> Result<(), EngineError> {
    let cmdline = Cmdline::try_from(text, CMDLINE_MAX)
        .map_err(|e| EngineError::Cmdline(format!("{e} (at most {CMDLINE_MAX} bytes)")))?;
    load_cmdline(mem, GuestAddress(CMDLINE_ADDR), &cmdline)
        .map_err(|e| EngineError::Cmdline(e.to_string()))?;
    params.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    params.hdr.cmdline_size = text.len() as u32 + 1;
    Ok(())
}

/// Places the initrd as high in low RAM as the kernel allows, page aligned.
fn load_initrd(
    mem: &GuestMemoryMmap,
    memory_bytes: u64,
    path: &Path,
    params: &mut boot_params,
) -> Result<(), EngineError> {
    let initrd_err = |reason: String| EngineError::Initrd {
        path: path.to_path_buf(),
        reason,
    };
    let mut file =
        File::open(path).map_err(|e| initrd_err(format!("{e}; check the path in <os><initrd>")))?;
    let size = file
        .metadata()
        .map_err(|e| initrd_err(e.to_string()))?
        .len();
    let max_addr = if params.hdr.initrd_addr_max != 0 {
        u64::from(params.hdr.initrd_addr_max)
    } else {
        0x37ff_ffff
    };
    let top = low_ram_end(memory_bytes).min(max_addr + 1);
    let lowest = HIMEM_START + (16 << 20);
    let start = top.checked_sub(size).map(|a| a & !0xfff);
    let start = match start {
        Some(start) if start >= lowest => start,
        _ => {
            return Err(initrd_err(format!(
                "{size} bytes do not fit in {} MiB of guest memory beside the kernel; give the VM more memory or use a smaller initrd",
                memory_bytes >> 20
            )));
        }
    };
    mem.read_volatile_from(GuestAddress(start), &mut file, size as usize)
        .map_err(|e| initrd_err(format!("reading it into guest memory: {e}")))?;
    params.hdr.ramdisk_image = start as u32;
    params.hdr.ramdisk_size = size as u32;
    Ok(())
}

fn fill_e820(params: &mut boot_params, memory_bytes: u64) -> Result<(), EngineError> {
    let low_end = low_ram_end(memory_bytes);
    let mut entries = vec![
        (0, EBDA_START, E820_RAM),
        (EBDA_START, HIMEM_START - EBDA_START, E820_RESERVED),
        (HIMEM_START, low_end - HIMEM_START, E820_RAM),
        // As on QEMU's q35: the MCFG's window is reserved, so Linux trusts and uses it.
        (PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED),
    ];
    if memory_bytes > low_end {
        entries.push((MMIO_GAP_END, memory_bytes - low_end, E820_RAM));
    }
    if entries.len() > params.e820_table.len() {
        return Err(EngineError::Boot("too many e820 entries".into()));
    }
    for (slot, (addr, size, kind)) in params.e820_table.iter_mut().zip(&entries) {
        *slot = boot_e820_entry {
            addr: *addr,
            size: *size,
            r#type: *kind,
        };
    }
    params.e820_entries = entries.len() as u8;
    Ok(())
}
