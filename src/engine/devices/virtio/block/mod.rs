//! virtio-blk (virtio 1.2 §5.2): one request queue served by the disk's own I/O thread, which
//! waits on the queue's ioeventfd and a stop eventfd, runs each request against the
//! [`DiskImage`], and interrupts the guest once per batch. A malformed request from the guest is
//! answered with an error status (or dropped when it has no status byte), never a panic.
//! Reads and writes of raw images run off that thread ([`backend`]): on a thread pool, or with
//! `io='native'` through io_uring, so the guest's requests overlap on the host.

mod backend;
mod pool;
pub(crate) mod uring;

use std::os::fd::AsRawFd;
use std::thread::JoinHandle;

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO,
    VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
    VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, VolatileSlice};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::{
    Activation, Interrupt, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, VirtioDevice,
};
use crate::engine::block::DiskImage;
use backend::{Backend, Completion};
use pool::Pool;
use uring::Uring;

/// The virtio device ID of a block device.
const DEVICE_ID: u16 = 2;
/// Mass storage, "other".
const CLASS_STORAGE_OTHER: u32 = 0x01_80_00;
/// The request queue's size.
const QUEUE_SIZE: u16 = 256;
/// virtio-blk sectors are 512 bytes whatever the image's block size.
const SECTOR: u64 = 512;
/// Data segments per request the driver may use (queue size minus header and status).
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// The serial number GET_ID returns has at most this many bytes.
const ID_BYTES: usize = 20;
/// Discard / write-zeroes limits announced in the configuration (in sectors, segments).
const MAX_DISCARD_SECTORS: u32 = u32::MAX >> 9;
const MAX_DISCARD_SEGMENTS: u32 = 1;
/// Write-zeroes segment flag: the device may unmap.
const WRITE_ZEROES_UNMAP: u32 = 1;

/// The disk as the guest sees it, and the image behind it.
pub struct Block {
    target: String,
    serial: Option<String>,
    readonly: bool,
    discard: bool,
    capacity: u64,
    image: Option<Box<dyn DiskImage>>,
    worker: Option<Worker>,
}

struct Worker {
    stop: EventFd,
    thread: JoinHandle<Box<dyn DiskImage>>,
}

impl Block {
    /// A block device for `image`, named `target` in logs.
    pub fn new(
        target: String,
        image: Box<dyn DiskImage>,
        readonly: bool,
        discard: bool,
        serial: Option<String>,
    ) -> Self {
        let capacity = image.size() / SECTOR;
        let discard = discard && image.supports_discard() && !readonly;
        Self {
            target,
            serial,
            readonly,
            discard,
            capacity,
            image: Some(image),
            worker: None,
        }
    }

