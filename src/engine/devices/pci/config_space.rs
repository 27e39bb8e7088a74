//! A type-0 PCI configuration header with memory BARs and a capability list, as every PCI
//! function Vireo emulates presents it: IDs and class read-only, command writable, BARs that
//! answer the guest's sizing probe (write all ones, read back the size mask) and move when the
//! guest writes a new address.

/// Offset of the command register.
const COMMAND: usize = 0x04;
/// Offset of the status register.
const STATUS: usize = 0x06;
/// First BAR.
const BAR0: usize = 0x10;
/// Capabilities pointer.
const CAP_POINTER: usize = 0x34;
/// Interrupt line (written by the guest, unused with MSI-X).
const INTERRUPT_LINE: usize = 0x3c;
/// Status bit: the function has a capability list.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Command bits a guest may set: I/O, memory, bus master, INTx disable.
const COMMAND_WRITABLE: u16 = 0x0007 | (1 << 10);
/// The header is 64 bytes; capabilities go after it.
const FIRST_CAP: usize = 0x40;
/// Size of the conventional configuration space.
pub const CONFIG_SIZE: usize = 256;

/// The identity of a PCI function.
#[derive(Debug, Clone, Copy)]
pub struct PciIds {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Revision.
    pub revision: u8,
    /// Class code, subclass and programming interface (24 bits).
    pub class: u32,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem: u16,
}

/// A 32-bit, non-prefetchable memory BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Its size, a power of two ≥ 4 KiB.
    pub size: u64,
    /// Where the guest (or Vireo, at build) placed it.
    pub address: u64,
}

/// What a configuration write changed that the caller must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    /// BAR `index` moved from `from` to `to`.
    BarMoved {
        /// The BAR.
        index: usize,
        /// Old address.
        from: u64,
        /// New address.
        to: u64,
    },
}

/// The configuration space of one function.
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    /// Bits the guest may change, per byte (BARs and the command register are handled apart).
    writable: [u8; CONFIG_SIZE],
    bars: [Option<Bar>; 6],
    /// BAR registers as last written (a sizing probe leaves all ones here until restored).
    bar_registers: [u32; 6],
    next_cap: usize,
    last_cap: Option<usize>,
}

impl ConfigSpace {
    /// A header with `ids` and no BARs or capabilities.
    pub fn new(ids: PciIds) -> Self {
        let mut bytes = [0u8; CONFIG_SIZE];
        bytes[0..2].copy_from_slice(&ids.vendor.to_le_bytes());
        bytes[2..4].copy_from_slice(&ids.device.to_le_bytes());
        bytes[8] = ids.revision;
        bytes[9..12].copy_from_slice(&ids.class.to_le_bytes()[..3]);
        bytes[0x2c..0x2e].copy_from_slice(&ids.subsystem_vendor.to_le_bytes());
        bytes[0x2e..0x30].copy_from_slice(&ids.subsystem.to_le_bytes());
        let mut writable = [0u8; CONFIG_SIZE];
        writable[INTERRUPT_LINE] = 0xff;
        Self {
            bytes,
            writable,
            bars: [None; 6],
            bar_registers: [0; 6],
            next_cap: FIRST_CAP,
            last_cap: None,
        }
    }

    /// Declares BAR `index` of `size` bytes at `address`.
    pub fn set_bar(&mut self, index: usize, bar: Bar) {
        debug_assert!(bar.size.is_power_of_two() && bar.address % bar.size == 0);
        self.bars[index] = Some(bar);
        self.bar_registers[index] = bar.address as u32;
    }

    /// The current placement of BAR `index`.
    pub fn bar(&self, index: usize) -> Option<Bar> {
        self.bars[index]
    }

    /// Appends a capability with `id` and `body` (the bytes after ID and next pointer), whose
    /// bytes are read-only except those set in `writable` (same length as `body`). Returns the
    /// capability's offset.
    pub fn add_capability(&mut self, id: u8, body: &[u8], writable: &[u8]) -> usize {
        let offset = self.next_cap;
        let len = 2 + body.len();
        assert!(
            offset + len <= CONFIG_SIZE,
            "capabilities overflow the header"
        );
        self.bytes[offset] = id;
        self.bytes[offset + 1] = 0;
        self.bytes[offset + 2..offset + len].copy_from_slice(body);
        self.writable[offset + 2..offset + len].copy_from_slice(writable);
        match self.last_cap {
            Some(prev) => self.bytes[prev + 1] = offset as u8,
            None => {
                self.bytes[CAP_POINTER] = offset as u8;
                let status = u16::from_le_bytes([self.bytes[STATUS], self.bytes[STATUS + 1]]);
                self.bytes[STATUS..STATUS + 2]
                    .copy_from_slice(&(status | STATUS_CAP_LIST).to_le_bytes());
            }
        }
        self.last_cap = Some(offset);
        // Dword-align the next one, as the spec requires.
        self.next_cap = (offset + len + 3) & !3;
        offset
    }

