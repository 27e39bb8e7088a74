//! virtio-blk through the whole device model with the test as the guest driver: PCI enumeration
//! through ECAM, MSI-X and queue setup in BAR 0 as Linux's virtio_pci does it, requests written
//! into guest memory, a kick, and the answer read back from the used ring and the image file.
//! Needs /dev/kvm (for the irqchip, GSI routes, irqfds and ioeventfds), not a guest.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::engine::config::{CacheMode, DiskConfig, DiskFormat, IoMode};
use crate::engine::console::Console;
use crate::engine::devices::DeviceManager;
use crate::engine::layout::{PCI_ECAM_BASE, PCI_MMIO32_START};

const DESC: u64 = 0x10_0000;
const AVAIL: u64 = 0x11_0000;
const USED: u64 = 0x12_0000;
const HEADER: u64 = 0x20_0000;
const DATA: u64 = 0x30_0000;
const STATUS: u64 = 0x40_0000;
const QUEUE_SIZE: u16 = 16;
const WRITE_ONLY: u16 = 2;
const NEXT: u16 = 1;
const INDIRECT_FLAG: u16 = 4;
const INDIRECT: u64 = 0x13_0000;

struct Driver {
    devices: DeviceManager,
    memory: GuestMemoryMmap,
    bar: u64,
    used_seen: u16,
    avail_idx: u16,
    /// Put each request's descriptors in an indirect table (VIRTIO_RING_F_INDIRECT_DESC).
    indirect: bool,
}

impl Driver {
    fn ecam(&self, offset: u64) -> u64 {
        PCI_ECAM_BASE + (1 << 15) + offset
    }

    fn config32(&self, offset: u64) -> u32 {
        let mut d = [0u8; 4];
        assert!(self.devices.mmio_read(self.ecam(offset), &mut d));
        u32::from_le_bytes(d)
    }

    fn bar_write(&self, offset: u64, data: &[u8]) {
        assert!(self.devices.mmio_write(self.bar + offset, data));
    }

    fn bar_read(&self, offset: u64, data: &mut [u8]) {
        assert!(self.devices.mmio_read(self.bar + offset, data));
    }

    /// Finds slot 1, checks it is a modern virtio-blk function, and brings it to DRIVER_OK.
    fn probe(devices: DeviceManager, memory: GuestMemoryMmap) -> Self {
        let mut d = Driver {
            devices,
            memory,
            bar: 0,
            used_seen: 0,
            avail_idx: 0,
            indirect: false,
        };
        assert_eq!(d.config32(0), 0x1042_1af4, "virtio-blk (modern) at 00:01.0");
        d.bar = u64::from(d.config32(0x10) & !0xf);
        assert!(d.bar >= PCI_MMIO32_START, "BAR 0 in the PCI window");
        // Walk the capabilities: MSI-X first, then the four virtio structures.
        let mut cap = (d.config32(0x34) & 0xff) as u64;
        let mut kinds = Vec::new();
        let mut window = 0;
        while cap != 0 {
            let header = d.config32(cap);
            if header & 0xff == 0x09 && (header >> 24) as u8 == 5 {
                window = cap;
            }
            if header & 0xff == 0x11 {
                // Enable MSI-X.
                let control = ((header >> 16) as u16 | 0x8000).to_le_bytes();
                assert!(d.devices.mmio_write(d.ecam(cap + 2), &control));
            } else if header & 0xff == 0x09 {
                kinds.push((header >> 24) as u8);
            }
            cap = u64::from((header >> 8) & 0xff);
        }
        assert_eq!(
            kinds,
            [1, 3, 4, 2, 5],
            "common, ISR, device, notify, PCI configuration access capabilities"
        );
        // The configuration-access window reads num_queues (common configuration 0x12).
        assert!(d.devices.mmio_write(d.ecam(window + 4), &[0]));
        assert!(
            d.devices
                .mmio_write(d.ecam(window + 8), &0x12u32.to_le_bytes())
        );
        assert!(
            d.devices
                .mmio_write(d.ecam(window + 12), &2u32.to_le_bytes())
        );
        assert_eq!(
            d.config32(window + 16) & 0xffff,
            1,
            "one queue, read through the window"
        );
        // Unmask MSI-X vector 0 and give it a message.
        d.bar_write(0x4000, &0xfee0_0000u32.to_le_bytes());
        d.bar_write(0x4008, &0x41u32.to_le_bytes());
        d.bar_write(0x400c, &0u32.to_le_bytes());
        d.bar_write(0x14, &[1 | 2]); // ACKNOWLEDGE | DRIVER
        d.bar_write(0x00, &1u32.to_le_bytes());
        let mut features = [0u8; 4];
        d.bar_read(0x04, &mut features);
        assert_eq!(u32::from_le_bytes(features) & 1, 1, "VIRTIO_F_VERSION_1");
        d.bar_write(0x08, &1u32.to_le_bytes());
        d.bar_write(0x0c, &1u32.to_le_bytes());
        d.bar_write(0x08, &0u32.to_le_bytes());
        d.bar_write(0x0c, &((1u32 << 9) | (1 << 28)).to_le_bytes()); // FLUSH, INDIRECT_DESC
        d.bar_write(0x14, &[1 | 2 | 8]); // FEATURES_OK
        d.bar_write(0x16, &0u16.to_le_bytes());
        d.bar_write(0x18, &QUEUE_SIZE.to_le_bytes());
        d.bar_write(0x1a, &0u16.to_le_bytes());
        let mut vector = [0u8; 2];
        d.bar_read(0x1a, &mut vector);
        assert_eq!(u16::from_le_bytes(vector), 0, "vector 0 accepted");
        for (offset, addr) in [(0x20, DESC), (0x28, AVAIL), (0x30, USED)] {
            d.bar_write(offset, &(addr as u32).to_le_bytes());
            d.bar_write(offset + 4, &0u32.to_le_bytes());
        }
        d.bar_write(0x1c, &1u16.to_le_bytes());
        d.bar_write(0x14, &[1 | 2 | 8 | 4]); // DRIVER_OK
        let mut status = [0u8; 1];
        d.bar_read(0x14, &mut status);
        assert_eq!(status[0], 1 | 2 | 8 | 4, "no DEVICE_NEEDS_RESET");
        d
    }

