//! An address bus (port I/O or MMIO): non-overlapping address ranges, each served by one device
//! behind its own lock, so vCPUs touching different devices never wait for each other. The map
//! itself sits behind a read-write lock that an access holds only for the lookup; the device's
//! lock is taken after it is released, so a device may move its own ranges (a PCI BAR being
//! reprogrammed) from inside an access.
//!
//! Hand-written: rust-vmm's `vm-device` has the same idea but is unmaintained and its bus cannot
//! relocate ranges, which PCI BARs need.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::engine::devices::GuestRequest;

/// A device reachable through a [`Bus`].
pub trait BusDevice: Send {
    /// A guest read of `data.len()` bytes at `offset` into the range that starts at `base`.
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]);
    /// A guest write at `offset` into the range at `base`; returns what it asks of the VM.
    fn write(&mut self, base: u64, offset: u64, data: &[u8]) -> Option<GuestRequest>;
}

/// A device shared between the bus and whoever else drives it (the supervisor, its worker).
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Why a range cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// The range is empty or wraps around the address space.
    #[error("empty or wrapping range {base:#x}+{len:#x}")]
    BadRange {
        /// Start address.
        base: u64,
        /// Length in bytes.
        len: u64,
    },
    /// The range overlaps one already on the bus.
    #[error("range {base:#x}+{len:#x} overlaps a device at {other:#x}")]
    Overlap {
        /// Start address.
        base: u64,
        /// Length in bytes.
        len: u64,
        /// Start of the range it overlaps.
        other: u64,
    },
}

#[derive(Clone)]
struct Range {
    len: u64,
    device: SharedDevice,
}

/// One bus: address ranges → devices.
#[derive(Default)]
pub struct Bus {
    ranges: RwLock<BTreeMap<u64, Range>>,
}

impl Bus {
    /// Adds `device` at `base..base+len`.
    pub fn insert(&self, device: SharedDevice, base: u64, len: u64) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::BadRange { base, len })?;
        let mut ranges = self.ranges.write().unwrap_or_else(|p| p.into_inner());
        // The range starting at or below `end - 1` with the highest start is the only candidate
        // for overlapping from below; any range starting inside [base, end) overlaps too.
        if let Some((&other, r)) = ranges.range(..end).next_back()
            && other + r.len > base
        {
            return Err(BusError::Overlap { base, len, other });
        }
        ranges.insert(base, Range { len, device });
        Ok(())
    }

    /// Moves the range at `old_base` to `new_base` (same length, same device).
    pub fn relocate(&self, old_base: u64, new_base: u64) -> Result<(), BusError> {
        let range = {
            let mut ranges = self.ranges.write().unwrap_or_else(|p| p.into_inner());
            match ranges.remove(&old_base) {
                Some(r) => r,
                None => return Ok(()),
            }
        };
        let (len, device) = (range.len, range.device.clone());
        self.insert(device, new_base, len).inspect_err(|_| {
            // Put it back where it was: a refused move leaves the bus as it was.
            let _ = self.insert(range.device, old_base, len);
        })
    }

    /// The device covering `addr`, its range base.
    fn lookup(&self, addr: u64) -> Option<(u64, SharedDevice)> {
        let ranges = self.ranges.read().unwrap_or_else(|p| p.into_inner());
        let (&base, range) = ranges.range(..=addr).next_back()?;
        (addr - base < range.len).then(|| (base, range.device.clone()))
    }

    /// Dispatches a read; false when no device covers `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        let Some((base, device)) = self.lookup(addr) else {
            return false;
        };
        device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read(base, addr - base, data);
        true
    }

    /// Dispatches a write; `None` in the outer option when no device covers `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> Option<Option<GuestRequest>> {
        let (base, device) = self.lookup(addr)?;
        let request =
            device
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write(base, addr - base, data);
        Some(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(Vec<(u64, u64)>);
    impl BusDevice for Echo {
        fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
            data.fill((base + offset) as u8);
        }
        fn write(&mut self, base: u64, offset: u64, _data: &[u8]) -> Option<GuestRequest> {
            self.0.push((base, offset));
            (offset == 7).then_some(GuestRequest::Reset)
        }
    }

    fn echo() -> SharedDevice {
        Arc::new(Mutex::new(Echo(Vec::new())))
    }

    #[test]
    fn accesses_reach_the_device_with_their_offset() {
        let bus = Bus::default();
        bus.insert(echo(), 0x10, 8).unwrap();
        let mut d = [0u8; 1];
        assert!(bus.read(0x13, &mut d));
        assert_eq!(d[0], 0x13);
        assert!(!bus.read(0x18, &mut d), "one past the end is unowned");
        assert!(!bus.read(0x0f, &mut d));
        assert_eq!(bus.write(0x17, &[0]), Some(Some(GuestRequest::Reset)));
        assert_eq!(bus.write(0x11, &[0]), Some(None));
        assert_eq!(bus.write(0x40, &[0]), None);
    }

    #[test]
    fn overlaps_and_empty_ranges_are_refused() {
        let bus = Bus::default();
        bus.insert(echo(), 0x10, 8).unwrap();
        assert!(matches!(
            bus.insert(echo(), 0x08, 9),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(echo(), 0x17, 1),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(echo(), 0x0c, 0x20),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(echo(), 0x30, 0),
            Err(BusError::BadRange { .. })
        ));
        assert!(matches!(
            bus.insert(echo(), u64::MAX, 2),
            Err(BusError::BadRange { .. })
        ));
        bus.insert(echo(), 0x18, 8).unwrap();
        bus.insert(echo(), 0x08, 8).unwrap();
    }

    #[test]
    fn a_relocated_range_answers_at_its_new_address_only() {
        let bus = Bus::default();
        bus.insert(echo(), 0x1000, 0x100).unwrap();
        bus.insert(echo(), 0x3000, 0x100).unwrap();
        bus.relocate(0x1000, 0x2000).unwrap();
        let mut d = [0u8; 1];
        assert!(!bus.read(0x1000, &mut d));
        assert!(bus.read(0x20ff, &mut d));
        assert!(bus.relocate(0x2000, 0x2f80).is_err(), "would overlap");
        assert!(
            bus.read(0x2000, &mut d),
            "a refused move keeps the old range"
        );
    }
}
