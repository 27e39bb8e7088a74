//! The controller and keyboard driven byte by byte as Linux's i8042 and atkbd drivers drive
//! them, and the scancodes checked against the controller's translation.

use super::controller::{CTR_KBDDIS, CTR_KBDINT, CTR_XLATE, STATUS_OBF};
use super::*;
use std::sync::Arc;

/// Reads every waiting byte (as i8042_flush does), counting IRQ pulses.
fn drain(c: &mut Controller) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut pulses = 0;
    while c.read_status() & STATUS_OBF != 0 {
        let (b, outcome) = c.read_data();
        bytes.push(b);
        pulses += usize::from(outcome.irq);
    }
    (bytes, pulses)
}

/// A controller command with its data byte, as i8042_command sends it.
fn command(c: &mut Controller, cmd: u8, arg: Option<u8>) -> Vec<u8> {
    c.write_command(cmd);
    if let Some(a) = arg {
        c.write_data(a);
    }
    drain(c).0
}

#[test]
fn controller_self_test_interface_test_and_command_byte() {
    let mut c = Controller::default();
    assert_eq!(c.read_status() & STATUS_OBF, 0, "nothing waits at power-on");
    assert_eq!(command(&mut c, 0xaa, None), [0x55], "self test");
    assert_eq!(
        command(&mut c, 0xab, None),
        [0x00],
        "keyboard interface test"
    );
    let ctr = command(&mut c, 0x20, None);
    assert_eq!(
        ctr,
        [0x65],
        "firmware's command byte: KBDINT, SYS, AUXDIS, XLATE"
    );
    // i8042_controller_init writes it back with the interrupt off; it reads back.
    assert!(command(&mut c, 0x60, Some(0x64)).is_empty());
    assert_eq!(command(&mut c, 0x20, None), [0x64]);
    assert_eq!(
        c.read_status() & 0x04,
        0x04,
        "the system flag follows the command byte"
    );
}

#[test]
fn disabling_the_keyboard_port_holds_its_bytes_until_enabled() {
    let mut c = Controller::default();
    c.write_command(0xad);
    assert_ne!(c.command_byte() & CTR_KBDDIS, 0);
    let outcome = c.key(30, true);
    assert!(!outcome.irq, "no interrupt while the port is off");
    assert_eq!(c.read_status() & STATUS_OBF, 0);
    let outcome = c.write_command(0xae);
    assert!(outcome.irq, "enabling the port delivers the held byte");
    assert_eq!(
        drain(&mut c).0,
        [0x1e],
        "A's make code, translated to set 1"
    );
}

#[test]
fn every_new_byte_pulses_irq_1_while_the_keyboard_interrupt_is_on() {
    let mut c = Controller::default();
    let outcome = c.key(103, true); // KEY_UP: E0 48
    assert!(outcome.irq);
    let (bytes, pulses) = drain(&mut c);
    assert_eq!(bytes, [0xe0, 0x48]);
    assert_eq!(
        pulses, 1,
        "reading the first byte pulses again for the second"
    );
    c.write_command(0x60);
    c.write_data(0x65 & !CTR_KBDINT);
    assert!(!c.key(103, false).irq, "no interrupt with KBDINT clear");
    assert_eq!(
        drain(&mut c).0,
        [0xe0, 0xc8],
        "the break code has bit 7 set"
    );
}

#[test]
fn the_reset_line_resets_by_pulse_and_by_output_port() {
    let mut c = Controller::default();
    assert!(c.write_command(0xfe).reset, "pulse bit 0: Linux's reboot=k");
    assert!(!c.write_command(0xff).reset, "pulse nothing");
    assert_eq!(
        command(&mut c, 0xd0, None),
        [0x03],
        "output port: reset high, A20 on"
    );
    c.write_command(0xd1);
    assert!(!c.write_data(0x03).reset);
    c.write_command(0xd1);
    assert!(c.write_data(0x02).reset, "writing reset low resets");
}

#[test]
fn the_bus_device_turns_a_reset_pulse_into_a_guest_request() {
    let mut dev = I8042::new(None, None);
    assert_eq!(
        dev.write(u64::from(COMMAND_PORT), 0, &[0xfe]),
        Some(GuestRequest::Reset)
    );
    assert_eq!(dev.write(u64::from(COMMAND_PORT), 0, &[0xaa]), None);
    let mut status = [0];
    dev.read(u64::from(COMMAND_PORT), 0, &mut status);
    assert_eq!(status[0] & STATUS_OBF, STATUS_OBF);
    let mut data = [0];
    dev.read(u64::from(DATA_PORT), 0, &mut data);
    assert_eq!(data, [0x55]);
}

/// Sends a keyboard command byte and returns what the keyboard answered.
fn keyboard(c: &mut Controller, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bytes {
        c.write_data(*b);
        out.extend(drain(c).0);
    }
    out
}

