//! Reads and writes of a raw image kept in flight off the disk's thread, so the guest's queue
//! depth reaches the host: a thread pool ([`super::pool`], `io='threads'`, as QEMU's) or
//! io_uring ([`super::uring`], `io='native'`). The disk thread queues requests, submits them,
//! and answers the guest as completions arrive (an eventfd wakes it). A request a backend
//! cannot take as it is goes through the image's synchronous methods instead.

use std::io;
use std::os::fd::RawFd;

use vm_memory::{GuestAddress, VolatileSlice};

/// A finished request.
pub(super) struct Completion {
    /// The descriptor chain's head.
    pub head: u16,
    /// Where its status byte goes.
    pub status: GuestAddress,
    /// Whether it transferred everything.
    pub ok: bool,
    /// The used length to report.
    pub used: u32,
}

/// Somewhere reads and writes run concurrently.
pub(super) trait Backend: Send {
    /// Readable when requests completed.
    fn eventfd(&self) -> RawFd;
    /// Requests queued or running.
    fn in_flight(&self) -> usize;
    /// Queues a read (`write` false) or a write of `bufs` at `offset`; `false` when the backend
    /// cannot take it (alignment, no free slot, writethrough) and the caller must serve it.
    fn queue(
        &mut self,
        head: u16,
        write: bool,
        offset: u64,
        bufs: &[VolatileSlice<'_>],
        status: GuestAddress,
    ) -> bool;
    /// Starts what was queued.
    fn submit(&mut self) -> io::Result<()>;
    /// Collects every completion there is now.
    fn reap(&mut self) -> Vec<Completion>;
    /// Waits for everything in flight (before the disk thread hands the image back and guest
    /// memory may go away).
    fn drain(&mut self) -> Vec<Completion>;
}

/// Whether `offset` and every buffer's address and length are multiples of `alignment`.
pub(super) fn aligned(alignment: u64, offset: u64, bufs: &[VolatileSlice<'_>]) -> bool {
    offset % alignment == 0
        && bufs.len() <= libc::UIO_MAXIOV as usize
        && bufs.iter().all(|b| {
            (b.ptr_guard().as_ptr() as u64) % alignment == 0 && b.len() as u64 % alignment == 0
        })
}

/// The used length of a request that succeeded: data read into the guest, plus the status byte.
pub(super) fn used_on_success(write: bool, bytes: usize) -> u32 {
    if write { 1 } else { bytes as u32 + 1 }
}
