//! virtio over PCI, the modern (1.x) interface only: a PCI function with vendor 0x1AF4 and
//! device 0x1040 + the virtio ID, whose vendor-specific capabilities point into BAR 0 at the
//! common configuration, the ISR, the device configuration and the notification area, and with
//! MSI-X (table and PBA in the same BAR). Queue notifications are KVM ioeventfds on the
//! notification addresses, so a driver's kick never stops a vCPU in Vireo.
//!
//! Hand-written: no published crate implements the device side of virtio-pci. The layout
//! follows the virtio 1.2 specification, §4.1.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::{
    Activation, ActiveQueue, ISR_CONFIG, ISR_QUEUE, Interrupt, VIRTIO_F_VERSION_1,
    VIRTIO_RING_F_EVENT_IDX, VirtioDevice,
};
use crate::engine::devices::interrupts::InterruptRouter;
use crate::engine::devices::pci::PciDevice;
use crate::engine::devices::pci::config_space::{Bar, ConfigChange, ConfigSpace, PciIds};
use crate::engine::devices::pci::msix::{self, Msix};
use crate::engine::error::EngineError;

/// The virtio vendor ID.
const VIRTIO_VENDOR: u16 = 0x1af4;
/// Modern device IDs are 0x1040 + the virtio device ID.
const MODERN_DEVICE_BASE: u16 = 0x1040;
/// Vendor-specific capability ID.
const CAP_VENDOR: u8 = 0x09;
/// virtio_pci_cap cfg_type values.
const CAP_COMMON: u8 = 1;
const CAP_NOTIFY: u8 = 2;
const CAP_ISR: u8 = 3;
const CAP_DEVICE: u8 = 4;
/// The configuration-access window: BAR access through configuration space, for firmware that
/// cannot map BARs yet (the spec requires every device to offer it).
const CAP_PCI_CFG: u8 = 5;

/// BAR 0 layout.
const COMMON_OFFSET: u64 = 0x0000;
const COMMON_SIZE: u64 = 0x38;
const ISR_OFFSET: u64 = 0x1000;
const DEVICE_OFFSET: u64 = 0x2000;
const DEVICE_SIZE: u64 = 0x1000;
const NOTIFY_OFFSET: u64 = 0x3000;
const NOTIFY_SIZE: u64 = 0x1000;
/// Bytes between two queues' notification addresses.
const NOTIFY_MULTIPLIER: u32 = 4;
const MSIX_TABLE_OFFSET: u64 = 0x4000;
const MSIX_PBA_OFFSET: u64 = 0x6000;
/// The BAR's size: everything above, rounded to a power of two.
pub const BAR_SIZE: u64 = 0x8000;

/// device_status bits.
const STATUS_DRIVER_OK: u8 = 4;
const STATUS_FEATURES_OK: u8 = 8;
const STATUS_NEEDS_RESET: u8 = 0x40;
/// "No MSI-X vector".
const NO_VECTOR: u16 = 0xffff;

/// A virtio device on the PCI bus.
pub struct VirtioPciDevice {
    config: ConfigSpace,
    msix_cap: usize,
    /// Where the VIRTIO_PCI_CAP_PCI_CFG capability starts.
    pci_cfg_cap: usize,
    device: Box<dyn VirtioDevice>,
    msix: Arc<Mutex<Msix>>,
    msix_vectors: u16,
    isr: Arc<AtomicU8>,
    memory: GuestMemoryMmap,
    vm: Arc<VmFd>,
    queues: Vec<Queue>,
    queue_vectors: Vec<u16>,
    notify: Vec<EventFd>,
    /// Where the notification ioeventfds are registered (BAR 0's address then).
    ioevents_at: Option<u64>,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    config_vector: u16,
    queue_select: u16,
    status: u8,
    generation: u8,
    active: bool,
}

