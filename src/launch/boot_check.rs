//! Checking a kernel and initrd the way start loads them, without starting anything: the
//! wizard and the details window say "not a kernel" or "does not fit in memory" when the file
//! is chosen, not when the VM first starts.
//!
//! The files go through the engine's own loader ([`crate::engine::boot::kernel::load`]) into
//! a scratch guest memory of the VM's size that no vCPU ever runs. The memory is an anonymous
//! mapping, so only the pages the kernel and initrd fill are ever touched; it is unmapped on
//! return.

use std::path::Path;

use vm_memory::GuestMemoryMmap;

use crate::engine::{BootSource, EngineError};

/// Loads `kernel` (an ELF or a 64-bit bzImage) and `initrd` (when given) as a VM with
/// `memory_bytes` of RAM would at start; `Err` names the file, what is wrong and the fix.
pub fn check_boot_files(
    kernel: &Path,
    initrd: Option<&Path>,
    memory_bytes: u64,
) -> Result<(), EngineError> {
    let memory = GuestMemoryMmap::from_ranges(&crate::engine::layout::ram_regions(memory_bytes))
        .map_err(|e| EngineError::Memory {
            bytes: memory_bytes,
            reason: e.to_string(),
        })?;
    let boot = BootSource {
        kernel: kernel.to_path_buf(),
        initrd: initrd.map(Path::to_path_buf),
        cmdline: String::new(),
    };
    crate::engine::boot::kernel::load(&memory, memory_bytes, &boot).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_is_not_a_kernel() {
        let err = check_boot_files(Path::new("/etc/passwd"), None, 256 << 20).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/etc/passwd"), "{text}");
        assert!(text.contains("neither an ELF nor a bzImage"), "{text}");
    }

    #[test]
    fn a_missing_kernel_is_named() {
        let err = check_boot_files(Path::new("/nonexistent/bzImage"), None, 256 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/bzImage"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }

    /// A minimal x86-64 ELF executable: one PT_LOAD segment of a few bytes at 16 MiB.
    fn tiny_elf() -> Vec<u8> {
        let mut elf = vec![0u8; 0x80];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little endian
        elf[6] = 1; // version
        elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[24..32].copy_from_slice(&0x100_0000u64.to_le_bytes()); // entry
        elf[32..40].copy_from_slice(&0x40u64.to_le_bytes()); // phoff
        elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        elf[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = 0x40;
        elf[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        elf[ph + 8..ph + 16].copy_from_slice(&0x78u64.to_le_bytes()); // offset
        elf[ph + 16..ph + 24].copy_from_slice(&0x100_0000u64.to_le_bytes()); // vaddr
        elf[ph + 24..ph + 32].copy_from_slice(&0x100_0000u64.to_le_bytes()); // paddr
        elf[ph + 32..ph + 40].copy_from_slice(&8u64.to_le_bytes()); // filesz
        elf[ph + 40..ph + 48].copy_from_slice(&8u64.to_le_bytes()); // memsz
        elf
    }

    #[test]
    fn an_elf_kernel_loads_and_an_initrd_must_fit() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("kernel.elf");
        std::fs::write(&kernel, tiny_elf()).unwrap();
        check_boot_files(&kernel, None, 64 << 20).unwrap();
        let initrd = dir.path().join("initrd.img");
        let file = std::fs::File::create(&initrd).unwrap();
        file.set_len(100 << 20).unwrap();
        check_boot_files(&kernel, Some(&initrd), 512 << 20).unwrap();
        let err = check_boot_files(&kernel, Some(&initrd), 64 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("initrd.img") && err.contains("do not fit"),
            "{err}"
        );
    }
}
