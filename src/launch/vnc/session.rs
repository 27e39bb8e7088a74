//! One VNC client: the handshake, then a thread reading its messages (input goes straight to
//! the virtio devices) and one sending updates when it asked for one and the screen changed.
//!
//! The guest's pointer (virtio-gpu's cursor plane) goes to clients that list the Cursor
//! pseudo-encoding, as a shape they draw at their own pointer (gtk-vnc, TigerVNC and noVNC
//! do): no round trip between the user's hand and the arrow. Clients without it get nothing
//! composited into the frame, as from QEMU's VNC server: their own local pointer is where the
//! guest's is, since the tablet is absolute, and compositing would turn every pointer move
//! into screen damage.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::VncSources;
use super::auth;
use super::keysym::linux_code;
use super::net::Stream;
use super::pixels::{Area, changed, cursor_rect, raw_rect};
use super::rfb::{
    ClientMessage, ENCODING_CURSOR, ENCODING_DESKTOP_SIZE, PixelFormat, ReadError, read_message,
    rect_header, update_header,
};
use crate::engine::display::{
    ABS_MAX, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, EV_KEY, InputEvent, Mode, PixelFormat as Guest,
};

/// How long a client may take over the handshake, and a write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a pending update request looks at the screen's damage counter (an atomic
/// load; the screen has no change notification, and 4 ms is within a 240 Hz frame).
const POLL: Duration = Duration::from_millis(4);

/// What every session of one server shares.
#[derive(Debug)]
pub struct Config {
    pub sources: VncSources,
    pub name: String,
    /// The DES key of `passwd`; `None` for no authentication.
    pub password: Option<[u8; 8]>,
}

/// What the reading side tells the writing side.
#[derive(Debug)]
struct State {
    format: PixelFormat,
    desktop_size: bool,
    /// The client draws the guest's pointer shape (the Cursor pseudo-encoding).
    cursor: bool,
    /// The pending FramebufferUpdateRequest and a counter telling requests apart.
    request: Option<(bool, Area)>,
    request_seq: u64,
    /// The framebuffer size the client knows (for pointer scaling).
    size: (u32, u32),
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }
}

/// Serves `stream` on its own threads.
pub fn spawn(stream: Stream, config: Arc<Config>, stopped: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("vnc-client".into())
        .spawn(move || match serve(stream, &config, &stopped) {
            Ok(()) => tracing::debug!("VNC client left"),
            Err(err) => tracing::info!(%err, "VNC client closed"),
        });
    if let Err(err) = spawned {
        tracing::warn!(%err, "VNC: no thread for a client");
    }
}

fn serve(mut stream: Stream, config: &Config, stopped: &Arc<AtomicBool>) -> Result<(), String> {
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let size = handshake(&mut stream, config).map_err(|e| format!("handshake: {e}"))?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            format: PixelFormat::XRGB,
            desktop_size: false,
            cursor: false,
            request: None,
            request_seq: 0,
            size,
            closed: false,
        }),
        wake: Condvar::new(),
    });
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let (for_writer, sources, stopped) = (shared.clone(), config.sources.clone(), stopped.clone());
    std::thread::Builder::new()
        .name("vnc-updates".into())
        .spawn(move || {
            let mut writer = writer;
            if let Err(err) = send_updates(&mut writer, &sources, &for_writer, size, &stopped) {
                tracing::debug!(%err, "VNC: sending updates ended");
            }
            for_writer.close();
            writer.shutdown();
        })
        .map_err(|e| e.to_string())?;
    let result = read_messages(&mut stream, config, &shared);
    shared.close();
    stream.shutdown();
    result
}