    /// The configuration space (virtio_blk_config, up to write_zeroes_may_unmap).
    fn config_bytes(&self) -> [u8; 60] {
        let mut c = [0u8; 60];
        c[0..8].copy_from_slice(&self.capacity.to_le_bytes());
        c[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        c[20..24].copy_from_slice(&(SECTOR as u32).to_le_bytes());
        c[36..40].copy_from_slice(&MAX_DISCARD_SECTORS.to_le_bytes());
        c[40..44].copy_from_slice(&MAX_DISCARD_SEGMENTS.to_le_bytes());
        c[44..48].copy_from_slice(&1u32.to_le_bytes());
        c[48..52].copy_from_slice(&MAX_DISCARD_SECTORS.to_le_bytes());
        c[52..56].copy_from_slice(&MAX_DISCARD_SEGMENTS.to_le_bytes());
        c[56] = u8::from(self.discard);
        c
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.stop.write(1);
            match worker.thread.join() {
                Ok(image) => self.image = Some(image),
                Err(_) => tracing::error!(disk = %self.target, "the disk's I/O thread panicked"),
            }
        }
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u16 {
        DEVICE_ID
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        let mut f = (1 << VIRTIO_BLK_F_SEG_MAX)
            | (1 << VIRTIO_BLK_F_BLK_SIZE)
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_RING_F_EVENT_IDX;
        if self.readonly {
            f |= 1 << VIRTIO_BLK_F_RO;
        } else {
            f |= (1 << VIRTIO_BLK_F_FLUSH) | (1 << VIRTIO_BLK_F_WRITE_ZEROES);
            if self.discard {
                f |= 1 << VIRTIO_BLK_F_DISCARD;
            }
        }
        f
    }

    fn pci_class(&self) -> u32 {
        CLASS_STORAGE_OTHER
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        super::read_config_bytes(&self.config_bytes(), offset, data);
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {
        // Nothing is writable: no VIRTIO_BLK_F_CONFIG_WCE.
    }

    fn activate(&mut self, activation: Activation) -> Result<(), String> {
        let Activation {
            memory,
            mut queues,
            features,
            ..
        } = activation;
        let Some(active) = queues.pop() else {
            return Err("the driver enabled no queue".into());
        };
        let image = self
            .image
            .take()
            .ok_or_else(|| "the disk is already running".to_string())?;
        let stop = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let stop_for_thread = stop.try_clone().map_err(|e| e.to_string())?;
        let request = Requests {
            memory,
            readonly: self.readonly,
            // A driver that did not take VIRTIO_BLK_F_FLUSH assumes a write-through disk.
            flush_each_write: !self.readonly && features & (1 << VIRTIO_BLK_F_FLUSH) == 0,
            capacity_bytes: self.capacity * SECTOR,
            serial: self.serial.clone().unwrap_or_default(),
            target: self.target.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("blk-{}", self.target))
            .spawn(move || {
                io_loop(
                    image,
                    active.queue,
                    active.notify,
                    active.interrupt,
                    stop_for_thread,
                    request,
                )
            })
            .map_err(|e| e.to_string())?;
        self.worker = Some(Worker { stop, thread });
        Ok(())
    }

    fn reset(&mut self) {
        self.stop_worker();
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.stop_worker();
        if let Some(image) = self.image.as_mut()
            && let Err(e) = image.flush()
        {
            tracing::warn!(disk = %self.target, "final flush failed: {e}");
        }
    }
}

/// What the I/O thread needs to serve requests.
struct Requests {
    memory: GuestMemoryMmap,
    readonly: bool,
    flush_each_write: bool,
    capacity_bytes: u64,
    serial: String,
    target: String,
}

const EVENT_QUEUE: u64 = 0;
const EVENT_STOP: u64 = 1;
const EVENT_URING: u64 = 2;

/// The I/O thread: serves the queue until told to stop, then hands the image back.
fn io_loop(
    mut image: Box<dyn DiskImage>,
    mut queue: Queue,
    notify: EventFd,
    interrupt: Interrupt,
    stop: EventFd,
    requests: Requests,
) -> Box<dyn DiskImage> {
    let epoll = match Epoll::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(disk = %requests.target, "epoll: {e}");
            return image;
        }
    };
    for (fd, tag) in [
        (notify.as_raw_fd(), EVENT_QUEUE),
        (stop.as_raw_fd(), EVENT_STOP),
    ] {
        if let Err(e) = epoll.ctl(
            ControlOperation::Add,
            fd,
            EpollEvent::new(EventSet::IN, tag),
        ) {
            tracing::error!(disk = %requests.target, "epoll_ctl: {e}");
            return image;
        }
    }
    let mut ring = backend_for(image.as_ref(), &requests.target);
    if let Some(ring) = &ring
        && let Err(e) = epoll.ctl(
            ControlOperation::Add,
            ring.eventfd(),
            EpollEvent::new(EventSet::IN, EVENT_URING),
        )
    {
        tracing::error!(disk = %requests.target, "epoll_ctl: {e}");
        return image;
    }
    // Kicks that came before the thread started are in the eventfd's count already.
    let mut events = [EpollEvent::default(); 3];
    serve(&mut queue, image.as_mut(), &mut ring, &requests, &interrupt);
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(disk = %requests.target, "epoll_wait: {e}");
                break;
            }
        };
        let mut stop = false;
        for event in &events[..n] {
            match event.data() {
                EVENT_STOP => stop = true,
                EVENT_URING => {
                    if let Some(ring) = ring.as_mut() {
                        let done = ring.reap();
                        complete(&mut queue, done, &requests, &interrupt);
                    }
                }
                _ => {
                    let _ = notify.read();
                    serve(&mut queue, image.as_mut(), &mut ring, &requests, &interrupt);
                }
            }
        }
        if stop {
            break;
        }
    }
    // The kernel may still be writing into guest memory: wait for it before handing back.
    if let Some(ring) = ring.as_mut() {
        let done = ring.drain();
        complete(&mut queue, done, &requests, &interrupt);
    }
    image
}