#[test]
fn the_keyboard_answers_atkbds_probe() {
    let mut c = Controller::default();
    assert_eq!(keyboard(&mut c, &[0xff]), [0xfa, 0xaa], "reset and BAT");
    assert_eq!(
        keyboard(&mut c, &[0xf2]),
        [0xfa, 0xab, 0x41],
        "MF2 ID, translated"
    );
    assert_eq!(keyboard(&mut c, &[0xf5]), [0xfa], "disable");
    assert!(
        !c.key(30, true).irq && drain(&mut c).0.is_empty(),
        "not scanning"
    );
    assert_eq!(keyboard(&mut c, &[0xf0, 0x02]), [0xfa, 0xfa], "set 2");
    assert_eq!(
        keyboard(&mut c, &[0xf0, 0x00]),
        [0xfa, 0xfa, 0x02],
        "read the set"
    );
    assert_eq!(keyboard(&mut c, &[0xf3, 0x00]), [0xfa, 0xfa], "typematic");
    assert_eq!(
        keyboard(&mut c, &[0xed, 0x06]),
        [0xfa, 0xfa],
        "Num + Caps Lock"
    );
    assert_eq!(c.keyboard_leds(), 0b011, "as Linux's LED_NUML | LED_CAPSL");
    assert_eq!(keyboard(&mut c, &[0xf4]), [0xfa], "enable");
    assert_eq!(keyboard(&mut c, &[0xee]), [0xee], "echo");
    assert_eq!(keyboard(&mut c, &[0x12]), [0xfe], "unknown: resend");
    c.key(30, true);
    assert_eq!(drain(&mut c).0, [0x1e]);
}

#[test]
fn without_translation_the_keyboard_sends_set_2() {
    let mut c = Controller::default();
    c.write_command(0x60);
    c.write_data(0x65 & !CTR_XLATE);
    assert_eq!(keyboard(&mut c, &[0xf2]), [0xfa, 0xab, 0x83]);
    c.key(30, true);
    c.key(30, false);
    c.key(97, true); // right Ctrl
    c.key(97, false);
    assert_eq!(
        drain(&mut c).0,
        [0x1c, 0xf0, 0x1c, 0xe0, 0x14, 0xe0, 0xf0, 0x14]
    );
    // The guest may pick set 1 itself.
    keyboard(&mut c, &[0xf0, 0x01]);
    c.key(30, false);
    assert_eq!(drain(&mut c).0, [0x9e]);
}

#[test]
fn pause_sends_its_e1_sequence_on_press_only() {
    let mut c = Controller::default();
    c.key(119, true);
    c.key(119, false);
    assert_eq!(drain(&mut c).0, [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
}

#[test]
fn every_mapped_key_translates_to_its_set_1_code() {
    // Linux key codes 1..=83 are set 1's codes: translation of the set 2 code must give them.
    for key in (1u16..=83).chain([87, 88]) {
        let make = scancodes::set2(key, true).unwrap();
        assert_eq!(scancodes::to_set1(&make), [key as u8], "key {key}");
        let brk = scancodes::set2(key, false).unwrap();
        assert_eq!(scancodes::to_set1(&brk), [key as u8 | 0x80], "key {key}");
    }
    let mapped = (1u16..=255)
        .filter(|k| scancodes::set2(*k, true).is_some())
        .count();
    assert!(mapped >= 110, "the PC keyboard's keys ({mapped} mapped)");
    assert_eq!(scancodes::set2(87, true), Some(vec![0x78]), "F11 in set 2");
    assert_eq!(scancodes::set2(65, true), Some(vec![0x83]), "F7 is 0x83");
    assert_eq!(
        scancodes::set2(240, true),
        None,
        "KEY_UNKNOWN has no scancode"
    );
}

#[test]
fn the_bus_device_reports_the_guests_leds() {
    let leds = InputEvents::new().unwrap();
    let mut dev = I8042::new(None, Some(leds.clone()));
    for b in [0xed, 0x04] {
        dev.write(u64::from(DATA_PORT), 0, &[b]);
    }
    assert_eq!(leds.leds(), 0b010, "Caps Lock");
}

#[test]
fn the_key_feed_types_queued_keys_and_stops_when_dropped() {
    let dev = Arc::new(Mutex::new(I8042::new(None, None)));
    let events = InputEvents::new().unwrap();
    let feed = KeyFeed::start(Arc::downgrade(&dev), events.clone()).unwrap();
    events.key(30, true);
    events.key(30, false);
    let mut seen = Vec::new();
    for _ in 0..2000 {
        let mut d = dev.lock().unwrap();
        seen.extend(drain(&mut d.controller).0);
        drop(d);
        if seen.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(seen, [0x1e, 0x9e]);
    drop(feed);
}
