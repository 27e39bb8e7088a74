//! The guest's screen end to end: virtio-gpu and virtio-input in a real Linux guest started the
//! way users start one (`vireoctl create`), seen and driven through the runner's paths a user's
//! tools take — `vireoctl screenshot` and `send-key`, the VNC server, and the GUI's screen
//! channel. The guest side is the `fb`, `keys` and `ps2keys` scenarios of `tools/testbed-guest/init`
//! (`tools/testbed-guest/fbkeys.c` draws, and echoes the keyboard's and tablet's events).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::BOOT;
use crate::linux_support::{Guest, disk, line, lines};
use crate::vnc_support::Client;
use vireo::launch::runner::screen::{ScreenInput, ScreenReader, ScreenSender};
use vireo::launch::runner::{Reply, Request, protocol};

/// The guest's screen size, offered by `<resolution>` and taken by its driver.
const SCREEN: (u32, u32) = (320, 200);

/// The pattern `fbkeys fill` writes: pixel (x, y) as R, G, B.
fn fb_pattern(x: u32, y: u32) -> [u8; 3] {
    [
        ((x * 7 + y) & 0xff) as u8,
        ((y * 5 + x * 3) & 0xff) as u8,
        ((x ^ y) & 0xff) as u8,
    ]
}

/// The `fb` guest with a virtio screen of [`SCREEN`] and `more` devices.
fn fb_guest(more: &str) -> Guest {
    Guest::new("fb").device(&format!(
        "<video><model type='virtio'><resolution x='{}' y='{}'/></model></video>{more}",
        SCREEN.0, SCREEN.1
    ))
}

/// A guest started with `vireoctl create` and its console, destroyed when dropped.
struct Started {
    ctl: disk::Vireoctl,
    name: String,
    console: disk::Console,
    scratch: disk::Scratch,
}

impl Started {
    fn new(tag: &str, guest: Guest) -> Self {
        let scratch = disk::Scratch::new(tag);
        let ctl = disk::Vireoctl::new(&scratch);
        let name = guest.domain_name();
        let started = ctl.create(&guest.write_xml(&scratch.dir));
        assert!(started.status.success(), "starting {name}: {started:?}");
        let console = ctl.console(&name);
        Self {
            ctl,
            name,
            console,
            scratch,
        }
    }

