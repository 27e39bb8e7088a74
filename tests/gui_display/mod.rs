//! The console window's screen, fed by a fake runner: a control socket that answers the screen
//! request with [`serve_stream`] over a test [`Scanout`], so no guest (and no KVM) is needed.
//! Checks the pixels of the window as GTK renders it, that X key presses (xdotool) reach the
//! virtio keyboard's queue as Linux key codes, that a click lands on the right tablet
//! coordinates, that Ctrl+Alt lets go of the keyboard, that a resized window becomes the
//! guest's preferred size and that the guest's pointer shape becomes the screen's cursor. Run
//! from `tests/gui.rs`'s harness, in its sandbox.

use std::io::{BufRead, BufReader, Write};

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController, adw, gtk};

use vireo::engine::display::{
    ABS_MAX, BTN_LEFT, EV_ABS, EV_KEY, Frontends, Image, InputEvent, InputEvents, InputKind, Mode,
    PixelFormat, Rect, Scanout,
};
use vireo::launch::runner::screen::serve_stream;
use vireo::launch::runner::{self, Reply, Request};
use vireo::launch::viewer;
use vireo::ui::console::{Console, ConsoleTarget};
use vireo::ui::display::ScreenState;

use super::gui_keyboard::xdotool;
use super::wait_for;

const NAME: &str = "screen-fake";
const W: u32 = 640;
const H: u32 = 400;

/// Serves the screen of `frontends` as the runner of [`NAME`] would; every other request is
/// hung up on (the client reads that as "not running").
fn fake_runner(frontends: Frontends) {
    let listener = runner::bind(NAME).expect("bind the fake runner's socket");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let frontends = frontends.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or_default();
                if serde_json::from_str::<Request>(line.trim()).ok() != Some(Request::Screen) {
                    return;
                }
                let mut out = stream;
                out.write_all(runner::protocol::encode(&Reply::Screen).as_bytes())
                    .unwrap();
                let _ = serve_stream(out, reader, frontends);
            });
        }
    });
}

/// Left half red, right half blue (BGRX, as Linux's virtio_gpu draws).
fn draw_test_picture(scanout: &Scanout) {
    let mode = Mode {
        width: W,
        height: H,
        format: PixelFormat::B8G8R8X8,
    };
    let mut pixels = Vec::with_capacity((W * H * 4) as usize);
    for _y in 0..H {
        for x in 0..W {
            pixels.extend_from_slice(if x < W / 2 {
                &[0, 0, 0xff, 0]
            } else {
                &[0xff, 0, 0, 0]
            });
        }
    }
    let all = Rect {
        x: 0,
        y: 0,
        width: W,
        height: H,
    };
    scanout.draw(mode, all, &pixels);
}

/// The window as GTK renders it: width, height and B, G, R, A bytes.
fn render(window: &adw::Window) -> (usize, usize, Vec<u8>) {
    let widget = window.upcast_ref::<gtk::Widget>();
    let (width, height) = (widget.width(), widget.height());
    let paintable = gtk::WidgetPaintable::new(Some(widget));
    let snapshot = gtk::Snapshot::new();
    paintable.snapshot(&snapshot, f64::from(width), f64::from(height));
    let node = snapshot.to_node().expect("the window drew something");
    let texture = window
        .native()
        .and_then(|n| n.renderer())
        .expect("a realized window")
        .render_texture(&node, None);
    let (w, h) = (texture.width() as usize, texture.height() as usize);
    let mut bytes = vec![0u8; w * h * 4];
    texture.download(&mut bytes, w * 4);
    if let Some(dir) = std::env::var_os("VIREO_SCREENSHOT_DIR") {
        let _ = texture.save_to_png(std::path::Path::new(&dir).join("console-screen.png"));
    }
    (w, h, bytes)
}

/// The colour (R, G, B) at window point (`x`, `y`) of a render.
fn rgb_at(render: &(usize, usize, Vec<u8>), x: f64, y: f64) -> [u8; 3] {
    let (w, _, bytes) = render;
    let at = (y as usize * w + x as usize) * 4;
    [bytes[at + 2], bytes[at + 1], bytes[at]]
}

fn key_events(events: &InputEvents) -> Vec<(u16, u32)> {
    events
        .pending_events()
        .into_iter()
        .filter(|e| e.kind == EV_KEY)
        .map(|e| (e.code, e.value))
        .collect()
}

