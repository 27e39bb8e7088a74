//! The legacy PC devices a direct-booted guest talks to over port I/O, each a [`BusDevice`] on
//! the PIO bus: the COM1 UART (the console), the i8042 (its reset line and PS/2 keyboard), the ACPI PM
//! registers (power button, S5), the CMOS RTC and QEMU's pvpanic port.

pub mod cmos;
pub mod i8042;
pub mod pm;
pub mod pvpanic;
pub mod serial;

use std::sync::Arc;

use kvm_ioctls::VmFd;

use crate::engine::devices::GuestRequest;
use crate::engine::devices::bus::BusDevice;
use pm::{PmAction, PowerManagement, SCI_IRQ};

/// The ACPI PM1 registers with the SCI line they drive.
pub struct PmDevice {
    pm: PowerManagement,
    vm: Arc<VmFd>,
}

impl PmDevice {
    /// PM registers raising the SCI on `vm`'s irqchip.
    pub fn new(vm: Arc<VmFd>) -> Self {
        Self {
            pm: PowerManagement::default(),
            vm,
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

impl BusDevice for PmDevice {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        self.pm.read((base + offset) as u16, data);
    }

    fn write(&mut self, base: u64, offset: u64, data: &[u8]) -> Option<GuestRequest> {
        let action = self.pm.write((base + offset) as u16, data);
        self.update_sci();
        (action == PmAction::PowerOff).then_some(GuestRequest::PowerOff)
    }
}

impl BusDevice for cmos::Cmos {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        match data {
            [byte] => *byte = cmos::Cmos::read(self, (base + offset) as u16),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, base: u64, offset: u64, data: &[u8]) -> Option<GuestRequest> {
        if let [byte] = data {
            cmos::Cmos::write(self, (base + offset) as u16, *byte);
        }
        None
    }
}

/// QEMU's pvpanic port.
#[derive(Default)]
pub struct PvPanic;

impl BusDevice for PvPanic {
    fn read(&mut self, _base: u64, _offset: u64, data: &mut [u8]) {
        match data {
            [byte] => *byte = pvpanic::capabilities(),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, _base: u64, _offset: u64, data: &[u8]) -> Option<GuestRequest> {
        match data {
            [byte] if pvpanic::is_panic(*byte) => Some(GuestRequest::Panicked),
            _ => None,
        }
    }
}
