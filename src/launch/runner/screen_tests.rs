//! The screen channel without a guest: a test draws into a [`Scanout`], serves it over a
//! socket pair as the runner does, and reads it back as the viewer does.

use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;

use super::*;
use crate::engine::display::{ABS_MAX, EV_ABS, InputEvents, Mode, PixelFormat, Rect, Scanout};

const W: u32 = 1280;
const H: u32 = 800;

struct Served {
    reader: ScreenReader<BufReader<UnixStream>>,
    sender: ScreenSender,
    frontends: Frontends,
}

fn serve_pair(frontends: Frontends) -> Served {
    let (runner, viewer) = UnixStream::pair().unwrap();
    let input = BufReader::new(runner.try_clone().unwrap());
    let served = frontends.clone();
    std::thread::spawn(move || serve_stream(runner, input, served));
    Served {
        reader: ScreenReader::new(BufReader::new(viewer.try_clone().unwrap())),
        sender: ScreenSender::new(viewer),
        frontends,
    }
}

fn frontends() -> Frontends {
    Frontends {
        scanout: Some(Scanout::new(W, H)),
        inputs: vec![
            (InputKind::Keyboard, InputEvents::new().unwrap()),
            (InputKind::Tablet, InputEvents::new().unwrap()),
        ],
        ps2_keyboard: None,
    }
}

fn mode() -> Mode {
    Mode {
        width: W,
        height: H,
        format: PixelFormat::B8G8R8X8,
    }
}

/// Fills `area` with one BGRX colour.
fn fill(scanout: &Scanout, area: Rect, bgrx: [u8; 4]) {
    let pixels = bgrx.repeat(area.width as usize * area.height as usize);
    scanout.draw(mode(), area, &pixels);
}

fn rgba_at(frame: &Framebuffer, x: u32, y: u32) -> [u8; 4] {
    let at = (y as usize * frame.width as usize + x as usize) * 4;
    frame.rgba[at..at + 4].try_into().unwrap()
}

/// Reads updates until `done` holds for the reader, returning each one's kind.
fn read_until(
    reader: &mut ScreenReader<BufReader<UnixStream>>,
    mut done: impl FnMut(&ScreenReader<BufReader<UnixStream>>) -> bool,
) -> Vec<Changed> {
    let mut seen = Vec::new();
    while !done(reader) {
        seen.push(reader.next_update().unwrap().expect("the runner hung up"));
    }
    seen
}

#[test]
fn a_drawn_screen_arrives_whole_then_only_what_changed() {
    let f = frontends();
    let scanout = f.scanout.clone().unwrap();
    let full = Rect {
        x: 0,
        y: 0,
        width: W,
        height: H,
    };
    fill(&scanout, full, [0x30, 0x20, 0x10, 0]);
    let mut s = serve_pair(f);
    read_until(&mut s.reader, |r| r.frame().width == W);
    let frame = s.reader.frame();
    assert_eq!((frame.width, frame.height), (W, H));
    assert_eq!(frame.rgba.len(), (W * H * 4) as usize);
    assert_eq!(
        rgba_at(frame, 0, 0),
        [0x10, 0x20, 0x30, 0xff],
        "BGRX became RGBA"
    );
    assert_eq!(rgba_at(frame, W - 1, H - 1), [0x10, 0x20, 0x30, 0xff]);

    // A red square in the middle: the next frame update carries only its rows.
    let square = Rect {
        x: 600,
        y: 300,
        width: 40,
        height: 20,
    };
    let before = scanout.damage_count();
    fill(&scanout, square, [0, 0, 0xff, 0]);
    let mut line = String::new();
    loop {
        line.clear();
        s.reader.input.read_line(&mut line).unwrap();
        let update: ScreenUpdate = serde_json::from_str(line.trim()).unwrap();
        match update {
            ScreenUpdate::Frame { y, rows, seq, .. } => {
                assert_eq!((y, rows), (300, 20), "only the changed band is sent");
                assert!(seq > before);
                let mut band = vec![0; (rows * W * 4) as usize];
                s.reader.input.read_exact(&mut band).unwrap();
                let at = ((640 - 1) * 4) as usize;
                assert_eq!(&band[at..at + 4], &[0xff, 0, 0, 0xff]);
                assert_eq!(&band[at + 4..at + 8], &[0x10, 0x20, 0x30, 0xff]);
                break;
            }
            ScreenUpdate::Cursor { bytes, .. } => {
                let mut skip = vec![0; bytes as usize];
                s.reader.input.read_exact(&mut skip).unwrap();
            }
            ScreenUpdate::Blank => panic!("the screen did not go blank"),
        }
    }
}

