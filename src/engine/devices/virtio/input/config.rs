//! The virtio-input configuration window: the driver writes `select` and `subsel`, then reads
//! `size` and that many bytes of the answer (a name, a bitmap, an axis' range).

use virtio_bindings::virtio_input as vi;

use super::InputKind;
use super::events::{
    ABS_MAX, ABS_X, ABS_Y, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, EV_ABS, EV_KEY, EV_LED, EV_REL,
    REL_WHEEL,
};

/// `select`, `subsel`, `size`, 5 reserved bytes, then the 128-byte answer.
const ANSWER_AT: usize = 8;
const ANSWER_LEN: usize = 128;
/// `BUS_VIRTUAL` from `linux/input.h`.
const BUS_VIRTUAL: u16 = 0x06;
/// The highest key code the keyboard reports (KEY_MICMUTE is 248; 0x2ff is KEY_MAX).
const LAST_KEY: u16 = 0x2ff;
/// LED_NUML, LED_CAPSL, LED_SCROLLL.
const LEDS: [u16; 3] = [0, 1, 2];

/// The configuration bytes for `select` / `subsel`.
pub fn bytes(kind: InputKind, select: u8, subsel: u8) -> [u8; ANSWER_AT + ANSWER_LEN] {
    let mut out = [0u8; ANSWER_AT + ANSWER_LEN];
    out[0] = select;
    out[1] = subsel;
    let answer = answer(kind, u32::from(select), subsel);
    let len = answer.len().min(ANSWER_LEN);
    out[2] = len as u8;
    out[ANSWER_AT..ANSWER_AT + len].copy_from_slice(&answer[..len]);
    out
}

fn answer(kind: InputKind, select: u32, subsel: u8) -> Vec<u8> {
    match select {
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_NAME if subsel == 0 => match kind {
            InputKind::Keyboard => b"Vireo Virtio Keyboard".to_vec(),
            InputKind::Tablet => b"Vireo Virtio Tablet".to_vec(),
        },
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_SERIAL if subsel == 0 => {
            b"vireo-0".to_vec()
        }
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ID_DEVIDS if subsel == 0 => {
            let product: u16 = match kind {
                InputKind::Keyboard => 1,
                InputKind::Tablet => 3,
            };
            [BUS_VIRTUAL, 0x0627, product, 1]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        }
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_EV_BITS => {
            bitmap(&codes(kind, u16::from(subsel)))
        }
        vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ABS_INFO
            if kind == InputKind::Tablet && [ABS_X, ABS_Y].contains(&u16::from(subsel)) =>
        {
            // min, max, fuzz, flat, res
            [0, ABS_MAX, 0, 0, 0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        }
        // No PROP_BITS: neither device is a touchscreen or a pointing stick.
        _ => Vec::new(),
    }
}

/// The codes `kind` sends for event type `ev`.
fn codes(kind: InputKind, ev: u16) -> Vec<u16> {
    match (kind, ev) {
        (InputKind::Keyboard, EV_KEY) => (1..=LAST_KEY.min(255)).collect(),
        (InputKind::Keyboard, EV_LED) => LEDS.to_vec(),
        (InputKind::Tablet, EV_KEY) => vec![BTN_LEFT, BTN_RIGHT, BTN_MIDDLE],
        (InputKind::Tablet, EV_ABS) => vec![ABS_X, ABS_Y],
        (InputKind::Tablet, EV_REL) => vec![REL_WHEEL],
        _ => Vec::new(),
    }
}

/// A little-endian bitmap with `codes` set, as short as the highest one allows.
fn bitmap(codes: &[u16]) -> Vec<u8> {
    let Some(last) = codes.iter().max() else {
        return Vec::new();
    };
    let mut out = vec![0u8; usize::from(*last) / 8 + 1];
    for c in codes {
        out[usize::from(*c) / 8] |= 1 << (c % 8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tablet_has_buttons_and_two_axes() {
        let ev_bits = vi::virtio_input_config_select_VIRTIO_INPUT_CFG_EV_BITS as u8;
        let keys = bytes(InputKind::Tablet, ev_bits, EV_KEY as u8);
        assert_eq!(usize::from(keys[2]), 0x112 / 8 + 1, "size up to BTN_MIDDLE");
        assert_eq!(keys[ANSWER_AT + 0x110 / 8], 0b111);
        let abs = bytes(InputKind::Tablet, ev_bits, EV_ABS as u8);
        assert_eq!((abs[2], abs[ANSWER_AT]), (1, 0b11));
        let info = bytes(
            InputKind::Tablet,
            vi::virtio_input_config_select_VIRTIO_INPUT_CFG_ABS_INFO as u8,
            ABS_Y as u8,
        );
        assert_eq!(info[2], 20);
        assert_eq!(&info[ANSWER_AT + 4..ANSWER_AT + 8], &32767u32.to_le_bytes());
        let none = bytes(InputKind::Keyboard, ev_bits, EV_ABS as u8);
        assert_eq!(none[2], 0, "a keyboard has no axes");
    }
}