    /// Submits one request (header, optional data, status) and waits for its completion;
    /// returns the status byte and the used length.
    fn request(&mut self, kind: u32, sector: u64, data: Option<(&[u8], bool)>) -> (u8, u32) {
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&kind.to_le_bytes());
        header[8..16].copy_from_slice(&sector.to_le_bytes());
        self.memory
            .write_slice(&header, GuestAddress(HEADER))
            .unwrap();
        self.memory.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        let mut chain = vec![(HEADER, 16u32, 0u16)];
        if let Some((bytes, device_writes)) = data {
            if !device_writes {
                self.memory.write_slice(bytes, GuestAddress(DATA)).unwrap();
            }
            chain.push((
                DATA,
                bytes.len() as u32,
                if device_writes { WRITE_ONLY } else { 0 },
            ));
        }
        chain.push((STATUS, 1, WRITE_ONLY));
        // The chain goes into the ring's table, or into an indirect table that one ring
        // descriptor points at.
        let table = if self.indirect { INDIRECT } else { DESC };
        for (i, (addr, len, flags)) in chain.iter().enumerate() {
            let last = i + 1 == chain.len();
            let mut desc = [0u8; 16];
            desc[0..8].copy_from_slice(&addr.to_le_bytes());
            desc[8..12].copy_from_slice(&len.to_le_bytes());
            desc[12..14].copy_from_slice(&(flags | if last { 0 } else { NEXT }).to_le_bytes());
            desc[14..16].copy_from_slice(&((i + 1) as u16).to_le_bytes());
            self.memory
                .write_slice(&desc, GuestAddress(table + 16 * i as u64))
                .unwrap();
        }
        if self.indirect {
            let mut desc = [0u8; 16];
            desc[0..8].copy_from_slice(&INDIRECT.to_le_bytes());
            desc[8..12].copy_from_slice(&((16 * chain.len()) as u32).to_le_bytes());
            desc[12..14].copy_from_slice(&INDIRECT_FLAG.to_le_bytes());
            self.memory.write_slice(&desc, GuestAddress(DESC)).unwrap();
        }
        let slot = u64::from(self.avail_idx % QUEUE_SIZE);
        self.memory
            .write_obj(0u16, GuestAddress(AVAIL + 4 + 2 * slot))
            .unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.memory
            .write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
            .unwrap();
        self.bar_write(0x3000, &0u16.to_le_bytes()); // kick queue 0
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let used: u16 = self.memory.read_obj(GuestAddress(USED + 2)).unwrap();
            if used != self.used_seen {
                let entry = u64::from(self.used_seen % QUEUE_SIZE);
                let len: u32 = self
                    .memory
                    .read_obj(GuestAddress(USED + 4 + 8 * entry + 4))
                    .unwrap();
                self.used_seen = used;
                let status: u8 = self.memory.read_obj(GuestAddress(STATUS)).unwrap();
                return (status, len);
            }
            assert!(Instant::now() < deadline, "the request never completed");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn disk(path: &std::path::Path, readonly: bool) -> DiskConfig {
    DiskConfig {
        target: "vda".into(),
        path: path.to_owned(),
        format: DiskFormat::Raw,
        readonly,
        cache: CacheMode::Writeback,
        io: IoMode::Threads,
        discard: false,
        serial: Some("VIREO-TEST-SERIAL-01".into()),
        cdrom: false,
    }
}

fn driver_for(config: DiskConfig) -> Driver {
    let kvm = kvm_ioctls::Kvm::new().expect("/dev/kvm");
    let vm = Arc::new(kvm.create_vm().expect("KVM_CREATE_VM"));
    vm.create_irq_chip().expect("KVM_CREATE_IRQCHIP");
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 8 << 20)]).unwrap();
    let image = crate::engine::block::open(&config).expect("open the image");
    let devices = DeviceManager::new(
        vm,
        &Console::new(1024),
        &memory,
        vec![(config, image)],
        &[],
        &Default::default(),
    )
    .unwrap();
    Driver::probe(devices, memory)
}