    /// `vireoctl screenshot` as RGBA, once the guest's picture is the whole pattern (its driver
    /// flushes what was written from a worker); the first differing pixel if it never is.
    fn screenshot_of_pattern(&self) -> Result<Vec<u8>, (u32, u32)> {
        let (w, h) = SCREEN;
        let shot = self.scratch.path("screen.png");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .ctl
                .run(&["screenshot".as_ref(), self.name.as_ref(), shot.as_os_str()]);
            assert!(out.status.success(), "screenshot: {out:?}");
            let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(&shot).unwrap()));
            let mut reader = decoder.read_info().unwrap();
            let mut rgba = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut rgba).unwrap();
            assert_eq!((info.width, info.height), SCREEN);
            let wrong = (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .find(|&(x, y)| {
                    let at = ((y * w + x) * 4) as usize;
                    rgba[at..at + 3] != fb_pattern(x, y) || rgba[at + 3] != 0xff
                });
            match wrong {
                None => return Ok(rgba),
                Some(p) if Instant::now() >= deadline => return Err(p),
                Some(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// A VNC client connected to the address `vireoctl domdisplay` prints.
    fn vnc(&self) -> Client<std::net::TcpStream> {
        let out = self.ctl.run(&["domdisplay".as_ref(), self.name.as_ref()]);
        assert!(out.status.success(), "domdisplay: {out:?}");
        let uri = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let address = uri
            .strip_prefix("vnc://")
            .unwrap_or_else(|| panic!("domdisplay printed {uri}, not a vnc:// URI"));
        let stream = std::net::TcpStream::connect(address)
            .unwrap_or_else(|e| panic!("connecting to {uri}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut client = Client::connect(stream, None).expect("the VNC handshake");
        client.set_encodings(&[0, -223]);
        client
    }

    /// The GUI's screen channel ([`Request::Screen`] on the runner's control socket): the
    /// sender, with the updates drained on a thread so the runner never blocks on them.
    fn screen_channel(&self) -> ScreenSender {
        let socket = self.ctl.control_socket(&self.name);
        let mut stream = UnixStream::connect(&socket)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        stream
            .write_all(protocol::encode(&Request::Screen).as_bytes())
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        let reply: Reply = serde_json::from_str(reply.trim())
            .unwrap_or_else(|e| panic!("the runner's reply '{reply}': {e}"));
        assert_eq!(reply, Reply::Screen);
        let sender = ScreenSender::new(stream);
        std::thread::spawn(move || {
            let mut updates = ScreenReader::new(reader);
            while let Ok(Some(_)) = updates.next_update() {}
        });
        sender
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.ctl.destroy(&self.name);
    }
}

/// The guest's virtio_gpu driver takes the offered size, its framebuffer console is
/// unbound, and the pattern it writes to /dev/fb0 is exactly what `vireoctl screenshot` saves.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn what_the_guest_draws_on_its_framebuffer_is_what_a_screenshot_shows() {
    let guest = Started::new("fb", fb_guest("<graphics type='vnc'/>"));
    guest.console.wait_for("VIREO-L2 FB FILLED", BOOT);
    assert_eq!(
        line(&guest.console.text(), "VIREO-L2 FB FILLED"),
        "320x200",
        "the offered size"
    );
    assert_eq!(
        guest.screenshot_of_pattern().err(),
        None,
        "the first pixel that differs from the pattern"
    );
}

/// A VNC client at the address `vireoctl domdisplay` prints sees, pixel for pixel, what
/// `vireoctl screenshot` saves of the guest's pattern.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_vnc_client_sees_exactly_the_pixels_a_screenshot_shows() {
    let guest = Started::new("fb-vnc", fb_guest("<graphics type='vnc' autoport='yes'/>"));
    guest.console.wait_for("VIREO-L2 FB FILLED", BOOT);
    let shot = guest
        .screenshot_of_pattern()
        .unwrap_or_else(|p| panic!("the screenshot differs from the pattern at {p:?}"));
    let mut vnc = guest.vnc();
    assert_eq!((vnc.width, vnc.height), SCREEN, "the VNC desktop's size");
    // A full update, asked for until it has arrived whole (a server may split it).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        vnc.request(false);
        vnc.read_update().expect("a framebuffer update");
        let seen = vnc.rgba();
        if seen == shot {
            break;
        }
        if Instant::now() >= deadline {
            let at = seen
                .chunks_exact(4)
                .zip(shot.chunks_exact(4))
                .position(|(a, b)| a != b)
                .unwrap_or(usize::MAX);
            let (x, y) = (at as u32 % SCREEN.0, at as u32 / SCREEN.0);
            panic!(
                "the VNC picture differs from the screenshot first at ({x}, {y}): VNC {:?}, \
                 screenshot {:?}",
                &seen[at * 4..at * 4 + 4],
                &shot[at * 4..at * 4 + 4]
            );
        }
    }
}

/// The tablet position the runner's VNC server gives pixel `v` of a `side`-pixel axis: the
/// axis's first pixel is 0, its last 32767, rounded up in between.
fn tablet_position(v: u32, side: u32) -> u32 {
    (v * 32767).div_ceil(side - 1)
}

/// A VNC client's click at a pixel arrives in the guest's evdev as the virtio tablet's
/// ABS_X/ABS_Y scaled to 0..=32767 and a BTN_LEFT press and release; a right click on the GUI's
/// screen channel (already on the tablet's scale) arrives as its position and BTN_RIGHT.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn clicks_by_vnc_and_the_screen_channel_arrive_as_tablet_positions_and_buttons() {
    let guest = Started::new(
        "fb-click",
        fb_guest(
            "<input type='keyboard' bus='virtio'/><input type='tablet' bus='virtio'/>\
             <graphics type='vnc' autoport='yes'/>",
        ),
    );
    guest.console.wait_for("VIREO-L2 FB FILLED", BOOT);
    guest
        .console
        .wait_for("VIREO-L2 TABLET READY", Duration::from_secs(60));
    let mut vnc = guest.vnc();
    let (x, y) = (100u16, 50u16);
    vnc.pointer(0, x, y);
    vnc.pointer(1, x, y);
    vnc.pointer(0, x, y);
    guest
        .console
        .wait_for("VIREO-L2 BTN 272 0", Duration::from_secs(60));
    let mut channel = guest.screen_channel();
    let (cx, cy) = (20000, 10000);
    for buttons in [2, 0] {
        channel
            .send(&ScreenInput::Pointer {
                x: cx,
                y: cy,
                buttons,
            })
            .unwrap();
    }
    guest
        .console
        .wait_for("VIREO-L2 BTN 273 0", Duration::from_secs(60));
    let text = guest.console.text();
    let (ax, ay) = (
        tablet_position(x.into(), SCREEN.0),
        tablet_position(y.into(), SCREEN.1),
    );
    assert_eq!(
        lines(&text, "VIREO-L2 ABS "),
        [
            format!("0 {ax}"),
            format!("1 {ay}"),
            format!("0 {cx}"),
            format!("1 {cy}")
        ],
        "a VNC move to ({x}, {y}) of {SCREEN:?}, then the channel's to ({cx}, {cy})"
    );
    assert_eq!(
        lines(&text, "VIREO-L2 BTN "),
        ["272 1", "272 0", "273 1", "273 0"],
        "BTN_LEFT pressed and released by VNC, then BTN_RIGHT by the screen channel"
    );
}