/// Where a raw image's reads and writes run: io_uring for `io='native'` (threads when the
/// kernel refuses io_uring), else a thread pool. `None` for qcow2 (one request at a time).
fn backend_for(image: &dyn DiskImage, target: &str) -> Option<Box<dyn Backend>> {
    let file = image.raw_file()?;
    if file.io == crate::engine::config::IoMode::Native {
        match Uring::new(file, QUEUE_SIZE) {
            Ok(ring) => return Some(Box::new(ring)),
            Err(e) => tracing::warn!(disk = %target, "io_uring unavailable ({e}); using threads"),
        }
    }
    match Pool::new(file, QUEUE_SIZE, &format!("blk-{target}")) {
        Ok(pool) => Some(Box::new(pool)),
        Err(e) => {
            tracing::warn!(disk = %target, "no I/O threads ({e}); serving requests one by one");
            None
        }
    }
}

/// Answers the guest for requests the backend finished.
fn complete(queue: &mut Queue, done: Vec<Completion>, r: &Requests, interrupt: &Interrupt) {
    if done.is_empty() {
        return;
    }
    for c in done {
        let code = if c.ok {
            VIRTIO_BLK_S_OK
        } else {
            VIRTIO_BLK_S_IOERR
        };
        if let Err(e) = r.memory.write_obj(code as u8, c.status) {
            tracing::debug!(disk = %r.target, "virtio-blk status write: {e}");
        }
        if let Err(e) = queue.add_used(&r.memory, c.head, c.used) {
            tracing::warn!(disk = %r.target, "virtio-blk used ring: {e}");
        }
    }
    notify_guest(queue, r, interrupt);
}

/// Runs every available request, then interrupts the guest once if any completed.
fn serve(
    queue: &mut Queue,
    image: &mut dyn DiskImage,
    ring: &mut Option<Box<dyn Backend>>,
    requests: &Requests,
    interrupt: &Interrupt,
) {
    let mem = &requests.memory;
    let mut completed = false;
    loop {
        // With EVENT_IDX, the driver need not kick while the device drains the queue.
        if queue.event_idx_enabled()
            && let Err(e) = queue.disable_notification(mem)
        {
            tracing::warn!(disk = %requests.target, "virtio-blk avail event: {e}");
        }
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let descriptors: Vec<Descriptor> = chain.collect();
            if let Some(ring) = ring.as_mut()
                && queue_native(head, &descriptors, ring, requests)
            {
                continue;
            }
            let used = execute(&descriptors, image, requests);
            if let Err(e) = queue.add_used(mem, head, used) {
                tracing::warn!(disk = %requests.target, "virtio-blk used ring: {e}");
            }
            completed = true;
        }
        // Re-enabling reports requests that arrived meanwhile: serve those too.
        match queue
            .event_idx_enabled()
            .then(|| queue.enable_notification(mem))
        {
            Some(Ok(true)) => continue,
            Some(Err(e)) => tracing::warn!(disk = %requests.target, "virtio-blk avail event: {e}"),
            _ => {}
        }
        break;
    }
    if let Some(ring) = ring.as_mut()
        && ring.in_flight() > 0
        && let Err(e) = ring.submit()
    {
        tracing::warn!(disk = %requests.target, "disk I/O submit: {e}");
    }
    if completed {
        notify_guest(queue, requests, interrupt);
    }
}

