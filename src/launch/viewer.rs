//! The GTK-free arithmetic of the GUI's screen viewer: where the guest's picture sits in the
//! viewer (scaled, aspect kept), where a pointer position lands on the virtio tablet, which
//! Linux key a hardware key code is, which keys are still held when the viewer lets go of the
//! keyboard, when a resized window becomes a new guest display size, and the key combinations
//! of the "Send Key" menu. Kept here so it is tested without a display.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::engine::display::ABS_MAX;

/// Linux key codes (`linux/input-event-codes.h`) the viewer itself needs.
pub const KEY_LEFTCTRL: u16 = 29;
pub const KEY_LEFTALT: u16 = 56;
pub const KEY_RIGHTCTRL: u16 = 97;
pub const KEY_RIGHTALT: u16 = 100;
pub const KEY_DELETE: u16 = 111;
pub const KEY_BACKSPACE: u16 = 14;

/// Where the picture is drawn inside the viewer, in the viewer's (logical) pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The largest rectangle with the image's aspect that fits `area`, centred (GTK's
/// `ContentFit::Contain`, which the viewer's picture uses). `None` for an empty image or area.
pub fn fit(area: (f64, f64), image: (u32, u32)) -> Option<Placement> {
    let (aw, ah) = area;
    let (iw, ih) = (f64::from(image.0), f64::from(image.1));
    if aw <= 0.0 || ah <= 0.0 || iw <= 0.0 || ih <= 0.0 {
        return None;
    }
    let scale = (aw / iw).min(ah / ih);
    let (width, height) = (iw * scale, ih * scale);
    Some(Placement {
        x: (aw - width) / 2.0,
        y: (ah - height) / 2.0,
        width,
        height,
    })
}

/// The tablet position (0..=32767 on both axes) of the viewer point (`x`, `y`) over the picture
/// at `placed`; a point beside the picture goes to its nearest edge.
pub fn tablet_position(placed: Placement, x: f64, y: f64) -> (u32, u32) {
    let scale = |value: f64, start: f64, length: f64| {
        let fraction = ((value - start) / length).clamp(0.0, 1.0);
        (fraction * f64::from(ABS_MAX)).round() as u32
    };
    (
        scale(x, placed.x, placed.width),
        scale(y, placed.y, placed.height),
    )
}

/// The Linux (evdev) key code of an X11/GDK hardware key code: X adds 8 to evdev's codes, and
/// GDK on Wayland reports them the same way.
pub fn linux_key(hardware_keycode: u32) -> Option<u16> {
    hardware_keycode
        .checked_sub(8)
        .filter(|code| *code > 0)
        .and_then(|code| u16::try_from(code).ok())
}

/// The keys the viewer pressed on the guest and has not released, so that letting go of the
/// keyboard (Ctrl+Alt, focus lost) releases them and no modifier sticks in the guest.
#[derive(Debug, Default)]
pub struct HeldKeys(BTreeSet<u16>);

impl HeldKeys {
    /// Records a press or release; returns whether Ctrl and Alt are now both held (the
    /// release chord, as in virt-manager).
    pub fn record(&mut self, code: u16, pressed: bool) -> bool {
        if pressed {
            self.0.insert(code);
        } else {
            self.0.remove(&code);
        }
        let any = |a, b| self.0.contains(&a) || self.0.contains(&b);
        pressed && any(KEY_LEFTCTRL, KEY_RIGHTCTRL) && any(KEY_LEFTALT, KEY_RIGHTALT)
    }

    /// Whether the viewer pressed `code` on the guest and has not released it.
    pub fn contains(&self, code: u16) -> bool {
        self.0.contains(&code)
    }

    /// The held keys, to be released in the guest, last pressed code first; forgets them.
    pub fn release_all(&mut self) -> Vec<u16> {
        std::mem::take(&mut self.0).into_iter().rev().collect()
    }
}

/// Waits for a window's size to settle before it becomes the guest's display size: a drag
/// produces dozens of sizes, and each one re-modes the guest.
#[derive(Debug)]
pub struct SizeDebounce {
    quiet: Duration,
    pending: Option<((u32, u32), Instant)>,
    sent: Option<(u32, u32)>,
}

impl SizeDebounce {
    /// A size is passed on once it stayed the same for `quiet`.
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            pending: None,
            sent: None,
        }
    }

    /// The viewer is `size` device pixels at `now`.
    pub fn observe(&mut self, size: (u32, u32), now: Instant) {
        if size.0 == 0 || size.1 == 0 || self.sent == Some(size) {
            self.pending = None;
            return;
        }
        if self.pending.map(|(s, _)| s) != Some(size) {
            self.pending = Some((size, now));
        }
    }

    /// The size to offer the guest now, once (it then counts as sent).
    pub fn due(&mut self, now: Instant) -> Option<(u32, u32)> {
        let (size, since) = self.pending?;
        if now.duration_since(since) < self.quiet {
            return None;
        }
        self.pending = None;
        self.sent = Some(size);
        Some(size)
    }
}

