//! virtio-gpu through the whole device model with the test as the guest driver (what Linux's
//! virtio_gpu does for a framebuffer console): a resource with its backing in guest RAM, shown
//! on scanout 0, transferred and flushed, then read back from the [`Scanout`] handle; a
//! partial update; the display-size event; the cursor; and requests a broken driver could
//! send, each answered with an error type.

use std::time::Duration;

use vm_memory::{Bytes, GuestAddress};

use super::protocol::kind;
use super::{PixelFormat, Rect, Scanout};
use crate::engine::devices::Frontends;
use crate::engine::devices::virtio::test_driver::{Driver, FREE, WRITE_ONLY};

const REQUEST: u64 = FREE;
const RESPONSE: u64 = FREE + 0x1_0000;
const FRAMEBUFFER: u64 = FREE + 0x10_0000;
/// The second piece of the framebuffer's backing, elsewhere in RAM.
const FRAMEBUFFER_TAIL: u64 = FREE + 0x40_0000;
const CURSOR_IMAGE: u64 = FREE + 0x80_0000;
const WIDTH: u32 = 64;
const HEIGHT: u32 = 32;
const STRIDE: usize = WIDTH as usize * 4;
/// Where the backing is split: not on a row or pixel boundary.
const SPLIT: usize = 3001;
const B8G8R8X8: u32 = 2;
const B8G8R8A8: u32 = 1;

/// A request: the header (with `flags` and fence 0x77) and little-endian fields.
fn request(kind: u32, flags: u32, fields: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&0x77u64.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    for f in fields {
        out.extend_from_slice(&f.to_le_bytes());
    }
    out
}

fn response_type(response: &[u8]) -> u32 {
    u32::from_le_bytes(response[0..4].try_into().unwrap())
}

struct Gpu {
    d: Driver,
    scanout: Scanout,
}

impl Gpu {
    fn new() -> Self {
        let scanout = Scanout::new(800, 600);
        let frontends = Frontends {
            scanout: Some(scanout.clone()),
            inputs: Vec::new(),
            ps2_keyboard: None,
        };
        let d = Driver::new(&frontends, 16, 2);
        assert_eq!(d.class(), 0x03_80_00, "a display controller");
        Self { d, scanout }
    }

    /// Sends `bytes` on queue `q` and returns the response.
    fn send_on(&mut self, q: usize, bytes: &[u8]) -> Vec<u8> {
        self.d
            .memory
            .write_slice(bytes, GuestAddress(REQUEST))
            .unwrap();
        self.d.post(
            q,
            &[
                (REQUEST, bytes.len() as u32, 0),
                (RESPONSE, 4096, WRITE_ONLY),
            ],
        );
        let used = self.d.used(q, 1, Duration::from_secs(10));
        assert_eq!(used.len(), 1, "the request was answered");
        let mut response = vec![0u8; used[0].1 as usize];
        self.d
            .memory
            .read_slice(&mut response, GuestAddress(RESPONSE))
            .unwrap();
        response
    }

    fn send(&mut self, bytes: &[u8]) -> u32 {
        response_type(&self.send_on(0, bytes))
    }

    fn display_info(&mut self) -> (u32, u32, u32) {
        let r = self.send_on(0, &request(kind::GET_DISPLAY_INFO, 0, &[]));
        assert_eq!(response_type(&r), kind::OK_DISPLAY_INFO);
        assert_eq!(r.len(), 24 + 16 * 24, "16 scanouts listed");
        let field = |at: usize| u32::from_le_bytes(r[at..at + 4].try_into().unwrap());
        (field(24 + 8), field(24 + 12), field(24 + 16))
    }

    fn transfer_and_flush(&mut self, rect: Rect) {
        let offset = rect.y as u64 * STRIDE as u64 + rect.x as u64 * 4;
        let r = [rect.x, rect.y, rect.width, rect.height];
        let mut fields = r.to_vec();
        fields.extend([offset as u32, (offset >> 32) as u32, 1, 0]);
        assert_eq!(
            self.send(&request(kind::TRANSFER_TO_HOST_2D, 0, &fields)),
            kind::OK_NODATA
        );
        assert_eq!(
            self.send(&request(
                kind::RESOURCE_FLUSH,
                0,
                &[r[0], r[1], r[2], r[3], 1, 0]
            )),
            kind::OK_NODATA
        );
    }
}

/// The guest's framebuffer (B, G, R, X bytes) with a pattern seeded by `seed`.
fn pattern(seed: u8) -> Vec<u8> {
    (0..STRIDE * HEIGHT as usize)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect()
}

