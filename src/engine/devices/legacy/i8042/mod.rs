//! The i8042 keyboard controller at ports 0x60 and 0x64, with an AT keyboard on its first port:
//! the PS/2 keyboard that guests without virtio drivers type on, and the reset line every PC
//! guest may pull (Linux's `reboot=k`, its default fallback without an ACPI reset register).
//!
//! Hand-written: vm-superio's `I8042Device` only answers the reset command, and no maintained
//! crate emulates the controller with a keyboard behind it. The protocol is small (the status
//! register, the command byte, a dozen controller commands, the keyboard's ten), follows the
//! IBM PC/AT reference and QEMU's `hw/input/pckbd.c` and `ps2.c`, and is tested byte for byte
//! in `tests.rs` the way Linux's i8042 and atkbd drivers drive it.
//!
//! Keys come from the host as Linux key codes on an [`InputEvents`] handle, as for the virtio
//! keyboard; a [`KeyFeed`] thread moves them into the keyboard and pulses IRQ 1.

mod controller;
mod keyboard;
pub mod scancodes;

use std::sync::{Mutex, Weak};
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::EventFd;

pub use controller::{Controller, Outcome};

use crate::engine::devices::GuestRequest;
use crate::engine::devices::bus::BusDevice;
use crate::engine::devices::virtio::input::{EV_KEY, InputEvents};

/// The i8042's data port.
pub const DATA_PORT: u16 = 0x60;
/// The i8042's command/status port.
pub const COMMAND_PORT: u16 = 0x64;
/// The keyboard's ISA interrupt.
pub const KEYBOARD_IRQ: u32 = 1;

/// The controller as a bus device, reached at 0x60 and 0x64 (two one-byte ranges).
pub struct I8042 {
    controller: Controller,
    /// IRQ 1's irqfd (an edge per pulse); none in tests without a VM.
    irq: Option<EventFd>,
    /// Where the guest's LED changes go, when keys come from the host.
    leds: Option<InputEvents>,
}

impl I8042 {
    /// A controller pulsing IRQ 1 through `irq`, reporting the keyboard's LEDs to `leds`.
    pub fn new(irq: Option<EventFd>, leds: Option<InputEvents>) -> Self {
        Self {
            controller: Controller::default(),
            irq,
            leds,
        }
    }

    fn apply(&self, outcome: Outcome) -> Option<GuestRequest> {
        if outcome.irq
            && let Some(irq) = &self.irq
            && let Err(e) = irq.write(1)
        {
            tracing::warn!("i8042: cannot raise IRQ 1: {e}");
        }
        outcome.reset.then_some(GuestRequest::Reset)
    }

    /// A key pressed or released on the keyboard (a Linux key code).
    pub fn key(&mut self, key: u16, pressed: bool) {
        let outcome = self.controller.key(key, pressed);
        self.apply(outcome);
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, base: u64, _offset: u64, data: &mut [u8]) {
        let [byte] = data else {
            data.fill(0xff);
            return;
        };
        *byte = if base == u64::from(DATA_PORT) {
            let (value, outcome) = self.controller.read_data();
            self.apply(outcome);
            value
        } else {
            self.controller.read_status()
        };
    }

    fn write(&mut self, base: u64, _offset: u64, data: &[u8]) -> Option<GuestRequest> {
        let [byte] = data else { return None };
        let outcome = if base == u64::from(DATA_PORT) {
            self.controller.write_data(*byte)
        } else {
            self.controller.write_command(*byte)
        };
        if let Some(leds) = &self.leds {
            leds.set_leds(self.controller.keyboard_leds());
        }
        self.apply(outcome)
    }
}

/// The thread that types the host's keys on the PS/2 keyboard. It holds the controller
/// weakly (the buses own it); dropping the feed stops and joins the thread.
pub struct KeyFeed {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl KeyFeed {
    /// Starts moving key events from `events` into `i8042`'s keyboard.
    pub fn start(i8042: Weak<Mutex<I8042>>, events: InputEvents) -> std::io::Result<Self> {
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let stopped = stop.try_clone()?;
        let thread = std::thread::Builder::new()
            .name("ps2-keyboard".into())
            .spawn(move || feed(&i8042, &events, &stopped))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for KeyFeed {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the PS/2 keyboard's thread panicked");
        }
    }
}

fn feed(i8042: &Weak<Mutex<I8042>>, events: &InputEvents, stop: &EventFd) {
    let mut fds = [
        libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(events.wake_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(stop),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        let _ = events.wake_fd().read();
        let keys: Vec<_> = events
            .drain()
            .into_iter()
            .filter(|e| e.kind == EV_KEY)
            .collect();
        if !keys.is_empty() {
            let Some(device) = i8042.upgrade() else {
                return;
            };
            let mut device = device.lock().unwrap_or_else(|p| p.into_inner());
            for e in keys {
                device.key(e.code, e.value != 0);
            }
        }
        // SAFETY: `fds` is a valid array of two pollfds that lives across the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            tracing::error!(
                "the PS/2 keyboard's thread cannot wait for keys: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
