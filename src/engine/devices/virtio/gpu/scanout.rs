//! The host's side of the guest's screen: what the virtio-gpu device last flushed to scanout 0,
//! the cursor, and the size the host would like the display to be. The device writes it; the
//! runner (screenshots, later VNC and the GUI) reads it. It outlives the device, so a guest
//! reboot (a fresh machine) keeps the same handle and the viewer does not reconnect.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use virtio_bindings::virtio_gpu as vg;

use super::protocol::{EVENT_DISPLAY, Rect};
use crate::engine::devices::virtio::Interrupt;

/// The cursor image's side in pixels (virtio-gpu cursors are 64 × 64).
pub const CURSOR_SIDE: u32 = 64;
/// Damage rectangles kept before they collapse into one covering the whole screen.
const MAX_DAMAGE_RECTS: usize = 64;

/// A 32-bit pixel layout virtio-gpu offers; the name gives the byte order in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// B, G, R, A (Linux's `XRGB8888` / `ARGB8888` on little-endian guests).
    B8G8R8A8,
    B8G8R8X8,
    A8R8G8B8,
    X8R8G8B8,
    R8G8B8A8,
    R8G8B8X8,
    A8B8G8R8,
    X8B8G8R8,
}

impl PixelFormat {
    /// The format for a `VIRTIO_GPU_FORMAT_*` value.
    pub fn from_virtio(value: u32) -> Option<Self> {
        Some(match value {
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM => Self::B8G8R8A8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM => Self::B8G8R8X8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM => Self::A8R8G8B8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM => Self::X8R8G8B8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM => Self::R8G8B8A8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM => Self::R8G8B8X8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM => Self::A8B8G8R8,
            vg::virtio_gpu_formats_VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM => Self::X8B8G8R8,
            _ => return None,
        })
    }

    /// One pixel as R, G, B, A; formats without alpha (and the screen, with `opaque`) are
    /// fully opaque.
    pub fn to_rgba(self, p: [u8; 4], opaque: bool) -> [u8; 4] {
        let [r, g, b, a] = match self {
            Self::B8G8R8A8 | Self::B8G8R8X8 => [p[2], p[1], p[0], p[3]],
            Self::A8R8G8B8 | Self::X8R8G8B8 => [p[1], p[2], p[3], p[0]],
            Self::R8G8B8A8 | Self::R8G8B8X8 => [p[0], p[1], p[2], p[3]],
            Self::A8B8G8R8 | Self::X8B8G8R8 => [p[3], p[2], p[1], p[0]],
        };
        let has_alpha = matches!(
            self,
            Self::B8G8R8A8 | Self::A8R8G8B8 | Self::R8G8B8A8 | Self::A8B8G8R8
        );
        [r, g, b, if has_alpha && !opaque { a } else { 0xff }]
    }
}

/// Converts tightly packed pixels of `format` to RGBA.
pub fn to_rgba(format: PixelFormat, pixels: &[u8], opaque: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len());
    for p in pixels.chunks_exact(4) {
        out.extend_from_slice(&format.to_rgba([p[0], p[1], p[2], p[3]], opaque));
    }
    out
}

/// What scanout 0 shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

/// A picture of the screen (or the cursor), RGBA, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

/// Why an image could not be written as PNG.
#[derive(Debug, thiserror::Error)]
#[error("encoding the screenshot as PNG: {0}")]
pub struct PngError(#[from] png::EncodingError);

impl Image {
    /// The image as a PNG file (8-bit RGBA).
    pub fn to_png(&self) -> Result<Vec<u8>, PngError> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&self.rgba)?;
            writer.finish()?;
        }
        Ok(out)
    }
}

/// The guest's pointer image and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// 64 × 64 RGBA; `None` while the guest hides the cursor.
    pub image: Option<Image>,
    pub hot_x: u32,
    pub hot_y: u32,
    pub x: u32,
    pub y: u32,
}

