//! The i8042's own protocol: the status register, the command byte, the controller commands on
//! port 0x64 and the data port 0x60 shared by the controller's replies and the keyboard's
//! bytes. No I/O here: the bus device around it raises IRQ 1 and resets the VM from what
//! [`Outcome`] says.

use std::collections::VecDeque;

use super::keyboard::Keyboard;

/// Status: a byte waits in the output buffer.
pub const STATUS_OBF: u8 = 0x01;
/// Status: the system flag (POST passed), a copy of the command byte's bit 2.
pub const STATUS_SYS: u8 = 0x04;
/// Status: the last write was to the command port.
pub const STATUS_CMD: u8 = 0x08;
/// Status: the keyboard is not inhibited by the key lock.
pub const STATUS_UNLOCKED: u8 = 0x10;

/// Command byte: interrupt (IRQ 1) when the keyboard's output buffer fills.
pub const CTR_KBDINT: u8 = 0x01;
/// Command byte: the system flag.
pub const CTR_SYS: u8 = 0x04;
/// Command byte: the keyboard port's clock is off.
pub const CTR_KBDDIS: u8 = 0x10;
/// Command byte: the auxiliary (mouse) port's clock is off.
pub const CTR_AUXDIS: u8 = 0x20;
/// Command byte: translate the keyboard's set 2 to set 1.
pub const CTR_XLATE: u8 = 0x40;

/// Output port: the CPU's reset line (active low).
const OUTPUT_RESET: u8 = 0x01;
/// Output port: the A20 gate.
const OUTPUT_A20: u8 = 0x02;

/// What the guest asked of the machine with one access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Pulse IRQ 1: a new byte is in the output buffer and the keyboard interrupt is on.
    pub irq: bool,
    /// The guest pulled the reset line.
    pub reset: bool,
}

/// A controller command waiting for its data byte on port 0x60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    CommandByte,
    OutputPort,
    KeyboardOutput,
    AuxOutput,
    AuxDevice,
}

/// The i8042 with its keyboard.
#[derive(Debug)]
pub struct Controller {
    ctr: u8,
    status: u8,
    output_port: u8,
    /// The controller's own replies, ahead of the keyboard's bytes.
    replies: VecDeque<u8>,
    pending: Option<Pending>,
    /// The byte the guest last read, which the output buffer still holds.
    last: u8,
    keyboard: Keyboard,
}

impl Default for Controller {
    /// As the firmware leaves it: keyboard interrupt on, translation on, the system flag set
    /// and no mouse port in use.
    fn default() -> Self {
        Self {
            ctr: CTR_KBDINT | CTR_SYS | CTR_AUXDIS | CTR_XLATE,
            status: STATUS_SYS | STATUS_UNLOCKED,
            output_port: OUTPUT_RESET | OUTPUT_A20,
            replies: VecDeque::new(),
            pending: None,
            last: 0,
            keyboard: Keyboard::default(),
        }
    }
}

impl Controller {
    /// The command byte.
    #[cfg(test)]
    pub fn command_byte(&self) -> u8 {
        self.ctr
    }

    /// The keyboard's LEDs as Linux LED bits.
    pub fn keyboard_leds(&self) -> u32 {
        self.keyboard.linux_leds()
    }

    fn keyboard_port_open(&self) -> bool {
        self.ctr & CTR_KBDDIS == 0
    }

    fn has_output(&self) -> bool {
        !self.replies.is_empty() || (self.keyboard_port_open() && self.keyboard.has_output())
    }

    /// Runs `f`, then says whether a byte newly waits for the guest (an edge on IRQ 1).
    fn with_irq(&mut self, f: impl FnOnce(&mut Self) -> bool) -> Outcome {
        let before = self.has_output();
        let reset = f(self);
        Outcome {
            irq: self.has_output() && !before && self.ctr & CTR_KBDINT != 0,
            reset,
        }
    }

