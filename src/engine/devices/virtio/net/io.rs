//! The network card's I/O thread: moves frames between the two queues and the backend socket
//! (see the parent module for the rules). It holds the stream's buffers for its whole life, so a
//! frame half read when the driver resets the card is finished by the next incarnation.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::HEADER_LEN;
use crate::engine::config::FrameStream;
use crate::engine::config::net::StreamBuffers;
use crate::engine::devices::virtio::{ActiveQueue, Interrupt};

/// What the thread needs from the device.
pub(super) struct Card {
    pub id: String,
    pub memory: GuestMemoryMmap,
    pub rx: ActiveQueue,
    pub tx: ActiveQueue,
    pub stop: EventFd,
    pub config_interrupt: Interrupt,
    pub link_up: Arc<AtomicBool>,
    pub mergeable: bool,
}

const EVENT_RX: u64 = 0;
const EVENT_TX: u64 = 1;
const EVENT_STOP: u64 = 2;
const EVENT_SOCKET: u64 = 3;
/// The length prefix of each frame on the stream.
const PREFIX: usize = 4;
/// The largest frame accepted from the backend: a 65535-byte MTU plus an Ethernet header with a
/// VLAN tag. Anything longer means the stream lost its framing.
const MAX_FRAME: usize = 65535 + 18;
/// The receive buffer; reads happen only when no whole frame is waiting, so a partial frame
/// (at most PREFIX + MAX_FRAME) plus one read always fit.
const RX_BUFFER: usize = 256 << 10;
/// Reads are attempted when at least this much room is free after compaction.
const MIN_READ_ROOM: usize = 64 << 10;
/// Transmitted frames are gathered up to this many bytes before a write.
const TX_BATCH: usize = 256 << 10;

/// Runs until the stop eventfd is written.
pub(super) fn run(card: Card, stream: FrameStream) {
    let mut buffers = stream.buffers().lock().unwrap_or_else(|p| p.into_inner());
    if buffers.rx.len() != RX_BUFFER {
        let pending = buffers.rx[buffers.rx_start..buffers.rx_end].to_vec();
        buffers.rx = vec![0; RX_BUFFER];
        buffers.rx[..pending.len()].copy_from_slice(&pending);
        buffers.rx_start = 0;
        buffers.rx_end = pending.len();
    }
    let id = card.id.clone();
    let epoll = match Epoll::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(nic = %id, "epoll: {e}");
            return;
        }
    };
    let mut io = Io {
        card,
        socket: stream.socket(),
        b: &mut buffers,
        epoll,
        registered: None,
        rx_waiting: false,
    };
    if let Err(e) = io.serve() {
        tracing::error!(nic = %id, "the network card's I/O thread stopped: {e}");
    }
}

/// What became of one received frame.
enum Delivery {
    Done,
    Dropped,
    NoBuffers,
}

struct Io<'a> {
    card: Card,
    socket: &'a UnixStream,
    b: &'a mut StreamBuffers,
    epoll: Epoll,
    /// The events the socket is registered for, if it is.
    registered: Option<EventSet>,
    /// The guest has no receive buffers: the socket is not read until it kicks the queue.
    rx_waiting: bool,
}

