//! The PCI root bus (bus 0) behind the host bridge at 00:00.0, reached through configuration
//! mechanism #1 (ports 0xCF8 address, 0xCFC–0xCFF data) and through ECAM (the MMIO window the
//! ACPI MCFG announces). A Linux guest probes it at boot ("PCI: Fatal: No config space access
//! function found" without it). Functions plugged into slots 1–31 answer there; every other
//! device/function reads as absent (all ones), as on an empty bus. When the guest moves a BAR,
//! the root moves the BAR's range on the MMIO bus.

use std::sync::{Arc, Mutex, Weak};

use crate::engine::devices::GuestRequest;
use crate::engine::devices::bus::{Bus, BusDevice, BusError};
use crate::engine::devices::pci::config_space::ConfigChange;
use crate::engine::devices::pci::{BarRegion, SharedPciDevice};
use crate::engine::layout::PCI_ECAM_BASE;

/// The address port.
pub const ADDRESS_PORT: u16 = 0xcf8;
/// The first data port (0xCFC–0xCFF select the byte within the addressed dword).
pub const DATA_PORT: u16 = 0xcfc;
/// Slots on bus 0 (slot 0 is the host bridge).
pub const SLOTS: usize = 32;

/// Red Hat's PCI vendor ID and the ID of QEMU's generic PCIe host bridge, which Linux knows.
const VENDOR_ID: u16 = 0x1b36;
const DEVICE_ID: u16 = 0x0008;
/// Class: bridge (0x06), host bridge (0x00), no programming interface.
const CLASS_HOST_BRIDGE: u32 = 0x0600_0000;
/// The command register's bits a guest may set on a host bridge (I/O, memory, bus master).
const COMMAND_WRITABLE: u16 = 0x0007;

/// The configuration mechanisms, the host bridge, and the functions on bus 0.
pub struct PciRoot {
    address: u32,
    command: u16,
    slots: Vec<Option<SharedPciDevice>>,
    /// Weak: the MMIO bus holds the root (for ECAM), so a strong reference would be a cycle.
    mmio: Option<Weak<Bus>>,
}

impl Default for PciRoot {
    fn default() -> Self {
        Self {
            address: 0,
            command: 0,
            slots: vec![None; SLOTS],
            mmio: None,
        }
    }
}

impl PciRoot {
    /// A root whose functions' BARs live on `mmio`.
    pub fn new(mmio: &Arc<Bus>) -> Self {
        Self {
            mmio: Some(Arc::downgrade(mmio)),
            ..Self::default()
        }
    }

    /// Plugs `device` into the first free slot and maps its BARs; returns the slot.
    pub fn plug(&mut self, device: SharedPciDevice) -> Result<u8, BusError> {
        let slot = (1..SLOTS)
            .find(|s| self.slots[*s].is_none())
            .ok_or(BusError::BadRange {
                base: SLOTS as u64,
                len: 0,
            })?;
        if let Some(mmio) = self.mmio.as_ref().and_then(Weak::upgrade) {
            let bars = device.lock().unwrap_or_else(|p| p.into_inner()).bars();
            for (bar, placement) in bars {
                let region = BarRegion {
                    device: device.clone(),
                    bar,
                };
                mmio.insert(
                    Arc::new(Mutex::new(region)),
                    placement.address,
                    placement.size,
                )?;
            }
        }
        self.slots[slot] = Some(device);
        Ok(slot as u8)
    }

    /// The addressed (bus/device/function, dword-aligned register) when enabled.
    fn target(&self) -> Option<(u32, u16)> {
        if self.address & 0x8000_0000 == 0 {
            return None;
        }
        Some(((self.address >> 8) & 0xffff, (self.address & 0xfc) as u16))
    }

    /// The host bridge's configuration dword at `offset` (0 beyond the header: no capabilities,
    /// no extended capabilities).
    fn bridge_dword(&self, offset: u16) -> u32 {
        match offset {
            0x00 => (u32::from(DEVICE_ID) << 16) | u32::from(VENDOR_ID),
            0x04 => u32::from(self.command),
            0x08 => CLASS_HOST_BRIDGE,
            0x2c => (u32::from(DEVICE_ID) << 16) | u32::from(VENDOR_ID), // subsystem
            _ => 0,
        }
    }

