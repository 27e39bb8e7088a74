//! The virtio-gpu 2D wire format (virtio 1.2 §5.7.6): every request starts with a 24-byte
//! `virtio_gpu_ctrl_hdr`, every response too. Requests are parsed field by field from the bytes
//! the guest wrote (little-endian, no alignment assumed), so a short or odd request becomes a
//! [`Malformed`] answer instead of a misread.

use virtio_bindings::virtio_gpu as vg;

/// `sizeof(struct virtio_gpu_ctrl_hdr)`.
pub const HEADER_LEN: usize = 24;
/// Bytes of one `virtio_gpu_mem_entry` (address, length, padding).
pub const MEM_ENTRY_LEN: usize = 16;
/// `VIRTIO_GPU_FLAG_FENCE`: the driver waits for this fence; the answer echoes it.
pub const FLAG_FENCE: u32 = vg::VIRTIO_GPU_FLAG_FENCE;
/// `VIRTIO_GPU_FLAG_INFO_RING_IDX`: ring_idx is meaningful (echoed with the fence).
pub const FLAG_INFO_RING_IDX: u32 = vg::VIRTIO_GPU_FLAG_INFO_RING_IDX;
/// `VIRTIO_GPU_EVENT_DISPLAY`: the host changed the display configuration.
pub const EVENT_DISPLAY: u32 = vg::VIRTIO_GPU_EVENT_DISPLAY;
/// The scanouts a `GET_DISPLAY_INFO` answer always lists.
pub const MAX_SCANOUTS: usize = vg::VIRTIO_GPU_MAX_SCANOUTS as usize;

/// Command and response types.
pub mod kind {
    use virtio_bindings::virtio_gpu as vg;

    pub const GET_DISPLAY_INFO: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_GET_DISPLAY_INFO;
    pub const RESOURCE_CREATE_2D: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
    pub const RESOURCE_UNREF: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_RESOURCE_UNREF;
    pub const SET_SCANOUT: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_SET_SCANOUT;
    pub const RESOURCE_FLUSH: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_RESOURCE_FLUSH;
    pub const TRANSFER_TO_HOST_2D: u32 =
        vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D;
    pub const RESOURCE_ATTACH_BACKING: u32 =
        vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING;
    pub const RESOURCE_DETACH_BACKING: u32 =
        vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING;
    pub const UPDATE_CURSOR: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_UPDATE_CURSOR;
    pub const MOVE_CURSOR: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_MOVE_CURSOR;

    pub const OK_NODATA: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_OK_NODATA;
    pub const OK_DISPLAY_INFO: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
    pub const ERR_UNSPEC: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_ERR_UNSPEC;
    pub const ERR_OUT_OF_MEMORY: u32 = vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    pub const ERR_INVALID_SCANOUT_ID: u32 =
        vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
    pub const ERR_INVALID_RESOURCE_ID: u32 =
        vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    pub const ERR_INVALID_PARAMETER: u32 =
        vg::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
}

/// A request the guest got wrong; answered with the error type it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub u32);

/// `virtio_gpu_ctrl_hdr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    pub flags: u32,
    pub fence_id: u64,
    pub ctx_id: u32,
    pub ring_idx: u8,
}

impl Header {
    /// The header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Malformed> {
        let r = Reader(bytes);
        Ok(Self {
            kind: r.u32(0)?,
            flags: r.u32(4)?,
            fence_id: r.u64(8)?,
            ctx_id: r.u32(16)?,
            ring_idx: *bytes.get(20).ok_or(Malformed(kind::ERR_UNSPEC))?,
        })
    }

    /// The response header for a request with this header: the fence (if any) is echoed, since
    /// every command has completed by the time it is answered.
    pub fn response(&self, kind: u32) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&kind.to_le_bytes());
        if self.flags & FLAG_FENCE != 0 {
            let flags = self.flags & (FLAG_FENCE | FLAG_INFO_RING_IDX);
            out[4..8].copy_from_slice(&flags.to_le_bytes());
            out[8..16].copy_from_slice(&self.fence_id.to_le_bytes());
            out[16..20].copy_from_slice(&self.ctx_id.to_le_bytes());
            out[20] = self.ring_idx;
        }
        out
    }
}

