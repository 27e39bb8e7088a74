//! The guest's 2D resources: a host-side copy of each image (what TRANSFER_TO_HOST_2D fills
//! from the guest pages attached as its backing), with a cap on the host memory they take so a
//! guest cannot make the VMM allocate without bound.

use std::collections::HashMap;

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::protocol::{Malformed, Rect, kind};
use super::scanout::PixelFormat;

/// Host memory all of one device's resources may take (QEMU's default `max_hostmem`).
pub const MAX_HOST_BYTES: u64 = 256 << 20;

/// One 2D resource.
pub struct Resource {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// `width * 4` bytes a row.
    pub pixels: Vec<u8>,
    /// The guest pages behind it, in order, with where each starts in the backing.
    backing: Vec<(GuestAddress, u64, u64)>,
}

impl Resource {
    /// Bytes between two rows.
    pub fn stride(&self) -> usize {
        self.width as usize * 4
    }

    fn backing_len(&self) -> u64 {
        self.backing.last().map_or(0, |(_, start, len)| start + len)
    }

    /// Reads `out.len()` bytes of the backing from `offset`.
    fn read_backing(
        &self,
        memory: &GuestMemoryMmap,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), Malformed> {
        let invalid = Malformed(kind::ERR_INVALID_PARAMETER);
        let mut at = offset;
        let mut done = 0usize;
        // The entry holding `offset`: the last one starting at or before it.
        let mut index = self.backing.partition_point(|(_, start, _)| *start <= at);
        index = index.checked_sub(1).ok_or(invalid)?;
        while done < out.len() {
            let (addr, start, len) = *self.backing.get(index).ok_or(invalid)?;
            let within = at - start;
            let take = (len.saturating_sub(within) as usize).min(out.len() - done);
            if take > 0 {
                memory
                    .read_slice(
                        &mut out[done..done + take],
                        addr.checked_add(within).ok_or(invalid)?,
                    )
                    .map_err(|_| Malformed(kind::ERR_UNSPEC))?;
            }
            done += take;
            at += take as u64;
            index += 1;
        }
        Ok(())
    }
}

/// Every resource of one driver session, by id.
#[derive(Default)]
pub struct Resources {
    map: HashMap<u32, Resource>,
    bytes: u64,
}

impl Resources {
    /// The resource `id`, or the error the guest gets for an unknown one.
    pub fn get(&self, id: u32) -> Result<&Resource, Malformed> {
        self.map
            .get(&id)
            .ok_or(Malformed(kind::ERR_INVALID_RESOURCE_ID))
    }

    fn get_mut(&mut self, id: u32) -> Result<&mut Resource, Malformed> {
        self.map
            .get_mut(&id)
            .ok_or(Malformed(kind::ERR_INVALID_RESOURCE_ID))
    }

    /// RESOURCE_CREATE_2D.
    pub fn create(
        &mut self,
        id: u32,
        format: u32,
        width: u32,
        height: u32,
    ) -> Result<(), Malformed> {
        if id == 0 || self.map.contains_key(&id) {
            return Err(Malformed(kind::ERR_INVALID_RESOURCE_ID));
        }
        let format =
            PixelFormat::from_virtio(format).ok_or(Malformed(kind::ERR_INVALID_PARAMETER))?;
        if width == 0 || height == 0 {
            return Err(Malformed(kind::ERR_INVALID_PARAMETER));
        }
        let bytes = u64::from(width) * u64::from(height) * 4;
        if self.bytes + bytes > MAX_HOST_BYTES {
            return Err(Malformed(kind::ERR_OUT_OF_MEMORY));
        }
        self.bytes += bytes;
        self.map.insert(
            id,
            Resource {
                width,
                height,
                format,
                pixels: vec![0; bytes as usize],
                backing: Vec::new(),
            },
        );
        Ok(())
    }

    /// RESOURCE_UNREF.
    pub fn unref(&mut self, id: u32) -> Result<(), Malformed> {
        let resource = self
            .map
            .remove(&id)
            .ok_or(Malformed(kind::ERR_INVALID_RESOURCE_ID))?;
        self.bytes -= resource.pixels.len() as u64;
        Ok(())
    }

    /// RESOURCE_ATTACH_BACKING: every entry must be guest RAM.
    pub fn attach(
        &mut self,
        memory: &GuestMemoryMmap,
        id: u32,
        entries: &[(u64, u32)],
    ) -> Result<(), Malformed> {
        let resource = self.get_mut(id)?;
        if !resource.backing.is_empty() {
            return Err(Malformed(kind::ERR_UNSPEC));
        }
        let mut backing = Vec::with_capacity(entries.len());
        let mut start = 0u64;
        for &(addr, len) in entries {
            let addr = GuestAddress(addr);
            if !memory.check_range(addr, len as usize) {
                return Err(Malformed(kind::ERR_UNSPEC));
            }
            backing.push((addr, start, u64::from(len)));
            start += u64::from(len);
        }
        resource.backing = backing;
        Ok(())
    }