#[derive(Debug)]
struct Screen {
    mode: Option<Mode>,
    /// `mode`'s pixels in its format, `width * 4` bytes a row.
    pixels: Vec<u8>,
    damage: Vec<Rect>,
    cursor: Cursor,
}

struct Inner {
    screen: Mutex<Screen>,
    damage_count: AtomicU64,
    /// Cursor image or hot spot changes (not moves), so viewers send a shape only when it
    /// changed.
    cursor_shapes: AtomicU64,
    /// The preferred display size, `width << 32 | height`.
    preferred: AtomicU64,
    /// `virtio_gpu_config.events_read`.
    events: AtomicU32,
    /// The device's configuration-change interrupt while a driver runs it.
    config_interrupt: Mutex<Option<Interrupt>>,
}

/// A shared handle on scanout 0; clones see the same screen.
#[derive(Clone)]
pub struct Scanout(Arc<Inner>);

impl std::fmt::Debug for Scanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanout")
            .field("mode", &self.mode())
            .field("preferred", &self.preferred_size())
            .finish()
    }
}

impl Scanout {
    /// A dark screen whose driver will be offered `width` × `height`.
    pub fn new(width: u32, height: u32) -> Self {
        Self(Arc::new(Inner {
            screen: Mutex::new(Screen {
                mode: None,
                pixels: Vec::new(),
                damage: Vec::new(),
                cursor: Cursor {
                    image: None,
                    hot_x: 0,
                    hot_y: 0,
                    x: 0,
                    y: 0,
                },
            }),
            damage_count: AtomicU64::new(0),
            cursor_shapes: AtomicU64::new(0),
            preferred: AtomicU64::new(pack(width, height)),
            events: AtomicU32::new(0),
            config_interrupt: Mutex::new(None),
        }))
    }

    fn screen(&self) -> MutexGuard<'_, Screen> {
        self.0.screen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the guest shows now; `None` before it set a mode (or after it turned scanout 0
    /// off).
    pub fn mode(&self) -> Option<Mode> {
        self.screen().mode
    }

    /// The screen as RGBA, or `None` when the guest shows nothing.
    pub fn image(&self) -> Option<Image> {
        let screen = self.screen();
        let mode = screen.mode?;
        Some(Image {
            width: mode.width,
            height: mode.height,
            rgba: to_rgba(mode.format, &screen.pixels, true),
        })
    }

    /// How many times the guest set its cursor's image or hot spot (a viewer sends the shape
    /// again when it moves; pointer moves do not count).
    pub fn cursor_shape_count(&self) -> u64 {
        self.0.cursor_shapes.load(Ordering::SeqCst)
    }

    /// How many flushes have changed the screen so far (a viewer redraws when it moves).
    pub fn damage_count(&self) -> u64 {
        self.0.damage_count.load(Ordering::SeqCst)
    }

    /// The rectangles changed since the last call, in screen coordinates.
    pub fn take_damage(&self) -> Vec<Rect> {
        std::mem::take(&mut self.screen().damage)
    }

    /// Copies the screen's pixels, in the guest's format (`width * 4` bytes a row), into
    /// `into` (resized to fit) and returns the mode with the [`Self::damage_count`] they
    /// belong to; `None` when the guest shows nothing. For viewers that keep their own copy
    /// and diff it (VNC): one copy under the lock, no conversion, and no fight over
    /// [`Self::take_damage`], which has a single consumer.
    pub fn copy_pixels(&self, into: &mut Vec<u8>) -> Option<(Mode, u64)> {
        let screen = self.screen();
        let mode = screen.mode?;
        into.clear();
        into.extend_from_slice(&screen.pixels);
        Some((mode, self.damage_count()))
    }

    /// Shows `pixels` (a whole frame in `mode`, `width * 4` bytes a row) as if the guest had
    /// set the mode and flushed the frame. For viewers' tests and benchmarks, which have no
    /// guest; the device itself uses the crate-private calls.
    pub fn present(&self, mode: Mode, pixels: &[u8]) {
        self.set_mode(Some(mode));
        let area = Rect {
            x: 0,
            y: 0,
            width: mode.width,
            height: mode.height,
        };
        self.blit(area, pixels, mode.width as usize * 4, (0, 0));
    }

    /// The cursor as the guest last set it.
    pub fn cursor(&self) -> Cursor {
        self.screen().cursor.clone()
    }

    /// The display size offered to the guest (GET_DISPLAY_INFO).
    pub fn preferred_size(&self) -> (u32, u32) {
        unpack(self.0.preferred.load(Ordering::SeqCst))
    }

    /// Offers the guest a new display size (a resized viewer window): the driver is told
    /// through VIRTIO_GPU_EVENT_DISPLAY and asks for the display info again.
    pub fn set_preferred_size(&self, width: u32, height: u32) {
        let (width, height) = (width.max(1), height.max(1));
        self.0
            .preferred
            .store(pack(width, height), Ordering::SeqCst);
        self.0.events.fetch_or(EVENT_DISPLAY, Ordering::SeqCst);
        if let Some(interrupt) = self
            .0
            .config_interrupt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            interrupt.trigger();
        }
    }

