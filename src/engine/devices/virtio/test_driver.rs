//! A minimal virtio-pci guest driver for device tests: finds the function in slot 1 through
//! ECAM, enables MSI-X, negotiates VIRTIO_F_VERSION_1 (and the features a test asks for), sets
//! up every queue (the configuration-change interrupt on the vector after them) and reaches
//! DRIVER_OK, then posts descriptor chains and waits for used entries. Needs /dev/kvm (the
//! transport registers ioeventfds and irqfds), not a guest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::engine::console::Console;
use crate::engine::devices::{DeviceManager, Frontends};
use crate::engine::layout::PCI_ECAM_BASE;

/// Each queue's size here.
pub const QUEUE_SIZE: u16 = 16;
/// Descriptor flag: the device writes this buffer.
pub const WRITE_ONLY: u16 = 2;
const NEXT: u16 = 1;
/// Where queue `q`'s descriptor table, available ring and used ring are.
fn rings(q: usize) -> (u64, u64, u64) {
    let base = 0x10_0000 + q as u64 * 0x3_0000;
    (base, base + 0x1_0000, base + 0x2_0000)
}
/// Guest RAM the tests get (the rings sit in its second MiB, free from 0x40_0000 on).
pub const MEMORY: usize = 32 << 20;
/// The first address free for test buffers.
pub const FREE: u64 = 0x40_0000;

pub struct Driver {
    pub devices: DeviceManager,
    pub memory: GuestMemoryMmap,
    bar: u64,
    avail: Vec<u16>,
    next_desc: Vec<u16>,
    used_seen: Vec<u16>,
}

impl Driver {
    /// A VM with only `frontends`' devices, the first of them driven.
    pub fn new(frontends: &Frontends, device_id: u16, queues: usize) -> Self {
        Self::with(frontends, &[], device_id, queues, 0)
    }

