//! The AT (PS/2) keyboard behind the i8042's first port: the commands Linux's atkbd sends it,
//! and the scancodes it sends for keys. Its replies and scancodes wait in its own buffer until
//! the controller passes them on.

use std::collections::VecDeque;

use super::scancodes;

/// Acknowledge: the keyboard took a command or its argument.
pub const ACK: u8 = 0xfa;
/// Resend: the keyboard did not understand.
pub const RESEND: u8 = 0xfe;
/// Basic assurance test passed (after a reset).
pub const BAT_OK: u8 = 0xaa;
/// The keyboard's buffer; a real one holds 16 bytes, this one a burst of typing.
const BUFFER: usize = 256;

/// A command that takes an argument byte, waiting for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Leds,
    ScancodeSet,
    Typematic,
}

/// One AT keyboard.
#[derive(Debug)]
pub struct Keyboard {
    out: VecDeque<u8>,
    awaiting: Option<Awaiting>,
    scanning: bool,
    set: u8,
    /// The LED byte the guest last set (bit 0 Scroll, 1 Num, 2 Caps Lock).
    leds: u8,
    typematic: u8,
}

impl Default for Keyboard {
    fn default() -> Self {
        Self {
            out: VecDeque::new(),
            awaiting: None,
            scanning: true,
            set: 2,
            leds: 0,
            typematic: 0x2b,
        }
    }
}

impl Keyboard {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.out.len() >= BUFFER {
                tracing::debug!("PS/2 keyboard: buffer full, the guest reads no keys");
                return;
            }
            self.out.push_back(b);
        }
    }

    /// The next byte for the controller.
    pub fn pop(&mut self) -> Option<u8> {
        self.out.pop_front()
    }

    /// Whether a byte waits for the controller.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The LEDs the guest set, as Linux's LED bits (0 Num Lock, 1 Caps Lock, 2 Scroll Lock).
    pub fn linux_leds(&self) -> u32 {
        let l = u32::from(self.leds);
        (l >> 1 & 1) | (l >> 2 & 1) << 1 | (l & 1) << 2
    }

    /// A byte from the guest (through the controller's data port). `translated` is the
    /// controller's XLATE bit, which changes how the keyboard identifies itself.
    pub fn write(&mut self, byte: u8, translated: bool) {
        if let Some(awaiting) = self.awaiting.take() {
            match awaiting {
                Awaiting::Leds => self.leds = byte & 0x07,
                Awaiting::Typematic => self.typematic = byte & 0x7f,
                Awaiting::ScancodeSet => match byte {
                    0 => {
                        self.push(&[ACK, self.set]);
                        return;
                    }
                    1..=3 => self.set = byte,
                    _ => {
                        self.push(&[RESEND]);
                        return;
                    }
                },
            }
            self.push(&[ACK]);
            return;
        }
        match byte {
            // Set LEDs, select/read the scancode set, set the typematic rate: an argument follows.
            0xed => self.expect(Awaiting::Leds),
            0xf0 => self.expect(Awaiting::ScancodeSet),
            0xf3 => self.expect(Awaiting::Typematic),
            // Echo.
            0xee => self.push(&[0xee]),
            // Identify: an MF2 keyboard, whose second ID byte the controller translates too.
            0xf2 => self.push(&[ACK, 0xab, if translated { 0x41 } else { 0x83 }]),
            0xf4 => {
                self.out.clear();
                self.scanning = true;
                self.push(&[ACK]);
            }
            // Disable (and restore defaults), or restore defaults.
            0xf5 | 0xf6 => {
                self.defaults();
                self.scanning = byte == 0xf6;
                self.push(&[ACK]);
            }
            // Set 3's per-key modes: accepted, as set 3 is not emulated.
            0xf7..=0xfd => self.push(&[ACK]),
            // Resend: the last byte is not kept; an ACK makes the driver retry its command.
            0xfe => self.push(&[ACK]),
            0xff => {
                self.defaults();
                self.scanning = true;
                self.out.clear();
                self.push(&[ACK, BAT_OK]);
            }
            _ => self.push(&[RESEND]),
        }
    }

    fn expect(&mut self, awaiting: Awaiting) {
        self.awaiting = Some(awaiting);
        self.push(&[ACK]);
    }

    fn defaults(&mut self) {
        self.set = 2;
        self.typematic = 0x2b;
        self.awaiting = None;
    }

    /// A key pressed or released (a Linux key code). Set 2 bytes, or set 1 with translation
    /// done here when the guest chose set 1 itself; `translate` asks for the controller's own
    /// translation of set 2. Nothing while scanning is off or for keys a PC keyboard lacks.
    pub fn key(&mut self, key: u16, pressed: bool, translate: bool) {
        if !self.scanning {
            return;
        }
        let Some(set2) = scancodes::set2(key, pressed) else {
            tracing::debug!(key, "PS/2 keyboard: no scancode for this key");
            return;
        };
        // Set 3 is not emulated: it sends set 2, which atkbd also reads.
        if translate || self.set == 1 {
            self.push(&scancodes::to_set1(&set2));
        } else {
            self.push(&set2);
        }
    }
}
