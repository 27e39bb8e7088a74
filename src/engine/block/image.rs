//! An open image as the device sees it: `imago`'s format layer (raw or qcow2) over a file opened
//! with the cache mode's flags, plus the cache mode's flush rules and the image locks, held as
//! long as the image is open.
//!
//! `imago` realigns requests for O_DIRECT itself (bounce buffers when a guest buffer or offset
//! is not aligned as the file system needs), and loops over short reads and writes.

use std::io;

use imago::FormatAccess;
use imago::file::File as ImagoFile;
use imago::io_buffers::{IoVector, IoVectorMut};
use vm_memory::VolatileSlice;

use super::DiskImage;
use super::lock::ImageLock;
use crate::engine::config::{CacheMode, DiskConfig};

/// An open disk image. Fields drop in order: the format layer first (which writes back its
/// cached metadata), then the locks.
pub(crate) struct Image {
    access: FormatAccess<ImagoFile>,
    size: u64,
    cache: CacheMode,
    writable: bool,
    discard: bool,
    /// For raw images: the image file itself (a second descriptor of the open file imago
    /// uses) and what [`DiskImage::raw_file`] says about it.
    raw: Option<(std::fs::File, super::RawFile)>,
    _locks: Vec<ImageLock>,
}

impl Image {
    pub(crate) fn new(
        access: FormatAccess<ImagoFile>,
        disk: &DiskConfig,
        locks: Vec<ImageLock>,
        raw: Option<(std::fs::File, super::RawFile)>,
    ) -> Self {
        Self {
            raw,
            size: access.size(),
            access,
            cache: disk.cache,
            writable: !disk.readonly,
            discard: disk.discard && !disk.readonly,
            _locks: locks,
        }
    }

    /// Refuses a request that reaches past the end of the disk.
    fn check_range(&self, offset: u64, len: u64) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "request of {len} bytes at {offset} reaches past the disk's end ({} bytes)",
                    self.size
                ),
            )),
        }
    }

    /// Refuses a change to a read-only disk.
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the disk is read-only",
            ))
        }
    }

    /// Writethrough: every change is durable before it completes.
    fn after_change(&self) -> io::Result<()> {
        if self.cache == CacheMode::Writethrough {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes back cached metadata and makes the file durable.
    fn sync(&self) -> io::Result<()> {
        self.access.flush()?;
        self.access.sync()
    }
}

/// The total length of `bufs`.
fn total_len(bufs: &[VolatileSlice<'_>]) -> u64 {
    bufs.iter().map(|b| b.len() as u64).sum()
}

impl DiskImage for Image {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_vectored(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.check_range(offset, total_len(bufs))?;
        // The guard keeps the guest memory mapped while imago uses the vector.
        let (vector, _guard) = IoVectorMut::from_volatile_slice(bufs);
        self.access.readv(vector, offset)
    }

    fn write_vectored(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.check_writable()?;
        self.check_range(offset, total_len(bufs))?;
        let (vector, _guard) = IoVector::from_volatile_slice(bufs);
        self.access.writev(vector, offset)?;
        self.after_change()
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.cache {
            CacheMode::Unsafe => Ok(()),
            CacheMode::None | CacheMode::Writeback | CacheMode::Writethrough => self.sync(),
        }
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.check_writable()?;
        self.check_range(offset, len)?;
        if !self.discard {
            // discard='ignore': the guest's hint is dropped, as QEMU does.
            return Ok(());
        }
        match self.access.discard_to_zero(offset, len) {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(()),
            other => other?,
        }
        self.after_change()
    }

    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> io::Result<()> {
        self.check_writable()?;
        self.check_range(offset, len)?;
        if may_unmap && self.discard {
            self.access.discard_to_zero(offset, len)?;
        } else {
            self.access.write_zeroes(offset, len)?;
        }
        self.after_change()
    }

    fn supports_discard(&self) -> bool {
        self.discard
    }

    fn raw_file(&self) -> Option<super::RawFile> {
        self.raw.as_ref().map(|(_, raw)| *raw)
    }
}