/// `virtio_gpu_rect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// Whether the rectangle lies inside a `width` × `height` image (an empty one always does
    /// if its corner does).
    pub fn fits(&self, width: u32, height: u32) -> bool {
        u64::from(self.x) + u64::from(self.width) <= u64::from(width)
            && u64::from(self.y) + u64::from(self.height) <= u64::from(height)
    }

    /// The overlap of two rectangles, if they overlap.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (u64::from(self.x) + u64::from(self.width))
            .min(u64::from(other.x) + u64::from(other.width));
        let y1 = (u64::from(self.y) + u64::from(self.height))
            .min(u64::from(other.y) + u64::from(other.height));
        (x1 > u64::from(x0) && y1 > u64::from(y0)).then(|| Rect {
            x: x0,
            y: y0,
            width: (x1 - u64::from(x0)) as u32,
            height: (y1 - u64::from(y0)) as u32,
        })
    }
}

/// One parsed control or cursor command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    GetDisplayInfo,
    ResourceCreate2d {
        resource_id: u32,
        format: u32,
        width: u32,
        height: u32,
    },
    ResourceUnref {
        resource_id: u32,
    },
    SetScanout {
        rect: Rect,
        scanout_id: u32,
        resource_id: u32,
    },
    ResourceFlush {
        rect: Rect,
        resource_id: u32,
    },
    TransferToHost2d {
        rect: Rect,
        offset: u64,
        resource_id: u32,
    },
    /// The guest pages behind a resource: (guest address, length) pairs.
    AttachBacking {
        resource_id: u32,
        entries: Vec<(u64, u32)>,
    },
    DetachBacking {
        resource_id: u32,
    },
    /// UPDATE_CURSOR (`update` true: a new image from `resource_id`, 0 hides it) and
    /// MOVE_CURSOR (only the position).
    Cursor {
        update: bool,
        scanout_id: u32,
        x: u32,
        y: u32,
        resource_id: u32,
        hot_x: u32,
        hot_y: u32,
    },
    /// Anything else (3D, blob, capsets, EDID: not offered).
    Unsupported(u32),
}

/// The most memory entries one ATTACH_BACKING may carry (a 4K framebuffer in 4 KiB pages
/// needs about 8100); more is a broken or hostile driver, refused before reading them.
pub const MAX_MEM_ENTRIES: u32 = 1 << 16;

impl Command {
    /// Parses the request (header included) in `bytes`.
    pub fn parse(header: &Header, bytes: &[u8]) -> Result<Self, Malformed> {
        let r = Reader(bytes);
        let rect = |at: usize| -> Result<Rect, Malformed> {
            Ok(Rect {
                x: r.u32(at)?,
                y: r.u32(at + 4)?,
                width: r.u32(at + 8)?,
                height: r.u32(at + 12)?,
            })
        };
        let h = HEADER_LEN;
        Ok(match header.kind {
            kind::GET_DISPLAY_INFO => Command::GetDisplayInfo,
            kind::RESOURCE_CREATE_2D => Command::ResourceCreate2d {
                resource_id: r.u32(h)?,
                format: r.u32(h + 4)?,
                width: r.u32(h + 8)?,
                height: r.u32(h + 12)?,
            },
            kind::RESOURCE_UNREF => Command::ResourceUnref {
                resource_id: r.u32(h)?,
            },
            kind::SET_SCANOUT => Command::SetScanout {
                rect: rect(h)?,
                scanout_id: r.u32(h + 16)?,
                resource_id: r.u32(h + 20)?,
            },
            kind::RESOURCE_FLUSH => Command::ResourceFlush {
                rect: rect(h)?,
                resource_id: r.u32(h + 16)?,
            },
            kind::TRANSFER_TO_HOST_2D => Command::TransferToHost2d {
                rect: rect(h)?,
                offset: r.u64(h + 16)?,
                resource_id: r.u32(h + 24)?,
            },
            kind::RESOURCE_ATTACH_BACKING => {
                let resource_id = r.u32(h)?;
                let count = r.u32(h + 4)?;
                if count > MAX_MEM_ENTRIES {
                    return Err(Malformed(kind::ERR_INVALID_PARAMETER));
                }
                let first = h + 8;
                let entries = (0..count as usize)
                    .map(|i| {
                        let at = first + i * MEM_ENTRY_LEN;
                        Ok((r.u64(at)?, r.u32(at + 8)?))
                    })
                    .collect::<Result<Vec<_>, Malformed>>()?;
                Command::AttachBacking {
                    resource_id,
                    entries,
                }
            }
            kind::RESOURCE_DETACH_BACKING => Command::DetachBacking {
                resource_id: r.u32(h)?,
            },
            kind::UPDATE_CURSOR | kind::MOVE_CURSOR => Command::Cursor {
                update: header.kind == kind::UPDATE_CURSOR,
                scanout_id: r.u32(h)?,
                x: r.u32(h + 4)?,
                y: r.u32(h + 8)?,
                resource_id: r.u32(h + 16)?,
                hot_x: r.u32(h + 20)?,
                hot_y: r.u32(h + 24)?,
            },
            other => Command::Unsupported(other),
        })
    }
}

