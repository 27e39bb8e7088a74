//! The live screen channel between a runner and a viewer (the GUI's console window): after a
//! [`Request::Screen`](super::Request::Screen) the control connection carries, from the
//! runner, what changed on the guest's screen and, from the viewer, its keys, pointer and
//! window size.
//!
//! A streamed update protocol rather than a shared memfd: the runner already owns the
//! connection and its timeouts, a stream needs no unsafe mapping nor a second notification
//! path, and a full 1280 × 800 RGBA frame (4 MB) crosses a Unix socket in about a
//! millisecond. The runner looks at the scanout's [`damage_count`](Scanout::damage_count) at
//! most [`TICK`]-ly, compares the screen with what it sent last and sends only the band of rows
//! that differ, so an idle guest costs nothing on the wire. It never takes the scanout's
//! damage list, which belongs to another consumer.
//!
//! Runner → viewer: one JSON [`ScreenUpdate`] line, then the payload its header announces.
//! Viewer → runner: one JSON [`ScreenInput`] line each.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Reply, Request, RunnerError, exchange, protocol, unexpected};
/// The side of the guest's pointer image in [`CursorShape::rgba`].
pub use crate::engine::display::CURSOR_SIDE;
use crate::engine::display::{
    BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, Cursor, EV_KEY, Frontends, InputEvent, InputKind,
};

/// How often the runner looks for a changed screen (about 60 times a second).
pub const TICK: Duration = Duration::from_millis(16);
/// The largest screen a viewer accepts (virtio-gpu's own limit is lower).
const MAX_SIDE: u32 = 16384;

/// What changed on the screen, from the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "update")]
pub enum ScreenUpdate {
    /// Rows `y .. y + rows` of a `width` × `height` screen follow as RGBA
    /// (`rows * width * 4` bytes). A new size always comes with all its rows.
    Frame {
        width: u32,
        height: u32,
        y: u32,
        rows: u32,
        /// The scanout's damage count when the rows were read.
        seq: u64,
    },
    /// The guest shows nothing (no mode set yet, or its driver turned the display off).
    Blank,
    /// The guest's pointer: `bytes` of 64 × 64 RGBA follow (0 while the guest hides it).
    Cursor {
        x: u32,
        y: u32,
        hot_x: u32,
        hot_y: u32,
        bytes: u32,
    },
}

/// What the viewer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "input")]
pub enum ScreenInput {
    /// A Linux key code pressed or released on the virtio keyboard.
    Key { code: u16, pressed: bool },
    /// The tablet's pointer at (`x`, `y`) on its 0..=32767 scale with `buttons` held (bit 0
    /// left, 1 right, 2 middle).
    Pointer { x: u32, y: u32, buttons: u8 },
    /// The wheel turned `clicks` (positive: away from the user).
    Wheel { clicks: i32 },
    /// The viewer's area changed: the guest is offered this display size.
    Size { width: u32, height: u32 },
}

/// The runner's side: answers a [`Request::Screen`] on `out` and then serves `frontends` until
/// the viewer hangs up. `input` is the rest of the request's connection.
pub(super) fn serve(
    mut out: UnixStream,
    input: BufReader<UnixStream>,
    frontends: &Frontends,
    name: &str,
) -> std::io::Result<()> {
    if frontends.scanout.is_none() {
        let message = format!(
            "domain '{name}' has no display; add <video><model type='virtio'/></video> with \
             `vireoctl edit {name}` and start it again"
        );
        return out.write_all(protocol::encode(&Reply::Error { message }).as_bytes());
    }
    out.write_all(protocol::encode(&Reply::Screen).as_bytes())?;
    input.get_ref().set_read_timeout(None)?;
    serve_stream(out, input, frontends.clone())
}

