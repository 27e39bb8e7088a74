//! virtio-input through the whole device model with the test as the guest driver: the
//! configuration window as Linux's virtio_input reads it, events from the host delivered into
//! posted buffers (and held while there are none), and an LED report on the status queue.

use std::time::Duration;

use virtio_bindings::virtio_input as vi;
use vm_memory::{Bytes, GuestAddress};

use super::{ABS_MAX, EV_KEY, EV_SYN, InputEvents, InputKind};
use crate::engine::devices::Frontends;
use crate::engine::devices::virtio::test_driver::{Driver, FREE, WRITE_ONLY};

const BUFFERS: u64 = FREE;
const STATUS: u64 = FREE + 0x1_0000;

fn driver(kind: InputKind) -> (Driver, InputEvents) {
    let events = InputEvents::new().unwrap();
    let frontends = Frontends {
        scanout: None,
        inputs: vec![(kind, events.clone())],
        ps2_keyboard: None,
    };
    let d = Driver::new(&frontends, 18, 2);
    assert_eq!(d.class(), 0x09_80_00, "an input controller");
    (d, events)
}

/// `size` and the answer for `select` / `subsel`.
fn config(d: &Driver, select: u32, subsel: u8) -> Vec<u8> {
    d.write(0x2000, &[select as u8]);
    d.write(0x2001, &[subsel]);
    let size = d.device_config(2, 1)[0] as usize;
    d.device_config(8, size)
}

/// The events in used buffers 0..n.
fn read_events(d: &Driver, n: u64) -> Vec<(u16, u16, u32)> {
    (0..n)
        .map(|i| {
            let mut b = [0u8; 8];
            d.memory
                .read_slice(&mut b, GuestAddress(BUFFERS + 8 * i))
                .unwrap();
            (
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
        .collect()
}

#[test]
fn the_keyboard_describes_itself_and_delivers_keys() {
    let (mut d, events) = driver(InputKind::Keyboard);
    assert_eq!(
        config(
            &d,
            vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_NAME,
            0
        ),
        b"Vireo Virtio Keyboard"
    );
    assert!(
        !config(
            &d,
            vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_SERIAL,
            0
        )
        .is_empty()
    );
    let ids = config(
        &d,
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_DEVIDS,
        0,
    );
    assert_eq!(ids.len(), 8, "bustype, vendor, product, version");
    let keys = config(
        &d,
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_EV_BITS,
        EV_KEY as u8,
    );
    assert_eq!(keys.len(), 32, "key codes up to 255");
    assert_eq!(keys[0], 0xfe, "KEY_ESC (1) onwards, not KEY_RESERVED");
    assert_eq!(
        keys[29 / 8] & (1 << (29 % 8)),
        1 << (29 % 8),
        "KEY_LEFTCTRL"
    );
    let leds = config(
        &d,
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_EV_BITS,
        0x11,
    );
    assert_eq!(leds, [0b111]);
    assert!(
        config(
            &d,
            vi::virtio_input_config_select_VIRTIO_INPUT_CFG_EV_BITS,
            3
        )
        .is_empty(),
        "no axes"
    );

    // Keys sent before any buffer is posted wait for the guest's buffers.
    events.key(30, true);
    events.key(30, false);
    assert!(d.used(0, 1, Duration::from_millis(100)).is_empty());
    for i in 0..3 {
        d.post(0, &[(BUFFERS + 8 * i, 8, WRITE_ONLY)]);
    }
    let used = d.used(0, 2, Duration::from_secs(10));
    assert_eq!(
        used,
        [(0, 8), (1, 8)],
        "the press report: one event per buffer"
    );
    assert_eq!(read_events(&d, 2), [(EV_KEY, 30, 1), (EV_SYN, 0, 0)]);
    assert_eq!(
        events.pending_len(),
        2,
        "the release waits for a second buffer"
    );
    d.post(0, &[(BUFFERS + 8 * 3, 8, WRITE_ONLY)]);
    assert_eq!(d.used(0, 2, Duration::from_secs(10)).len(), 2);
    let got = read_events(&d, 4);
    assert_eq!(&got[2..], [(EV_KEY, 30, 0), (EV_SYN, 0, 0)]);

    // Caps Lock on, reported by the guest on the status queue.
    let mut led = [0u8; 8];
    led[0..2].copy_from_slice(&0x11u16.to_le_bytes());
    led[2..4].copy_from_slice(&1u16.to_le_bytes());
    led[4..8].copy_from_slice(&1u32.to_le_bytes());
    d.memory.write_slice(&led, GuestAddress(STATUS)).unwrap();
    d.post(1, &[(STATUS, 8, 0)]);
    assert_eq!(d.used(1, 1, Duration::from_secs(10)).len(), 1);
    assert_eq!(events.leds(), 0b10);
}

#[test]
fn the_tablet_reports_absolute_positions() {
    let (mut d, events) = driver(InputKind::Tablet);
    assert_eq!(
        config(
            &d,
            vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_NAME,
            0
        ),
        b"Vireo Virtio Tablet"
    );
    let abs = config(
        &d,
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ABS_INFO,
        1,
    );
    assert_eq!(&abs[0..4], &0u32.to_le_bytes(), "min");
    assert_eq!(&abs[4..8], &ABS_MAX.to_le_bytes(), "max");
    for i in 0..3 {
        d.post(0, &[(BUFFERS + 8 * i, 8, WRITE_ONLY)]);
    }
    events.move_to(100, 32767);
    assert_eq!(d.used(0, 3, Duration::from_secs(10)).len(), 3);
    assert_eq!(
        read_events(&d, 3),
        [(3, 0, 100), (3, 1, 32767), (EV_SYN, 0, 0)]
    );
}