    /// Shows `pixels` (tightly packed rows in `mode`'s format) in `area`, switching to `mode`
    /// first if the screen shows another: what a driver's SET_SCANOUT, transfer and flush do
    /// together. For fake displays and the tests of viewers, which have no guest to draw.
    /// An `area` outside the mode, or too few pixels, changes nothing.
    pub fn draw(&self, mode: Mode, area: Rect, pixels: &[u8]) {
        self.set_mode(Some(mode));
        // `blit` reads its source at screen coordinates plus an origin; a source that starts
        // `area.y` rows and `area.x` pixels before the packed pixels would need a negative one,
        // so the packed rows are placed at their screen position in a scratch buffer.
        let stride = (area.x as usize + area.width as usize) * 4;
        let rows = area.height as usize;
        if area.width == 0
            || rows == 0
            || !area.fits(mode.width, mode.height)
            || pixels.len() < area.width as usize * rows * 4
        {
            return;
        }
        let mut source = vec![0u8; (area.y as usize + rows) * stride];
        for (row, packed) in pixels
            .chunks_exact(area.width as usize * 4)
            .take(rows)
            .enumerate()
        {
            let at = (area.y as usize + row) * stride + area.x as usize * 4;
            source[at..at + packed.len()].copy_from_slice(packed);
        }
        self.blit(area, &source, stride, (0, 0));
    }

    /// `events_read` of the device configuration.
    pub(super) fn events(&self) -> u32 {
        self.0.events.load(Ordering::SeqCst)
    }

    /// The driver wrote `events_clear`.
    pub(super) fn clear_events(&self, bits: u32) {
        self.0.events.fetch_and(!bits, Ordering::SeqCst);
    }

    /// A driver started (`Some`) or stopped (`None`) using the device.
    pub(super) fn set_config_interrupt(&self, interrupt: Option<Interrupt>) {
        *self
            .0
            .config_interrupt
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = interrupt;
    }

    /// Shows a black `mode`, or nothing.
    pub(super) fn set_mode(&self, mode: Option<Mode>) {
        let mut screen = self.screen();
        if screen.mode == mode {
            return;
        }
        screen.mode = mode;
        screen.pixels = match mode {
            Some(m) => vec![0; m.width as usize * m.height as usize * 4],
            None => Vec::new(),
        };
        screen.damage.clear();
        if let Some(m) = mode {
            screen.damage.push(Rect {
                x: 0,
                y: 0,
                width: m.width,
                height: m.height,
            });
        }
        drop(screen);
        self.0.damage_count.fetch_add(1, Ordering::SeqCst);
    }

