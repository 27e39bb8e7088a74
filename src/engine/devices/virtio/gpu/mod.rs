//! virtio-gpu in 2D mode (virtio 1.2 §5.7), what Linux's `virtio_gpu` DRM driver drives: the
//! guest creates resources in host memory, attaches its own pages as their backing, copies
//! them in with TRANSFER_TO_HOST_2D, shows one on scanout 0 with SET_SCANOUT and says what
//! changed with RESOURCE_FLUSH. What scanout 0 shows goes to a [`Scanout`] handle the runner
//! reads. No 3D (virgl), no blob resources, no EDID: the feature bits stay clear, so the driver
//! never asks.
//!
//! A request the guest gets wrong is answered with a `VIRTIO_GPU_RESP_ERR_*` type; nothing it
//! sends can stop the device.

mod protocol;
mod resources;
mod scanout;
mod worker;

use std::thread::JoinHandle;

use vmm_sys_util::eventfd::EventFd;

pub use protocol::Rect;
pub use scanout::{CURSOR_SIDE, Cursor, Image, Mode, PixelFormat, PngError, Scanout};

use super::{Activation, VirtioDevice};

/// The virtio device ID of a GPU.
const DEVICE_ID: u16 = 16;
/// Display controller, other (what QEMU's virtio-gpu-pci presents; VGA would claim the legacy
/// VGA ranges).
const CLASS_DISPLAY_OTHER: u32 = 0x03_80_00;
/// The control queue carries a command per frame at most; the cursor queue less.
const CONTROL_QUEUE_SIZE: u16 = 256;
const CURSOR_QUEUE_SIZE: u16 = 16;
/// `virtio_gpu_config.events_clear`.
const EVENTS_CLEAR_OFFSET: u64 = 4;

/// The GPU as the guest sees it.
pub struct Gpu {
    scanout: Scanout,
    worker: Option<Worker>,
}

struct Worker {
    stop: EventFd,
    thread: JoinHandle<()>,
}

impl Gpu {
    /// A GPU whose scanout 0 is `scanout`.
    pub fn new(scanout: Scanout) -> Self {
        Self {
            scanout,
            worker: None,
        }
    }

    /// `virtio_gpu_config`: events_read, events_clear, num_scanouts, num_capsets.
    fn config_bytes(&self) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0..4].copy_from_slice(&self.scanout.events().to_le_bytes());
        c[8..12].copy_from_slice(&1u32.to_le_bytes());
        c
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.stop.write(1);
            if worker.thread.join().is_err() {
                tracing::error!("the GPU's thread panicked");
            }
        }
    }
}

impl VirtioDevice for Gpu {
    fn device_type(&self) -> u16 {
        DEVICE_ID
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![CONTROL_QUEUE_SIZE, CURSOR_QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        0
    }

    fn pci_class(&self) -> u32 {
        CLASS_DISPLAY_OTHER
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        super::read_config_bytes(&self.config_bytes(), offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        if offset == EVENTS_CLEAR_OFFSET && data.len() == 4 {
            let bits = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            self.scanout.clear_events(bits);
        }
    }

    fn activate(&mut self, activation: Activation) -> Result<(), String> {
        let Activation {
            memory,
            queues,
            config_interrupt,
            ..
        } = activation;
        let mut queues = queues.into_iter();
        let (Some(control), Some(cursor)) = (queues.next(), queues.next()) else {
            return Err("the driver did not enable both the control and cursor queues".into());
        };
        self.stop_worker();
        let stop = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
        self.scanout.set_config_interrupt(Some(config_interrupt));
        let state = worker::Gpu::new(
            memory,
            control,
            cursor,
            stop.try_clone().map_err(|e| e.to_string())?,
            self.scanout.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("virtio-gpu".into())
            .spawn(move || state.run())
            .map_err(|e| e.to_string())?;
        self.worker = Some(Worker { stop, thread });
        Ok(())
    }

    fn reset(&mut self) {
        self.stop_worker();
        self.scanout.set_config_interrupt(None);
        self.scanout.set_mode(None);
        self.scanout.set_cursor_image(None, 0, 0);
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        self.stop_worker();
        self.scanout.set_config_interrupt(None);
    }
}

#[cfg(test)]
mod tests;
