//! PCI: the root bus behind the host bridge (configuration mechanism #1 and ECAM), a generic
//! configuration header, MSI-X, and the trait each emulated PCI function implements. A
//! function's BARs are ranges on the MMIO bus that follow the guest when it moves them.

pub mod config_space;
pub mod msix;
pub mod root;

use std::sync::{Arc, Mutex};

use crate::engine::devices::GuestRequest;
use crate::engine::devices::bus::BusDevice;
use config_space::{Bar, ConfigChange};

/// One emulated PCI function.
pub trait PciDevice: Send {
    /// A configuration-space read at `offset` (0–4095).
    fn config_read(&mut self, offset: u16, data: &mut [u8]);
    /// A configuration-space write at `offset`; returns what moved.
    fn config_write(&mut self, offset: u16, data: &[u8]) -> Option<ConfigChange>;
    /// The function's BARs as placed now, by index.
    fn bars(&self) -> Vec<(usize, Bar)>;
    /// A read inside BAR `bar` at `offset`.
    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]);
    /// A write inside BAR `bar` at `offset`.
    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]);
    /// BAR `bar` now lives at `address` (the bus has moved its range already).
    fn bar_moved(&mut self, bar: usize, address: u64);
}

/// A shared PCI function.
pub type SharedPciDevice = Arc<Mutex<dyn PciDevice>>;

/// The MMIO-bus face of one BAR: accesses go to the function with the BAR's index.
pub struct BarRegion {
    /// The function.
    pub device: SharedPciDevice,
    /// The BAR index.
    pub bar: usize,
}

impl BusDevice for BarRegion {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        self.device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bar_read(self.bar, offset, data);
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) -> Option<GuestRequest> {
        self.device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bar_write(self.bar, offset, data);
        None
    }
}
