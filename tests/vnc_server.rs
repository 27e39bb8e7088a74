//! The runner's VNC server against a minimal RFB client, fed by a Scanout without a guest:
//! the handshake, the pixels, incremental updates of changed tiles only, mode changes, key
//! and pointer events as the virtio devices see them, passwords, and a malformed client that
//! is closed while the others go on, and the guest's pointer shape for clients that take the
//! Cursor pseudo-encoding.

mod vnc_support;

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};

use vireo::engine::display::{
    ABS_MAX, BTN_LEFT, EV_ABS, EV_KEY, EV_SYN, Image, InputEvent, InputEvents, Mode, PixelFormat,
    Scanout,
};
use vireo::launch::vnc::{Listener, VncServer, VncSources};
use vnc_support::{Client, Rect};

const W: u32 = 200;
const H: u32 = 130;

/// A frame whose every pixel differs from its neighbours (B, G, R, X).
fn pattern(width: u32, height: u32, seed: u8) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                x as u8 ^ seed,
                y as u8,
                (x + y) as u8 ^ seed.rotate_left(3),
                0,
            ]
        })
        .collect()
}

fn mode(width: u32, height: u32) -> Mode {
    Mode {
        width,
        height,
        format: PixelFormat::B8G8R8X8,
    }
}

struct Setup {
    server: VncServer,
    scanout: Scanout,
    keyboard: InputEvents,
    tablet: InputEvents,
    port: u16,
}

fn serve(password: Option<&str>) -> Setup {
    let scanout = Scanout::new(W, H);
    scanout.present(mode(W, H), &pattern(W, H, 0));
    let keyboard = InputEvents::new().unwrap();
    let tablet = InputEvents::new().unwrap();
    let listener = Listener::tcp(Ipv4Addr::LOCALHOST.into(), Some(0)).unwrap();
    let port = listener.port().unwrap();
    let sources = VncSources {
        scanout: scanout.clone(),
        keyboard: Some(keyboard.clone()),
        tablet: Some(tablet.clone()),
    };
    let server = VncServer::start(listener, sources, "test-vm", password).unwrap();
    Setup {
        server,
        scanout,
        keyboard,
        tablet,
        port,
    }
}

fn connect(setup: &Setup) -> Client<TcpStream> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, setup.port)).unwrap();
    let mut client = Client::connect(stream, None).unwrap();
    client.set_encodings(&[0, -223]);
    client
}

#[test]
fn a_client_sees_the_screens_pixels() {
    let setup = serve(None);
    assert_eq!(
        setup.server.uri(),
        format!("vnc://127.0.0.1:{}", setup.port)
    );
    let mut client = connect(&setup);
    assert_eq!(
        (client.width, client.height, client.name.as_str()),
        (W, H, "test-vm")
    );
    client.request(false);
    let rects = client.read_update().unwrap();
    assert_eq!(
        rects,
        [Rect {
            x: 0,
            y: 0,
            width: W,
            height: H,
            encoding: 0
        }]
    );
    assert_eq!(client.rgba(), setup.scanout.image().unwrap().rgba);
}

#[test]
fn an_incremental_update_sends_only_the_changed_tiles() {
    let setup = serve(None);
    let mut client = connect(&setup);
    client.request(false);
    client.read_update().unwrap();
    // The request is pending before the change; the answer carries that change only.
    client.request(true);
    let mut frame = pattern(W, H, 0);
    for (x, y) in [(150u32, 100u32), (5, 3), (70, 10)] {
        frame[((y * W + x) * 4) as usize] ^= 0xff;
    }
    setup.scanout.present(mode(W, H), &frame);
    let rects = client.read_update().unwrap();
    let tile = |x, y, width, height| Rect {
        x,
        y,
        width,
        height,
        encoding: 0,
    };
    assert_eq!(rects, [tile(0, 0, 128, 64), tile(128, 64, 64, 64)]);
    assert_eq!(client.rgba(), setup.scanout.image().unwrap().rgba);
}

#[test]
fn a_mode_change_is_a_desktop_size_and_a_whole_frame() {
    let setup = serve(None);
    let mut client = connect(&setup);
    client.request(false);
    client.read_update().unwrap();
    client.request(true);
    setup.scanout.present(mode(96, 40), &pattern(96, 40, 7));
    let rects = client.read_update().unwrap();
    assert_eq!(rects[0].encoding, -223);
    assert_eq!((rects[0].width, rects[0].height), (96, 40));
    assert_eq!((client.width, client.height), (96, 40));
    assert_eq!(client.rgba(), setup.scanout.image().unwrap().rgba);
}

#[test]
fn keys_and_the_pointer_reach_the_virtio_devices() {
    let setup = serve(None);
    let mut client = connect(&setup);
    client.key(true, u32::from(b'a'));
    client.key(false, u32::from(b'a'));
    client.key(true, 0xff0d); // Return
    client.pointer(1, (W - 1) as u16, 0);
    client.pointer(0, ((W - 1) / 2) as u16, (H - 1) as u16);
    // Messages are handled in order: once this request is answered, the input before it
    // has been queued.
    client.request(false);
    client.read_update().unwrap();
    let key = |code, value| InputEvent {
        kind: EV_KEY,
        code,
        value,
    };
    let syn = InputEvent {
        kind: EV_SYN,
        code: 0,
        value: 0,
    };
    assert_eq!(
        setup.keyboard.drain(),
        [key(30, 1), syn, key(30, 0), syn, key(28, 1), syn]
    );
    let abs = |code, value| InputEvent {
        kind: EV_ABS,
        code,
        value,
    };
    let half = (ABS_MAX * ((W - 1) / 2)).div_ceil(W - 1);
    assert_eq!(
        setup.tablet.drain(),
        [
            abs(0, ABS_MAX),
            abs(1, 0),
            key(BTN_LEFT, 1),
            syn,
            abs(0, half),
            abs(1, ABS_MAX),
            key(BTN_LEFT, 0),
            syn
        ]
    );
}

