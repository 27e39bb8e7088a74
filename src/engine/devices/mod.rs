//! The legacy PC devices a direct-booted guest talks to over port I/O: the COM1 16550 UART
//! (the console), the i8042 controller (for its reset line), the ACPI PM registers, the CMOS
//! RTC and the PCI configuration ports.
//! Ports nobody owns read as all-ones, like an empty ISA bus.

pub mod cmos;
pub mod irq_routing;
pub mod pci_config;
pub mod pm;
pub mod pvpanic;

use std::collections::VecDeque;
use std::sync::Arc;

use kvm_ioctls::VmFd;
use vm_superio::serial::NoEvents;
use vm_superio::{I8042Device, Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::engine::console::{Console, ConsoleSink};
use pm::{PmAction, PowerManagement, SCI_IRQ};

/// COM1's base port and IRQ.
pub const COM1_PORT: u16 = 0x3f8;
/// COM1's ISA IRQ.
pub const COM1_IRQ: u32 = 4;
const I8042_DATA_PORT: u16 = 0x60;
const I8042_COMMAND_PORT: u16 = 0x64;

/// What a guest's port write asks of the VM as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestRequest {
    /// The guest reset the machine (i8042 reset line).
    Reset,
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The guest kernel reported a panic (pvpanic).
    Panicked,
}

/// Raises an interrupt through a KVM irqfd.
pub struct IrqFdTrigger(EventFd);

impl Trigger for IrqFdTrigger {
    type E = std::io::Error;

    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// Records that the i8042 pulsed the reset line; read back after each write.
#[derive(Default)]
pub struct ResetLine(std::cell::Cell<bool>);

impl Trigger for ResetLine {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.set(true);
        Ok(())
    }
}

/// The port-I/O devices of one VM.
pub struct Devices {
    serial: Serial<IrqFdTrigger, NoEvents, ConsoleSink>,
    /// Input that did not fit in the UART's FIFO yet; moved in as the guest reads.
    serial_backlog: VecDeque<u8>,
    i8042: I8042Device<ResetLine>,
    pm: PowerManagement,
    rtc: cmos::Cmos,
    pci: pci_config::PciConfigIo,
    vm: Arc<VmFd>,
}

impl Devices {
    /// Creates the devices, wiring the UART's interrupt to IRQ 4 of the in-kernel irqchip.
    pub fn new(vm: Arc<VmFd>, console: &Console) -> Result<Self, crate::engine::EngineError> {
        let irq = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| {
            crate::engine::EngineError::Config(format!("creating the serial irqfd: {e}"))
        })?;
        vm.register_irqfd(&irq, COM1_IRQ)
            .map_err(crate::engine::EngineError::kvm("KVM_IRQFD"))?;
        Ok(Self {
            serial: Serial::new(IrqFdTrigger(irq), console.sink()),
            serial_backlog: VecDeque::new(),
            i8042: I8042Device::new(ResetLine::default()),
            pm: PowerManagement::default(),
            rtc: cmos::Cmos::default(),
            pci: pci_config::PciConfigIo::default(),
            vm,
        })
    }

    /// A guest `in` from `port`.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        match port {
            p if (COM1_PORT..COM1_PORT + 8).contains(&p) && data.len() == 1 => {
                data[0] = self.serial.read((p - COM1_PORT) as u8);
                self.refill_serial();
            }
            I8042_DATA_PORT | I8042_COMMAND_PORT if data.len() == 1 => {
                data[0] = self.i8042.read((port - I8042_DATA_PORT) as u8);
            }
            p if PowerManagement::owns(p) => self.pm.read(p, data),
            p if cmos::Cmos::owns(p) && data.len() == 1 => data[0] = self.rtc.read(p),
            p if pci_config::PciConfigIo::owns(p) => self.pci.read(p, data),
            pvpanic::PORT if data.len() == 1 => data[0] = pvpanic::capabilities(),
            _ => data.fill(0xff),
        }
    }

    /// A guest `out` to `port`; returns what it asks of the VM, if anything.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Option<GuestRequest> {
        match port {
            p if (COM1_PORT..COM1_PORT + 8).contains(&p) && data.len() == 1 => {
                if let Err(e) = self.serial.write((p - COM1_PORT) as u8, data[0]) {
                    tracing::warn!("serial write failed: {e:?}");
                }
                None
            }
            I8042_DATA_PORT | I8042_COMMAND_PORT if data.len() == 1 => {
                let _ = self.i8042.write((port - I8042_DATA_PORT) as u8, data[0]);
                self.i8042
                    .reset_evt()
                    .0
                    .replace(false)
                    .then_some(GuestRequest::Reset)
            }
            p if PowerManagement::owns(p) => {
                let action = self.pm.write(p, data);
                self.update_sci();
                (action == PmAction::PowerOff).then_some(GuestRequest::PowerOff)
            }
            p if cmos::Cmos::owns(p) && data.len() == 1 => {
                self.rtc.write(p, data[0]);
                None
            }
            p if pci_config::PciConfigIo::owns(p) => {
                self.pci.write(p, data);
                None
            }
            pvpanic::PORT if data.len() == 1 => {
                pvpanic::is_panic(data[0]).then_some(GuestRequest::Panicked)
            }
            _ => None,
        }
    }

    /// A guest read of MMIO `addr`; false when no device owns it.
    pub fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> bool {
        if pci_config::PciConfigIo::owns_ecam(addr) {
            self.pci.ecam_read(addr, data);
            return true;
        }
        false
    }

    /// A guest write to MMIO `addr`; false when no device owns it.
    pub fn mmio_write(&mut self, addr: u64, data: &[u8]) -> bool {
        if pci_config::PciConfigIo::owns_ecam(addr) {
            self.pci.ecam_write(addr, data);
            return true;
        }
        false
    }

    /// Queues console input for the guest.
    pub fn send_serial_input(&mut self, bytes: &[u8]) {
        self.serial_backlog.extend(bytes);
        self.refill_serial();
    }

    fn refill_serial(&mut self) {
        if self.serial_backlog.is_empty() {
            return;
        }
        let room = self.serial.fifo_capacity();
        if room == 0 {
            return;
        }
        let chunk: Vec<u8> = self
            .serial_backlog
            .drain(..room.min(self.serial_backlog.len()))
            .collect();
        match self.serial.enqueue_raw_bytes(&chunk) {
            Ok(taken) if taken < chunk.len() => {
                for b in chunk[taken..].iter().rev() {
                    self.serial_backlog.push_front(*b);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("serial input dropped: {e:?}"),
        }
    }

    /// Presses the ACPI power button.
    pub fn press_power_button(&mut self) {
        self.pm.press_power_button();
        self.update_sci();
    }

    fn update_sci(&self) {
        if let Err(e) = self.vm.set_irq_line(SCI_IRQ, self.pm.sci_level()) {
            tracing::warn!("cannot set the SCI line: {e}");
        }
    }
}
