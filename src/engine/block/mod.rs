//! Disk images as the virtio-blk device sees them: open an image for a [`DiskConfig`] (format
//! check, image lock, cache mode), then read, write, flush, discard and write zeroes at byte
//! offsets with guest-memory I/O vectors. Both formats go through `imago` (its raw driver is a
//! thin layer over preadv/pwritev/fallocate; it realigns requests for O_DIRECT). Image locks are
//! QEMU's (see `lock`), so Vireo, QEMU and `qemu-img` never write one image at once.
//! Also creates and inspects images for `vireoctl vol-create`, the wizard and details.
//!
//! Every error names the disk (target and path) and what to do about it, and an image that
//! fails to open is never modified.

use std::path::{Path, PathBuf};

use vm_memory::VolatileSlice;

use crate::engine::config::{DiskConfig, DiskFormat};

mod create;
mod image;
mod lock;
mod open;
mod probe;

/// Why a disk cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A problem with one disk of a VM, worded for the user: what is wrong and the fix.
    #[error("disk {target} ({path}): {problem}")]
    Disk {
        /// The target name (`vda`).
        target: String,
        /// The image path.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// Another VM or program holds the image in a way that conflicts with this use (its image
    /// lock, QEMU-compatible). A variant of its own so the launch layer can name the VM.
    #[error("{}", in_use_message(target.as_deref(), path, *write))]
    InUse {
        /// The disk's target name; `None` when no VM asked (resizing an image).
        target: Option<String>,
        /// The image path (for a qcow2 disk, possibly one of its backing files).
        path: PathBuf,
        /// Whether this use would write (or resize) the image.
        write: bool,
    },
    /// A problem with an image file outside a VM (creating or inspecting it).
    #[error("{path}: {problem}")]
    Image {
        /// The image path.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// The wording of [`BlockError::InUse`]: the fix differs for a writer and a reader.
fn in_use_message(target: Option<&str>, path: &Path, write: bool) -> String {
    let path = path.display();
    match (target, write) {
        (Some(t), true) => format!(
            "disk {t} ({path}) is in use by another VM or program; stop it, or attach the image \
             read-only if the other user only reads it"
        ),
        (Some(t), false) => format!(
            "disk {t} ({path}) is being written by another VM or program; stop it before \
             attaching the image"
        ),
        (None, _) => format!(
            "{path} is in use by a VM or another program; shut it down before changing the image"
        ),
    }
}

/// An open disk image the virtio-blk device reads and writes. Offsets and lengths are bytes;
/// the device only issues whole 512-byte sectors. Implementations honour the cache mode they
/// were opened with (`flush` is a no-op for `unsafe`; writethrough writes are durable on return).
pub trait DiskImage: Send {
    /// The guest-visible size in bytes.
    fn size(&self) -> u64;
    /// Fills `bufs` (in order) from `offset`. Reads past the end are an error.
    fn read_vectored(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> std::io::Result<()>;
    /// Writes `bufs` (in order) at `offset`.
    fn write_vectored(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> std::io::Result<()>;
    /// Makes every completed write durable (per the cache mode).
    fn flush(&mut self) -> std::io::Result<()>;
    /// Releases `len` bytes at `offset` (they read as zeroes afterwards, or keep old data where
    /// the format cannot tell; virtio allows either).
    fn discard(&mut self, offset: u64, len: u64) -> std::io::Result<()>;
    /// Makes `len` bytes at `offset` read as zeroes; `may_unmap` lets it free space doing so.
    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> std::io::Result<()>;
    /// Whether `discard` frees space (the device then offers VIRTIO_BLK_F_DISCARD).
    fn supports_discard(&self) -> bool;
    /// For a raw image: the file itself, so the device can keep several reads and writes in
    /// flight on it (a thread pool for `io='threads'`, io_uring for `io='native'`), guest
    /// sector N at byte N×512. `None`: everything goes through the methods above, one request
    /// after another (qcow2, whose metadata imago keeps).
    fn raw_file(&self) -> Option<RawFile> {
        None
    }
}

/// A raw image's descriptor for reads and writes submitted off the disk's thread.
#[derive(Debug, Clone, Copy)]
pub struct RawFile {
    /// The image file, open with the cache mode's flags; valid while the image is.
    pub fd: std::os::fd::RawFd,
    /// What buffers, lengths and offsets must be multiples of (512 under O_DIRECT, else 1).
    pub alignment: u64,
    /// How requests are submitted (`io=`).
    pub io: crate::engine::config::IoMode,
    /// Writethrough: each write is synced before it completes.
    pub sync_each_write: bool,
}

/// Opens the image of `disk` for a VM: checks the file exists and is readable (and writable
/// unless read-only), that its content matches the declared format, takes the image lock
/// (shared for read-only, exclusive otherwise, so two VMs can never write one image), and
/// applies the cache mode (O_DIRECT for `none`, refusing filesystems without it).
///
/// Raw images let the device keep several reads and writes in flight ([`DiskImage::raw_file`]:
/// a thread pool for `io='threads'`, io_uring for `io='native'`); qcow2 images go through
/// imago one request at a time.
pub fn open(disk: &DiskConfig) -> Result<Box<dyn DiskImage>, BlockError> {
    open::open(disk)
}

/// What an image file is, for listings and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The detected format.
    pub format: DiskFormat,
    /// The size the guest sees, in bytes.
    pub virtual_size: u64,
    /// Bytes the file occupies on the host (allocated blocks).
    pub allocated: u64,
    /// A qcow2 image's backing file, as recorded in the image.
    pub backing: Option<PathBuf>,
}

/// Detects the format and sizes of the image at `path` without opening it for a VM (no lock).
pub fn inspect(path: &Path) -> Result<ImageInfo, BlockError> {
    create::inspect(path)
}

/// Creates a new image of `virtual_size` bytes (a sparse raw file, or a qcow2 image with
/// 64 KiB clusters), refusing to overwrite an existing file. `progress` is called with a
/// fraction from 0 to 1 as the work advances.
pub fn create(
    path: &Path,
    format: DiskFormat,
    virtual_size: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<(), BlockError> {
    create::create(path, format, virtual_size, progress)
}

/// Grows (or, with `allow_shrink`, shrinks) the image at `path` to `new_size` bytes. Only for
/// an image no running VM holds: takes the image lock for the duration.
pub fn resize(path: &Path, new_size: u64, allow_shrink: bool) -> Result<(), BlockError> {
    create::resize(path, new_size, allow_shrink)
}