/// Interrupts the guest after used buffers were added, unless EVENT_IDX says it does not want
/// one yet.
fn notify_guest(queue: &mut Queue, r: &Requests, interrupt: &Interrupt) {
    match queue.needs_notification(&r.memory) {
        Ok(false) => {}
        Ok(true) => interrupt.trigger(),
        Err(e) => {
            tracing::warn!(disk = %r.target, "virtio-blk used event: {e}");
            interrupt.trigger();
        }
    }
}

/// Puts a read or write on the ring; false when it must be served synchronously (any other
/// request, a malformed one, or one the ring cannot take).
fn queue_native(
    head: u16,
    descriptors: &[Descriptor],
    ring: &mut Box<dyn Backend>,
    r: &Requests,
) -> bool {
    let (Some(header), Some(status)) = (descriptors.first(), descriptors.last()) else {
        return false;
    };
    if descriptors.len() < 3 || header.is_write_only() || !status.is_write_only() {
        return false;
    }
    let Ok(h) = r.memory.read_obj::<[u8; 16]>(header.addr()) else {
        return false;
    };
    let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let sector = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
    let write = match kind {
        VIRTIO_BLK_T_IN => false,
        VIRTIO_BLK_T_OUT if !r.readonly && !r.flush_each_write => true,
        _ => return false,
    };
    let data = &descriptors[1..descriptors.len() - 1];
    let total: u64 = data.iter().map(|d| u64::from(d.len())).sum();
    let Some(offset) = sector.checked_mul(SECTOR).filter(|o| {
        o.checked_add(total)
            .is_some_and(|end| end <= r.capacity_bytes)
    }) else {
        return false;
    };
    if total % SECTOR != 0 {
        return false;
    }
    match slices(&r.memory, data, !write) {
        Some(bufs) => ring.queue(head, write, offset, &bufs, status.addr()),
        None => false,
    }
}

/// Runs one request; returns the number of bytes written into the guest's buffers.
fn execute(descriptors: &[Descriptor], image: &mut dyn DiskImage, r: &Requests) -> u32 {
    let (Some(header), Some(status)) = (descriptors.first(), descriptors.last()) else {
        return 0;
    };
    if descriptors.len() < 2 || !status.is_write_only() || status.len() < 1 {
        tracing::debug!(disk = %r.target, "virtio-blk request without a status byte");
        return 0;
    }
    let data = &descriptors[1..descriptors.len() - 1];
    let (code, written) = match r.memory.read_obj::<[u8; 16]>(header.addr()) {
        Ok(h) if !header.is_write_only() => {
            let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let sector = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
            run(kind, sector, data, image, r)
        }
        _ => (VIRTIO_BLK_S_IOERR, 0),
    };
    if let Err(e) = r.memory.write_obj(code as u8, status.addr()) {
        tracing::debug!(disk = %r.target, "virtio-blk status write: {e}");
        return 0;
    }
    written.saturating_add(1)
}

/// The guest buffers of `data`, all device-writable (`write_only`) or all device-readable.
fn slices<'m>(
    mem: &'m GuestMemoryMmap,
    data: &[Descriptor],
    write_only: bool,
) -> Option<Vec<VolatileSlice<'m>>> {
    data.iter()
        .map(|d| {
            (d.is_write_only() == write_only)
                .then(|| mem.get_slice(d.addr(), d.len() as usize).ok())
                .flatten()
        })
        .collect()
}