/// Writes `image` where the resource's two backing pieces are.
fn write_framebuffer(d: &Driver, image: &[u8]) {
    d.memory
        .write_slice(&image[..SPLIT], GuestAddress(FRAMEBUFFER))
        .unwrap();
    d.memory
        .write_slice(&image[SPLIT..], GuestAddress(FRAMEBUFFER_TAIL))
        .unwrap();
}

fn expected_rgba(image: &[u8]) -> Vec<u8> {
    image
        .chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0], 0xff])
        .collect()
}

#[test]
fn a_driver_shows_its_framebuffer_on_the_scanout() {
    let mut g = Gpu::new();
    let config = g.d.device_config(0, 16);
    assert_eq!(&config[8..12], &1u32.to_le_bytes(), "one scanout");
    assert_eq!(
        g.display_info(),
        (800, 600, 1),
        "the preferred size, enabled"
    );
    assert_eq!(g.scanout.mode(), None, "nothing shown before SET_SCANOUT");

    let created = request(kind::RESOURCE_CREATE_2D, 0, &[1, B8G8R8X8, WIDTH, HEIGHT]);
    assert_eq!(g.send(&created), kind::OK_NODATA);
    let mut attach = request(kind::RESOURCE_ATTACH_BACKING, 0, &[1, 2]);
    for (addr, len) in [
        (FRAMEBUFFER, SPLIT as u32),
        (FRAMEBUFFER_TAIL, (STRIDE * HEIGHT as usize - SPLIT) as u32),
    ] {
        attach.extend_from_slice(&addr.to_le_bytes());
        attach.extend_from_slice(&len.to_le_bytes());
        attach.extend_from_slice(&[0; 4]);
    }
    assert_eq!(g.send(&attach), kind::OK_NODATA);
    let image = pattern(0x5a);
    write_framebuffer(&g.d, &image);
    let set = request(kind::SET_SCANOUT, 0, &[0, 0, WIDTH, HEIGHT, 0, 1]);
    assert_eq!(g.send(&set), kind::OK_NODATA);
    let mode = g.scanout.mode().expect("a mode after SET_SCANOUT");
    assert_eq!(
        (mode.width, mode.height, mode.format),
        (WIDTH, HEIGHT, PixelFormat::B8G8R8X8)
    );
    let whole = Rect {
        x: 0,
        y: 0,
        width: WIDTH,
        height: HEIGHT,
    };
    g.transfer_and_flush(whole);
    let shot = g.scanout.image().unwrap();
    assert_eq!((shot.width, shot.height), (WIDTH, HEIGHT));
    assert_eq!(
        shot.rgba,
        expected_rgba(&image),
        "the guest's pixels, as RGBA"
    );

    // A partial update changes that rectangle only.
    g.scanout.take_damage();
    let before = g.scanout.damage_count();
    let changed = pattern(0xc3);
    write_framebuffer(&g.d, &changed);
    let part = Rect {
        x: 8,
        y: 4,
        width: 16,
        height: 8,
    };
    g.transfer_and_flush(part);
    assert!(g.scanout.damage_count() > before);
    assert_eq!(g.scanout.take_damage(), vec![part]);
    let mut want = image.clone();
    for row in part.y..part.y + part.height {
        let at = row as usize * STRIDE + part.x as usize * 4;
        let len = part.width as usize * 4;
        want[at..at + len].copy_from_slice(&changed[at..at + len]);
    }
    assert_eq!(g.scanout.image().unwrap().rgba, expected_rgba(&want));

    // The host offers a new size: the display event, then the new display info.
    g.scanout.set_preferred_size(1024, 768);
    assert_eq!(&g.d.device_config(0, 4), &1u32.to_le_bytes(), "events_read");
    assert_eq!(g.display_info(), (1024, 768, 1));
    g.d.write(0x2004, &1u32.to_le_bytes());
    assert_eq!(&g.d.device_config(0, 4), &[0; 4], "cleared");

    // A cursor from a 64 × 64 resource on the cursor queue.
    let cursor = request(kind::RESOURCE_CREATE_2D, 0, &[2, B8G8R8A8, 64, 64]);
    assert_eq!(g.send(&cursor), kind::OK_NODATA);
    let mut attach = request(kind::RESOURCE_ATTACH_BACKING, 0, &[2, 1]);
    attach.extend_from_slice(&CURSOR_IMAGE.to_le_bytes());
    attach.extend_from_slice(&(64u32 * 64 * 4).to_le_bytes());
    attach.extend_from_slice(&[0; 4]);
    assert_eq!(g.send(&attach), kind::OK_NODATA);
    g.d.memory
        .write_slice(&[10, 20, 30, 40], GuestAddress(CURSOR_IMAGE))
        .unwrap();
    let transfer = request(kind::TRANSFER_TO_HOST_2D, 0, &[0, 0, 64, 64, 0, 0, 2, 0]);
    assert_eq!(g.send(&transfer), kind::OK_NODATA);
    g.send_on(
        1,
        &request(kind::UPDATE_CURSOR, 0, &[0, 100, 50, 0, 2, 3, 4, 0]),
    );
    let c = g.scanout.cursor();
    assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (100, 50, 3, 4));
    assert_eq!(g.scanout.cursor_shape_count(), 1, "one new shape");
    assert_eq!(
        &c.image.unwrap().rgba[..4],
        &[30, 20, 10, 40],
        "RGBA with alpha"
    );
    g.send_on(1, &request(kind::MOVE_CURSOR, 0, &[0, 7, 8, 0, 0, 0, 0, 0]));
    let c = g.scanout.cursor();
    assert_eq!((c.x, c.y), (7, 8));
    assert!(c.image.is_some(), "MOVE_CURSOR keeps the image");
    assert_eq!(
        g.scanout.cursor_shape_count(),
        1,
        "a move is not a new shape"
    );
    // Resource 0 hides the cursor.
    g.send_on(
        1,
        &request(kind::UPDATE_CURSOR, 0, &[0, 7, 8, 0, 0, 0, 0, 0]),
    );
    assert!(g.scanout.cursor().image.is_none(), "hidden");
    assert_eq!(g.scanout.cursor_shape_count(), 2);

    // Unref the shown resource: the scanout goes dark.
    assert_eq!(
        g.send(&request(kind::RESOURCE_UNREF, 0, &[1, 0])),
        kind::OK_NODATA
    );
    assert_eq!(g.scanout.mode(), None);
    assert!(g.scanout.image().is_none());
}

