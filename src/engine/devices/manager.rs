//! Builds a VM's devices and routes guest accesses to them. Ports nobody owns read as all ones,
//! like an empty ISA bus; unowned MMIO reads as all ones too.
//!
//! Nothing holds a device but the buses (the PCI root reaches the MMIO bus weakly), so dropping
//! the manager drops every function: each disk's I/O thread stops and its image is flushed and
//! unlocked before the next incarnation of the VM opens it again.

use std::sync::{Arc, Mutex};

use kvm_ioctls::VmFd;
use vm_allocator::{AddressAllocator, AllocPolicy};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::bus::{Bus, SharedDevice};
use super::interrupts::{InterruptRouter, IrqFdTrigger};
use super::legacy::i8042::{self, I8042, KeyFeed};
use super::legacy::serial::{self, SerialPort};
use super::legacy::{PmDevice, PvPanic, cmos, pm, pvpanic};
use super::pci::SharedPciDevice;
use super::pci::root::{ADDRESS_PORT, DATA_PORT, PciRoot};
use super::virtio::VirtioDevice;
use super::virtio::block::Block;
use super::virtio::gpu::Gpu;
use super::virtio::input::Input;
use super::virtio::net::Net;
use super::virtio::pci_transport::{BAR_SIZE, VirtioPciDevice};
use super::{Frontends, GuestRequest};
use crate::engine::block::DiskImage;
use crate::engine::config::{DiskConfig, NetConfig};
use crate::engine::console::Console;
use crate::engine::error::EngineError;
use crate::engine::layout::{PCI_ECAM_BASE, PCI_ECAM_SIZE, PCI_MMIO32_END, PCI_MMIO32_START};

/// Every device of one VM.
pub struct DeviceManager {
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    serial: Arc<Mutex<SerialPort>>,
    pm: Arc<Mutex<PmDevice>>,
    /// Types the host's keys on the PS/2 keyboard, when the VM has one.
    _ps2_feed: Option<KeyFeed>,
}

fn bus_error(what: &str) -> impl Fn(super::bus::BusError) -> EngineError + '_ {
    move |e| EngineError::Config(format!("placing {what}: {e}"))
}