/// Streams screen updates to `out` and applies the viewer's input from `input` until either
/// side closes. Public for tests and fakes, which serve a [`Frontends`] of their own over a
/// socket pair.
pub fn serve_stream(
    mut out: UnixStream,
    input: impl BufRead + Send + 'static,
    frontends: Frontends,
) -> std::io::Result<()> {
    let closed = Arc::new(AtomicBool::new(false));
    let reader_closed = closed.clone();
    let targets = frontends.clone();
    let hang_up = out.try_clone()?;
    std::thread::spawn(move || {
        apply_input(input, &targets);
        reader_closed.store(true, Ordering::SeqCst);
        let _ = hang_up.shutdown(std::net::Shutdown::Both);
    });
    let Some(scanout) = frontends.scanout else {
        return Ok(());
    };
    let mut sent: Option<(u32, u32, Vec<u8>)> = None;
    let mut sent_blank = false;
    let mut seen = None;
    let mut cursor_sent: Option<Cursor> = None;
    while !closed.load(Ordering::SeqCst) {
        let count = scanout.damage_count();
        if seen != Some(count) {
            seen = Some(count);
            match scanout.image() {
                Some(image) => {
                    sent_blank = false;
                    let band = match &sent {
                        Some((w, h, last)) if (*w, *h) == (image.width, image.height) => {
                            changed_rows(last, &image.rgba, image.width)
                        }
                        _ => Some((0, image.height)),
                    };
                    if let Some((y, rows)) = band {
                        let row_bytes = image.width as usize * 4;
                        let update = ScreenUpdate::Frame {
                            width: image.width,
                            height: image.height,
                            y,
                            rows,
                            seq: count,
                        };
                        out.write_all(protocol::encode(&update).as_bytes())?;
                        let from = y as usize * row_bytes;
                        out.write_all(&image.rgba[from..from + rows as usize * row_bytes])?;
                    }
                    sent = Some((image.width, image.height, image.rgba));
                }
                None if !sent_blank => {
                    sent_blank = true;
                    sent = None;
                    out.write_all(protocol::encode(&ScreenUpdate::Blank).as_bytes())?;
                }
                None => {}
            }
        }
        let cursor = scanout.cursor();
        if cursor_sent.as_ref() != Some(&cursor) {
            let rgba = cursor.image.as_ref().map(|i| i.rgba.as_slice());
            let update = ScreenUpdate::Cursor {
                x: cursor.x,
                y: cursor.y,
                hot_x: cursor.hot_x,
                hot_y: cursor.hot_y,
                bytes: rgba.map_or(0, |r| r.len() as u32),
            };
            out.write_all(protocol::encode(&update).as_bytes())?;
            out.write_all(rgba.unwrap_or_default())?;
            cursor_sent = Some(cursor);
        }
        std::thread::sleep(TICK);
    }
    Ok(())
}

/// The first row and the number of rows in which `new` differs from `old` (both `width`
/// pixels a row), or `None` when nothing changed.
fn changed_rows(old: &[u8], new: &[u8], width: u32) -> Option<(u32, u32)> {
    let row_bytes = (width as usize * 4).max(1);
    let differs = |(a, b): (&[u8], &[u8])| a != b;
    let pairs = || old.chunks(row_bytes).zip(new.chunks(row_bytes));
    let first = pairs().position(differs)?;
    let last = pairs().rposition(differs)?;
    Some((first as u32, (last - first + 1) as u32))
}

/// Applies the viewer's input lines to the keyboard, tablet and scanout until the viewer
/// hangs up. A line it cannot read is logged and skipped: a newer viewer must not lose the
/// screen over one message.
fn apply_input(mut input: impl BufRead, frontends: &Frontends) {
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let message = match serde_json::from_str::<ScreenInput>(line.trim()) {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(%err, "screen channel: unreadable input line skipped");
                continue;
            }
        };
        match message {
            ScreenInput::Key { code, pressed } => {
                if let Some(keyboard) = frontends.keyboard() {
                    keyboard.key(code, pressed);
                }
            }
            ScreenInput::Pointer { x, y, buttons } => {
                if let Some(tablet) = frontends.input(InputKind::Tablet) {
                    tablet.move_to(x, y);
                    tablet.send(&button_events(buttons));
                }
            }
            ScreenInput::Wheel { clicks } => {
                if let Some(tablet) = frontends.input(InputKind::Tablet) {
                    tablet.wheel(clicks);
                }
            }
            ScreenInput::Size { width, height } => {
                if let Some(scanout) = &frontends.scanout {
                    let wanted = (width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE));
                    if scanout.preferred_size() != wanted {
                        scanout.set_preferred_size(wanted.0, wanted.1);
                    }
                }
            }
        }
    }
}

/// Every tablet button's state (bit 0 left, 1 right, 2 middle) as one report; the guest's
/// input core passes on only the changes.
pub(super) fn button_events(buttons: u8) -> Vec<InputEvent> {
    [BTN_LEFT, BTN_RIGHT, BTN_MIDDLE]
        .iter()
        .enumerate()
        .map(|(bit, code)| InputEvent {
            kind: EV_KEY,
            code: *code,
            value: u32::from(buttons >> bit & 1),
        })
        .chain([InputEvent::sync()])
        .collect()
}

/// The viewer's copy of the guest's screen, kept up to date by [`ScreenReader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Framebuffer {
    pub width: u32,
    pub height: u32,
    /// RGBA, rows top to bottom, no padding; empty while the guest shows nothing.
    pub rgba: Vec<u8>,
    /// The runner's damage count of the last rows received.
    pub seq: u64,
}