#[test]
fn a_reader_applies_bands_and_new_sizes() {
    let f = frontends();
    let scanout = f.scanout.clone().unwrap();
    let mut s = serve_pair(f);
    // Nothing drawn yet: the screen is blank.
    assert_eq!(s.reader.next_update().unwrap(), Some(Changed::Screen));
    assert!(s.reader.frame().rgba.is_empty());
    assert_eq!(s.reader.next_update().unwrap(), Some(Changed::Cursor));
    assert_eq!(
        s.reader.cursor(),
        &CursorShape::default(),
        "no pointer image yet"
    );
    let small = Mode {
        width: 64,
        height: 32,
        format: PixelFormat::R8G8B8A8,
    };
    scanout.draw(
        small,
        Rect {
            x: 0,
            y: 0,
            width: 64,
            height: 32,
        },
        &[7, 8, 9, 10].repeat(64 * 32),
    );
    read_until(&mut s.reader, |r| r.frame().width == 64);
    assert_eq!(rgba_at(s.reader.frame(), 63, 31), [7, 8, 9, 0xff]);
    scanout.draw(
        small,
        Rect {
            x: 5,
            y: 30,
            width: 1,
            height: 1,
        },
        &[1, 2, 3, 4],
    );
    read_until(&mut s.reader, |r| {
        rgba_at(r.frame(), 5, 30) == [1, 2, 3, 0xff]
    });
    assert_eq!(
        rgba_at(s.reader.frame(), 4, 30),
        [7, 8, 9, 0xff],
        "the rest is kept"
    );
    assert_eq!(s.reader.frame().seq, scanout.damage_count());
}

#[test]
fn keys_pointer_wheel_and_size_reach_the_devices() {
    let f = frontends();
    let mut s = serve_pair(f);
    s.sender
        .send(&ScreenInput::Key {
            code: 30,
            pressed: true,
        })
        .unwrap();
    s.sender
        .send(&ScreenInput::Pointer {
            x: 100,
            y: ABS_MAX + 5,
            buttons: 0b101,
        })
        .unwrap();
    s.sender
        .send(&ScreenInput::Size {
            width: 1024,
            height: 600,
        })
        .unwrap();
    let scanout = s.frontends.scanout.clone().unwrap();
    // The input is applied by the runner's reader thread; the updates it provokes (none here)
    // do not say when, so wait on the size, sent last.
    while scanout.preferred_size() != (1024, 600) {
        std::thread::yield_now();
    }
    let keyboard = s.frontends.input(InputKind::Keyboard).unwrap();
    assert_eq!(
        keyboard.pending_events(),
        [
            InputEvent {
                kind: EV_KEY,
                code: 30,
                value: 1
            },
            InputEvent::sync()
        ]
    );
    let tablet = s
        .frontends
        .input(InputKind::Tablet)
        .unwrap()
        .pending_events();
    assert_eq!(
        tablet[..2],
        [
            InputEvent {
                kind: EV_ABS,
                code: 0,
                value: 100
            },
            InputEvent {
                kind: EV_ABS,
                code: 1,
                value: ABS_MAX
            }
        ],
        "clamped to the tablet's scale"
    );
    let buttons: Vec<_> = tablet
        .iter()
        .filter(|e| e.kind == EV_KEY)
        .map(|e| (e.code, e.value))
        .collect();
    assert_eq!(buttons, [(BTN_LEFT, 1), (BTN_RIGHT, 0), (BTN_MIDDLE, 1)]);
}

#[test]
fn a_viewer_that_hangs_up_ends_the_runner_side() {
    let (runner, viewer) = UnixStream::pair().unwrap();
    let input = BufReader::new(runner.try_clone().unwrap());
    let done = std::thread::spawn(move || serve_stream(runner, input, frontends()));
    drop(viewer);
    // Ends (Ok when the reader noticed first, Err when a write failed first), never hangs.
    let _ = done.join().unwrap();
}