#[test]
fn a_malformed_client_is_closed_and_the_others_go_on() {
    let setup = serve(None);
    let mut good = connect(&setup);
    let mut bad = connect(&setup);
    std::io::Write::write_all(&mut bad.stream, &[99, 1, 2, 3]).unwrap();
    let mut rest = Vec::new();
    // The server closes it: the read ends (EOF or reset), nothing is sent.
    let _ = bad.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    good.request(false);
    good.read_update().unwrap();
    assert_eq!(good.rgba(), setup.scanout.image().unwrap().rgba);
    let mut again = connect(&setup);
    again.request(false);
    again.read_update().unwrap();
}

#[test]
fn a_password_is_checked() {
    let setup = serve(Some("s3cret"));
    let stream = || TcpStream::connect((Ipv4Addr::LOCALHOST, setup.port)).unwrap();
    let refused = Client::connect(stream(), Some("wrong")).err().unwrap();
    assert!(refused.0.contains("password"), "{refused:?}");
    let mut client = Client::connect(stream(), Some("s3cret")).unwrap();
    client.request(false);
    client.read_update().unwrap();
    assert_eq!(client.rgba(), setup.scanout.image().unwrap().rgba);
}

#[test]
fn a_unix_socket_serves_too_and_goes_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.vnc");
    let scanout = Scanout::new(32, 16);
    scanout.present(mode(32, 16), &pattern(32, 16, 1));
    let listener = Listener::unix(&path).unwrap();
    let sources = VncSources {
        scanout: scanout.clone(),
        keyboard: None,
        tablet: None,
    };
    let server = VncServer::start(listener, sources, "u", None).unwrap();
    assert_eq!(server.uri(), format!("vnc+unix://{}", path.display()));
    let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let mut client = Client::connect(stream, None).unwrap();
    client.request(false);
    client.read_update().unwrap();
    assert_eq!(client.rgba(), scanout.image().unwrap().rgba);
    drop(server);
    assert!(!path.exists(), "the socket is removed with the server");
}

/// A client that lists the Cursor pseudo-encoding gets the guest's pointer shape with its hot
/// spot, pixels and mask when the guest sets it (and an empty one while it is hidden); a
/// pointer move is no new shape; a client without the encoding never gets one.
#[test]
fn the_guests_pointer_shape_goes_to_clients_with_the_cursor_encoding() {
    let setup = serve(None);
    let mut client = connect(&setup);
    client.set_encodings(&[0, -223, -239]);
    client.request(false);
    let rects = client.read_update().unwrap();
    assert!(
        rects.contains(&Rect {
            x: 0,
            y: 0,
            width: 0,
            height: 0,
            encoding: -239
        }),
        "no pointer yet: an empty shape ({rects:?})"
    );

    // A 64 x 64 arrow: pixel (0, 0) opaque red, (1, 0) transparent, the rest half-opaque blue.
    let mut rgba: Vec<u8> = [0, 0, 0xff, 0x80].repeat(64 * 64);
    rgba[..8].copy_from_slice(&[0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0]);
    let image = Image {
        width: 64,
        height: 64,
        rgba,
    };
    setup.scanout.set_cursor_image(Some(image), 5, 6);
    setup.scanout.move_cursor(40, 30);
    client.request(true);
    let rects = client.read_update().unwrap();
    assert_eq!(
        rects,
        [Rect {
            x: 5,
            y: 6,
            width: 64,
            height: 64,
            encoding: -239
        }],
        "only the shape: the screen did not change"
    );
    let shape = client.cursor.clone().unwrap();
    assert_eq!(
        &shape.pixels[..8],
        &[0, 0, 0xff, 0, 0xff, 0xff, 0xff, 0],
        "XRGB"
    );
    assert_eq!(&shape.pixels[8..12], &[0xff, 0, 0, 0], "blue");
    assert_eq!(shape.mask.len(), 8 * 64);
    assert_eq!(shape.mask[0], 0b1011_1111, "(1, 0) is transparent");
    assert!(shape.mask[1..].iter().all(|b| *b == 0xff));

    // A move alone is no new shape: the next update carries only the changed screen.
    setup.scanout.move_cursor(41, 30);
    let mut frame = pattern(W, H, 0);
    frame[0] ^= 0xff;
    setup.scanout.present(mode(W, H), &frame);
    client.request(true);
    let rects = client.read_update().unwrap();
    assert!(rects.iter().all(|r| r.encoding == 0), "{rects:?}");

    // Hidden: an empty shape.
    setup.scanout.set_cursor_image(None, 0, 0);
    client.request(true);
    let rects = client.read_update().unwrap();
    assert_eq!(rects.len(), 1);
    assert_eq!((rects[0].width, rects[0].encoding), (0, -239));

    // A client without the encoding gets frames only.
    let mut plain = connect(&setup);
    setup.scanout.set_cursor_image(
        Some(Image {
            width: 64,
            height: 64,
            rgba: vec![0xff; 64 * 64 * 4],
        }),
        1,
        1,
    );
    plain.request(false);
    let rects = plain.read_update().unwrap();
    assert!(rects.iter().all(|r| r.encoding != -239), "{rects:?}");
    assert!(plain.cursor.is_none());
}