/// The guest's pointer as the viewer knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CursorShape {
    pub x: u32,
    pub y: u32,
    pub hot_x: u32,
    pub hot_y: u32,
    /// 64 × 64 RGBA; empty while the guest hides its pointer.
    pub rgba: Vec<u8>,
}

/// What one update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Rows of the screen (or all of it, or it went blank).
    Screen,
    /// The guest's pointer.
    Cursor,
}

/// Reads updates from a runner into a [`Framebuffer`].
pub struct ScreenReader<R> {
    input: R,
    frame: Framebuffer,
    cursor: CursorShape,
}

impl<R> std::fmt::Debug for ScreenReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenReader")
            .field("width", &self.frame.width)
            .field("height", &self.frame.height)
            .field("seq", &self.frame.seq)
            .finish()
    }
}

impl<R: BufRead> ScreenReader<R> {
    /// A reader of the updates on `input` (a connection past the runner's reply).
    pub fn new(input: R) -> Self {
        Self {
            input,
            frame: Framebuffer::default(),
            cursor: CursorShape::default(),
        }
    }

    /// The screen as received so far.
    pub fn frame(&self) -> &Framebuffer {
        &self.frame
    }

    /// The guest's pointer as received so far.
    pub fn cursor(&self) -> &CursorShape {
        &self.cursor
    }

    /// Waits for the next update and applies it. `Ok(None)`: the runner hung up (the VM
    /// stopped). An update that does not fit the screen is an error, not a crash.
    pub fn next_update(&mut self) -> std::io::Result<Option<Changed>> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let update = serde_json::from_str::<ScreenUpdate>(line.trim())
            .map_err(|e| bad(format!("an unreadable screen update from the runner ({e})")))?;
        match update {
            ScreenUpdate::Frame {
                width,
                height,
                y,
                rows,
                seq,
            } => {
                if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
                    return Err(bad(format!("a {width} × {height} screen")));
                }
                if u64::from(y) + u64::from(rows) > u64::from(height) {
                    return Err(bad(format!("rows {y}+{rows} of a {height}-row screen")));
                }
                let row_bytes = width as usize * 4;
                if (width, height) != (self.frame.width, self.frame.height)
                    || self.frame.rgba.is_empty()
                {
                    if (y, rows) != (0, height) {
                        return Err(bad("a new screen size without all its rows".into()));
                    }
                    self.frame.width = width;
                    self.frame.height = height;
                    self.frame.rgba = vec![0; row_bytes * height as usize];
                }
                let from = y as usize * row_bytes;
                self.input
                    .read_exact(&mut self.frame.rgba[from..from + rows as usize * row_bytes])?;
                self.frame.seq = seq;
                Ok(Some(Changed::Screen))
            }
            ScreenUpdate::Blank => {
                self.frame = Framebuffer {
                    seq: self.frame.seq,
                    ..Framebuffer::default()
                };
                Ok(Some(Changed::Screen))
            }
            ScreenUpdate::Cursor {
                x,
                y,
                hot_x,
                hot_y,
                bytes,
            } => {
                let side = CURSOR_SIDE as usize;
                if bytes != 0 && bytes as usize != side * side * 4 {
                    return Err(bad(format!("a {bytes}-byte cursor image")));
                }
                let mut rgba = vec![0; bytes as usize];
                self.input.read_exact(&mut rgba)?;
                self.cursor = CursorShape {
                    x,
                    y,
                    hot_x,
                    hot_y,
                    rgba,
                };
                Ok(Some(Changed::Cursor))
            }
        }
    }
}

/// Sends the viewer's input to the runner; clones share the connection.
#[derive(Debug)]
pub struct ScreenSender(UnixStream);

impl ScreenSender {
    /// Input to the runner on `stream` (a connection past the runner's reply).
    pub fn new(stream: UnixStream) -> Self {
        Self(stream)
    }

    /// Sends one input message; an error means the runner is gone.
    pub fn send(&mut self, input: &ScreenInput) -> std::io::Result<()> {
        self.0.write_all(protocol::encode(input).as_bytes())
    }
}

/// Attaches a viewer to the screen of `name`: updates arrive on the reader, input goes out
/// through the sender. The handshake has the request timeout; the connection then has none
/// (a screen may stay still for hours).
pub fn attach_screen(
    name: &str,
) -> Result<(ScreenReader<BufReader<UnixStream>>, ScreenSender), RunnerError> {
    let (reply, stream) = exchange(name, Request::Screen)?;
    if reply != Reply::Screen {
        return Err(unexpected(name, Request::Screen, &reply));
    }
    let io = |cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    };
    stream.set_read_timeout(None).map_err(io)?;
    stream.set_write_timeout(None).map_err(io)?;
    let sender = ScreenSender::new(stream.try_clone().map_err(io)?);
    Ok((ScreenReader::new(BufReader::new(stream)), sender))
}

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
