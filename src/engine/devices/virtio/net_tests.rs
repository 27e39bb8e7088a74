//! virtio-net through the whole device model with the test as the guest driver (as `tests.rs`
//! does for disks) and the test as the backend at the other end of a socketpair: a frame out
//! through the transmit queue, frames in through the receive queue (one spanning two mergeable
//! buffers, one waiting for buffers the guest posts later), and the link going down when the
//! backend hangs up. Needs /dev/kvm (irqchip, irqfds, ioeventfds), not a guest.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress};

use crate::engine::config::{FrameStream, NetBackend, NetConfig};
use crate::engine::devices::virtio::test_driver::{Driver, FREE, WRITE_ONLY};

const RX_BUFFERS: u64 = FREE;
const RX_BUFFER_LEN: u32 = 2048;
const TX_HEADER: u64 = FREE + 0x10_0000;
const TX_DATA: u64 = FREE + 0x11_0000;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_STATUS.
const FEATURES: u32 = (1 << 5) | (1 << 15) | (1 << 16);
/// virtio-net's device id.
const NET: u16 = 1;

fn rx_buffer(n: u64) -> u64 {
    RX_BUFFERS + n * u64::from(RX_BUFFER_LEN)
}

fn read_rx(d: &Driver, n: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    d.memory
        .read_slice(&mut data, GuestAddress(rx_buffer(n)))
        .unwrap();
    data
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
    let nic = NetConfig {
        id: "net0".into(),
        mac: MAC,
        backend: NetBackend::Stream(FrameStream::new(ours).unwrap()),
    };
    let mut d = Driver::with(&Default::default(), &[nic], NET, 2, FEATURES);
    assert_eq!(d.class(), 0x02_00_00, "an Ethernet controller");

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
        d.post(0, &[(rx_buffer(n), RX_BUFFER_LEN, WRITE_ONLY)]);
    }
    let big = frame(3000, 0x11);
    send_frame(&mut backend, &big);
    let used = d.used(0, 2, Duration::from_secs(5));
    assert_eq!(used, [(0, 2048), (1, 12 + 3000 - 2048)], "two buffers used");
    let first = read_rx(&d, 0, 2048);
    assert_eq!(first[..10], [0u8; 10], "a zeroed header");
    assert_eq!(u16::from_le_bytes([first[10], first[11]]), 2, "num_buffers");
    let mut received = first[12..].to_vec();
    received.extend(read_rx(&d, 1, 12 + 3000 - 2048));
    assert_eq!(received, big, "the frame as the backend sent it");

    // No buffers: the frame waits in the backend until the guest posts one.
    let small = frame(60, 0x77);
    send_frame(&mut backend, &small);
    assert!(
        d.used(0, 1, Duration::from_millis(200)).is_empty(),
        "nothing is delivered without buffers"
    );
    d.post(0, &[(rx_buffer(2), RX_BUFFER_LEN, WRITE_ONLY)]);
    assert_eq!(d.used(0, 1, Duration::from_secs(5)), [(2, 72)]);
    assert_eq!(read_rx(&d, 2, 72)[12..], small[..]);

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