/// A new preferred size on the GUI's screen channel (the viewer's window resized) reaches the
/// guest: its DRM connector's preferred mode becomes that size.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_preferred_size_from_the_screen_channel_becomes_the_guests_preferred_mode() {
    let guest = Started::new("fb-size", fb_guest(""));
    guest.console.wait_for("VIREO-L2 MODES", BOOT);
    let before = line(&guest.console.text(), "VIREO-L2 MODES");
    assert!(
        before.starts_with("320x200 "),
        "the offered size is not the preferred mode: {before}"
    );
    let mut channel = guest.screen_channel();
    channel
        .send(&ScreenInput::Size {
            width: 640,
            height: 480,
        })
        .unwrap();
    let deadline = Instant::now() + BOOT;
    let after = loop {
        let modes = lines(&guest.console.text(), "VIREO-L2 MODES");
        if let Some(m) = modes.iter().find(|m| m.starts_with("640x480 ")) {
            break m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the guest's modes never became 640x480-first: {modes:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("guest modes before: {before}; after: {after}");
}

/// `vireoctl send-key` reaches the guest's evdev as key presses and releases of the virtio
/// keyboard, in order.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn send_key_types_on_the_virtio_keyboard() {
    let guest = Started::new(
        "keys",
        Guest::new("keys").device("<input type='keyboard' bus='virtio'/>"),
    );
    guest.console.wait_for("VIREO-L2 KEYS READY", BOOT);
    let out = guest.ctl.run(&[
        "send-key".as_ref(),
        guest.name.as_ref(),
        "KEY_LEFTCTRL".as_ref(),
        "30".as_ref(),
    ]);
    assert!(out.status.success(), "send-key: {out:?}");
    guest
        .console
        .wait_for("VIREO-L2 KEY 29 0", Duration::from_secs(60));
    let keys = lines(&guest.console.text(), "VIREO-L2 KEY ");
    assert_eq!(
        keys,
        ["29 1", "30 1", "30 0", "29 0"],
        "press in order, release in reverse"
    );
}

/// A guest without virtio drivers types on the PS/2 keyboard: Linux's i8042 driver finds the
/// controller by its ACPI `PNP0303` device, atkbd names the keyboard "AT Translated Set 2
/// keyboard", and `vireoctl send-key` (the VM has no virtio keyboard) reaches its evdev as
/// presses and releases in order, extended keys (E0-prefixed scancodes) included.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn send_key_types_on_the_ps2_keyboard_of_a_guest_without_virtio() {
    let guest = Started::new(
        "ps2keys",
        Guest::new("ps2keys").device("<input type='keyboard' bus='ps2'/>"),
    );
    guest.console.wait_for("VIREO-L2 KEYS READY", BOOT);
    let text = guest.console.text();
    let inputs = lines(&text, "VIREO-L2 INPUT ");
    assert!(
        inputs.iter().any(|n| n == "AT Translated Set 2 keyboard"),
        "the guest's input devices: {inputs:?}"
    );
    for l in lines(&text, "VIREO-L2 DMESG ") {
        eprintln!("guest: {l}");
    }
    let out = guest.ctl.run(&[
        "send-key".as_ref(),
        guest.name.as_ref(),
        "KEY_LEFTCTRL".as_ref(),
        "30".as_ref(),
        "KEY_UP".as_ref(),
    ]);
    assert!(out.status.success(), "send-key: {out:?}");
    guest
        .console
        .wait_for("VIREO-L2 KEY 29 0", Duration::from_secs(60));
    let keys = lines(&guest.console.text(), "VIREO-L2 KEY ");
    assert_eq!(
        keys,
        ["29 1", "30 1", "103 1", "103 0", "30 0", "29 0"],
        "press in order, release in reverse"
    );
}
