//! A minimal RFB 3.8 client for tests and the display benchmark: security None or VNC
//! authentication, 32-bit XRGB pixels, Raw, DesktopSize and Cursor.

#![allow(dead_code)]

use std::io::{Read, Write};

/// A rectangle an update carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub encoding: i32,
}

/// The pointer shape of the last Cursor pseudo-encoding rectangle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    pub hot_x: u32,
    pub hot_y: u32,
    pub width: u32,
    pub height: u32,
    /// In the wire format, `bytes_per_pixel` a pixel.
    pub pixels: Vec<u8>,
    /// A row of whole bytes each, most significant bit first.
    pub mask: Vec<u8>,
}

/// A connected client with its copy of the framebuffer (XRGB, 4 bytes a pixel).
pub struct Client<S: Read + Write> {
    pub stream: S,
    pub width: u32,
    pub height: u32,
    pub name: String,
    /// The framebuffer in the wire format, `bytes_per_pixel` a pixel.
    pub fb: Vec<u8>,
    pub bytes_per_pixel: u32,
    /// The pointer shape the server sent last (Cursor pseudo-encoding).
    pub cursor: Option<CursorShape>,
}

/// Why the server refused the handshake.
#[derive(Debug)]
pub struct Refused(pub String);

impl<S: Read + Write> Client<S> {
    /// The handshake: RFB 3.8, security None (or VNC authentication with `password`).
    pub fn connect(mut stream: S, password: Option<&str>) -> Result<Self, Refused> {
        let io = |e: std::io::Error| Refused(e.to_string());
        let mut version = [0u8; 12];
        stream.read_exact(&mut version).map_err(io)?;
        assert_eq!(&version, b"RFB 003.008\n");
        stream.write_all(b"RFB 003.008\n").map_err(io)?;
        let mut count = [0u8; 1];
        stream.read_exact(&mut count).map_err(io)?;
        let mut types = vec![0u8; count[0] as usize];
        stream.read_exact(&mut types).map_err(io)?;
        let wanted = if password.is_some() { 2 } else { 1 };
        if !types.contains(&wanted) {
            return Err(Refused(format!("server offers {types:?}")));
        }
        stream.write_all(&[wanted]).map_err(io)?;
        if let Some(password) = password {
            let mut challenge = [0u8; 16];
            stream.read_exact(&mut challenge).map_err(io)?;
            stream
                .write_all(&des_response(password, &challenge))
                .map_err(io)?;
        }
        let result = read_u32(&mut stream).map_err(io)?;
        if result != 0 {
            let len = read_u32(&mut stream).map_err(io)?;
            let mut reason = vec![0u8; len as usize];
            stream.read_exact(&mut reason).map_err(io)?;
            return Err(Refused(String::from_utf8_lossy(&reason).into_owned()));
        }
        stream.write_all(&[1]).map_err(io)?;
        let mut init = [0u8; 24];
        stream.read_exact(&mut init).map_err(io)?;
        let width = u32::from(u16::from_be_bytes([init[0], init[1]]));
        let height = u32::from(u16::from_be_bytes([init[2], init[3]]));
        assert_eq!(init[4], 32, "the server offers 32 bits per pixel");
        let len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
        let mut name = vec![0u8; len as usize];
        stream.read_exact(&mut name).map_err(io)?;
        Ok(Self {
            stream,
            width,
            height,
            name: String::from_utf8_lossy(&name).into_owned(),
            fb: vec![0; (width * height * 4) as usize],
            bytes_per_pixel: 4,
            cursor: None,
        })
    }

    /// SetPixelFormat with RFB's 16-byte PIXEL_FORMAT.
    pub fn set_pixel_format(&mut self, format: [u8; 16]) {
        let mut m = vec![0u8, 0, 0, 0];
        m.extend_from_slice(&format);
        self.stream.write_all(&m).unwrap();
        self.bytes_per_pixel = u32::from(format[0] / 8);
        self.fb = vec![0; (self.width * self.height * self.bytes_per_pixel) as usize];
    }

    pub fn set_encodings(&mut self, encodings: &[i32]) {
        let mut m = vec![2, 0];
        m.extend_from_slice(&(encodings.len() as u16).to_be_bytes());
        for e in encodings {
            m.extend_from_slice(&e.to_be_bytes());
        }
        self.stream.write_all(&m).unwrap();
    }

    pub fn request(&mut self, incremental: bool) {
        let mut m = vec![3, u8::from(incremental)];
        for v in [0u16, 0, self.width as u16, self.height as u16] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        self.stream.write_all(&m).unwrap();
    }

    pub fn key(&mut self, down: bool, keysym: u32) {
        let mut m = vec![4, u8::from(down), 0, 0];
        m.extend_from_slice(&keysym.to_be_bytes());
        self.stream.write_all(&m).unwrap();
    }

    pub fn pointer(&mut self, buttons: u8, x: u16, y: u16) {
        let mut m = vec![5, buttons];
        m.extend_from_slice(&x.to_be_bytes());
        m.extend_from_slice(&y.to_be_bytes());
        self.stream.write_all(&m).unwrap();
    }

    /// Reads one FramebufferUpdate into `fb`; returns its rectangles.
    pub fn read_update(&mut self) -> std::io::Result<Vec<Rect>> {
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head)?;
        assert_eq!(head[0], 0, "a FramebufferUpdate");
        let count = u16::from_be_bytes([head[2], head[3]]);
        let mut rects = Vec::new();
        let mut row = Vec::new();
        for _ in 0..count {
            let mut h = [0u8; 12];
            self.stream.read_exact(&mut h)?;
            let field = |i: usize| u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
            let rect = Rect {
                x: field(0),
                y: field(2),
                width: field(4),
                height: field(6),
                encoding: i32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            };
            match rect.encoding {
                0 => {
                    let bpp = self.bytes_per_pixel;
                    row.resize((rect.width * bpp) as usize, 0);
                    for y in rect.y..rect.y + rect.height {
                        self.stream.read_exact(&mut row)?;
                        let at = ((y * self.width + rect.x) * bpp) as usize;
                        self.fb[at..at + row.len()].copy_from_slice(&row);
                    }
                }
                -223 => {
                    self.width = rect.width;
                    self.height = rect.height;
                    self.fb = vec![0; (rect.width * rect.height * self.bytes_per_pixel) as usize];
                }
                -239 => {
                    let mut pixels =
                        vec![0u8; (rect.width * rect.height * self.bytes_per_pixel) as usize];
                    self.stream.read_exact(&mut pixels)?;
                    let mut mask = vec![0u8; (rect.width.div_ceil(8) * rect.height) as usize];
                    self.stream.read_exact(&mut mask)?;
                    self.cursor = Some(CursorShape {
                        hot_x: rect.x,
                        hot_y: rect.y,
                        width: rect.width,
                        height: rect.height,
                        pixels,
                        mask,
                    });
                }
                other => panic!("unexpected encoding {other}"),
            }
            rects.push(rect);
        }
        Ok(rects)
    }

    /// The framebuffer as RGBA (what `Scanout::image` gives).
    pub fn rgba(&self) -> Vec<u8> {
        self.fb
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0], 0xff])
            .collect()
    }
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// VNC authentication's answer: the challenge DES-encrypted with the bit-mirrored password.
fn des_response(password: &str, challenge: &[u8; 16]) -> [u8; 16] {
    use des::cipher::{BlockEncrypt, KeyInit};
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(password.bytes()) {
        *k = b.reverse_bits();
    }
    let cipher = des::Des::new(&key.into());
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(block.into());
    }
    out
}