#[test]
fn malformed_commands_get_error_responses() {
    let mut g = Gpu::new();
    assert_eq!(
        g.send(&request(
            kind::RESOURCE_CREATE_2D,
            0,
            &[1, B8G8R8X8, 16, 16]
        )),
        kind::OK_NODATA
    );
    let cases: [(&str, Vec<u8>, u32); 10] = [
        ("a short header", vec![0; 10], kind::ERR_UNSPEC),
        (
            "a short body",
            request(kind::SET_SCANOUT, 0, &[0, 0]),
            kind::ERR_UNSPEC,
        ),
        (
            "scanout 5",
            request(kind::SET_SCANOUT, 0, &[0, 0, 16, 16, 5, 1]),
            kind::ERR_INVALID_SCANOUT_ID,
        ),
        (
            "an unknown resource",
            request(kind::SET_SCANOUT, 0, &[0, 0, 16, 16, 0, 9]),
            kind::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "a rectangle outside the resource",
            request(kind::SET_SCANOUT, 0, &[8, 8, 16, 16, 0, 1]),
            kind::ERR_INVALID_PARAMETER,
        ),
        (
            "a transfer without backing",
            request(kind::TRANSFER_TO_HOST_2D, 0, &[0, 0, 16, 16, 0, 0, 1, 0]),
            kind::ERR_UNSPEC,
        ),
        (
            "backing outside guest RAM",
            {
                let mut r = request(kind::RESOURCE_ATTACH_BACKING, 0, &[1, 1]);
                r.extend_from_slice(&(1u64 << 40).to_le_bytes());
                r.extend_from_slice(&[0, 4, 0, 0, 0, 0, 0, 0]);
                r
            },
            kind::ERR_UNSPEC,
        ),
        (
            "an unknown format",
            request(kind::RESOURCE_CREATE_2D, 0, &[2, 1234, 16, 16]),
            kind::ERR_INVALID_PARAMETER,
        ),
        (
            "a resource larger than the host allows",
            request(
                kind::RESOURCE_CREATE_2D,
                0,
                &[3, B8G8R8X8, 1 << 15, 1 << 15],
            ),
            kind::ERR_OUT_OF_MEMORY,
        ),
        ("a 3D command", request(0x200, 0, &[0; 8]), kind::ERR_UNSPEC),
    ];
    for (what, bytes, error) in cases {
        assert_eq!(g.send(&bytes), error, "{what}");
    }
    // A fenced request gets its fence back, error or not.
    let r = g.send_on(0, &request(kind::RESOURCE_UNREF, 1, &[42, 0]));
    assert_eq!(response_type(&r), kind::ERR_INVALID_RESOURCE_ID);
    assert_eq!(
        u32::from_le_bytes(r[4..8].try_into().unwrap()),
        1,
        "FLAG_FENCE"
    );
    assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 0x77);
    // The device still works.
    assert_eq!(g.display_info(), (800, 600, 1));
}