impl Io<'_> {
    fn serve(&mut self) -> std::io::Result<()> {
        for (fd, tag) in [
            (self.card.rx.notify.as_raw_fd(), EVENT_RX),
            (self.card.tx.notify.as_raw_fd(), EVENT_TX),
            (self.card.stop.as_raw_fd(), EVENT_STOP),
        ] {
            self.epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, tag),
            )?;
        }
        // Kicks before the thread started are in the eventfds already; frames may be waiting.
        self.receive();
        self.transmit();
        self.update_interest()?;
        let mut events = [EpollEvent::default(); 4];
        loop {
            let n = match self.epoll.wait(-1, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for event in &events[..n] {
                match event.data() {
                    EVENT_STOP => return Ok(()),
                    EVENT_RX => {
                        let _ = self.card.rx.notify.read();
                        self.rx_waiting = false;
                        self.receive();
                    }
                    EVENT_TX => {
                        let _ = self.card.tx.notify.read();
                        self.transmit();
                    }
                    _ => {
                        let set = event.event_set();
                        if set.contains(EventSet::OUT) {
                            self.transmit();
                        }
                        if set.intersects(EventSet::IN | EventSet::HANG_UP | EventSet::ERROR) {
                            self.receive();
                        }
                    }
                }
            }
            self.update_interest()?;
        }
    }

    /// Polls the socket for what the card can use now; a socket with nothing to wait for is
    /// taken out of the set (epoll reports a hang-up even with no events asked for).
    fn update_interest(&mut self) -> std::io::Result<()> {
        let mut wanted = EventSet::empty();
        if !self.b.dead {
            if !self.rx_waiting {
                wanted |= EventSet::IN;
            }
            if self.b.tx_start < self.b.tx.len() {
                wanted |= EventSet::OUT;
            }
        }
        let wanted = (!wanted.is_empty()).then_some(wanted);
        if wanted == self.registered {
            return Ok(());
        }
        let fd = self.socket.as_raw_fd();
        match (self.registered, wanted) {
            (None, Some(set)) => self.epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(set, EVENT_SOCKET),
            )?,
            (Some(_), Some(set)) => self.epoll.ctl(
                ControlOperation::Modify,
                fd,
                EpollEvent::new(set, EVENT_SOCKET),
            )?,
            (Some(_), None) => {
                self.epoll
                    .ctl(ControlOperation::Delete, fd, EpollEvent::default())?
            }
            (None, None) => {}
        }
        self.registered = wanted;
        Ok(())
    }

    /// The backend is gone or broke the framing: link down, a configuration interrupt, an error.
    fn hang_up(&mut self, reason: &str) {
        if self.b.dead {
            return;
        }
        self.b.dead = true;
        self.b.tx.clear();
        self.b.tx_start = 0;
        self.card.link_up.store(false, Ordering::SeqCst);
        self.card.config_interrupt.trigger();
        tracing::error!(
            nic = %self.card.id,
            "the network backend {reason}; the card's link is down and its frames are dropped \
             (restart the VM to reconnect it)"
        );
    }

    /// The length of the whole frame waiting at the front of the receive buffer, if one is.
    fn waiting_frame(&mut self) -> Option<usize> {
        let avail = self.b.rx_end - self.b.rx_start;
        if avail < PREFIX {
            return None;
        }
        let at = self.b.rx_start;
        let len = u32::from_be_bytes(self.b.rx[at..at + PREFIX].try_into().ok()?) as usize;
        if len == 0 || len > MAX_FRAME {
            self.hang_up(&format!(
                "sent a frame of {len} bytes (stream framing lost)"
            ));
            return None;
        }
        (avail >= PREFIX + len).then_some(len)
    }

    /// Delivers waiting frames while the guest has buffers, reading the socket as needed.
    fn receive(&mut self) {
        let mut delivered = false;
        loop {
            if self.b.dead && self.b.rx_start == self.b.rx_end {
                break;
            }
            if let Some(len) = self.waiting_frame() {
                let start = self.b.rx_start + PREFIX;
                let frame = &self.b.rx[start..start + len];
                match deliver(
                    &self.card.memory,
                    &mut self.card.rx.queue,
                    self.card.mergeable,
                    frame,
                ) {
                    Delivery::NoBuffers => {
                        self.rx_waiting = true;
                        break;
                    }
                    Delivery::Done => delivered = true,
                    Delivery::Dropped => {
                        tracing::debug!(nic = %self.card.id, len, "received frame dropped")
                    }
                }
                self.b.rx_start = start + len;
                continue;
            }
            if self.b.dead {
                break;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => break,
                Err(reason) => {
                    self.hang_up(&reason);
                    break;
                }
            }
        }
        if delivered {
            self.card.rx.interrupt.trigger();
        }
    }

    /// Reads from the socket; false when it has nothing now.
    fn fill(&mut self) -> Result<bool, String> {
        let b = &mut *self.b;
        if b.rx_start == b.rx_end {
            b.rx_start = 0;
            b.rx_end = 0;
        } else if b.rx.len() - b.rx_end < MIN_READ_ROOM {
            b.rx.copy_within(b.rx_start..b.rx_end, 0);
            b.rx_end -= b.rx_start;
            b.rx_start = 0;
        }
        loop {
            let room = &mut b.rx[b.rx_end..];
            // SAFETY: recv into the unused tail of our own buffer, at most its length.
            let n = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    room.as_mut_ptr().cast(),
                    room.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                b.rx_end += n as usize;
                return Ok(true);
            }
            if n == 0 {
                return Err("closed its socket".into());
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => return Ok(false),
                _ => return Err(format!("failed a read: {e}")),
            }
        }
    }

    /// Writes gathered frames; true when nothing is left to write.
    fn flush(&mut self) -> bool {
        while self.b.tx_start < self.b.tx.len() {
            let pending = &self.b.tx[self.b.tx_start..];
            // SAFETY: send from our own buffer, at most its length; MSG_NOSIGNAL turns a
            // vanished peer into EPIPE instead of SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.socket.as_raw_fd(),
                    pending.as_ptr().cast(),
                    pending.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                self.b.tx_start += n as usize;
                continue;
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => {}
                std::io::ErrorKind::WouldBlock => return false,
                _ => {
                    self.hang_up(&format!("failed a write: {e}"));
                    return true;
                }
            }
        }
        self.b.tx.clear();
        self.b.tx_start = 0;
        true
    }

    /// Sends the guest's frames until the queue is empty or the socket is full.
    fn transmit(&mut self) {
        if !self.b.dead && !self.flush() {
            return;
        }
        // A handle of its own (cheap: shared regions), so `flush` may borrow `self` meanwhile.
        let memory = self.card.memory.clone();
        let mem = &memory;
        let mut completed = false;
        while let Some(chain) = self.card.tx.queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            if !self.b.dead {
                let at = self.b.tx.len();
                self.b.tx.extend_from_slice(&[0; PREFIX]);
                let mut skip = HEADER_LEN;
                let mut ok = true;
                for d in chain.readable() {
                    let len = d.len() as usize;
                    let drop = skip.min(len);
                    skip -= drop;
                    let Some(addr) = d.addr().checked_add(drop as u64) else {
                        ok = false;
                        break;
                    };
                    let from = self.b.tx.len();
                    self.b.tx.resize(from + len - drop, 0);
                    if mem.read_slice(&mut self.b.tx[from..], addr).is_err() {
                        ok = false;
                        break;
                    }
                }
                let frame = self.b.tx.len() - at - PREFIX;
                if ok && frame > 0 {
                    self.b.tx[at..at + PREFIX].copy_from_slice(&(frame as u32).to_be_bytes());
                } else {
                    self.b.tx.truncate(at);
                    tracing::debug!(nic = %self.card.id, "malformed transmit request dropped");
                }
            }
            if let Err(e) = self.card.tx.queue.add_used(mem, head, 0) {
                tracing::warn!(nic = %self.card.id, "virtio-net used ring: {e}");
            }
            completed = true;
            if self.b.tx.len() - self.b.tx_start >= TX_BATCH && !self.b.dead && !self.flush() {
                break;
            }
        }
        if !self.b.dead {
            self.flush();
        }
        if completed {
            self.card.tx.interrupt.trigger();
        }
    }
}

