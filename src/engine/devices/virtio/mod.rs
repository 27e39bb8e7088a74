//! virtio devices (virtio 1.x) behind one trait, so the PCI transport in [`pci_transport`] (and
//! a virtio-mmio one, should it be needed) can carry any of them. Queues come from
//! `virtio-queue`; a device gets its queues, their notification eventfds (KVM ioeventfds) and
//! interrupt handles when the driver sets DRIVER_OK, and runs its own I/O thread from then on.

pub mod block;
pub mod gpu;
pub mod input;
pub mod net;
pub mod pci_transport;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::engine::devices::pci::msix::Msix;

/// virtio 1.0: the only version Vireo's devices speak (no legacy interface).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// Indirect descriptor tables: a large request takes one ring slot, not one per segment, so
/// several stay in flight.
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
/// used_event/avail_event: the driver and device tell each other when to notify, so busy queues
/// run without a kick or an interrupt per request.
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
/// ISR bit: a queue was used (only meaningful without MSI-X).
const ISR_QUEUE: u8 = 1;
/// ISR bit: the device configuration changed.
const ISR_CONFIG: u8 = 2;

/// Raises one of a device's interrupts: the MSI-X vector the driver chose for it.
#[derive(Clone)]
pub struct Interrupt {
    msix: Arc<Mutex<Msix>>,
    isr: Arc<AtomicU8>,
    vector: u16,
    isr_bit: u8,
}

impl Interrupt {
    /// Interrupts the guest.
    pub fn trigger(&self) {
        self.isr.fetch_or(self.isr_bit, Ordering::SeqCst);
        self.msix
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .trigger(self.vector);
    }
}

/// One queue handed to a device at activation.
pub struct ActiveQueue {
    /// The queue, with the addresses and size the driver set.
    pub queue: Queue,
    /// Becomes readable when the driver notifies the queue.
    pub notify: EventFd,
    /// Tells the driver the queue has used buffers.
    pub interrupt: Interrupt,
}

/// What a device needs to start working.
pub struct Activation {
    /// Guest memory, shared with the vCPUs.
    pub memory: GuestMemoryMmap,
    /// The queues the driver enabled, by index.
    pub queues: Vec<ActiveQueue>,
    /// The features the driver accepted.
    pub features: u64,
    /// Tells the driver the device configuration changed (a NIC's link went down).
    pub config_interrupt: Interrupt,
}

/// Copies `data.len()` bytes of a device's configuration space from `offset`; bytes beyond its
/// end read as zero (what every device's [`VirtioDevice::read_config`] answers).
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = usize::try_from(offset)
            .ok()
            .and_then(|o| config.get(o + i))
            .copied()
            .unwrap_or(0);
    }
}

/// A virtio device model.
pub trait VirtioDevice: Send {
    /// The virtio device ID (2 for block).
    fn device_type(&self) -> u16;
    /// The largest size of each queue, by index.
    fn queue_max_sizes(&self) -> Vec<u16>;
    /// The device's feature bits (the transport adds VIRTIO_F_VERSION_1).
    fn features(&self) -> u64;
    /// The PCI class code (24 bits) the function presents.
    fn pci_class(&self) -> u32;
    /// Reads the device-specific configuration at `offset`.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes the device-specific configuration at `offset`.
    fn write_config(&mut self, offset: u64, data: &[u8]);
    /// Starts the device; an error sets DEVICE_NEEDS_RESET and is logged.
    fn activate(&mut self, activation: Activation) -> Result<(), String>;
    /// Stops the device's I/O (the driver reset it); it may be activated again.
    fn reset(&mut self);
}

#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod test_driver;
#[cfg(test)]
mod tests;