/// The console opens on the screen once it shows, draws it, and passes keys, clicks and its
/// size to the guest's devices.
pub fn console_shows_the_screen_and_sends_input() {
    if xdotool(&["version"]).is_none() {
        return;
    }
    let scanout = Scanout::new(W, H);
    draw_test_picture(&scanout);
    let keyboard = InputEvents::new().unwrap();
    let tablet = InputEvents::new().unwrap();
    fake_runner(Frontends {
        scanout: Some(scanout.clone()),
        inputs: vec![
            (InputKind::Keyboard, keyboard.clone()),
            (InputKind::Tablet, tablet.clone()),
        ],
        ps2_keyboard: None,
    });

    let console = Console::builder()
        .launch(ConsoleTarget::builtin(NAME))
        .detach();
    let window = console.widget().clone();
    window.set_default_size(820, 560);
    window.present();
    wait_for("the screen to show", || {
        console.model().screen_state() == &ScreenState::Showing
    });
    let (views, picture) = {
        let widgets = console.widgets();
        (
            widgets.views.clone(),
            console.model().screen_view().unwrap().widget().clone(),
        )
    };
    wait_for("the window to turn to the screen", || {
        views.visible_child_name().as_deref() == Some("screen") && picture.is_mapped()
    });
    let settle = std::time::Instant::now() + std::time::Duration::from_millis(300);
    wait_for("the picture to draw", || std::time::Instant::now() > settle);

    // Pixels: the guest's picture fills the picture widget's fitted rectangle, aspect kept.
    let placed = viewer::fit(
        (f64::from(picture.width()), f64::from(picture.height())),
        (W, H),
    )
    .unwrap();
    assert!(
        (placed.width / placed.height - f64::from(W) / f64::from(H)).abs() < 0.01,
        "{placed:?}"
    );
    let origin = picture
        .compute_point(&window, &gtk::graphene::Point::new(0.0, 0.0))
        .unwrap();
    let at = |fx: f64, fy: f64| {
        (
            f64::from(origin.x()) + placed.x + placed.width * fx,
            f64::from(origin.y()) + placed.y + placed.height * fy,
        )
    };
    let shot = render(&window);
    let (lx, ly) = at(0.25, 0.5);
    let (rx, ry) = at(0.75, 0.5);
    assert_eq!(rgb_at(&shot, lx, ly), [0xff, 0, 0], "left half red");
    assert_eq!(rgb_at(&shot, rx, ry), [0, 0, 0xff], "right half blue");

    // A click at a quarter across, three quarters down grabs the keyboard and lands there on
    // the tablet.
    let id = xdotool(&[
        "search",
        "--sync",
        "--onlyvisible",
        "--name",
        "^screen-fake",
    ])
    .expect("xdotool ran");
    let id = id
        .lines()
        .last()
        .expect("the console's X window")
        .to_string();
    xdotool(&["windowfocus", "--sync", &id]);
    let (cx, cy) = at(0.25, 0.75);
    // X window coordinates start at the surface, which may reach beyond the window widget
    // (client-side decorations' shadow and resize border).
    let (sx, sy) = window.native().unwrap().surface_transform();
    let (cx, cy) = ((cx + sx).round() as i64, (cy + sy).round() as i64);
    xdotool(&[
        "mousemove",
        "--window",
        &id,
        "--sync",
        &cx.to_string(),
        &cy.to_string(),
    ]);
    xdotool(&["click", "1"]);
    // Every pointer report carries all buttons' states; wait for a press and its release.
    wait_for("the click to reach the tablet", || {
        let left: Vec<u32> = key_events(&tablet)
            .into_iter()
            .filter(|(c, _)| *c == BTN_LEFT)
            .map(|(_, v)| v)
            .collect();
        left.iter()
            .position(|v| *v == 1)
            .is_some_and(|p| left[p..].contains(&0))
    });
    let events = tablet.pending_events();
    let press = events
        .iter()
        .position(|e| {
            *e == InputEvent {
                kind: EV_KEY,
                code: BTN_LEFT,
                value: 1,
            }
        })
        .expect("a left press");
    let abs = |code| {
        events[..press]
            .iter()
            .rev()
            .find(|e| e.kind == EV_ABS && e.code == code)
            .expect("a position before the press")
            .value
    };
    let (x, y) = (abs(0), abs(1));
    let want = (ABS_MAX / 4, ABS_MAX * 3 / 4);
    // Within one window pixel of the exact point (the click is on whole pixels).
    let pixel = (f64::from(ABS_MAX) / placed.width).ceil() as u32 + 1;
    assert!(
        x.abs_diff(want.0) <= pixel && y.abs_diff(want.1) <= pixel,
        "the click at a quarter across, three quarters down reached ({x}, {y}), not about {want:?}"
    );
    wait_for("the keyboard grab", || console.model().is_grabbed());
    assert!(
        console.widgets().title.subtitle().contains("Ctrl+Alt"),
        "the grab says how to let go: {}",
        console.widgets().title.subtitle()
    );

    // Keys as Linux codes: A is 30, Return 28.
    xdotool(&["key", "--delay", "30", "a", "Return"]);
    wait_for("the keys to reach the keyboard", || {
        key_events(&keyboard).len() >= 4
    });
    assert_eq!(key_events(&keyboard), [(30, 1), (30, 0), (28, 1), (28, 0)]);

    // Ctrl+Alt lets go, and no modifier stays down in the guest.
    xdotool(&["key", "--delay", "30", "ctrl+alt"]);
    wait_for("the grab to end", || !console.model().is_grabbed());
    let keys = key_events(&keyboard);
    for code in [viewer::KEY_LEFTCTRL, viewer::KEY_LEFTALT] {
        let last = keys.iter().rev().find(|(c, _)| *c == code);
        assert_eq!(
            last,
            Some(&(code, 0)),
            "{code} released in the guest: {keys:?}"
        );
    }
    // Keys no longer go to the guest.
    let before = key_events(&keyboard).len();
    xdotool(&["key", "--delay", "30", "b"]);
    let settle = std::time::Instant::now() + std::time::Duration::from_millis(300);
    wait_for("the key to be handled", || {
        std::time::Instant::now() > settle
    });
    assert_eq!(
        key_events(&keyboard).len(),
        before,
        "typed after the release"
    );

    // The guest is offered the picture's size (device pixels) once it settles.
    let scale = picture.scale_factor();
    let expected = |p: &gtk::Picture| ((p.width() * scale) as u32, (p.height() * scale) as u32);
    wait_for("the preferred size to follow the window", || {
        scanout.preferred_size() == expected(&picture)
    });
    xdotool(&["windowsize", "--sync", &id, "1000", "700"]);
    wait_for("the preferred size to follow the resize", || {
        picture.width() > 900 && scanout.preferred_size() == expected(&picture)
    });

    // A new frame is drawn (only what changed crosses the channel).
    let frames = console
        .model()
        .screen_view()
        .unwrap()
        .model()
        .frames_shown();
    scanout.draw(
        Mode {
            width: W,
            height: H,
            format: PixelFormat::B8G8R8X8,
        },
        Rect {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        },
        &[0, 0xff, 0, 0],
    );
    wait_for("the change to be drawn", || {
        console
            .model()
            .screen_view()
            .unwrap()
            .model()
            .frames_shown()
            > frames
    });

    // The guest's pointer shape becomes the screen's cursor, hot spot and all; hidden, none.
    let mut arrow = vec![0u8; 64 * 64 * 4];
    arrow[..4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    scanout.set_cursor_image(
        Some(Image {
            width: 64,
            height: 64,
            rgba: arrow,
        }),
        5,
        6,
    );
    scanout.move_cursor(10, 10);
    wait_for("the guest's pointer to become the cursor", || {
        console
            .model()
            .screen_view()
            .unwrap()
            .model()
            .guest_cursor()
            == Some((5, 6))
    });
    let cursor = picture.cursor().expect("a cursor on the screen");
    assert_eq!((cursor.hotspot_x(), cursor.hotspot_y()), (5, 6));
    let texture = cursor.texture().expect("the guest's image");
    assert_eq!((texture.width(), texture.height()), (64, 64));
    scanout.set_cursor_image(None, 0, 0);
    wait_for("the guest's pointer to hide", || {
        console
            .model()
            .screen_view()
            .unwrap()
            .model()
            .guest_cursor()
            .is_none()
    });
    assert_eq!(
        picture.cursor().and_then(|c| c.name()).as_deref(),
        Some("none")
    );
    window.close();
}