/// The body of a `RESP_OK_DISPLAY_INFO`: scanout 0 enabled at `width` × `height`, the others
/// absent.
pub fn display_info(header: &Header, width: u32, height: u32) -> Vec<u8> {
    let mut out = header.response(kind::OK_DISPLAY_INFO).to_vec();
    for scanout in 0..MAX_SCANOUTS {
        let mut one = [0u8; 24];
        if scanout == 0 {
            one[8..12].copy_from_slice(&width.to_le_bytes());
            one[12..16].copy_from_slice(&height.to_le_bytes());
            one[16..20].copy_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&one);
    }
    out
}

/// Little-endian fields at byte offsets; a field past the end is a malformed request.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], Malformed> {
        self.0
            .get(at..at + N)
            .and_then(|b| b.try_into().ok())
            .ok_or(Malformed(kind::ERR_UNSPEC))
    }

    fn u32(&self, at: usize) -> Result<u32, Malformed> {
        self.bytes::<4>(at).map(u32::from_le_bytes)
    }

    fn u64(&self, at: usize) -> Result<u64, Malformed> {
        self.bytes::<8>(at).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_request_gets_its_fence_back() {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&kind::GET_DISPLAY_INFO.to_le_bytes());
        bytes[4..8].copy_from_slice(&FLAG_FENCE.to_le_bytes());
        bytes[8..16].copy_from_slice(&77u64.to_le_bytes());
        let header = Header::parse(&bytes).unwrap();
        let response = header.response(kind::OK_NODATA);
        assert_eq!(u32::from_le_bytes(response[4..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(response[8..16].try_into().unwrap()), 77);
    }

    #[test]
    fn a_truncated_request_is_malformed_not_a_panic() {
        assert!(Header::parse(&[0u8; 10]).is_err());
        let header = Header {
            kind: kind::TRANSFER_TO_HOST_2D,
            ..Header::default()
        };
        assert_eq!(
            Command::parse(&header, &[0u8; 40]),
            Err(Malformed(kind::ERR_UNSPEC))
        );
        let header = Header {
            kind: kind::RESOURCE_ATTACH_BACKING,
            ..Header::default()
        };
        let mut bytes = vec![0u8; 32];
        bytes[28..32].copy_from_slice(&2u32.to_le_bytes());
        assert!(Command::parse(&header, &bytes).is_err(), "entries missing");
        bytes[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Command::parse(&header, &bytes),
            Err(Malformed(kind::ERR_INVALID_PARAMETER))
        );
    }

    #[test]
    fn rectangles_fit_and_intersect() {
        let r = Rect {
            x: 10,
            y: 10,
            width: 20,
            height: 20,
        };
        assert!(r.fits(30, 30));
        assert!(!r.fits(29, 30));
        let huge = Rect {
            x: u32::MAX,
            y: 0,
            width: 2,
            height: 1,
        };
        assert!(!huge.fits(u32::MAX, 1), "no overflow");
        let other = Rect {
            x: 25,
            y: 0,
            width: 100,
            height: 15,
        };
        assert_eq!(
            r.intersect(&other),
            Some(Rect {
                x: 25,
                y: 10,
                width: 5,
                height: 5
            })
        );
        assert_eq!(r.intersect(&Rect::default()), None);
    }
}