#[test]
fn a_driver_writes_reads_flushes_and_reads_the_serial() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.raw");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    exercise(&path, disk(&path, false));
}

#[test]
fn native_io_goes_through_io_uring_with_o_direct() {
    // In the build tree: a disk filesystem, which O_DIRECT needs (tmpfs lacks it on older kernels).
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap();
    let path = dir.path().join("native.raw");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let before = super::block::uring::QUEUED.load(std::sync::atomic::Ordering::SeqCst);
    exercise(
        &path,
        DiskConfig {
            cache: CacheMode::None,
            io: IoMode::Native,
            ..disk(&path, false)
        },
    );
    let queued = super::block::uring::QUEUED.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        queued >= 2,
        "the write and the read went through the ring ({queued})"
    );
}

#[test]
fn requests_in_indirect_tables_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("indirect.raw");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let mut d = driver_for(disk(&path, false));
    let mut features = [0u8; 4];
    d.bar_write(0x00, &0u32.to_le_bytes());
    d.bar_read(0x04, &mut features);
    let features = u32::from_le_bytes(features);
    assert_ne!(
        features & (1 << 28),
        0,
        "VIRTIO_RING_F_INDIRECT_DESC offered"
    );
    assert_ne!(features & (1 << 29), 0, "VIRTIO_RING_F_EVENT_IDX offered");
    d.indirect = true;
    let pattern = vec![0xa5u8; 8192];
    assert_eq!(d.request(1, 16, Some((&pattern, false))), (0, 1));
    assert_eq!(d.request(0, 16, Some((&[0u8; 8192], true))), (0, 8193));
    let mut back = vec![0u8; 8192];
    d.memory.read_slice(&mut back, GuestAddress(DATA)).unwrap();
    assert_eq!(back, pattern);
}

/// Write, flush, read back, GET_ID, a read past the end and an unknown request.
fn exercise(path: &std::path::Path, config: DiskConfig) {
    let mut d = driver_for(config);

    let capacity: u64 = {
        let mut c = [0u8; 8];
        d.bar_read(0x2000, &mut c);
        u64::from_le_bytes(c)
    };
    assert_eq!(capacity, 2048, "1 MiB in 512-byte sectors");

    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    assert_eq!(d.request(1, 8, Some((&pattern, false))), (0, 1), "write");
    assert_eq!(d.request(4, 0, None), (0, 1), "flush");
    let mut file = std::fs::File::open(path).unwrap();
    let mut on_disk = vec![0u8; 4096];
    file.seek(SeekFrom::Start(8 * 512)).unwrap();
    file.read_exact(&mut on_disk).unwrap();
    assert_eq!(on_disk, pattern, "the write reached the image at sector 8");

    d.memory
        .write_slice(&[0u8; 4096], GuestAddress(DATA))
        .unwrap();
    assert_eq!(d.request(0, 8, Some((&[0u8; 4096], true))), (0, 4097));
    let mut back = vec![0u8; 4096];
    d.memory.read_slice(&mut back, GuestAddress(DATA)).unwrap();
    assert_eq!(back, pattern, "read back through the queue");

    let (status, len) = d.request(8, 0, Some((&[0u8; 20], true)));
    assert_eq!((status, len), (0, 21));
    let mut id = [0u8; 20];
    d.memory.read_slice(&mut id, GuestAddress(DATA)).unwrap();
    assert_eq!(&id, b"VIREO-TEST-SERIAL-01");

    assert_eq!(
        d.request(0, 2047, Some((&[0u8; 1024], true))).0,
        1,
        "a read past the end is an I/O error"
    );
    assert_eq!(
        d.request(99, 0, None).0,
        2,
        "unknown requests are unsupported"
    );
}

#[test]
fn a_read_only_disk_refuses_writes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.raw");
    std::fs::write(&path, vec![0x5au8; 64 << 10]).unwrap();
    let mut d = driver_for(disk(&path, true));
    let mut features = [0u8; 4];
    d.bar_write(0x00, &0u32.to_le_bytes());
    d.bar_read(0x04, &mut features);
    assert_ne!(
        u32::from_le_bytes(features) & (1 << 5),
        0,
        "VIRTIO_BLK_F_RO"
    );
    assert_eq!(d.request(1, 0, Some((&[0u8; 512], false))).0, 1);
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x5au8; 64 << 10]);
    assert_eq!(d.request(0, 0, Some((&[0u8; 512], true))).0, 0);
}