impl VirtioPciDevice {
    /// Wraps `device` as a PCI function with BAR 0 at `bar_address`.
    pub fn new(
        device: Box<dyn VirtioDevice>,
        memory: GuestMemoryMmap,
        vm: Arc<VmFd>,
        router: Arc<InterruptRouter>,
        bar_address: u64,
    ) -> Result<Self, EngineError> {
        let sizes = device.queue_max_sizes();
        let queues = sizes
            .iter()
            .map(|size| {
                Queue::new(*size).map_err(|e| EngineError::Config(format!("virtio queue: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let notify = (0..queues.len())
            .map(|_| {
                EventFd::new(libc::EFD_NONBLOCK)
                    .map_err(|e| EngineError::Config(format!("creating a queue eventfd: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One vector per queue plus one for configuration changes.
        let msix_vectors = queues.len() as u16 + 1;
        let mut config = ConfigSpace::new(PciIds {
            vendor: VIRTIO_VENDOR,
            device: MODERN_DEVICE_BASE + device.device_type(),
            revision: 1,
            class: device.pci_class(),
            subsystem_vendor: VIRTIO_VENDOR,
            subsystem: 0x40,
        });
        config.set_bar(
            0,
            Bar {
                size: BAR_SIZE,
                address: bar_address,
            },
        );
        let (body, writable) = Msix::capability(
            msix_vectors,
            0,
            MSIX_TABLE_OFFSET as u32,
            MSIX_PBA_OFFSET as u32,
        );
        let msix_cap = config.add_capability(msix::CAP_ID, &body, &writable);
        for (kind, offset, len) in [
            (CAP_COMMON, COMMON_OFFSET, COMMON_SIZE),
            (CAP_ISR, ISR_OFFSET, 1),
            (CAP_DEVICE, DEVICE_OFFSET, DEVICE_SIZE),
        ] {
            let body = virtio_cap(kind, offset, len, None);
            config.add_capability(CAP_VENDOR, &body, &vec![0; body.len()]);
        }
        let body = virtio_cap(
            CAP_NOTIFY,
            NOTIFY_OFFSET,
            NOTIFY_SIZE,
            Some(NOTIFY_MULTIPLIER),
        );
        config.add_capability(CAP_VENDOR, &body, &vec![0; body.len()]);
        // virtio_pci_cfg_cap: the driver writes bar, offset and length, then reads or writes
        // pci_cfg_data (the 4 bytes after the capability proper).
        let mut body = virtio_cap(CAP_PCI_CFG, 0, 0, None);
        body[0] = 20;
        body.extend_from_slice(&[0; 4]);
        let mut writable = vec![0u8; body.len()];
        writable[2] = 0xff; // bar
        writable[6..18].fill(0xff); // offset, length, pci_cfg_data
        let pci_cfg_cap = config.add_capability(CAP_VENDOR, &body, &writable);
        Ok(Self {
            config,
            msix_cap,
            pci_cfg_cap,
            msix: Arc::new(Mutex::new(Msix::new(msix_vectors, router)?)),
            msix_vectors,
            device,
            isr: Arc::new(AtomicU8::new(0)),
            memory,
            vm,
            queue_vectors: vec![NO_VECTOR; queues.len()],
            queues,
            notify,
            ioevents_at: None,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            config_vector: NO_VECTOR,
            queue_select: 0,
            status: 0,
            generation: 0,
            active: false,
        })
    }

    fn device_features(&self) -> u64 {
        self.device.features() | VIRTIO_F_VERSION_1
    }

    fn msix(&self) -> std::sync::MutexGuard<'_, Msix> {
        self.msix.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn selected(&mut self) -> Option<(&mut Queue, usize)> {
        let index = usize::from(self.queue_select);
        self.queues.get_mut(index).map(|q| (q, index))
    }

    /// The common configuration's value at `offset` (registers are read whole, then sliced).
    fn common_read(&mut self, offset: u64, data: &mut [u8]) {
        let (register, width): (u64, u64) = match offset {
            0x00..0x04 => (self.device_feature_select.into(), 4),
            0x04..0x08 => (
                if self.device_feature_select < 2 {
                    (self.device_features() >> (32 * self.device_feature_select)) & 0xffff_ffff
                } else {
                    0
                },
                4,
            ),
            0x08..0x0c => (self.driver_feature_select.into(), 4),
            0x0c..0x10 => (
                if self.driver_feature_select < 2 {
                    (self.driver_features >> (32 * self.driver_feature_select)) & 0xffff_ffff
                } else {
                    0
                },
                4,
            ),
            0x10..0x12 => (self.config_vector.into(), 2),
            0x12..0x14 => (self.queues.len() as u64, 2),
            0x14 => (self.status.into(), 1),
            0x15 => (self.generation.into(), 1),
            0x16..0x18 => (self.queue_select.into(), 2),
            _ => {
                let vectors = self.queue_vectors.clone();
                match self.selected() {
                    Some((q, index)) => queue_register(q, vectors[index], index, offset),
                    None => (0, 8),
                }
            }
        };
        let start = offset % width;
        let bytes = register.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(start as usize + i).copied().unwrap_or(0);
        }
    }

    fn common_write(&mut self, offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 8];
        let n = data.len().min(8);
        bytes[..n].copy_from_slice(&data[..n]);
        let value = u64::from_le_bytes(bytes);
        match offset {
            0x00 => self.device_feature_select = value as u32,
            0x08 => self.driver_feature_select = value as u32,
            0x0c if self.status & STATUS_FEATURES_OK == 0 => {
                let shift = 32 * u64::from(self.driver_feature_select.min(2));
                if self.driver_feature_select < 2 {
                    let accepted = (value & 0xffff_ffff) << shift;
                    let mask = 0xffff_ffffu64 << shift;
                    self.driver_features =
                        (self.driver_features & !mask) | (accepted & self.device_features());
                }
            }
            0x10 => self.config_vector = self.valid_vector(value as u16),
            0x14 => self.write_status(value as u8),
            0x16 => self.queue_select = value as u16,
            _ if self.active => {
                tracing::debug!(offset, "queue register written while the device runs")
            }
            0x18 => {
                if let Some((q, _)) = self.selected() {
                    q.set_size(value as u16);
                }
            }
            0x1a => {
                let vector = self.valid_vector(value as u16);
                let index = usize::from(self.queue_select);
                if let Some(slot) = self.queue_vectors.get_mut(index) {
                    *slot = vector;
                }
            }
            0x1c => {
                if let Some((q, _)) = self.selected() {
                    q.set_ready(value & 1 == 1);
                }
            }
            0x20 | 0x24 | 0x28 | 0x2c | 0x30 | 0x34 => {
                if let Some((q, _)) = self.selected() {
                    let (low, high) = if offset % 8 == 0 {
                        (Some(value as u32), None)
                    } else {
                        (None, Some(value as u32))
                    };
                    match offset & !7 {
                        0x20 => q.set_desc_table_address(low, high),
                        0x28 => q.set_avail_ring_address(low, high),
                        _ => q.set_used_ring_address(low, high),
                    }
                    // A 64-bit write covers both halves.
                    if data.len() == 8 {
                        let high = Some((value >> 32) as u32);
                        match offset {
                            0x20 => q.set_desc_table_address(None, high),
                            0x28 => q.set_avail_ring_address(None, high),
                            _ => q.set_used_ring_address(None, high),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A vector the device can use, or NO_VECTOR (what the driver reads back on failure).
    fn valid_vector(&self, vector: u16) -> u16 {
        if vector < self.msix_vectors {
            vector
        } else {
            NO_VECTOR
        }
    }

    fn write_status(&mut self, status: u8) {
        if status == 0 {
            self.reset();
            return;
        }
        self.status = status;
        if status & STATUS_DRIVER_OK != 0 && !self.active {
            self.activate();
        }
    }

    fn activate(&mut self) {
        let mut active = Vec::new();
        for (index, queue) in self.queues.iter().enumerate() {
            if !queue.ready() {
                continue;
            }
            if !queue.is_valid(&self.memory) {
                tracing::warn!(index, "virtio queue set up outside guest memory");
                self.status |= STATUS_NEEDS_RESET;
                return;
            }
            let notify = match self.notify[index].try_clone() {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!("cloning a queue eventfd: {e}");
                    self.status |= STATUS_NEEDS_RESET;
                    return;
                }
            };
            // The device gets its own copy; the transport keeps the registers the driver set.
            let Ok(mut copy) = Queue::try_from(queue.state()) else {
                self.status |= STATUS_NEEDS_RESET;
                return;
            };
            copy.set_event_idx(self.driver_features & VIRTIO_RING_F_EVENT_IDX != 0);
            active.push(ActiveQueue {
                queue: copy,
                notify,
                interrupt: Interrupt {
                    msix: self.msix.clone(),
                    isr: self.isr.clone(),
                    vector: self.queue_vectors[index],
                    isr_bit: ISR_QUEUE,
                },
            });
        }
        self.register_ioevents();
        let activation = Activation {
            memory: self.memory.clone(),
            queues: active,
            features: self.driver_features,
            config_interrupt: Interrupt {
                msix: self.msix.clone(),
                isr: self.isr.clone(),
                vector: self.config_vector,
                isr_bit: ISR_CONFIG,
            },
        };
        match self.device.activate(activation) {
            Ok(()) => self.active = true,
            Err(e) => {
                tracing::warn!(
                    "virtio device {} failed to start: {e}",
                    self.device.device_type()
                );
                self.status |= STATUS_NEEDS_RESET;
            }
        }
    }

    fn reset(&mut self) {
        if self.active {
            self.device.reset();
            self.active = false;
        }
        self.unregister_ioevents();
        for q in &mut self.queues {
            q.reset();
        }
        for fd in &self.notify {
            let _ = fd.read();
        }
        self.queue_vectors.fill(NO_VECTOR);
        self.config_vector = NO_VECTOR;
        self.driver_features = 0;
        self.status = 0;
        self.isr.store(0, Ordering::SeqCst);
        self.generation = self.generation.wrapping_add(1);
    }

    fn register_ioevents(&mut self) {
        let Some(bar) = self.config.bar(0) else {
            return;
        };
        if self.ioevents_at == Some(bar.address) {
            return;
        }
        self.unregister_ioevents();
        for (index, fd) in self.notify.iter().enumerate() {
            let addr = bar.address + NOTIFY_OFFSET + index as u64 * u64::from(NOTIFY_MULTIPLIER);
            if let Err(e) = self
                .vm
                .register_ioevent(fd, &IoEventAddress::Mmio(addr), NoDatamatch)
            {
                // Kicks still work through the MMIO exit path (see `bar_write`).
                tracing::warn!(addr, "KVM_IOEVENTFD: {e}");
            }
        }
        self.ioevents_at = Some(bar.address);
    }

    fn unregister_ioevents(&mut self) {
        let Some(base) = self.ioevents_at.take() else {
            return;
        };
        for (index, fd) in self.notify.iter().enumerate() {
            let addr = base + NOTIFY_OFFSET + index as u64 * u64::from(NOTIFY_MULTIPLIER);
            let _ = self
                .vm
                .unregister_ioevent(fd, &IoEventAddress::Mmio(addr), NoDatamatch);
        }
    }
}

/// The selected queue's register at `offset` and its width.
fn queue_register(q: &Queue, vector: u16, index: usize, offset: u64) -> (u64, u64) {
    match offset {
        0x18..0x1a => (q.size().into(), 2),
        0x1a..0x1c => (vector.into(), 2),
        0x1c..0x1e => (u64::from(q.ready()), 2),
        0x1e..0x20 => (index as u64, 2),
        0x20..0x28 => (q.desc_table(), 8),
        0x28..0x30 => (q.avail_ring(), 8),
        0x30..0x38 => (q.used_ring(), 8),
        _ => (0, 8),
    }
}

/// A virtio_pci_cap body (after ID and next): cap_len, cfg_type, bar, id, padding, offset,
/// length, and for the notify capability the multiplier.
fn virtio_cap(kind: u8, offset: u64, len: u64, multiplier: Option<u32>) -> Vec<u8> {
    let cap_len: u8 = if multiplier.is_some() { 20 } else { 16 };
    let mut body = vec![cap_len, kind, 0, 0, 0, 0];
    body.extend_from_slice(&(offset as u32).to_le_bytes());
    body.extend_from_slice(&(len as u32).to_le_bytes());
    if let Some(m) = multiplier {
        body.extend_from_slice(&m.to_le_bytes());
    }
    body
}

impl VirtioPciDevice {
    /// The window's (BAR offset, length) when an access at `offset` of `len` bytes hits
    /// pci_cfg_data and the driver set up a BAR 0 access of 1, 2 or 4 bytes.
    fn pci_cfg_window(&self, offset: u16, len: usize) -> Option<(u64, usize)> {
        let data_at = self.pci_cfg_cap + 16;
        if usize::from(offset) != data_at {
            return None;
        }
        let field = |at: usize| {
            let b = self.config.bytes(self.pci_cfg_cap + at, 4);
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        let (bar, bar_offset, length) = (
            self.config.bytes(self.pci_cfg_cap + 4, 1)[0],
            field(8),
            field(12),
        );
        let length = length as usize;
        (bar == 0 && matches!(length, 1 | 2 | 4) && len >= length)
            .then_some((u64::from(bar_offset), length))
    }
}

impl PciDevice for VirtioPciDevice {
    fn config_read(&mut self, offset: u16, data: &mut [u8]) {
        if let Some((at, length)) = self.pci_cfg_window(offset, data.len()) {
            data.fill(0);
            self.bar_read(0, at, &mut data[..length]);
            return;
        }
        self.config.read(usize::from(offset), data);
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> Option<ConfigChange> {
        if let Some((at, length)) = self.pci_cfg_window(offset, data.len()) {
            self.bar_write(0, at, &data[..length]);
            return None;
        }
        let change = self.config.write(usize::from(offset), data);
        let control_at = self.msix_cap + 2;
        let (start, end) = (usize::from(offset), usize::from(offset) + data.len());
        if start < control_at + 2 && end > control_at {
            let bytes = self.config.bytes(control_at, 2);
            let control = u16::from_le_bytes([bytes[0], bytes[1]]);
            self.msix().set_control(control);
        }
        change
    }

    fn bars(&self) -> Vec<(usize, Bar)> {
        self.config.bar(0).map(|b| (0, b)).into_iter().collect()
    }

    fn bar_read(&mut self, _bar: usize, offset: u64, data: &mut [u8]) {
        match offset {
            o if o < ISR_OFFSET => self.common_read(o - COMMON_OFFSET, data),
            o if o < DEVICE_OFFSET => {
                // Reading the ISR clears it.
                data.fill(0);
                if o == ISR_OFFSET
                    && let Some(first) = data.first_mut()
                {
                    *first = self.isr.swap(0, Ordering::SeqCst);
                }
            }
            o if o < NOTIFY_OFFSET => self.device.read_config(o - DEVICE_OFFSET, data),
            o if o < MSIX_TABLE_OFFSET => data.fill(0),
            o if o < MSIX_PBA_OFFSET => self.msix().table_read(o - MSIX_TABLE_OFFSET, data),
            o => self.msix().pba_read(o - MSIX_PBA_OFFSET, data),
        }
    }

    fn bar_write(&mut self, _bar: usize, offset: u64, data: &[u8]) {
        match offset {
            o if o < ISR_OFFSET => self.common_write(o - COMMON_OFFSET, data),
            o if o < DEVICE_OFFSET => {}
            o if o < NOTIFY_OFFSET => self.device.write_config(o - DEVICE_OFFSET, data),
            o if o < MSIX_TABLE_OFFSET => {
                // A kick that KVM did not turn into an ioeventfd signal (not registered yet).
                let index = ((o - NOTIFY_OFFSET) / u64::from(NOTIFY_MULTIPLIER)) as usize;
                if let Some(fd) = self.notify.get(index) {
                    let _ = fd.write(1);
                }
            }
            o if o < MSIX_PBA_OFFSET => self.msix().table_write(o - MSIX_TABLE_OFFSET, data),
            _ => {}
        }
    }

    fn bar_moved(&mut self, _bar: usize, _address: u64) {
        if self.ioevents_at.is_some() {
            self.register_ioevents();
        }
    }
}

impl Drop for VirtioPciDevice {
    fn drop(&mut self) {
        if self.active {
            self.device.reset();
        }
    }
}