/// Copies one frame, after a `virtio_net_hdr_v1`, into the guest's receive buffers: one chain,
/// or as many as it takes with mergeable buffers (their count goes in `num_buffers`).
fn deliver(mem: &GuestMemoryMmap, queue: &mut Queue, mergeable: bool, frame: &[u8]) -> Delivery {
    let mut header = [0u8; HEADER_LEN];
    header[10] = 1;
    let total = HEADER_LEN + frame.len();
    let saved = queue.next_avail();
    let mut used: Vec<(u16, u32)> = Vec::new();
    let mut num_buffers_at: [Option<GuestAddress>; 2] = [None, None];
    let mut written = 0usize;
    let mut failed = false;
    while written < total {
        let Some(chain) = queue.pop_descriptor_chain(mem) else {
            queue.set_next_avail(saved);
            return Delivery::NoBuffers;
        };
        let head = chain.head_index();
        let mut in_chain = 0usize;
        for d in chain.writable() {
            if written == total {
                break;
            }
            let take = (d.len() as usize).min(total - written);
            let (start, end) = (written, written + take);
            for (i, slot) in num_buffers_at.iter_mut().enumerate() {
                let at = 10 + i;
                if (start..end).contains(&at) {
                    *slot = d.addr().checked_add((at - start) as u64);
                }
            }
            let mut pos = start;
            while pos < end && !failed {
                let src = if pos < HEADER_LEN {
                    &header[pos..HEADER_LEN.min(end)]
                } else {
                    &frame[pos - HEADER_LEN..end - HEADER_LEN]
                };
                let target = d.addr().checked_add((pos - start) as u64);
                failed = target.is_none_or(|t| mem.write_slice(src, t).is_err());
                pos += src.len();
            }
            written = end;
            in_chain += take;
        }
        used.push((head, in_chain as u32));
        if failed || (!mergeable && written < total) {
            for (head, _) in used {
                let _ = queue.add_used(mem, head, 0);
            }
            return Delivery::Dropped;
        }
    }
    let count = (used.len() as u16).to_le_bytes();
    for (slot, byte) in num_buffers_at.iter().zip(count) {
        if let Some(addr) = slot {
            let _ = mem.write_obj(byte, *addr);
        }
    }
    for (head, len) in used {
        if let Err(e) = queue.add_used(mem, head, len) {
            tracing::warn!("virtio-net used ring: {e}");
        }
    }
    Delivery::Done
}
