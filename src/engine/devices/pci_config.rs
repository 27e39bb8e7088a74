//! PCI configuration space of bus 0, reached through configuration mechanism #1 (ports 0xCF8
//! address, 0xCFC–0xCFF data) and through ECAM (the MMIO window the ACPI MCFG announces), with a
//! host bridge at 00:00.0. A Linux guest probes it at boot ("PCI: Fatal: No config space access
//! function found" without it) and the virtio-pci devices that come next live behind it. Every
//! other device/function reads as absent (all ones), as on an empty bus.

use crate::engine::layout::{PCI_ECAM_BASE, PCI_ECAM_SIZE};

/// The address port.
pub const ADDRESS_PORT: u16 = 0xcf8;
/// The first data port (0xCFC–0xCFF select the byte within the addressed dword).
pub const DATA_PORT: u16 = 0xcfc;

/// Red Hat's PCI vendor ID and the ID of QEMU's generic PCIe host bridge, which Linux knows.
const VENDOR_ID: u16 = 0x1b36;
const DEVICE_ID: u16 = 0x0008;
/// Class: bridge (0x06), host bridge (0x00), no programming interface.
const CLASS_HOST_BRIDGE: u32 = 0x0600_0000;
/// The command register's bits a guest may set on a host bridge (I/O, memory, bus master).
const COMMAND_WRITABLE: u16 = 0x0007;

/// The configuration ports and the host bridge's configuration space.
#[derive(Default)]
pub struct PciConfigIo {
    address: u32,
    command: u16,
}

impl PciConfigIo {
    /// Whether `port` belongs to the configuration mechanism.
    pub fn owns(port: u16) -> bool {
        (ADDRESS_PORT..ADDRESS_PORT + 4).contains(&port)
            || (DATA_PORT..DATA_PORT + 4).contains(&port)
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

    /// Reads `data.len()` bytes of function `bdf`'s configuration space at `offset`.
    pub fn config_read(&self, bdf: u32, offset: u16, data: &mut [u8]) {
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

    /// Whether guest-physical `addr` lies in the ECAM window.
    pub fn owns_ecam(addr: u64) -> bool {
        (PCI_ECAM_BASE..PCI_ECAM_BASE + PCI_ECAM_SIZE).contains(&addr)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read32(io: &mut PciConfigIo, bdf_reg: u32) -> u32 {
        io.write(ADDRESS_PORT, &(0x8000_0000 | bdf_reg).to_le_bytes());
        let mut d = [0u8; 4];
        io.read(DATA_PORT, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn the_host_bridge_answers_at_00_00_0() {
        let mut io = PciConfigIo::default();
        assert_eq!(read32(&mut io, 0), 0x0008_1b36);
        assert_eq!(read32(&mut io, 0x08) >> 16, 0x0600, "class: host bridge");
        let mut d = [0u8; 2];
        io.read(DATA_PORT + 2, &mut d);
        assert_eq!(u16::from_le_bytes(d), 0x0600);
    }

    #[test]
    fn other_devices_are_absent() {
        let mut io = PciConfigIo::default();
        assert_eq!(read32(&mut io, 1 << 11), u32::MAX);
        assert_eq!(read32(&mut io, 1 << 16), u32::MAX, "bus 1");
    }

    #[test]
    fn the_address_register_reads_back_and_type_1_is_detected() {
        let mut io = PciConfigIo::default();
        io.write(ADDRESS_PORT + 3, &[1]);
        io.write(ADDRESS_PORT, &0x8000_0000u32.to_le_bytes());
        let mut d = [0u8; 4];
        io.read(ADDRESS_PORT, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x8000_0000);
    }

    #[test]
    fn ecam_reaches_the_same_configuration_space() {
        let mut io = PciConfigIo::default();
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
        assert!(PciConfigIo::owns_ecam(PCI_ECAM_BASE + PCI_ECAM_SIZE - 1));
        assert!(!PciConfigIo::owns_ecam(PCI_ECAM_BASE + PCI_ECAM_SIZE));
    }

    #[test]
    fn only_the_command_bits_are_writable() {
        let mut io = PciConfigIo::default();
        io.write(ADDRESS_PORT, &0x8000_0004u32.to_le_bytes());
        io.write(DATA_PORT, &0xffffu16.to_le_bytes());
        assert_eq!(read32(&mut io, 0x04), 0x0007);
        io.write(ADDRESS_PORT, &0x8000_0000u32.to_le_bytes());
        io.write(DATA_PORT, &0u32.to_le_bytes());
        assert_eq!(read32(&mut io, 0), 0x0008_1b36, "IDs are read-only");
    }
}
