//! Which parts of the screen changed since a client's last update (64 × 64 tiles compared
//! with the copy it was last sent), and those parts as Raw rectangles in the client's pixel
//! format; and the guest's pointer as a Cursor pseudo-encoding rectangle.

use super::rfb::{ENCODING_CURSOR, ENCODING_RAW, PixelFormat, rect_header};
use crate::engine::display::{Cursor, PixelFormat as GuestFormat};

/// The side of the squares compared between updates: small enough that a blinking cursor
/// sends little, large enough that a full-screen change is a few dozen rectangles.
pub const TILE: u32 = 64;

/// A rectangle in screen pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    /// The part of `self` inside a `width` × `height` screen.
    pub fn clip(self, width: u32, height: u32) -> Self {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Self {
            x,
            y,
            width: self.width.min(width - x),
            height: self.height.min(height - y),
        }
    }

    pub fn is_empty(self) -> bool {
        self.width == 0 || self.height == 0
    }
}

/// The tiles of `area` where `now` differs from `before` (both `stride_px` pixels a row,
/// 4 bytes each), runs of changed tiles in a tile row merged into one rectangle.
pub fn changed(now: &[u8], before: &[u8], stride_px: u32, area: Area) -> Vec<Area> {
    let mut rects = Vec::new();
    let stride = stride_px as usize * 4;
    let mut ty = area.y;
    while ty < area.y + area.height {
        let th = TILE.min(area.y + area.height - ty);
        let mut run: Option<Area> = None;
        let mut tx = area.x;
        while tx < area.x + area.width {
            let tw = TILE.min(area.x + area.width - tx);
            let differs = (ty..ty + th).any(|row| {
                let from = row as usize * stride + tx as usize * 4;
                let to = from + tw as usize * 4;
                now.get(from..to) != before.get(from..to)
            });
            run = match (differs, run) {
                (true, Some(r)) => Some(Area {
                    width: r.width + tw,
                    ..r
                }),
                (true, None) => Some(Area {
                    x: tx,
                    y: ty,
                    width: tw,
                    height: th,
                }),
                (false, Some(r)) => {
                    rects.push(r);
                    None
                }
                (false, None) => None,
            };
            tx += tw;
        }
        rects.extend(run);
        ty += th;
    }
    rects
}

/// Appends the guest's pointer as a Cursor pseudo-encoding rectangle in the client's `pf`:
/// the hot spot as its position, the pixels, then a bitmask of the pixels shown (alpha of
/// half or more), a row of whole bytes each, most significant bit first. A hidden pointer is
/// an empty rectangle, which clients take as no pointer.
pub fn cursor_rect(out: &mut Vec<u8>, cursor: &Cursor, pf: PixelFormat) {
    let Some(image) = &cursor.image else {
        rect_header(out, 0, 0, 0, 0, ENCODING_CURSOR);
        return;
    };
    let (w, h) = (image.width, image.height);
    let start = out.len();
    let area = Area {
        x: 0,
        y: 0,
        width: w,
        height: h,
    };
    raw_rect(out, &image.rgba, w, GuestFormat::R8G8B8A8, area, pf);
    let mut header = Vec::with_capacity(12);
    rect_header(
        &mut header,
        cursor.hot_x.min(w.saturating_sub(1)),
        cursor.hot_y.min(h.saturating_sub(1)),
        w,
        h,
        ENCODING_CURSOR,
    );
    out[start..start + 12].copy_from_slice(&header);
    let row_bytes = (w as usize).div_ceil(8);
    for row in image.rgba.chunks_exact(w as usize * 4).take(h as usize) {
        let mut mask = vec![0u8; row_bytes];
        for (x, px) in row.chunks_exact(4).enumerate() {
            if px[3] >= 0x80 {
                mask[x / 8] |= 0x80 >> (x % 8);
            }
        }
        out.extend_from_slice(&mask);
    }
}