/// RFB 3.3, 3.7 or 3.8 up to ServerInit; returns the framebuffer size announced.
fn handshake(stream: &mut Stream, config: &Config) -> std::io::Result<(u32, u32)> {
    let refuse = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    stream.write_all(b"RFB 003.008\n")?;
    let mut version = [0u8; 12];
    stream.read_exact(&mut version)?;
    let minor = std::str::from_utf8(&version)
        .ok()
        .filter(|v| v.starts_with("RFB 003.") && v.ends_with('\n'))
        .and_then(|v| v[8..11].parse::<u32>().ok())
        .ok_or_else(|| refuse("not an RFB client"))?;
    if minor < 3 {
        return Err(refuse("RFB older than 3.3"));
    }
    let security: u8 = if config.password.is_some() { 2 } else { 1 };
    if minor >= 7 {
        stream.write_all(&[1, security])?;
        let mut chosen = [0u8; 1];
        stream.read_exact(&mut chosen)?;
        if chosen[0] != security {
            if minor >= 8 {
                fail(stream, "security type not offered")?;
            }
            return Err(refuse("the client chose a security type not offered"));
        }
    } else {
        stream.write_all(&u32::from(security).to_be_bytes())?;
    }
    if let Some(key) = &config.password {
        let challenge = auth::challenge()?;
        stream.write_all(&challenge)?;
        let mut answer = [0u8; 16];
        stream.read_exact(&mut answer)?;
        if !auth::matches(&auth::response(key, &challenge), &answer) {
            if minor >= 8 {
                fail(stream, "wrong password")?;
            } else {
                stream.write_all(&1u32.to_be_bytes())?;
            }
            return Err(refuse("wrong password"));
        }
        stream.write_all(&0u32.to_be_bytes())?;
    } else if minor >= 8 {
        stream.write_all(&0u32.to_be_bytes())?;
    }
    let mut shared_flag = [0u8; 1];
    stream.read_exact(&mut shared_flag)?;
    let (width, height) = screen_size(&config.sources);
    let mut init = Vec::with_capacity(24 + config.name.len());
    init.extend_from_slice(&(width as u16).to_be_bytes());
    init.extend_from_slice(&(height as u16).to_be_bytes());
    init.extend_from_slice(&PixelFormat::XRGB.to_bytes());
    init.extend_from_slice(&(config.name.len() as u32).to_be_bytes());
    init.extend_from_slice(config.name.as_bytes());
    stream.write_all(&init)?;
    Ok((width, height))
}

/// SecurityResult "failed" with its reason (RFB 3.8).
fn fail(stream: &mut Stream, reason: &str) -> std::io::Result<()> {
    stream.write_all(&1u32.to_be_bytes())?;
    stream.write_all(&(reason.len() as u32).to_be_bytes())?;
    stream.write_all(reason.as_bytes())
}

/// What the guest shows, or the size it will be offered while it shows nothing.
fn screen_size(sources: &VncSources) -> (u32, u32) {
    match sources.scanout.mode() {
        Some(mode) => (mode.width, mode.height),
        None => sources.scanout.preferred_size(),
    }
}

