//! The host's side of one virtio-input device: events waiting for the guest, and the LEDs the
//! guest last set. It outlives the device (a guest reboot keeps the handle), and events sent
//! while no driver runs wait, up to a bound, for the next one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use vmm_sys_util::eventfd::EventFd;

/// Linux event types (`linux/input-event-codes.h`).
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_REL: u16 = 0x02;
pub const EV_ABS: u16 = 0x03;
pub const EV_LED: u16 = 0x11;
/// `SYN_REPORT`: the events before it form one report.
pub const SYN_REPORT: u16 = 0;
pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const REL_WHEEL: u16 = 0x08;
pub const BTN_LEFT: u16 = 0x110;
pub const BTN_RIGHT: u16 = 0x111;
pub const BTN_MIDDLE: u16 = 0x112;
/// The tablet's axes run 0..=ABS_MAX in both directions, whatever the screen size.
pub const ABS_MAX: u32 = 32767;
/// Events kept for a guest that does not read them; older ones are dropped beyond this.
const MAX_PENDING: usize = 4096;

/// One `virtio_input_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: u32,
}

impl InputEvent {
    /// The 8 bytes the guest reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.kind.to_le_bytes());
        b[2..4].copy_from_slice(&self.code.to_le_bytes());
        b[4..8].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    /// The end of one report.
    pub fn sync() -> Self {
        Self {
            kind: EV_SYN,
            code: SYN_REPORT,
            value: 0,
        }
    }
}

struct Inner {
    pending: Mutex<VecDeque<InputEvent>>,
    /// Written when events arrive, so the device's thread wakes.
    wake: EventFd,
    /// The keyboard LEDs the guest set (bit n = LED code n).
    leds: AtomicU32,
}

/// A shared handle for sending events to one input device.
#[derive(Clone)]
pub struct InputEvents(Arc<Inner>);

impl std::fmt::Debug for InputEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputEvents")
            .field("pending", &self.pending_len())
            .finish()
    }
}

impl InputEvents {
    /// A handle with nothing pending.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self(Arc::new(Inner {
            pending: Mutex::new(VecDeque::new()),
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
            leds: AtomicU32::new(0),
        })))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<InputEvent>> {
        self.0.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `events` for the guest (end each report with [`InputEvent::sync`]).
    pub fn send(&self, events: &[InputEvent]) {
        let mut pending = self.pending();
        pending.extend(events.iter().copied());
        let excess = pending.len().saturating_sub(MAX_PENDING);
        if excess > 0 {
            pending.drain(..excess);
            tracing::debug!(
                excess,
                "virtio-input: the guest reads no events; old ones dropped"
            );
        }
        drop(pending);
        let _ = self.0.wake.write(1);
    }

    /// Presses (`true`) or releases one key or button, as one report.
    pub fn key(&self, code: u16, pressed: bool) {
        self.send(&[
            InputEvent {
                kind: EV_KEY,
                code,
                value: u32::from(pressed),
            },
            InputEvent::sync(),
        ]);
    }

    /// Moves a tablet's pointer to (`x`, `y`) on the 0..=[`ABS_MAX`] scale.
    pub fn move_to(&self, x: u32, y: u32) {
        self.send(&[
            InputEvent {
                kind: EV_ABS,
                code: ABS_X,
                value: x.min(ABS_MAX),
            },
            InputEvent {
                kind: EV_ABS,
                code: ABS_Y,
                value: y.min(ABS_MAX),
            },
            InputEvent::sync(),
        ]);
    }

    /// Turns a tablet's wheel by `clicks` (positive: away from the user).
    pub fn wheel(&self, clicks: i32) {
        self.send(&[
            InputEvent {
                kind: EV_REL,
                code: REL_WHEEL,
                value: clicks as u32,
            },
            InputEvent::sync(),
        ]);
    }

    /// The keyboard LEDs the guest set (bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock).
    pub fn leds(&self) -> u32 {
        self.0.leds.load(Ordering::SeqCst)
    }

    /// A copy of the events waiting for the guest, oldest first (for viewers' tests: what a
    /// key press became, without a guest to read it).
    pub fn pending_events(&self) -> Vec<InputEvent> {
        self.pending().iter().copied().collect()
    }

    /// How many events wait for the guest.
    pub fn pending_len(&self) -> usize {
        self.pending().len()
    }

    /// Takes every waiting event, as the guest's driver would. For front ends' tests, which
    /// have no guest to read them.
    pub fn drain(&self) -> Vec<InputEvent> {
        self.pending().drain(..).collect()
    }

    /// Written when events arrive (the device reading them waits on it).
    pub(crate) fn wake_fd(&self) -> &EventFd {
        &self.0.wake
    }

    /// Takes up to `max` waiting events; whole reports only, so the guest never sees half
    /// of one while it has too few buffers.
    pub(super) fn take(&self, max: usize) -> Vec<InputEvent> {
        let mut pending = self.pending();
        let mut end = 0;
        for (i, e) in pending.iter().enumerate().take(max) {
            if e.kind == EV_SYN {
                end = i + 1;
            }
        }
        pending.drain(..end).collect()
    }

    /// Puts events back at the front (the guest had fewer buffers than it seemed).
    pub(super) fn put_back(&self, events: Vec<InputEvent>) {
        let mut pending = self.pending();
        for e in events.into_iter().rev() {
            pending.push_front(e);
        }
    }

    /// The guest set all three LEDs at once (the PS/2 keyboard's set-LEDs command).
    pub(crate) fn set_leds(&self, leds: u32) {
        self.0.leds.store(leds & 0b111, Ordering::SeqCst);
    }

    /// The guest set an LED (statusq).
    pub(super) fn set_led(&self, code: u16, on: bool) {
        if code < 32 {
            if on {
                self.0.leds.fetch_or(1 << code, Ordering::SeqCst);
            } else {
                self.0.leds.fetch_and(!(1 << code), Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_reports_are_taken() {
        let events = InputEvents::new().unwrap();
        events.key(30, true);
        events.move_to(40000, 5);
        assert_eq!(events.pending_len(), 5);
        let first = events.take(4);
        assert_eq!(first.len(), 2, "the key report; the move does not fit in 4");
        let moved = events.take(10);
        assert_eq!(moved[0].value, ABS_MAX, "clamped to the axis");
        assert_eq!(moved.len(), 3);
        assert_eq!(events.pending_len(), 0);
    }
}