#[test]
fn bad_updates_are_errors_not_crashes() {
    for bad in [
        "{\"update\":\"frame\",\"width\":4,\"height\":4,\"y\":2,\"rows\":3,\"seq\":1}\n",
        "{\"update\":\"frame\",\"width\":4,\"height\":4,\"y\":1,\"rows\":1,\"seq\":1}\n",
        "{\"update\":\"frame\",\"width\":99999,\"height\":4,\"y\":0,\"rows\":4,\"seq\":1}\n",
        "{\"update\":\"cursor\",\"x\":0,\"y\":0,\"hot_x\":0,\"hot_y\":0,\"bytes\":7}\n",
        "garbage\n",
    ] {
        let mut reader = ScreenReader::new(BufReader::new(bad.as_bytes()));
        assert!(reader.next_update().is_err(), "{bad}");
    }
    let mut reader = ScreenReader::new(BufReader::new(&b""[..]));
    assert_eq!(
        reader.next_update().unwrap(),
        None,
        "a hang-up is the end, not an error"
    );
}

#[test]
fn changed_rows_finds_the_band() {
    let old = vec![0u8; 4 * 2 * 5];
    let mut new = old.clone();
    assert_eq!(changed_rows(&old, &new, 2), None);
    new[8] = 1; // row 1
    new[8 * 3 + 7] = 1; // row 3
    assert_eq!(changed_rows(&old, &new, 2), Some((1, 3)));
}

#[test]
fn a_runner_without_a_display_says_how_to_add_one() {
    let (runner, viewer) = UnixStream::pair().unwrap();
    let input = BufReader::new(runner.try_clone().unwrap());
    serve(runner, input, &Frontends::default(), "vm").unwrap();
    let mut line = String::new();
    BufReader::new(viewer).read_line(&mut line).unwrap();
    let Reply::Error { message } = serde_json::from_str(&line).unwrap() else {
        panic!("{line}");
    };
    assert!(
        message.contains("<video><model type='virtio'/>"),
        "{message}"
    );
}

#[test]
fn the_guests_pointer_shape_and_position_cross_the_channel() {
    let f = frontends();
    let scanout = f.scanout.clone().unwrap();
    let mut s = serve_pair(f);
    let mut arrow = [9u8, 8, 7, 0xff].repeat(64 * 64);
    arrow[4..8].copy_from_slice(&[0, 0, 0, 0]);
    scanout.set_cursor_image(
        Some(crate::engine::display::Image {
            width: 64,
            height: 64,
            rgba: arrow.clone(),
        }),
        3,
        4,
    );
    scanout.move_cursor(100, 50);
    read_until(&mut s.reader, |r| r.cursor().x == 100);
    let c = s.reader.cursor();
    assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (100, 50, 3, 4));
    assert_eq!(c.rgba, arrow, "the 64 x 64 RGBA as the guest set it");
    scanout.move_cursor(7, 8);
    read_until(&mut s.reader, |r| r.cursor().x == 7);
    assert_eq!(s.reader.cursor().rgba, arrow, "a move keeps the shape");
    scanout.set_cursor_image(None, 0, 0);
    read_until(&mut s.reader, |r| r.cursor().rgba.is_empty());
    assert_eq!(s.reader.cursor().y, 8);
}

#[test]
fn keys_go_to_the_ps2_keyboard_when_there_is_no_virtio_keyboard() {
    let ps2 = InputEvents::new().unwrap();
    let f = Frontends {
        scanout: Some(Scanout::new(W, H)),
        inputs: vec![(InputKind::Tablet, InputEvents::new().unwrap())],
        ps2_keyboard: Some(ps2.clone()),
    };
    let s = serve_pair(f);
    let mut sender = s.sender;
    sender
        .send(&ScreenInput::Key {
            code: 30,
            pressed: true,
        })
        .unwrap();
    sender
        .send(&ScreenInput::Size {
            width: 1024,
            height: 600,
        })
        .unwrap();
    let scanout = s.frontends.scanout.clone().unwrap();
    while scanout.preferred_size() != (1024, 600) {
        std::thread::yield_now();
    }
    assert_eq!(
        ps2.pending_events(),
        [
            InputEvent {
                kind: EV_KEY,
                code: 30,
                value: 1
            },
            InputEvent::sync()
        ]
    );
    // With both, the virtio keyboard wins (the guest's driver for it is the better one).
    let both = frontends();
    let with_ps2 = Frontends {
        ps2_keyboard: Some(InputEvents::new().unwrap()),
        ..both.clone()
    };
    assert!(std::ptr::eq(
        with_ps2.keyboard().unwrap(),
        with_ps2.input(InputKind::Keyboard).unwrap()
    ));
}