    /// RESOURCE_DETACH_BACKING.
    pub fn detach(&mut self, id: u32) -> Result<(), Malformed> {
        let resource = self.get_mut(id)?;
        if resource.backing.is_empty() {
            return Err(Malformed(kind::ERR_UNSPEC));
        }
        resource.backing.clear();
        Ok(())
    }

    /// TRANSFER_TO_HOST_2D: row `h` of `rect` comes from the backing at `offset + h * stride`
    /// (the driver's offset already points at the rectangle's first pixel).
    pub fn transfer(
        &mut self,
        memory: &GuestMemoryMmap,
        id: u32,
        rect: Rect,
        offset: u64,
    ) -> Result<(), Malformed> {
        let resource = self.get_mut(id)?;
        if !rect.fits(resource.width, resource.height) {
            return Err(Malformed(kind::ERR_INVALID_PARAMETER));
        }
        if resource.backing.is_empty() {
            return Err(Malformed(kind::ERR_UNSPEC));
        }
        let stride = resource.stride();
        let row_bytes = rect.width as usize * 4;
        if row_bytes == 0 || rect.height == 0 {
            return Ok(());
        }
        let last = offset
            .checked_add(stride as u64 * u64::from(rect.height - 1))
            .and_then(|o| o.checked_add(row_bytes as u64))
            .ok_or(Malformed(kind::ERR_INVALID_PARAMETER))?;
        if last > resource.backing_len() {
            return Err(Malformed(kind::ERR_INVALID_PARAMETER));
        }
        let mut pixels = std::mem::take(&mut resource.pixels);
        let mut result = Ok(());
        for h in 0..rect.height as usize {
            let source = offset + (stride * h) as u64;
            let to = (rect.y as usize + h) * stride + rect.x as usize * 4;
            result = resource.read_backing(memory, source, &mut pixels[to..to + row_bytes]);
            if result.is_err() {
                break;
            }
        }
        resource.pixels = pixels;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    #[test]
    fn a_transfer_gathers_rows_across_backing_pages() {
        let memory = memory();
        let mut r = Resources::default();
        r.create(1, 2, 4, 4).unwrap();
        // 64 bytes of image in three scattered pieces: 20 + 30 + 14.
        let image: Vec<u8> = (0..64).collect();
        memory
            .write_slice(&image[..20], GuestAddress(0x1000))
            .unwrap();
        memory
            .write_slice(&image[20..50], GuestAddress(0x5000))
            .unwrap();
        memory
            .write_slice(&image[50..], GuestAddress(0x3000))
            .unwrap();
        r.attach(&memory, 1, &[(0x1000, 20), (0x5000, 30), (0x3000, 14)])
            .unwrap();
        let rect = Rect {
            x: 1,
            y: 1,
            width: 2,
            height: 2,
        };
        r.transfer(&memory, 1, rect, 16 + 4).unwrap();
        let pixels = &r.get(1).unwrap().pixels;
        assert_eq!(&pixels[20..28], &image[20..28], "row 1, pixels 1..3");
        assert_eq!(&pixels[36..44], &image[36..44], "row 2, pixels 1..3");
        assert_eq!(&pixels[0..20], &[0; 20], "outside the rectangle untouched");
    }

    #[test]
    fn guest_mistakes_are_errors() {
        let memory = memory();
        let mut r = Resources::default();
        assert_eq!(
            r.create(0, 2, 4, 4),
            Err(Malformed(kind::ERR_INVALID_RESOURCE_ID))
        );
        assert_eq!(
            r.create(1, 99, 4, 4),
            Err(Malformed(kind::ERR_INVALID_PARAMETER))
        );
        assert_eq!(
            r.create(1, 2, 1 << 16, 1 << 16),
            Err(Malformed(kind::ERR_OUT_OF_MEMORY))
        );
        r.create(1, 2, 4, 4).unwrap();
        assert_eq!(
            r.create(1, 2, 4, 4),
            Err(Malformed(kind::ERR_INVALID_RESOURCE_ID))
        );
        let all = Rect {
            x: 0,
            y: 0,
            width: 4,
            height: 4,
        };
        assert!(r.transfer(&memory, 1, all, 0).is_err(), "no backing yet");
        assert!(r.attach(&memory, 1, &[(2 << 20, 64)]).is_err(), "not RAM");
        r.attach(&memory, 1, &[(0, 32)]).unwrap();
        assert_eq!(
            r.transfer(&memory, 1, all, 0),
            Err(Malformed(kind::ERR_INVALID_PARAMETER)),
            "backing too small"
        );
        let outside = Rect { x: 3, ..all };
        assert_eq!(
            r.transfer(&memory, 1, outside, 0),
            Err(Malformed(kind::ERR_INVALID_PARAMETER))
        );
        assert_eq!(r.unref(7), Err(Malformed(kind::ERR_INVALID_RESOURCE_ID)));
        r.unref(1).unwrap();
        assert_eq!(r.bytes, 0);
    }
}