/// Appends `area` of `frame` (`stride_px` pixels a row in `format`) as a Raw rectangle in
/// the client's `pf`.
pub fn raw_rect(
    out: &mut Vec<u8>,
    frame: &[u8],
    stride_px: u32,
    format: GuestFormat,
    area: Area,
    pf: PixelFormat,
) {
    rect_header(out, area.x, area.y, area.width, area.height, ENCODING_RAW);
    let stride = stride_px as usize * 4;
    let row_bytes = area.width as usize * 4;
    // Linux's XRGB8888 to a client that asked for it (the default): rows go out as they are.
    let same_layout = matches!(format, GuestFormat::B8G8R8X8 | GuestFormat::B8G8R8A8)
        && pf.bits_per_pixel == 32
        && !pf.big_endian
        && (pf.red_max, pf.green_max, pf.blue_max) == (255, 255, 255)
        && (pf.red_shift, pf.green_shift, pf.blue_shift) == (16, 8, 0);
    out.reserve(area.width as usize * area.height as usize * pf.bytes());
    for row in area.y..area.y + area.height {
        let from = row as usize * stride + area.x as usize * 4;
        let Some(pixels) = frame.get(from..from + row_bytes) else {
            // A frame shorter than its mode cannot happen; send black rather than panic.
            out.resize(out.len() + area.width as usize * pf.bytes(), 0);
            continue;
        };
        if same_layout {
            out.extend_from_slice(pixels);
            continue;
        }
        for p in pixels.chunks_exact(4) {
            let [r, g, b, _] = format.to_rgba([p[0], p[1], p[2], p[3]], true);
            let scale = |v: u8, max: u16| u32::from(v) * u32::from(max) / 255;
            let value = scale(r, pf.red_max) << pf.red_shift
                | scale(g, pf.green_max) << pf.green_shift
                | scale(b, pf.blue_max) << pf.blue_shift;
            match (pf.bits_per_pixel, pf.big_endian) {
                (8, _) => out.push(value as u8),
                (16, false) => out.extend_from_slice(&(value as u16).to_le_bytes()),
                (16, true) => out.extend_from_slice(&(value as u16).to_be_bytes()),
                (_, false) => out.extend_from_slice(&value.to_le_bytes()),
                (_, true) => out.extend_from_slice(&value.to_be_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_tiles_are_found_and_runs_merge() {
        let (w, h) = (200u32, 130u32);
        let before = vec![0u8; (w * h * 4) as usize];
        let mut now = before.clone();
        let all = Area {
            x: 0,
            y: 0,
            width: w,
            height: h,
        };
        assert!(changed(&now, &before, w, all).is_empty());
        // Pixels in tiles (0,0), (1,0) and (3,2): one merged run and one edge tile.
        for (x, y) in [(10u32, 5u32), (70, 60), (199, 129)] {
            now[((y * w + x) * 4) as usize] = 1;
        }
        let rects = changed(&now, &before, w, all);
        assert_eq!(
            rects,
            [
                Area {
                    x: 0,
                    y: 0,
                    width: 128,
                    height: 64
                },
                Area {
                    x: 192,
                    y: 128,
                    width: 8,
                    height: 2
                }
            ]
        );
    }

    #[test]
    fn pixels_convert_to_the_clients_format() {
        let frame = [0x10, 0x20, 0x30, 0x00]; // B, G, R, X
        let area = Area {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        };
        let mut out = Vec::new();
        raw_rect(
            &mut out,
            &frame,
            1,
            GuestFormat::B8G8R8X8,
            area,
            PixelFormat::XRGB,
        );
        assert_eq!(&out[12..], &frame);
        let rgb565_be = PixelFormat {
            bits_per_pixel: 16,
            depth: 16,
            big_endian: true,
            red_max: 31,
            green_max: 63,
            blue_max: 31,
            red_shift: 11,
            green_shift: 5,
            blue_shift: 0,
            ..PixelFormat::XRGB
        };
        out.clear();
        raw_rect(&mut out, &frame, 1, GuestFormat::B8G8R8X8, area, rgb565_be);
        let v = (0x30 * 31 / 255) << 11 | (0x20 * 63 / 255) << 5 | (0x10 * 31 / 255);
        assert_eq!(&out[12..], &(v as u16).to_be_bytes());
    }
}
