//! PCI configuration mechanism #1 (ports 0xCF8 address, 0xCFC–0xCFF data) with a host bridge
//! at 00:00.0. A Linux guest probes it at boot ("PCI: Fatal: No config space access function
//! found" without it) and the virtio-pci devices that come next live behind it. Every other
//! device/function reads as absent (all ones), as on an empty bus.

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

    /// The addressed (device is the host bridge, register offset) when enabled.
    fn target(&self) -> Option<(bool, u8)> {
        if self.address & 0x8000_0000 == 0 {
            return None;
        }
        let bus_dev_fn = (self.address >> 8) & 0xffff;
        Some((bus_dev_fn == 0, (self.address & 0xfc) as u8))
    }

    /// The host bridge's configuration dword at `offset`.
    fn bridge_dword(&self, offset: u8) -> u32 {
        match offset {
            0x00 => (u32::from(DEVICE_ID) << 16) | u32::from(VENDOR_ID),
            0x04 => u32::from(self.command),
            0x08 => CLASS_HOST_BRIDGE,
            0x2c => (u32::from(DEVICE_ID) << 16) | u32::from(VENDOR_ID), // subsystem
            _ => 0,
        }
    }

    /// A guest `in` of `data.len()` bytes from `port`.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        let value = if port == ADDRESS_PORT && data.len() == 4 {
            self.address
        } else if (DATA_PORT..DATA_PORT + 4).contains(&port) {
            match self.target() {
                Some((true, offset)) => self.bridge_dword(offset) >> ((port - DATA_PORT) * 8),
                _ => u32::MAX,
            }
        } else {
            u32::MAX
        };
        for (i, b) in data.iter_mut().enumerate() {
            *b = value.checked_shr(8 * i as u32).unwrap_or(0xff) as u8;
        }
    }

    /// A guest `out` of `data` to `port`.
    pub fn write(&mut self, port: u16, data: &[u8]) {
        if port == ADDRESS_PORT && data.len() == 4 {
            self.address = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            return;
        }
        if !(DATA_PORT..DATA_PORT + 4).contains(&port) {
            return; // byte writes to 0xCF8–0xCFB (mechanism #2 probing) change nothing
        }
        if let Some((true, 0x04)) = self.target() {
            let shift = (port - DATA_PORT) * 8;
            if shift < 16 {
                let mut bytes = [0u8; 4];
                bytes[..data.len()].copy_from_slice(data);
                let value = (u32::from_le_bytes(bytes) << shift) as u16;
                self.command = value & COMMAND_WRITABLE;
            }
        }
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
