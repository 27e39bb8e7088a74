//! The input device's thread: fills the guest's event buffers from the handle's queue and
//! reads the LED reports the guest posts on the status queue.

use std::os::fd::AsRawFd;

use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestMemoryMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::events::{EV_LED, InputEvents};
use crate::engine::devices::virtio::ActiveQueue;

const EVENT_EVENTQ: u64 = 0;
const EVENT_STATUSQ: u64 = 1;
const EVENT_HOST: u64 = 2;
const EVENT_STOP: u64 = 3;
/// `sizeof(struct virtio_input_event)`.
const EVENT_LEN: usize = 8;

pub(super) struct Device {
    pub memory: GuestMemoryMmap,
    pub eventq: ActiveQueue,
    pub statusq: ActiveQueue,
    pub stop: EventFd,
    pub events: InputEvents,
}

impl Device {
    pub(super) fn run(mut self) {
        if let Err(e) = self.serve() {
            tracing::error!("the input device's thread stopped: {e}");
        }
    }

    fn serve(&mut self) -> std::io::Result<()> {
        let epoll = Epoll::new()?;
        for (fd, tag) in [
            (self.eventq.notify.as_raw_fd(), EVENT_EVENTQ),
            (self.statusq.notify.as_raw_fd(), EVENT_STATUSQ),
            (self.events.wake_fd().as_raw_fd(), EVENT_HOST),
            (self.stop.as_raw_fd(), EVENT_STOP),
        ] {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, tag),
            )?;
        }
        self.deliver();
        self.read_status();
        let mut ready = [EpollEvent::default(); 4];
        loop {
            let n = match epoll.wait(-1, &mut ready) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for event in &ready[..n] {
                match event.data() {
                    EVENT_STOP => return Ok(()),
                    EVENT_EVENTQ => {
                        let _ = self.eventq.notify.read();
                        self.deliver();
                    }
                    EVENT_HOST => {
                        let _ = self.events.wake_fd().read();
                        self.deliver();
                    }
                    _ => {
                        let _ = self.statusq.notify.read();
                        self.read_status();
                    }
                }
            }
        }
    }

    /// Moves waiting events into the guest's buffers, one event per buffer.
    fn deliver(&mut self) {
        let memory = self.memory.clone();
        let mut delivered = false;
        loop {
            // Whole reports, at most as many events as buffers are posted.
            let posted = self.posted_buffers();
            if posted == 0 {
                break;
            }
            let batch = self.events.take(posted);
            if batch.is_empty() {
                break;
            }
            let mut left = batch.into_iter();
            for event in left.by_ref() {
                let Some(chain) = self.eventq.queue.pop_descriptor_chain(&memory) else {
                    break;
                };
                let head = chain.head_index();
                let mut written = 0u32;
                if let Some(d) = chain.into_iter().find(|d| d.is_write_only())
                    && d.len() as usize >= EVENT_LEN
                    && memory.write_slice(&event.to_bytes(), d.addr()).is_ok()
                {
                    written = EVENT_LEN as u32;
                }
                if let Err(e) = self.eventq.queue.add_used(&memory, head, written) {
                    tracing::warn!("virtio-input used ring: {e}");
                }
                delivered = true;
            }
            let rest: Vec<_> = left.collect();
            if !rest.is_empty() {
                self.events.put_back(rest);
                break;
            }
        }
        if delivered {
            self.eventq.interrupt.trigger();
        }
    }

    /// How many event buffers the guest has posted and the device not used yet.
    fn posted_buffers(&self) -> usize {
        let Ok(avail) = self
            .eventq
            .queue
            .avail_idx(&self.memory, std::sync::atomic::Ordering::Acquire)
        else {
            return 0;
        };
        usize::from(avail.0.wrapping_sub(self.eventq.queue.next_avail()))
    }

    /// Reads the guest's LED reports.
    fn read_status(&mut self) {
        let memory = self.memory.clone();
        let mut used = false;
        while let Some(chain) = self.statusq.queue.pop_descriptor_chain(&memory) {
            let head = chain.head_index();
            if let Some(d) = chain.into_iter().find(|d| !d.is_write_only()) {
                let mut bytes = [0u8; EVENT_LEN];
                if d.len() as usize >= EVENT_LEN && memory.read_slice(&mut bytes, d.addr()).is_ok()
                {
                    let kind = u16::from_le_bytes([bytes[0], bytes[1]]);
                    let code = u16::from_le_bytes([bytes[2], bytes[3]]);
                    let value = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                    if kind == EV_LED {
                        self.events.set_led(code, value != 0);
                    }
                }
            }
            if let Err(e) = self.statusq.queue.add_used(&memory, head, 0) {
                tracing::warn!("virtio-input status ring: {e}");
            }
            used = true;
        }
        if used {
            self.statusq.interrupt.trigger();
        }
    }
}
