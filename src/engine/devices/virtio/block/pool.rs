//! `io='threads'`: reads and writes of a raw image run on a small pool of threads with
//! preadv/pwritev, as QEMU's thread pool does, so requests the guest has in flight overlap on the
//! host instead of waiting for each other on the disk's one thread.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vm_memory::{GuestAddress, VolatileSlice};
use vmm_sys_util::eventfd::EventFd;

use super::backend::{Backend, Completion, aligned, used_on_success};
use crate::engine::block::RawFile;

/// Threads per disk: enough to overlap a guest's queue, few enough to stay cheap when idle.
const THREADS: usize = 4;

/// Guest buffers of one request, as the system call takes them.
struct IoVecs(Vec<libc::iovec>);

// SAFETY: the pointers address guest memory, which stays mapped while the disk thread lives;
// the disk thread waits for every job (drain) before it ends, so a worker never touches a
// buffer after that.
unsafe impl Send for IoVecs {}

struct Job {
    slot: usize,
    write: bool,
    offset: u64,
    iovecs: IoVecs,
}

struct Pending {
    head: u16,
    status: GuestAddress,
    write: bool,
    bytes: usize,
}

/// The pool of one disk.
pub(super) struct Pool {
    jobs: Option<Sender<Job>>,
    done: Receiver<(usize, bool)>,
    completions: Arc<EventFd>,
    threads: Vec<JoinHandle<()>>,
    slots: Vec<Option<Pending>>,
    free: Vec<usize>,
    queued: Vec<Job>,
    file: RawFile,
}

impl Pool {
    /// A pool for up to `depth` requests on `file`.
    pub fn new(file: RawFile, depth: u16, name: &str) -> io::Result<Self> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let completions = Arc::new(EventFd::new(libc::EFD_NONBLOCK)?);
        let mut threads = Vec::new();
        for i in 0..THREADS {
            let (job_rx, done_tx, completions) =
                (job_rx.clone(), done_tx.clone(), completions.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-io{i}"))
                    .spawn(move || worker(file, &job_rx, &done_tx, &completions))?,
            );
        }
        Ok(Self {
            jobs: Some(jobs),
            done,
            completions,
            threads,
            slots: (0..depth).map(|_| None).collect(),
            free: (0..usize::from(depth)).rev().collect(),
            queued: Vec::new(),
            file,
        })
    }

    fn complete(&mut self, slot: usize, ok: bool) -> Option<Completion> {
        let p = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(Completion {
            head: p.head,
            status: p.status,
            ok,
            used: if ok {
                used_on_success(p.write, p.bytes)
            } else {
                1
            },
        })
    }
}

/// One worker: runs jobs until the pool closes the channel.
fn worker(
    file: RawFile,
    jobs: &Mutex<Receiver<Job>>,
    done: &Sender<(usize, bool)>,
    completions: &EventFd,
) {
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let result = transfer(file, &job).and_then(|()| {
            if job.write && file.sync_each_write {
                // SAFETY: fdatasync on the image's descriptor, open for the disk's life.
                if unsafe { libc::fdatasync(file.fd) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
        if let Err(e) = &result {
            tracing::warn!(
                offset = job.offset,
                write = job.write,
                "disk I/O failed: {e}"
            );
        }
        if done.send((job.slot, result.is_ok())).is_err() {
            return;
        }
        let _ = completions.write(1);
    }
}

/// preadv/pwritev until every byte moved (short transfers continue where they stopped).
fn transfer(file: RawFile, job: &Job) -> io::Result<()> {
    let mut iovecs = job.iovecs.0.clone();
    let mut offset = job.offset;
    let mut first = 0;
    while first < iovecs.len() {
        let (ptr, count) = (
            iovecs[first..].as_ptr(),
            (iovecs.len() - first) as libc::c_int,
        );
        // SAFETY: the iovecs address guest memory that stays mapped until the job completes
        // (see `IoVecs`), and the descriptor is the image's, open for the disk's life.
        let n = unsafe {
            if job.write {
                libc::pwritev(file.fd, ptr, count, offset as libc::off_t)
            } else {
                libc::preadv(file.fd, ptr, count, offset as libc::off_t)
            }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the image ended before the request",
            ));
        }
        let mut n = n as usize;
        offset += n as u64;
        while first < iovecs.len() && n >= iovecs[first].iov_len {
            n -= iovecs[first].iov_len;
            first += 1;
        }
        if n > 0 {
            let v = &mut iovecs[first];
            // SAFETY: `n` is less than this iovec's length, so the new base stays inside it.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n).cast() };
            v.iov_len -= n;
        }
    }
    Ok(())
}

impl Backend for Pool {
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
        if !aligned(self.file.alignment, offset, bufs) {
            return false;
        }
        let Some(slot) = self.free.pop() else {
            return false;
        };
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.ptr_guard_mut().as_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        self.slots[slot] = Some(Pending {
            head,
            status,
            write,
            bytes: bufs.iter().map(|b| b.len()).sum(),
        });
        self.queued.push(Job {
            slot,
            write,
            offset,
            iovecs: IoVecs(iovecs),
        });
        true
    }

    fn submit(&mut self) -> io::Result<()> {
        let Some(jobs) = &self.jobs else {
            return Err(io::Error::other("the pool is closed"));
        };
        for job in self.queued.drain(..) {
            jobs.send(job)
                .map_err(|_| io::Error::other("the disk's I/O threads ended"))?;
        }
        Ok(())
    }

    fn reap(&mut self) -> Vec<Completion> {
        let _ = self.completions.read();
        let finished: Vec<(usize, bool)> = self.done.try_iter().collect();
        finished
            .into_iter()
            .filter_map(|(slot, ok)| self.complete(slot, ok))
            .collect()
    }

    fn drain(&mut self) -> Vec<Completion> {
        let _ = self.submit();
        let mut done = Vec::new();
        while self.in_flight() > 0 {
            match self.done.recv() {
                Ok((slot, ok)) => done.extend(self.complete(slot, ok)),
                Err(_) => break,
            }
        }
        done
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