impl DeviceManager {
    /// Builds the platform devices, one virtio-blk function per disk (in order, so the guest
    /// enumerates them as vda, vdb, …), then one virtio-net function per card (eth0, …), then
    /// the virtio-gpu and the virtio-input devices `frontends` has handles for.
    pub fn new(
        vm: Arc<VmFd>,
        console: &Console,
        memory: &GuestMemoryMmap,
        disks: Vec<(DiskConfig, Box<dyn DiskImage>)>,
        nics: &[NetConfig],
        frontends: &Frontends,
    ) -> Result<Self, EngineError> {
        let router = Arc::new(InterruptRouter::new(vm.clone())?);
        let pio = Arc::new(Bus::default());
        let mmio = Arc::new(Bus::default());

        let irq = EventFd::new(libc::EFD_NONBLOCK)
            .map_err(|e| EngineError::Config(format!("creating the serial irqfd: {e}")))?;
        vm.register_irqfd(&irq, serial::COM1_IRQ)
            .map_err(EngineError::kvm("KVM_IRQFD"))?;
        let serial = Arc::new(Mutex::new(SerialPort::new(
            IrqFdTrigger(irq),
            console.sink(),
        )));
        pio.insert(serial.clone(), serial::COM1_PORT.into(), serial::PORT_COUNT)
            .map_err(bus_error("COM1"))?;
        let keyboard_irq = EventFd::new(libc::EFD_NONBLOCK)
            .map_err(|e| EngineError::Config(format!("creating the keyboard's irqfd: {e}")))?;
        vm.register_irqfd(&keyboard_irq, i8042::KEYBOARD_IRQ)
            .map_err(EngineError::kvm("KVM_IRQFD"))?;
        let controller = Arc::new(Mutex::new(I8042::new(
            Some(keyboard_irq),
            frontends.ps2_keyboard.clone(),
        )));
        let ps2_feed = match &frontends.ps2_keyboard {
            Some(events) => Some(
                KeyFeed::start(Arc::downgrade(&controller), events.clone()).map_err(|e| {
                    EngineError::Config(format!("starting the PS/2 keyboard's thread: {e}"))
                })?,
            ),
            None => None,
        };
        let controller: SharedDevice = controller;
        for port in [i8042::DATA_PORT, i8042::COMMAND_PORT] {
            pio.insert(controller.clone(), port.into(), 1)
                .map_err(bus_error("the i8042"))?;
        }
        let pm = Arc::new(Mutex::new(PmDevice::new(vm.clone())));
        pio.insert(pm.clone(), pm::PM1_EVT_PORT.into(), 4)
            .map_err(bus_error("the PM1 event block"))?;
        pio.insert(pm.clone(), pm::PM1_CNT_PORT.into(), 2)
            .map_err(bus_error("the PM1 control register"))?;
        pio.insert(
            Arc::new(Mutex::new(cmos::Cmos::default())),
            cmos::INDEX_PORT.into(),
            2,
        )
        .map_err(bus_error("the RTC"))?;
        pio.insert(Arc::new(Mutex::new(PvPanic)), pvpanic::PORT.into(), 1)
            .map_err(bus_error("pvpanic"))?;

        let root = Arc::new(Mutex::new(PciRoot::new(&mmio)));
        pio.insert(root.clone(), ADDRESS_PORT.into(), 4)
            .map_err(bus_error("the PCI address port"))?;
        pio.insert(root.clone(), DATA_PORT.into(), 4)
            .map_err(bus_error("the PCI data ports"))?;
        mmio.insert(root.clone(), PCI_ECAM_BASE, PCI_ECAM_SIZE)
            .map_err(bus_error("the ECAM window"))?;

        let mut window = AddressAllocator::new(PCI_MMIO32_START, PCI_MMIO32_END - PCI_MMIO32_START)
            .map_err(|e| EngineError::Config(format!("the PCI MMIO window: {e}")))?;
        let mut functions: Vec<(String, Box<dyn VirtioDevice>)> = Vec::new();
        for (disk, image) in disks {
            let block = Block::new(
                disk.target.clone(),
                image,
                disk.readonly,
                disk.discard,
                disk.serial.clone(),
            );
            functions.push((format!("disk {}", disk.target), Box::new(block)));
        }
        for nic in nics {
            functions.push((
                format!("network card {}", nic.id),
                Box::new(Net::new(nic.clone())),
            ));
        }
        if let Some(scanout) = &frontends.scanout {
            functions.push(("the display".into(), Box::new(Gpu::new(scanout.clone()))));
        }
        for (kind, events) in &frontends.inputs {
            functions.push((
                format!("the {kind:?} input device").to_lowercase(),
                Box::new(Input::new(*kind, events.clone())),
            ));
        }
        for (what, device) in functions {
            let bar = window
                .allocate(BAR_SIZE, BAR_SIZE, AllocPolicy::FirstMatch)
                .map_err(|e| {
                    EngineError::Config(format!("no room for {what} in the PCI window: {e}"))
                })?;
            let function = VirtioPciDevice::new(
                device,
                memory.clone(),
                vm.clone(),
                router.clone(),
                bar.start(),
            )?;
            let function: SharedPciDevice = Arc::new(Mutex::new(function));
            root.lock()
                .unwrap_or_else(|p| p.into_inner())
                .plug(function)
                .map_err(|e| EngineError::Config(format!("plugging {what}: {e}")))?;
        }
        Ok(Self {
            pio,
            mmio,
            serial,
            pm,
            _ps2_feed: ps2_feed,
        })
    }

    /// A guest `in` from `port`.
    pub fn pio_read(&self, port: u16, data: &mut [u8]) {
        if !self.pio.read(port.into(), data) {
            data.fill(0xff);
        }
    }

    /// A guest `out` to `port`; returns what it asks of the VM, if anything.
    pub fn pio_write(&self, port: u16, data: &[u8]) -> Option<GuestRequest> {
        self.pio.write(port.into(), data).flatten()
    }

    /// A guest read of MMIO `addr`; false when no device owns it (the caller fills all ones).
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) -> bool {
        self.mmio.read(addr, data)
    }

    /// A guest write to MMIO `addr`; false when no device owns it.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> bool {
        self.mmio.write(addr, data).is_some()
    }

    /// Queues console input for the guest.
    pub fn send_serial_input(&self, bytes: &[u8]) {
        self.serial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send_input(bytes);
    }

    /// Presses the ACPI power button.
    pub fn press_power_button(&self) {
        self.pm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .press_power_button();
    }
}