    /// A read of the status register (port 0x64).
    pub fn read_status(&self) -> u8 {
        self.status | if self.has_output() { STATUS_OBF } else { 0 }
    }

    /// A read of the data port (0x60): the next byte, or the last one again when none waits
    /// (as the real output buffer keeps it); the outcome pulses IRQ 1 for the next byte.
    pub fn read_data(&mut self) -> (u8, Outcome) {
        let byte = match self.replies.pop_front() {
            Some(b) => Some(b),
            None if self.keyboard_port_open() => self.keyboard.pop(),
            None => None,
        };
        let irq = byte.is_some() && self.has_output() && self.ctr & CTR_KBDINT != 0;
        if let Some(b) = byte {
            self.last = b;
        }
        (self.last, Outcome { irq, reset: false })
    }

    fn reply(&mut self, byte: u8) {
        self.replies.push_back(byte);
    }

    /// A write to the command port (0x64).
    pub fn write_command(&mut self, command: u8) -> Outcome {
        self.status |= STATUS_CMD;
        self.with_irq(|c| {
            c.pending = None;
            match command {
                0x20 => c.reply(c.ctr),
                // Reads of the controller's internal RAM beyond the command byte: zeros.
                0x21..=0x3f => c.reply(0),
                0x60 => c.pending = Some(Pending::CommandByte),
                0x61..=0x7f => {}
                0xa7 => c.ctr |= CTR_AUXDIS,
                0xa8 => c.ctr &= !CTR_AUXDIS,
                // Auxiliary interface test: its clock line stuck low, as with no mouse port.
                0xa9 => c.reply(0x01),
                // Self test passed; the system flag follows.
                0xaa => {
                    c.status |= STATUS_SYS;
                    c.reply(0x55);
                }
                // Keyboard interface test: no fault.
                0xab => c.reply(0x00),
                0xad => c.ctr |= CTR_KBDDIS,
                0xae => c.ctr &= !CTR_KBDDIS,
                // Read the input port: keyboard not inhibited.
                0xc0 => c.reply(0x80),
                0xd0 => c.reply(c.output_port),
                0xd1 => c.pending = Some(Pending::OutputPort),
                0xd2 => c.pending = Some(Pending::KeyboardOutput),
                0xd3 => c.pending = Some(Pending::AuxOutput),
                0xd4 => c.pending = Some(Pending::AuxDevice),
                // Pulse output port lines: a clear bit 0 pulses the reset line.
                0xf0..=0xff => return command & OUTPUT_RESET == 0,
                other => tracing::debug!(command = other, "i8042: command ignored"),
            }
            false
        })
    }

    /// A write to the data port (0x60): a pending command's argument, else a byte for the
    /// keyboard.
    pub fn write_data(&mut self, byte: u8) -> Outcome {
        self.status &= !STATUS_CMD;
        self.with_irq(|c| {
            match c.pending.take() {
                Some(Pending::CommandByte) => {
                    c.ctr = byte;
                    c.status = (c.status & !STATUS_SYS) | (byte & CTR_SYS);
                }
                Some(Pending::OutputPort) => {
                    c.output_port = byte;
                    return byte & OUTPUT_RESET == 0;
                }
                Some(Pending::KeyboardOutput) => c.reply(byte),
                // No mouse port: loop-back and mouse bytes go nowhere.
                Some(Pending::AuxOutput) | Some(Pending::AuxDevice) => {}
                None => {
                    // Talking to the keyboard turns its port on again (as QEMU's i8042 does).
                    c.ctr &= !CTR_KBDDIS;
                    c.keyboard.write(byte, c.ctr & CTR_XLATE != 0);
                }
            }
            false
        })
    }

    /// A key pressed or released on the keyboard (a Linux key code).
    pub fn key(&mut self, key: u16, pressed: bool) -> Outcome {
        self.with_irq(|c| {
            let translate = c.ctr & CTR_XLATE != 0;
            c.keyboard.key(key, pressed, translate);
            false
        })
    }
}