/// The "Send Key" menu: each entry's label and the Linux key codes pressed together.
pub fn send_key_combos() -> Vec<(String, Vec<u16>)> {
    let mut combos = vec![
        (
            "Ctrl+Alt+Del".to_string(),
            vec![KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE],
        ),
        (
            "Ctrl+Alt+Backspace".to_string(),
            vec![KEY_LEFTCTRL, KEY_LEFTALT, KEY_BACKSPACE],
        ),
    ];
    for n in 1..=12u16 {
        // F1..F10 are 59..68; F11 and F12 come later (87, 88).
        let f = if n <= 10 { 58 + n } else { 76 + n };
        combos.push((format!("Ctrl+Alt+F{n}"), vec![KEY_LEFTCTRL, KEY_LEFTALT, f]));
    }
    combos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picture_keeps_its_aspect_and_is_centred() {
        let wide = fit((1000.0, 1000.0), (1280, 800)).unwrap();
        assert_eq!((wide.x, wide.width), (0.0, 1000.0));
        assert_eq!((wide.y, wide.height), (187.5, 625.0));
        let tall = fit((400.0, 100.0), (100, 100)).unwrap();
        assert_eq!(
            (tall.x, tall.y, tall.width, tall.height),
            (150.0, 0.0, 100.0, 100.0)
        );
        assert_eq!(fit((0.0, 10.0), (10, 10)), None);
        assert_eq!(fit((10.0, 10.0), (0, 10)), None);
    }

    #[test]
    fn pointer_positions_land_on_the_tablet_scale() {
        let placed = fit((1000.0, 1000.0), (1280, 800)).unwrap();
        assert_eq!(tablet_position(placed, 0.0, 187.5), (0, 0));
        assert_eq!(tablet_position(placed, 1000.0, 812.5), (ABS_MAX, ABS_MAX));
        assert_eq!(tablet_position(placed, 500.0, 500.0), (16384, 16384));
        assert_eq!(
            tablet_position(placed, -20.0, 900.0),
            (0, ABS_MAX),
            "beside the picture: its edge"
        );
    }

    #[test]
    fn hardware_key_codes_become_linux_codes() {
        assert_eq!(linux_key(38), Some(30), "A");
        assert_eq!(linux_key(9), Some(1), "Escape");
        assert_eq!(linux_key(8), None);
        assert_eq!(linux_key(3), None);
    }

    #[test]
    fn ctrl_alt_is_the_release_chord_and_held_keys_are_released() {
        let mut held = HeldKeys::default();
        assert!(!held.record(KEY_LEFTCTRL, true));
        assert!(!held.record(30, true));
        assert!(held.record(KEY_RIGHTALT, true));
        assert_eq!(held.release_all(), [KEY_RIGHTALT, 30, KEY_LEFTCTRL]);
        assert!(held.release_all().is_empty());
        assert!(!held.record(KEY_LEFTALT, true));
        assert!(!held.record(KEY_LEFTALT, false));
        assert!(!held.record(KEY_LEFTCTRL, true), "Alt was released first");
    }

    #[test]
    fn a_size_is_sent_once_it_settles() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = SizeDebounce::new(Duration::from_millis(300));
        d.observe((800, 600), ms(0));
        assert_eq!(d.due(ms(100)), None);
        d.observe((810, 600), ms(200));
        assert_eq!(d.due(ms(400)), None, "the drag went on");
        assert_eq!(d.due(ms(500)), Some((810, 600)));
        assert_eq!(d.due(ms(900)), None, "sent once");
        d.observe((810, 600), ms(1000));
        assert_eq!(d.due(ms(2000)), None, "the same size again is no news");
        d.observe((0, 600), ms(2000));
        assert_eq!(d.due(ms(3000)), None);
    }

    #[test]
    fn the_send_key_menu_has_ctrl_alt_del_and_the_consoles() {
        let combos = send_key_combos();
        assert_eq!(combos[0].1, [29, 56, 111]);
        let f = |n: usize| {
            combos
                .iter()
                .find(|c| c.0 == format!("Ctrl+Alt+F{n}"))
                .unwrap()
        };
        assert_eq!(f(1).1, [29, 56, 59]);
        assert_eq!(f(10).1, [29, 56, 68]);
        assert_eq!(f(11).1, [29, 56, 87]);
        assert_eq!(f(12).1, [29, 56, 88]);
    }
}