    /// Copies `area` (screen coordinates, inside the mode) from `source`, whose pixel `origin`
    /// is the screen's (0, 0) and whose rows are `stride` bytes apart.
    pub(super) fn blit(&self, area: Rect, source: &[u8], stride: usize, origin: (u32, u32)) {
        let mut screen = self.screen();
        let Some(mode) = screen.mode else {
            return;
        };
        if !area.fits(mode.width, mode.height) || area.width == 0 || area.height == 0 {
            return;
        }
        let row_bytes = area.width as usize * 4;
        let screen_stride = mode.width as usize * 4;
        for row in 0..area.height as usize {
            let sy = area.y as usize + origin.1 as usize + row;
            let sx = area.x as usize + origin.0 as usize;
            let from = sy * stride + sx * 4;
            let to = (area.y as usize + row) * screen_stride + area.x as usize * 4;
            let (Some(src), Some(dst)) = (
                source.get(from..from + row_bytes),
                screen.pixels.get_mut(to..to + row_bytes),
            ) else {
                return;
            };
            dst.copy_from_slice(src);
        }
        if screen.damage.len() >= MAX_DAMAGE_RECTS {
            screen.damage = vec![Rect {
                x: 0,
                y: 0,
                width: mode.width,
                height: mode.height,
            }];
        } else {
            screen.damage.push(area);
        }
        drop(screen);
        self.0.damage_count.fetch_add(1, Ordering::SeqCst);
    }

    /// A new cursor image (`None` hides it) with its hot spot. The device's call; public for
    /// viewers' tests, as [`Self::present`] is.
    pub fn set_cursor_image(&self, image: Option<Image>, hot_x: u32, hot_y: u32) {
        let mut screen = self.screen();
        screen.cursor.image = image;
        screen.cursor.hot_x = hot_x;
        screen.cursor.hot_y = hot_y;
        drop(screen);
        self.0.cursor_shapes.fetch_add(1, Ordering::SeqCst);
    }

    /// The cursor moved.
    pub fn move_cursor(&self, x: u32, y: u32) {
        let mut screen = self.screen();
        screen.cursor.x = x;
        screen.cursor.y = y;
    }
}

fn pack(width: u32, height: u32) -> u64 {
    (u64::from(width) << 32) | u64::from(height)
}

fn unpack(value: u64) -> (u32, u32) {
    ((value >> 32) as u32, value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_formats_become_rgba() {
        let p = [1, 2, 3, 4];
        assert_eq!(PixelFormat::B8G8R8X8.to_rgba(p, false), [3, 2, 1, 0xff]);
        assert_eq!(PixelFormat::B8G8R8A8.to_rgba(p, false), [3, 2, 1, 4]);
        assert_eq!(PixelFormat::B8G8R8A8.to_rgba(p, true), [3, 2, 1, 0xff]);
        assert_eq!(PixelFormat::X8R8G8B8.to_rgba(p, false), [2, 3, 4, 0xff]);
        assert_eq!(PixelFormat::R8G8B8A8.to_rgba(p, false), [1, 2, 3, 4]);
        assert_eq!(PixelFormat::A8B8G8R8.to_rgba(p, false), [4, 3, 2, 1]);
        assert_eq!(PixelFormat::from_virtio(2), Some(PixelFormat::B8G8R8X8));
        assert_eq!(PixelFormat::from_virtio(5), None);
    }

    #[test]
    fn a_png_decodes_to_the_same_pixels() {
        let image = Image {
            width: 3,
            height: 2,
            rgba: (0..24).map(|i| i * 10).collect(),
        };
        let png = image.to_png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..info.buffer_size()], &image.rgba[..]);
    }

    #[test]
    fn a_new_preferred_size_raises_the_display_event() {
        let scanout = Scanout::new(1024, 768);
        assert_eq!(scanout.preferred_size(), (1024, 768));
        scanout.set_preferred_size(1280, 800);
        assert_eq!(scanout.preferred_size(), (1280, 800));
        assert_eq!(scanout.events(), EVENT_DISPLAY);
        scanout.clear_events(EVENT_DISPLAY);
        assert_eq!(scanout.events(), 0);
    }
}