    /// The function at `bdf` on bus 0, function 0 (no multi-function devices).
    fn function(&self, bdf: u32) -> Option<&SharedPciDevice> {
        let (bus, slot, function) = (bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7);
        if bus != 0 || function != 0 {
            return None;
        }
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Reads `data.len()` bytes of function `bdf`'s configuration space at `offset`.
    pub fn config_read(&self, bdf: u32, offset: u16, data: &mut [u8]) {
        if let Some(device) = self.function(bdf) {
            device
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .config_read(offset, data);
            return;
        }
        let value = if bdf == 0 {
            self.bridge_dword(offset & !3) >> ((offset & 3) * 8)
        } else {
            u32::MAX
        };
        for (i, b) in data.iter_mut().enumerate() {
            *b = value.checked_shr(8 * i as u32).unwrap_or(0xff) as u8;
        }
    }

    /// Writes `data` to function `bdf`'s configuration space at `offset`.
    pub fn config_write(&mut self, bdf: u32, offset: u16, data: &[u8]) {
        if let Some(device) = self.function(bdf).cloned() {
            let mut function = device.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(ConfigChange::BarMoved { index, from, to }) =
                function.config_write(offset, data)
            {
                let moved = match self.mmio.as_ref().and_then(Weak::upgrade) {
                    Some(mmio) => mmio.relocate(from, to),
                    None => Ok(()),
                };
                match moved {
                    Ok(()) => function.bar_moved(index, to),
                    Err(e) => tracing::warn!("the guest moved BAR {index} of {bdf:#x}: {e}"),
                }
            }
            return;
        }
        if bdf != 0 || offset & !3 != 0x04 {
            return;
        }
        let shift = (offset & 3) * 8;
        if shift < 16 {
            let mut bytes = [0u8; 4];
            let n = data.len().min(4);
            bytes[..n].copy_from_slice(&data[..n]);
            let value = (u32::from_le_bytes(bytes) << shift) as u16;
            self.command = value & COMMAND_WRITABLE;
        }
    }

    /// A guest `in` of `data.len()` bytes from `port`.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        if port == ADDRESS_PORT && data.len() == 4 {
            data.copy_from_slice(&self.address.to_le_bytes());
            return;
        }
        match self.target() {
            Some((bdf, reg)) if (DATA_PORT..DATA_PORT + 4).contains(&port) => {
                self.config_read(bdf, reg + (port - DATA_PORT), data)
            }
            _ => data.fill(0xff),
        }
    }

    /// A guest `out` of `data` to `port`.
    pub fn write(&mut self, port: u16, data: &[u8]) {
        if port == ADDRESS_PORT && data.len() == 4 {
            self.address = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            return;
        }
        // Byte writes to 0xCF8–0xCFB (mechanism #2 probing) change nothing.
        if let Some((bdf, reg)) = self.target()
            && (DATA_PORT..DATA_PORT + 4).contains(&port)
        {
            self.config_write(bdf, reg + (port - DATA_PORT), data);
        }
    }

    /// Splits an ECAM address into (bus/device/function, register).
    fn ecam_target(addr: u64) -> (u32, u16) {
        let offset = addr - PCI_ECAM_BASE;
        ((offset >> 12) as u32, (offset & 0xfff) as u16)
    }

    /// A guest read from the ECAM window.
    pub fn ecam_read(&self, addr: u64, data: &mut [u8]) {
        let (bdf, reg) = Self::ecam_target(addr);
        self.config_read(bdf, reg, data);
    }

    /// A guest write to the ECAM window.
    pub fn ecam_write(&mut self, addr: u64, data: &[u8]) {
        let (bdf, reg) = Self::ecam_target(addr);
        self.config_write(bdf, reg, data);
    }
}

/// The root on both buses: ports 0xCF8–0xCFF on the PIO bus, the ECAM window on the MMIO bus.
impl BusDevice for PciRoot {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        if base == PCI_ECAM_BASE {
            self.ecam_read(base + offset, data);
        } else {
            PciRoot::read(self, (base + offset) as u16, data);
        }
    }

    fn write(&mut self, base: u64, offset: u64, data: &[u8]) -> Option<GuestRequest> {
        if base == PCI_ECAM_BASE {
            self.ecam_write(base + offset, data);
        } else {
            PciRoot::write(self, (base + offset) as u16, data);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read32(io: &mut PciRoot, bdf_reg: u32) -> u32 {
        io.write(ADDRESS_PORT, &(0x8000_0000 | bdf_reg).to_le_bytes());
        let mut d = [0u8; 4];
        io.read(DATA_PORT, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn the_host_bridge_answers_at_00_00_0() {
        let mut io = PciRoot::default();
        assert_eq!(read32(&mut io, 0), 0x0008_1b36);
        assert_eq!(read32(&mut io, 0x08) >> 16, 0x0600, "class: host bridge");
        let mut d = [0u8; 2];
        io.read(DATA_PORT + 2, &mut d);
        assert_eq!(u16::from_le_bytes(d), 0x0600);
    }

    #[test]
    fn other_devices_are_absent() {
        let mut io = PciRoot::default();
        assert_eq!(read32(&mut io, 1 << 11), u32::MAX);
        assert_eq!(read32(&mut io, 1 << 16), u32::MAX, "bus 1");
    }

    #[test]
    fn the_address_register_reads_back_and_type_1_is_detected() {
        let mut io = PciRoot::default();
        io.write(ADDRESS_PORT + 3, &[1]);
        io.write(ADDRESS_PORT, &0x8000_0000u32.to_le_bytes());
        let mut d = [0u8; 4];
        io.read(ADDRESS_PORT, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x8000_0000);
    }

    #[test]
    fn ecam_reaches_the_same_configuration_space() {
        let mut io = PciRoot::default();
        let mut d = [0u8; 4];
        io.ecam_read(PCI_ECAM_BASE, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x0008_1b36);
        io.ecam_read(PCI_ECAM_BASE + (1 << 15), &mut d);
        assert_eq!(u32::from_le_bytes(d), u32::MAX, "device 1 is absent");
        io.ecam_write(PCI_ECAM_BASE + 4, &[0x06, 0]);
        assert_eq!(
            read32(&mut io, 0x04),
            0x0006,
            "a command write lands for both mechanisms"
        );
        let mut ext = [0u8; 4];
        io.ecam_read(PCI_ECAM_BASE + 0x100, &mut ext);
        assert_eq!(ext, [0; 4], "no extended capabilities");
    }

    #[test]
    fn only_the_command_bits_are_writable() {
        let mut io = PciRoot::default();
        io.write(ADDRESS_PORT, &0x8000_0004u32.to_le_bytes());
        io.write(DATA_PORT, &0xffffu16.to_le_bytes());
        assert_eq!(read32(&mut io, 0x04), 0x0007);
        io.write(ADDRESS_PORT, &0x8000_0000u32.to_le_bytes());
        io.write(DATA_PORT, &0u32.to_le_bytes());
        assert_eq!(read32(&mut io, 0), 0x0008_1b36, "IDs are read-only");
    }
}
