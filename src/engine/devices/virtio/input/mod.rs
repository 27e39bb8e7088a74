//! virtio-input (virtio 1.2 §5.8): a keyboard and an absolute pointer ("tablet", so the guest
//! pointer sits exactly where the viewer's is, with no acceleration to undo). The driver reads
//! what the device can send through the select/subsel configuration window, posts buffers on
//! the event queue that the device fills with `virtio_input_event`s, and reports LED changes
//! on the status queue.

mod config;
mod events;
mod worker;

use std::thread::JoinHandle;

use vmm_sys_util::eventfd::EventFd;

pub use events::{
    ABS_MAX, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, EV_ABS, EV_KEY, EV_LED, EV_REL, EV_SYN, InputEvent,
    InputEvents,
};

use super::{Activation, VirtioDevice};
pub use crate::engine::config::InputKind;

/// The virtio device ID of an input device.
const DEVICE_ID: u16 = 18;
/// Input device controller, other.
const CLASS_INPUT_OTHER: u32 = 0x09_80_00;
/// Event and status queue sizes (QEMU's).
const QUEUE_SIZE: u16 = 64;

/// One input device as the guest sees it.
pub struct Input {
    kind: InputKind,
    events: InputEvents,
    select: u8,
    subsel: u8,
    worker: Option<Worker>,
}

struct Worker {
    stop: EventFd,
    thread: JoinHandle<()>,
}

impl Input {
    /// A `kind` device fed from `events`.
    pub fn new(kind: InputKind, events: InputEvents) -> Self {
        Self {
            kind,
            events,
            select: 0,
            subsel: 0,
            worker: None,
        }
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.stop.write(1);
            if worker.thread.join().is_err() {
                tracing::error!(kind = ?self.kind, "the input device's thread panicked");
            }
        }
    }
}

impl VirtioDevice for Input {
    fn device_type(&self) -> u16 {
        DEVICE_ID
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE, QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        0
    }

    fn pci_class(&self) -> u32 {
        CLASS_INPUT_OTHER
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let bytes = config::bytes(self.kind, self.select, self.subsel);
        super::read_config_bytes(&bytes, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            match offset + i as u64 {
                0 => self.select = *b,
                1 => self.subsel = *b,
                _ => {}
            }
        }
    }

    fn activate(&mut self, activation: Activation) -> Result<(), String> {
        let Activation { memory, queues, .. } = activation;
        let mut queues = queues.into_iter();
        let (Some(eventq), Some(statusq)) = (queues.next(), queues.next()) else {
            return Err("the driver did not enable both the event and status queues".into());
        };
        self.stop_worker();
        let stop = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let device = worker::Device {
            memory,
            eventq,
            statusq,
            stop: stop.try_clone().map_err(|e| e.to_string())?,
            events: self.events.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("virtio-input-{:?}", self.kind).to_lowercase())
            .spawn(move || device.run())
            .map_err(|e| e.to_string())?;
        self.worker = Some(Worker { stop, thread });
        Ok(())
    }

    fn reset(&mut self) {
        self.stop_worker();
        self.select = 0;
        self.subsel = 0;
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

#[cfg(test)]
mod tests;
