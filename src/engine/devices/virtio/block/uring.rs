//! `io='native'`: reads and writes of a raw image submitted through io_uring, so one disk thread
//! keeps many guest requests in flight (the guest's queue depth reaches the host), where the
//! synchronous path serves them one after another. Completions wake the disk thread through an
//! eventfd registered with the ring. Requests the ring cannot take as they are (a buffer not
//! aligned for O_DIRECT) go through the synchronous path instead.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{IoUring, opcode, types};
use vm_memory::{GuestAddress, VolatileSlice};
use vmm_sys_util::eventfd::EventFd;

use super::backend::{Backend, Completion, aligned};
use crate::engine::block::RawFile;

/// Requests ever put on a ring (tests check the native path really ran).
#[cfg(test)]
pub(crate) static QUEUED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A request on the ring: what to answer the guest when it completes.
struct InFlight {
    head: u16,
    status: GuestAddress,
    expected: usize,
    /// Bytes written into guest buffers on success (data read, plus the status byte).
    used_on_success: u32,
    /// The iovec array the kernel reads while the request is in flight.
    _iovecs: Box<[libc::iovec]>,
}

/// The ring of one disk.
pub(super) struct Uring {
    ring: IoUring,
    completions: EventFd,
    file: RawFile,
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
}

// SAFETY: the raw iovec pointers held in `InFlight` point into guest memory, which the disk
// thread's GuestMemoryMmap keeps mapped; they are only handed to the kernel and never
// dereferenced here, so moving the ring to the disk's thread is sound.
unsafe impl Send for Uring {}

impl Uring {
    /// A ring for `depth` requests on `file`.
    pub fn new(file: RawFile, depth: u16) -> io::Result<Self> {
        let ring = IoUring::new(u32::from(depth))?;
        let completions = EventFd::new(libc::EFD_NONBLOCK)?;
        ring.submitter().register_eventfd(completions.as_raw_fd())?;
        Ok(Self {
            ring,
            completions,
            file,
            slots: (0..depth).map(|_| None).collect(),
            free: (0..usize::from(depth)).rev().collect(),
        })
    }
}

impl Backend for Uring {
    fn eventfd(&self) -> RawFd {
        self.completions.as_raw_fd()
    }

    fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn queue(
        &mut self,
        head: u16,
        write: bool,
        offset: u64,
        bufs: &[VolatileSlice<'_>],
        status: GuestAddress,
    ) -> bool {
        // Writethrough needs a sync after each write: the synchronous path does that.
        if (write && self.file.sync_each_write) || !aligned(self.file.alignment, offset, bufs) {
            return false;
        }
        let Some(slot) = self.free.pop() else {
            return false;
        };
        let iovecs: Box<[libc::iovec]> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.ptr_guard_mut().as_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let expected: usize = bufs.iter().map(|b| b.len()).sum();
        let fd = types::Fd(self.file.fd);
        let entry = if write {
            opcode::Writev::new(fd, iovecs.as_ptr(), iovecs.len() as u32)
                .offset(offset)
                .build()
        } else {
            opcode::Readv::new(fd, iovecs.as_ptr(), iovecs.len() as u32)
                .offset(offset)
                .build()
        }
        .user_data(slot as u64);
        // SAFETY: the iovec array (boxed, so its address is stable) and the guest buffers it
        // points to stay valid until the completion is reaped: the array lives in `slots`
        // until then, guest memory stays mapped for the disk thread's life, and the thread
        // drains the ring before it ends.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.free.push(slot);
            return false;
        }
        #[cfg(test)]
        QUEUED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.slots[slot] = Some(InFlight {
            head,
            status,
            expected,
            used_on_success: if write { 1 } else { expected as u32 + 1 },
            _iovecs: iovecs,
        });
        true
    }

    fn submit(&mut self) -> io::Result<()> {
        self.ring.submit().map(|_| ())
    }

    fn reap(&mut self) -> Vec<Completion> {
        let _ = self.completions.read();
        let mut done = Vec::new();
        for cqe in self.ring.completion() {
            let slot = cqe.user_data() as usize;
            let Some(request) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            self.free.push(slot);
            let ok = usize::try_from(cqe.result()).is_ok_and(|n| n == request.expected);
            if !ok {
                tracing::warn!(
                    result = cqe.result(),
                    expected = request.expected,
                    "io_uring request failed or was short"
                );
            }
            done.push(Completion {
                head: request.head,
                status: request.status,
                ok,
                used: if ok { request.used_on_success } else { 1 },
            });
        }
        done
    }

    fn drain(&mut self) -> Vec<Completion> {
        let mut done = Vec::new();
        while self.in_flight() > 0 {
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!("io_uring: {e}; abandoning {} requests", self.in_flight());
                break;
            }
            done.extend(self.reap());
        }
        done
    }
}
