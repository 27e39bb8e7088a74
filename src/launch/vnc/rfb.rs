//! RFB's wire format (RFC 6143): the messages a client sends, parsed with their limits
//! checked, and the pieces of what the server sends.

use std::io::Read;

/// `SetEncodings`' DesktopSize pseudo-encoding: the client follows mode changes.
pub const ENCODING_DESKTOP_SIZE: i32 = -223;
/// `SetEncodings`' Cursor pseudo-encoding: the client draws the guest's pointer shape
/// itself (RFC 6143 §7.8.1).
pub const ENCODING_CURSOR: i32 = -239;
/// The Raw encoding.
pub const ENCODING_RAW: i32 = 0;
/// The most encodings a client may list (real ones send a few dozen).
const MAX_ENCODINGS: u16 = 1024;
/// The longest clipboard text accepted (and dropped: the guest has no clipboard channel).
const MAX_CUT_TEXT: u32 = 1 << 20;

/// RFB's PIXEL_FORMAT: how the client wants pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    /// What the server offers: 32-bit little-endian XRGB, the layout Linux guests use, so
    /// their pixels go out unconverted.
    pub const XRGB: Self = Self {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// The 16 bytes on the wire.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.bits_per_pixel;
        b[1] = self.depth;
        b[2] = u8::from(self.big_endian);
        b[3] = u8::from(self.true_colour);
        b[4..6].copy_from_slice(&self.red_max.to_be_bytes());
        b[6..8].copy_from_slice(&self.green_max.to_be_bytes());
        b[8..10].copy_from_slice(&self.blue_max.to_be_bytes());
        b[10] = self.red_shift;
        b[11] = self.green_shift;
        b[12] = self.blue_shift;
        b
    }

    /// Reads the 16 bytes; a format this server cannot produce (a colour map, odd sizes,
    /// a channel beyond the pixel) is an error.
    pub fn from_bytes(b: &[u8; 16]) -> Result<Self, String> {
        let pf = Self {
            bits_per_pixel: b[0],
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour: b[3] != 0,
            red_max: u16::from_be_bytes([b[4], b[5]]),
            green_max: u16::from_be_bytes([b[6], b[7]]),
            blue_max: u16::from_be_bytes([b[8], b[9]]),
            red_shift: b[10],
            green_shift: b[11],
            blue_shift: b[12],
        };
        if !matches!(pf.bits_per_pixel, 8 | 16 | 32) {
            return Err(format!("{} bits per pixel", pf.bits_per_pixel));
        }
        if !pf.true_colour {
            return Err("a colour map (only true colour is served)".into());
        }
        let fits = |max: u16, shift: u8| {
            max > 0 && u32::from(shift) + (16 - max.leading_zeros()) <= u32::from(pf.bits_per_pixel)
        };
        if !(fits(pf.red_max, pf.red_shift)
            && fits(pf.green_max, pf.green_shift)
            && fits(pf.blue_max, pf.blue_shift))
        {
            return Err("a colour channel outside the pixel".into());
        }
        Ok(pf)
    }

    /// Bytes per pixel on the wire.
    pub fn bytes(self) -> usize {
        usize::from(self.bits_per_pixel / 8)
    }
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    SetPixelFormat(PixelFormat),
    SetEncodings(Vec<i32>),
    UpdateRequest {
        incremental: bool,
        x: u16,
        y: u16,
        width: u16,
        height: u16,
    },
    Key {
        down: bool,
        keysym: u32,
    },
    Pointer {
        buttons: u8,
        x: u16,
        y: u16,
    },
    CutText,
}

/// Why a client's message was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Malformed(String),
}

fn bytes<const N: usize>(r: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads the next client message.
pub fn read_message(r: &mut impl Read) -> Result<ClientMessage, ReadError> {
    let [kind] = bytes::<1>(r)?;
    Ok(match kind {
        0 => {
            let b = bytes::<19>(r)?;
            let pf: [u8; 16] = b[3..].try_into().expect("16 bytes");
            ClientMessage::SetPixelFormat(
                PixelFormat::from_bytes(&pf)
                    .map_err(|e| ReadError::Malformed(format!("pixel format with {e}")))?,
            )
        }
        2 => {
            let b = bytes::<3>(r)?;
            let count = u16_at(&b, 1);
            if count > MAX_ENCODINGS {
                return Err(ReadError::Malformed(format!("{count} encodings")));
            }
            let mut raw = vec![0u8; usize::from(count) * 4];
            r.read_exact(&mut raw)?;
            ClientMessage::SetEncodings(
                raw.chunks_exact(4)
                    .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        }
        3 => {
            let b = bytes::<9>(r)?;
            ClientMessage::UpdateRequest {
                incremental: b[0] != 0,
                x: u16_at(&b, 1),
                y: u16_at(&b, 3),
                width: u16_at(&b, 5),
                height: u16_at(&b, 7),
            }
        }
        4 => {
            let b = bytes::<7>(r)?;
            ClientMessage::Key {
                down: b[0] != 0,
                keysym: u32::from_be_bytes([b[3], b[4], b[5], b[6]]),
            }
        }
        5 => {
            let b = bytes::<5>(r)?;
            ClientMessage::Pointer {
                buttons: b[0],
                x: u16_at(&b, 1),
                y: u16_at(&b, 3),
            }
        }
        6 => {
            let b = bytes::<7>(r)?;
            let len = u32::from_be_bytes([b[3], b[4], b[5], b[6]]);
            if len > MAX_CUT_TEXT {
                return Err(ReadError::Malformed(format!(
                    "{len} bytes of clipboard text"
                )));
            }
            std::io::copy(&mut r.take(u64::from(len)), &mut std::io::sink())?;
            ClientMessage::CutText
        }
        other => {
            return Err(ReadError::Malformed(format!(
                "unknown message type {other}"
            )));
        }
    })
}

/// A rectangle header of a FramebufferUpdate.
pub fn rect_header(out: &mut Vec<u8>, x: u32, y: u32, width: u32, height: u32, encoding: i32) {
    for v in [x, y, width, height] {
        out.extend_from_slice(&(v.min(u32::from(u16::MAX)) as u16).to_be_bytes());
    }
    out.extend_from_slice(&encoding.to_be_bytes());
}

/// A FramebufferUpdate header announcing `rects` rectangles.
pub fn update_header(out: &mut Vec<u8>, rects: u16) {
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&rects.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offered_format_round_trips_and_bad_ones_are_refused() {
        let b = PixelFormat::XRGB.to_bytes();
        assert_eq!(PixelFormat::from_bytes(&b).unwrap(), PixelFormat::XRGB);
        let mut colour_map = b;
        colour_map[3] = 0;
        assert!(PixelFormat::from_bytes(&colour_map).is_err());
        let mut wide = b;
        wide[10] = 30;
        assert!(PixelFormat::from_bytes(&wide).is_err());
        let mut odd = b;
        odd[0] = 24;
        assert!(PixelFormat::from_bytes(&odd).is_err());
    }

    #[test]
    fn unknown_and_oversized_messages_are_malformed() {
        let mut unknown: &[u8] = &[99];
        assert!(matches!(
            read_message(&mut unknown),
            Err(ReadError::Malformed(_))
        ));
        let mut huge: &[u8] = &[6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_message(&mut huge),
            Err(ReadError::Malformed(_))
        ));
        let mut key: &[u8] = &[4, 1, 0, 0, 0, 0, 0xff, 0x0d];
        assert_eq!(
            read_message(&mut key).unwrap(),
            ClientMessage::Key {
                down: true,
                keysym: 0xff0d
            }
        );
    }
}