    /// A VM with `frontends`' devices and the network cards `nics`, the first device driven
    /// with `features` (bits 0–31) besides VIRTIO_F_VERSION_1.
    pub fn with(
        frontends: &Frontends,
        nics: &[crate::engine::config::NetConfig],
        device_id: u16,
        queues: usize,
        features: u32,
    ) -> Self {
        let kvm = kvm_ioctls::Kvm::new().expect("/dev/kvm");
        let vm = Arc::new(kvm.create_vm().expect("KVM_CREATE_VM"));
        vm.create_irq_chip().expect("KVM_CREATE_IRQCHIP");
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY)]).unwrap();
        let devices = DeviceManager::new(
            vm,
            &Console::new(1024),
            &memory,
            Vec::new(),
            nics,
            frontends,
        )
        .unwrap();
        Self::probe(devices, memory, device_id, queues, features)
    }

    fn config32(&self, offset: u64) -> u32 {
        let mut d = [0u8; 4];
        assert!(
            self.devices
                .mmio_read(PCI_ECAM_BASE + (1 << 15) + offset, &mut d)
        );
        u32::from_le_bytes(d)
    }

    /// The function's PCI class code.
    pub fn class(&self) -> u32 {
        self.config32(8) >> 8
    }

    pub fn write(&self, offset: u64, data: &[u8]) {
        assert!(self.devices.mmio_write(self.bar + offset, data));
    }

    pub fn read(&self, offset: u64, data: &mut [u8]) {
        assert!(self.devices.mmio_read(self.bar + offset, data));
    }

    /// `len` bytes of the device configuration from `offset`.
    pub fn device_config(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.read(0x2000 + offset, &mut out);
        out
    }

    fn probe(
        devices: DeviceManager,
        memory: GuestMemoryMmap,
        device_id: u16,
        queues: usize,
        features: u32,
    ) -> Self {
        let mut d = Driver {
            devices,
            memory,
            bar: 0,
            avail: vec![0; queues],
            next_desc: vec![0; queues],
            used_seen: vec![0; queues],
        };
        assert_eq!(
            d.config32(0),
            (u32::from(0x1040 + device_id) << 16) | 0x1af4,
            "virtio device {device_id} (modern) at 00:01.0"
        );
        d.bar = u64::from(d.config32(0x10) & !0xf);
        let mut cap = u64::from(d.config32(0x34) & 0xff);
        while cap != 0 {
            let header = d.config32(cap);
            if header & 0xff == 0x11 {
                let control = ((header >> 16) as u16 | 0x8000).to_le_bytes();
                assert!(
                    d.devices
                        .mmio_write(PCI_ECAM_BASE + (1 << 15) + cap + 2, &control)
                );
            }
            cap = u64::from((header >> 8) & 0xff);
        }
        for vector in 0..=queues as u64 {
            d.write(0x4000 + 16 * vector, &0xfee0_0000u32.to_le_bytes());
            d.write(0x4008 + 16 * vector, &(0x41 + vector as u32).to_le_bytes());
            d.write(0x400c + 16 * vector, &0u32.to_le_bytes());
        }
        d.write(0x14, &[1 | 2]);
        d.write(0x00, &0u32.to_le_bytes());
        let mut offered = [0u8; 4];
        d.read(0x04, &mut offered);
        assert_eq!(
            u32::from_le_bytes(offered) & features,
            features,
            "the device offers {features:#x}"
        );
        d.write(0x08, &0u32.to_le_bytes());
        d.write(0x0c, &features.to_le_bytes());
        d.write(0x08, &1u32.to_le_bytes());
        d.write(0x0c, &1u32.to_le_bytes());
        d.write(0x14, &[1 | 2 | 8]);
        d.write(0x10, &(queues as u16).to_le_bytes());
        for index in 0..queues {
            let (desc, avail, used) = rings(index);
            d.write(0x16, &(index as u16).to_le_bytes());
            d.write(0x18, &QUEUE_SIZE.to_le_bytes());
            d.write(0x1a, &(index as u16).to_le_bytes());
            for (offset, addr) in [(0x20, desc), (0x28, avail), (0x30, used)] {
                d.write(offset, &(addr as u32).to_le_bytes());
                d.write(offset + 4, &0u32.to_le_bytes());
            }
            d.write(0x1c, &1u16.to_le_bytes());
        }
        d.write(0x14, &[1 | 2 | 8 | 4]);
        let mut status = [0u8; 1];
        d.read(0x14, &mut status);
        assert_eq!(status[0], 1 | 2 | 8 | 4, "no DEVICE_NEEDS_RESET");
        d
    }

    /// Puts a chain of (address, length, flags) on queue `q` and kicks it.
    pub fn post(&mut self, q: usize, chain: &[(u64, u32, u16)]) {
        let first = self.next_desc[q];
        for (i, (addr, len, flags)) in chain.iter().enumerate() {
            let index = (first + i as u16) % QUEUE_SIZE;
            let last = i + 1 == chain.len();
            let mut desc = [0u8; 16];
            desc[0..8].copy_from_slice(&addr.to_le_bytes());
            desc[8..12].copy_from_slice(&len.to_le_bytes());
            desc[12..14].copy_from_slice(&(flags | if last { 0 } else { NEXT }).to_le_bytes());
            desc[14..16].copy_from_slice(&((index + 1) % QUEUE_SIZE).to_le_bytes());
            self.memory
                .write_slice(&desc, GuestAddress(rings(q).0 + 16 * u64::from(index)))
                .unwrap();
        }
        self.next_desc[q] = (first + chain.len() as u16) % QUEUE_SIZE;
        let slot = u64::from(self.avail[q] % QUEUE_SIZE);
        self.memory
            .write_obj(first, GuestAddress(rings(q).1 + 4 + 2 * slot))
            .unwrap();
        self.avail[q] = self.avail[q].wrapping_add(1);
        self.memory
            .write_obj(self.avail[q], GuestAddress(rings(q).1 + 2))
            .unwrap();
        self.write(0x3000 + 4 * q as u64, &(q as u16).to_le_bytes());
    }

    /// The used entries (descriptor id, length) of queue `q` since the last call, waiting up to
    /// `wait` for at least `want` of them.
    pub fn used(&mut self, q: usize, want: usize, wait: Duration) -> Vec<(u32, u32)> {
        let deadline = Instant::now() + wait;
        loop {
            let idx: u16 = self.memory.read_obj(GuestAddress(rings(q).2 + 2)).unwrap();
            if usize::from(idx.wrapping_sub(self.used_seen[q])) >= want
                || Instant::now() >= deadline
            {
                let mut entries = Vec::new();
                while self.used_seen[q] != idx {
                    let at = rings(q).2 + 4 + 8 * u64::from(self.used_seen[q] % QUEUE_SIZE);
                    let id: u32 = self.memory.read_obj(GuestAddress(at)).unwrap();
                    let len: u32 = self.memory.read_obj(GuestAddress(at + 4)).unwrap();
                    entries.push((id, len));
                    self.used_seen[q] = self.used_seen[q].wrapping_add(1);
                }
                return entries;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