fn read_messages(stream: &mut Stream, config: &Config, shared: &Shared) -> Result<(), String> {
    let mut buttons = 0u8;
    loop {
        let message = match read_message(stream) {
            Ok(message) => message,
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        match message {
            ClientMessage::SetPixelFormat(format) => shared.lock().format = format,
            ClientMessage::SetEncodings(encodings) => {
                let mut state = shared.lock();
                state.desktop_size = encodings.contains(&ENCODING_DESKTOP_SIZE);
                state.cursor = encodings.contains(&ENCODING_CURSOR);
            }
            ClientMessage::UpdateRequest {
                incremental,
                x,
                y,
                width,
                height,
            } => {
                let mut state = shared.lock();
                if state.closed {
                    return Ok(());
                }
                state.request = Some((
                    incremental,
                    Area {
                        x: x.into(),
                        y: y.into(),
                        width: width.into(),
                        height: height.into(),
                    },
                ));
                state.request_seq += 1;
                drop(state);
                shared.wake.notify_all();
            }
            ClientMessage::Key { down, keysym } => match linux_code(keysym) {
                Some(code) => {
                    if let Some(keyboard) = &config.sources.keyboard {
                        keyboard.key(code, down);
                    }
                }
                None => tracing::debug!(keysym, "VNC: a key with no Linux code"),
            },
            ClientMessage::Pointer { buttons: now, x, y } => {
                if let Some(tablet) = &config.sources.tablet {
                    let size = shared.lock().size;
                    tablet.send(&pointer_events(size, x, y, buttons, now));
                }
                buttons = now;
            }
            ClientMessage::CutText => {}
        }
    }
}

/// A pointer message as one tablet report: the position on the 0..=32767 scale of the
/// screen the client sees, the buttons that changed, a wheel click.
pub(super) fn pointer_events(
    size: (u32, u32),
    x: u16,
    y: u16,
    was: u8,
    now: u8,
) -> Vec<InputEvent> {
    let scale = |v: u16, side: u32| {
        let last = side.saturating_sub(1).max(1);
        (u32::from(v).min(last) * ABS_MAX).div_ceil(last)
    };
    let mut events = vec![
        InputEvent {
            kind: crate::engine::display::EV_ABS,
            code: 0,
            value: scale(x, size.0),
        },
        InputEvent {
            kind: crate::engine::display::EV_ABS,
            code: 1,
            value: scale(y, size.1),
        },
    ];
    for (bit, code) in [(0, BTN_LEFT), (1, BTN_MIDDLE), (2, BTN_RIGHT)] {
        if (was ^ now) >> bit & 1 == 1 {
            events.push(InputEvent {
                kind: EV_KEY,
                code,
                value: u32::from(now >> bit & 1),
            });
        }
    }
    for (bit, clicks) in [(3, 1i32), (4, -1)] {
        if now >> bit & 1 == 1 && was >> bit & 1 == 0 {
            events.push(InputEvent {
                kind: crate::engine::display::EV_REL,
                code: 8, // REL_WHEEL
                value: clicks as u32,
            });
        }
    }
    events.push(InputEvent::sync());
    events
}

/// What the client was last sent.
struct Sent {
    pixels: Vec<u8>,
    mode: Option<Mode>,
    damage: Option<u64>,
    /// The scanout's cursor shape count when the client last got the shape.
    cursor: Option<u64>,
}

fn send_updates(
    stream: &mut Stream,
    sources: &VncSources,
    shared: &Shared,
    size: (u32, u32),
    stopped: &AtomicBool,
) -> std::io::Result<()> {
    let mut sent = Sent {
        pixels: Vec::new(),
        mode: None,
        damage: None,
        cursor: None,
    };
    let mut client_size = size;
    let mut frame = Vec::new();
    let mut out = Vec::new();
    loop {
        let (seq, incremental, area, format, desktop_size, wants_cursor) = {
            let mut state = shared.lock();
            loop {
                if state.closed || stopped.load(Ordering::SeqCst) {
                    return Ok(());
                }
                if let Some((incremental, area)) = state.request {
                    break (
                        state.request_seq,
                        incremental,
                        area,
                        state.format,
                        state.desktop_size,
                        state.cursor,
                    );
                }
                state = shared
                    .wake
                    .wait_timeout(state, POLL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        if !wants_cursor {
            sent.cursor = None;
        }
        let shape = sources.scanout.cursor_shape_count();
        let cursor_due = wants_cursor && sent.cursor != Some(shape);
        if incremental && !cursor_due && sent.damage == Some(sources.scanout.damage_count()) {
            let state = shared.lock();
            if state.request_seq == seq {
                drop(shared.wake.wait_timeout(state, POLL));
            }
            continue;
        }
        let (mode, damage) = match sources.scanout.copy_pixels(&mut frame) {
            Some(shown) => shown,
            None => {
                // Nothing shown yet: black, at the size the client knows.
                let (width, height) = client_size;
                frame.clear();
                frame.resize(width as usize * height as usize * 4, 0);
                let mode = Mode {
                    width,
                    height,
                    format: Guest::B8G8R8X8,
                };
                (mode, sources.scanout.damage_count())
            }
        };
        out.clear();
        update_header(&mut out, 0);
        let mut rects = 0u16;
        if cursor_due {
            cursor_rect(&mut out, &sources.scanout.cursor(), format);
            sent.cursor = Some(shape);
            rects += 1;
        }
        let resized = (mode.width, mode.height) != client_size;
        let mut area = area;
        let announce_size = resized && desktop_size;
        if announce_size {
            rect_header(
                &mut out,
                0,
                0,
                mode.width,
                mode.height,
                ENCODING_DESKTOP_SIZE,
            );
            rects += 1;
            client_size = (mode.width, mode.height);
            shared.lock().size = client_size;
            area = Area {
                x: 0,
                y: 0,
                width: mode.width,
                height: mode.height,
            };
        }
        let area = area
            .clip(client_size.0, client_size.1)
            .clip(mode.width, mode.height);
        let whole = !incremental || announce_size || sent.mode != Some(mode);
        let dirty = if area.is_empty() {
            Vec::new()
        } else if whole {
            vec![area]
        } else {
            changed(&frame, &sent.pixels, mode.width, area)
        };
        for rect in &dirty {
            raw_rect(&mut out, &frame, mode.width, mode.format, *rect, format);
        }
        rects += dirty.len() as u16;
        std::mem::swap(&mut sent.pixels, &mut frame);
        sent.mode = Some(mode);
        sent.damage = Some(damage);
        if rects == 0 && incremental {
            // Nothing the client sees changed: the request waits for the next change.
            continue;
        }
        out[2..4].copy_from_slice(&rects.to_be_bytes());
        {
            let mut state = shared.lock();
            if state.request_seq == seq {
                state.request = None;
            }
        }
        stream.write_all(&out)?;
    }
}
