//! The plain description of one disk the engine attaches (virtio-blk). `crate::launch::prepare`
//! builds these from a domain's `<disk>` elements, in target order (`vda`, `vdb`, …), so the
//! guest sees `/dev/vdX` in that order.

use std::path::PathBuf;

/// The image format of a disk (`<driver type=…>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskFormat {
    /// A plain image: guest sector N is byte N×512 of the file.
    #[default]
    Raw,
    /// QEMU's copy-on-write format (with backing chains), through `imago`.
    Qcow2,
}

impl DiskFormat {
    /// libvirt's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
        }
    }

    /// Parses libvirt's spelling.
    pub fn from_libvirt(value: &str) -> Option<Self> {
        match value {
            "raw" => Some(Self::Raw),
            "qcow2" => Some(Self::Qcow2),
            _ => None,
        }
    }
}

/// `<driver cache=…>`: how writes reach the image (QEMU's meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// O_DIRECT (bypasses the host page cache); the guest's flushes reach the disk.
    None,
    /// The host page cache holds writes until the guest flushes (the default).
    #[default]
    Writeback,
    /// Every write reaches the disk before it completes; the guest sees no write cache.
    Writethrough,
    /// The guest's flushes are ignored: fast, and lost on a host crash.
    Unsafe,
}

impl CacheMode {
    /// libvirt's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Writeback => "writeback",
            Self::Writethrough => "writethrough",
            Self::Unsafe => "unsafe",
        }
    }

    /// Parses libvirt's spelling (`directsync` is writethrough plus O_DIRECT: treated as
    /// writethrough over O_DIRECT is not offered, so it maps to `None`'s caller-side refusal).
    pub fn from_libvirt(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "writeback" | "default" => Some(Self::Writeback),
            "writethrough" => Some(Self::Writethrough),
            "unsafe" => Some(Self::Unsafe),
            _ => None,
        }
    }
}

/// `<driver io=…>`: how requests are submitted to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// Synchronous system calls from the disk's own I/O thread.
    #[default]
    Threads,
    /// Linux io_uring (libvirt's `native`).
    Native,
}

/// One virtio-blk disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The target name (`vda`), used in every message about this disk.
    pub target: String,
    /// The image file.
    pub path: PathBuf,
    /// Its declared format; opening fails when the file is something else.
    pub format: DiskFormat,
    /// The guest may not write (`<readonly/>`, and every CD-ROM).
    pub readonly: bool,
    /// Cache mode.
    pub cache: CacheMode,
    /// Submission mode.
    pub io: IoMode,
    /// `discard='unmap'`: guest discards free space in the image.
    pub discard: bool,
    /// `<serial>`: what the guest reads as the disk's serial number (at most 20 bytes).
    pub serial: Option<String>,
    /// Whether the domain declared it `device='cdrom'` (attached read-only as a virtio disk).
    pub cdrom: bool,
}
