//! virtio-net through the whole device model with the test as the guest driver (as `tests.rs`
//! does for disks) and the test as the backend at the other end of a socketpair: a frame out
//! through the transmit queue, frames in through the receive queue (one spanning two mergeable
//! buffers, one waiting for buffers the guest posts later), and the link going down when the
//! backend hangs up. Needs /dev/kvm (irqchip, irqfds, ioeventfds), not a guest.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::engine::config::{FrameStream, NetBackend, NetConfig};
use crate::engine::console::Console;
use crate::engine::devices::DeviceManager;
use crate::engine::layout::PCI_ECAM_BASE;

const QUEUE_SIZE: u16 = 16;
/// Per queue: descriptor table, available ring, used ring.
const RINGS: [(u64, u64, u64); 2] = [
    (0x10_0000, 0x11_0000, 0x12_0000),
    (0x13_0000, 0x14_0000, 0x15_0000),
];
const RX_BUFFERS: u64 = 0x20_0000;
const RX_BUFFER_LEN: u32 = 2048;
const TX_HEADER: u64 = 0x30_0000;
const TX_DATA: u64 = 0x31_0000;
const WRITE_ONLY: u16 = 2;
const NEXT: u16 = 1;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_STATUS.
const FEATURES: u32 = (1 << 5) | (1 << 15) | (1 << 16);

struct Driver {
    devices: DeviceManager,
    memory: GuestMemoryMmap,
    bar: u64,
    avail: [u16; 2],
    next_desc: [u16; 2],
    used_seen: [u16; 2],
}

impl Driver {
    fn config32(&self, offset: u64) -> u32 {
        let mut d = [0u8; 4];
        assert!(
            self.devices
                .mmio_read(PCI_ECAM_BASE + (1 << 15) + offset, &mut d)
        );
        u32::from_le_bytes(d)
    }

    fn write(&self, offset: u64, data: &[u8]) {
        assert!(self.devices.mmio_write(self.bar + offset, data));
    }

    fn read(&self, offset: u64, data: &mut [u8]) {
        assert!(self.devices.mmio_read(self.bar + offset, data));
    }