    /// The bytes at `offset` (for reading capability fields back).
    pub fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        &self.bytes[offset..offset + len]
    }

    fn bar_index(offset: usize) -> Option<usize> {
        (BAR0..BAR0 + 24)
            .contains(&offset)
            .then(|| (offset - BAR0) / 4)
    }

    /// A guest read of `data.len()` bytes at `offset` (beyond 256 bytes: zeros, no extended
    /// capabilities).
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            let at = offset + i;
            *byte = match Self::bar_index(at) {
                Some(bar) => self.bar_register(bar).to_le_bytes()[(at - BAR0) % 4],
                None => self.bytes.get(at).copied().unwrap_or(0),
            };
        }
    }

    fn bar_register(&self, index: usize) -> u32 {
        match self.bars[index] {
            // 32-bit memory BAR, not prefetchable: the low 4 bits are 0.
            Some(bar) => self.bar_registers[index] & !(bar.size as u32 - 1),
            None => 0,
        }
    }

    /// A guest write at `offset`; returns what moved.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Option<ConfigChange> {
        if let Some(index) = Self::bar_index(offset) {
            return self.write_bar(index, offset, data);
        }
        for (i, value) in data.iter().enumerate() {
            let at = offset + i;
            if at >= CONFIG_SIZE {
                break;
            }
            let mask = match at {
                COMMAND => COMMAND_WRITABLE.to_le_bytes()[0],
                0x05 => COMMAND_WRITABLE.to_le_bytes()[1],
                _ => self.writable[at],
            };
            self.bytes[at] = (self.bytes[at] & !mask) | (value & mask);
        }
        None
    }

    fn write_bar(&mut self, index: usize, offset: usize, data: &[u8]) -> Option<ConfigChange> {
        let bar = self.bars[index]?;
        let mut register = self.bar_registers[index].to_le_bytes();
        for (i, value) in data.iter().enumerate() {
            if let Some(slot) = register.get_mut(offset - (BAR0 + index * 4) + i) {
                *slot = *value;
            }
        }
        let register = u32::from_le_bytes(register);
        self.bar_registers[index] = register;
        let address = u64::from(register & !(bar.size as u32 - 1));
        // All ones is the sizing probe, not a placement; the guest restores the address next.
        if register == u32::MAX || address == bar.address || address == 0 {
            return None;
        }
        self.bars[index] = Some(Bar { address, ..bar });
        Some(ConfigChange::BarMoved {
            index,
            from: bar.address,
            to: address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ConfigSpace {
        let mut s = ConfigSpace::new(PciIds {
            vendor: 0x1af4,
            device: 0x1042,
            revision: 1,
            class: 0x01_80_00,
            subsystem_vendor: 0x1af4,
            subsystem: 0x40,
        });
        s.set_bar(
            0,
            Bar {
                size: 0x8000,
                address: 0xc000_0000,
            },
        );
        s
    }

    fn read32(s: &ConfigSpace, offset: usize) -> u32 {
        let mut d = [0u8; 4];
        s.read(offset, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn ids_and_class_read_back_and_are_read_only() {
        let mut s = space();
        assert_eq!(read32(&s, 0), 0x1042_1af4);
        assert_eq!(read32(&s, 8), 0x0180_0001);
        s.write(0, &[0, 0, 0, 0]);
        assert_eq!(read32(&s, 0), 0x1042_1af4);
    }

    #[test]
    fn a_bar_answers_the_sizing_probe_and_moves_when_written() {
        let mut s = space();
        assert_eq!(read32(&s, 0x10), 0xc000_0000);
        assert_eq!(s.write(0x10, &u32::MAX.to_le_bytes()), None);
        assert_eq!(read32(&s, 0x10), !(0x8000 - 1), "size mask");
        assert_eq!(s.write(0x10, &0xc000_0000u32.to_le_bytes()), None);
        assert_eq!(
            s.write(0x10, &0xd000_0000u32.to_le_bytes()),
            Some(ConfigChange::BarMoved {
                index: 0,
                from: 0xc000_0000,
                to: 0xd000_0000
            })
        );
        assert_eq!(s.bar(0).unwrap().address, 0xd000_0000);
        assert_eq!(read32(&s, 0x14), 0, "absent BAR 1");
    }

    #[test]
    fn capabilities_chain_and_only_their_writable_bits_change() {
        let mut s = space();
        let a = s.add_capability(0x11, &[0x01, 0x00], &[0x00, 0xc0]);
        let b = s.add_capability(0x09, &[4, 1, 0], &[0, 0, 0]);
        assert_eq!(s.bytes(0x34, 1)[0] as usize, a);
        assert_eq!(s.bytes(a + 1, 1)[0] as usize, b);
        assert_ne!(read32(&s, 4) >> 16 & u32::from(STATUS_CAP_LIST), 0);
        s.write(a + 2, &[0xff, 0xff]);
        assert_eq!(s.bytes(a + 2, 2), &[0x01, 0xc0]);
        s.write(4, &[0xff, 0xff]);
        assert_eq!(read32(&s, 4) & 0xffff, u32::from(COMMAND_WRITABLE));
    }
}