fn run(
    kind: u32,
    sector: u64,
    data: &[Descriptor],
    image: &mut dyn DiskImage,
    r: &Requests,
) -> (u32, u32) {
    let io = |result: std::io::Result<()>, what: &str| match result {
        Ok(()) => VIRTIO_BLK_S_OK,
        Err(e) => {
            tracing::warn!(disk = %r.target, "{what} failed: {e}");
            VIRTIO_BLK_S_IOERR
        }
    };
    let total: u64 = data.iter().map(|d| u64::from(d.len())).sum();
    let offset = sector.checked_mul(SECTOR);
    let in_bounds = offset
        .and_then(|o| o.checked_add(total))
        .is_some_and(|end| end <= r.capacity_bytes);
    let offset = offset.unwrap_or(u64::MAX);
    match kind {
        VIRTIO_BLK_T_IN => match slices(&r.memory, data, true) {
            Some(bufs) if in_bounds && total % SECTOR == 0 => {
                (io(image.read_vectored(offset, &bufs), "read"), total as u32)
            }
            _ => (VIRTIO_BLK_S_IOERR, 0),
        },
        VIRTIO_BLK_T_OUT if r.readonly => (VIRTIO_BLK_S_IOERR, 0),
        VIRTIO_BLK_T_OUT => match slices(&r.memory, data, false) {
            Some(bufs) if in_bounds && total % SECTOR == 0 => {
                let mut result = image.write_vectored(offset, &bufs);
                if result.is_ok() && r.flush_each_write {
                    result = image.flush();
                }
                (io(result, "write"), 0)
            }
            _ => (VIRTIO_BLK_S_IOERR, 0),
        },
        VIRTIO_BLK_T_FLUSH => (io(image.flush(), "flush"), 0),
        VIRTIO_BLK_T_GET_ID => match data.first() {
            Some(d) if d.is_write_only() => {
                let mut id = [0u8; ID_BYTES];
                let serial = r.serial.as_bytes();
                let n = serial.len().min(ID_BYTES);
                id[..n].copy_from_slice(&serial[..n]);
                let len = (d.len() as usize).min(ID_BYTES);
                match r.memory.write_slice(&id[..len], d.addr()) {
                    Ok(()) => (VIRTIO_BLK_S_OK, len as u32),
                    Err(_) => (VIRTIO_BLK_S_IOERR, 0),
                }
            }
            _ => (VIRTIO_BLK_S_IOERR, 0),
        },
        VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES if r.readonly => (VIRTIO_BLK_S_IOERR, 0),
        VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => (segments(kind, data, image, r), 0),
        _ => (VIRTIO_BLK_S_UNSUPP, 0),
    }
}

/// Discard / write-zeroes: the data is a list of {sector, num_sectors, flags} segments.
fn segments(kind: u32, data: &[Descriptor], image: &mut dyn DiskImage, r: &Requests) -> u32 {
    for d in data {
        if d.is_write_only() || d.len() % 16 != 0 {
            return VIRTIO_BLK_S_IOERR;
        }
        for i in 0..u64::from(d.len() / 16) {
            let Some(addr) = d.addr().checked_add(i * 16) else {
                return VIRTIO_BLK_S_IOERR;
            };
            let Ok(seg) = r.memory.read_obj::<[u8; 16]>(GuestAddress(addr.0)) else {
                return VIRTIO_BLK_S_IOERR;
            };
            let sector = u64::from_le_bytes(seg[0..8].try_into().unwrap_or_default());
            let count = u64::from(u32::from_le_bytes(
                seg[8..12].try_into().unwrap_or_default(),
            ));
            let flags = u32::from_le_bytes(seg[12..16].try_into().unwrap_or_default());
            let len = count * SECTOR;
            let Some(offset) = sector.checked_mul(SECTOR).filter(|o| {
                o.checked_add(len)
                    .is_some_and(|end| end <= r.capacity_bytes)
            }) else {
                return VIRTIO_BLK_S_IOERR;
            };
            let result = if kind == VIRTIO_BLK_T_DISCARD {
                image.discard(offset, len)
            } else {
                image.write_zeroes(offset, len, flags & WRITE_ZEROES_UNMAP != 0)
            };
            if let Err(e) = result {
                tracing::warn!(disk = %r.target, "discard/write-zeroes failed: {e}");
                return VIRTIO_BLK_S_IOERR;
            }
        }
    }
    VIRTIO_BLK_S_OK
}