    fn probe(devices: DeviceManager, memory: GuestMemoryMmap) -> Self {
        let mut d = Driver {
            devices,
            memory,
            bar: 0,
            avail: [0; 2],
            next_desc: [0; 2],
            used_seen: [0; 2],
        };
        assert_eq!(d.config32(0), 0x1041_1af4, "virtio-net (modern) at 00:01.0");
        assert_eq!(d.config32(8) >> 8, 0x02_00_00, "an Ethernet controller");
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
        for vector in 0..3u64 {
            d.write(0x4000 + 16 * vector, &0xfee0_0000u32.to_le_bytes());
            d.write(0x4008 + 16 * vector, &(0x41 + vector as u32).to_le_bytes());
            d.write(0x400c + 16 * vector, &0u32.to_le_bytes());
        }
        d.write(0x14, &[1 | 2]);
        d.write(0x00, &0u32.to_le_bytes());
        let mut features = [0u8; 4];
        d.read(0x04, &mut features);
        assert_eq!(u32::from_le_bytes(features) & FEATURES, FEATURES);
        d.write(0x08, &0u32.to_le_bytes());
        d.write(0x0c, &FEATURES.to_le_bytes());
        d.write(0x08, &1u32.to_le_bytes());
        d.write(0x0c, &1u32.to_le_bytes());
        d.write(0x14, &[1 | 2 | 8]);
        d.write(0x10, &2u16.to_le_bytes()); // configuration changes on vector 2
        for (index, (desc, avail, used)) in RINGS.iter().enumerate() {
            d.write(0x16, &(index as u16).to_le_bytes());
            d.write(0x18, &QUEUE_SIZE.to_le_bytes());
            d.write(0x1a, &(index as u16).to_le_bytes());
            for (offset, addr) in [(0x20, desc), (0x28, avail), (0x30, used)] {
                d.write(offset, &(*addr as u32).to_le_bytes());
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
    fn post(&mut self, q: usize, chain: &[(u64, u32, u16)]) {
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
                .write_slice(&desc, GuestAddress(RINGS[q].0 + 16 * u64::from(index)))
                .unwrap();
        }
        self.next_desc[q] = (first + chain.len() as u16) % QUEUE_SIZE;
        let slot = u64::from(self.avail[q] % QUEUE_SIZE);
        self.memory
            .write_obj(first, GuestAddress(RINGS[q].1 + 4 + 2 * slot))
            .unwrap();
        self.avail[q] = self.avail[q].wrapping_add(1);
        self.memory
            .write_obj(self.avail[q], GuestAddress(RINGS[q].1 + 2))
            .unwrap();
        self.write(0x3000 + 4 * q as u64, &(q as u16).to_le_bytes());
    }

    /// The used entries (descriptor id, length) of queue `q` since the last call, waiting up to
    /// `wait` for at least `want` of them.
    fn used(&mut self, q: usize, want: usize, wait: Duration) -> Vec<(u32, u32)> {
        let deadline = Instant::now() + wait;
        loop {
            let idx: u16 = self.memory.read_obj(GuestAddress(RINGS[q].2 + 2)).unwrap();
            if usize::from(idx.wrapping_sub(self.used_seen[q])) >= want
                || Instant::now() >= deadline
            {
                let mut entries = Vec::new();
                while self.used_seen[q] != idx {
                    let at = RINGS[q].2 + 4 + 8 * u64::from(self.used_seen[q] % QUEUE_SIZE);
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

    fn rx_buffer(&self, n: u64) -> u64 {
        RX_BUFFERS + n * u64::from(RX_BUFFER_LEN)
    }

    fn read_rx(&self, n: u64, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        self.memory
            .read_slice(&mut data, GuestAddress(self.rx_buffer(n)))
            .unwrap();
        data
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn send_frame(backend: &mut UnixStream, frame: &[u8]) {
    backend
        .write_all(&(frame.len() as u32).to_be_bytes())
        .unwrap();
    backend.write_all(frame).unwrap();
}

#[test]
fn frames_go_out_and_come_in_and_the_link_drops_with_the_backend() {
    let (ours, mut backend) = UnixStream::pair().unwrap();
    backend
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let kvm = kvm_ioctls::Kvm::new().expect("/dev/kvm");
    let vm = Arc::new(kvm.create_vm().expect("KVM_CREATE_VM"));
    vm.create_irq_chip().expect("KVM_CREATE_IRQCHIP");
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 8 << 20)]).unwrap();
    let nic = NetConfig {
        id: "net0".into(),
        mac: MAC,
        backend: NetBackend::Stream(FrameStream::new(ours).unwrap()),
    };
    let devices = DeviceManager::new(
        vm,
        &Console::new(1024),
        &memory,
        Vec::new(),
        &[nic],
        &Default::default(),
    )
    .unwrap();
    let mut d = Driver::probe(devices, memory);

    let mut config = [0u8; 8];
    d.read(0x2000, &mut config);
    assert_eq!(config[..6], MAC, "the MAC in the device configuration");
    assert_eq!(u16::from_le_bytes([config[6], config[7]]), 1, "link up");

    // Transmit: header and frame in separate descriptors, as Linux without offloads does.
    let out = frame(1400, 0x5a);
    d.memory
        .write_slice(&[0u8; 12], GuestAddress(TX_HEADER))
        .unwrap();
    d.memory.write_slice(&out, GuestAddress(TX_DATA)).unwrap();
    d.post(1, &[(TX_HEADER, 12, 0), (TX_DATA, out.len() as u32, 0)]);
    let mut len = [0u8; 4];
    backend.read_exact(&mut len).unwrap();
    assert_eq!(u32::from_be_bytes(len) as usize, out.len(), "length prefix");
    let mut got = vec![0u8; out.len()];
    backend.read_exact(&mut got).unwrap();
    assert_eq!(got, out, "the frame reached the backend without the header");
    assert_eq!(
        d.used(1, 1, Duration::from_secs(5)).len(),
        1,
        "tx completed"
    );

    // Receive: a 3000-byte frame spans two 2048-byte mergeable buffers.
    for n in 0..2 {
        d.post(0, &[(d.rx_buffer(n), RX_BUFFER_LEN, WRITE_ONLY)]);
    }
    let big = frame(3000, 0x11);
    send_frame(&mut backend, &big);
    let used = d.used(0, 2, Duration::from_secs(5));
    assert_eq!(used, [(0, 2048), (1, 12 + 3000 - 2048)], "two buffers used");
    let first = d.read_rx(0, 2048);
    assert_eq!(first[..10], [0u8; 10], "a zeroed header");
    assert_eq!(u16::from_le_bytes([first[10], first[11]]), 2, "num_buffers");
    let mut received = first[12..].to_vec();
    received.extend(d.read_rx(1, 12 + 3000 - 2048));
    assert_eq!(received, big, "the frame as the backend sent it");

    // No buffers: the frame waits in the backend until the guest posts one.
    let small = frame(60, 0x77);
    send_frame(&mut backend, &small);
    assert!(
        d.used(0, 1, Duration::from_millis(200)).is_empty(),
        "nothing is delivered without buffers"
    );
    d.post(0, &[(d.rx_buffer(2), RX_BUFFER_LEN, WRITE_ONLY)]);
    assert_eq!(d.used(0, 1, Duration::from_secs(5)), [(2, 72)]);
    assert_eq!(d.read_rx(2, 72)[12..], small[..]);

    // The backend hangs up: the link goes down and transmits are still completed (dropped).
    drop(backend);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        d.read(0x2000, &mut config);
        if u16::from_le_bytes([config[6], config[7]]) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the link never went down");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut isr = [0u8; 1];
    d.read(0x1000, &mut isr);
    assert_ne!(isr[0] & 2, 0, "a configuration-change interrupt");
    d.post(1, &[(TX_HEADER, 12, 0), (TX_DATA, out.len() as u32, 0)]);
    assert_eq!(d.used(1, 1, Duration::from_secs(5)).len(), 1, "tx dropped");
}
