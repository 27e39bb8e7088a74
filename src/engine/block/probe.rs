//! What a file is, found by reading it read-only: its kind, its format from its first bytes, and
//! whether it fits the format it is declared as. Nothing here writes, so a refused image stays
//! byte-identical.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

use crate::engine::config::DiskFormat;

/// The first bytes of every qcow2 image.
pub(crate) const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";
/// The length of a qcow2 version 2 header, the shortest valid one.
const QCOW2_V2_HEADER: usize = 72;

/// A file opened read-only and what it holds.
pub(crate) struct Probe {
    /// The format its content shows.
    pub format: DiskFormat,
    /// Its length in bytes (a block device's size).
    pub len: u64,
    /// The first bytes (up to 512).
    pub header: Vec<u8>,
}

/// Opens `path` read-only and reads its kind, length and first bytes. The error is the problem
/// in words, with the fix.
pub(crate) fn probe(path: &Path) -> Result<Probe, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            "the image file does not exist: create it or correct the path".to_string()
        }
        io::ErrorKind::PermissionDenied => {
            "the image file cannot be reached (permission denied on a folder above it): \
             let this user enter its folders"
                .to_string()
        }
        _ => format!("the image file cannot be examined ({e})"),
    })?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(
            "this is a directory, not an image file: point the disk at an image file".into(),
        );
    }
    if !kind.is_file() && !kind.is_block_device() {
        return Err(
            "this is neither a regular file nor a block device: point the disk at an \
                    image file"
                .into(),
        );
    }
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => {
            "the image file is not readable by this user: fix its permissions or owner".to_string()
        }
        _ => format!("the image file cannot be opened ({e})"),
    })?;
    let len = if kind.is_block_device() {
        file.seek(SeekFrom::End(0))
            .map_err(|e| format!("the size of the block device cannot be read ({e})"))?
    } else {
        meta.len()
    };
    let mut header = vec![0u8; 512];
    let mut got = 0;
    while got < header.len() {
        match file.read_at(&mut header[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("the image file cannot be read ({e})")),
        }
    }
    header.truncate(got);
    let format = if header.starts_with(QCOW2_MAGIC) {
        DiskFormat::Qcow2
    } else {
        DiskFormat::Raw
    };
    Ok(Probe {
        format,
        len,
        header,
    })
}

/// Checks that the content fits `declared`; the error names the fix.
pub(crate) fn check_declared(probe: &Probe, declared: DiskFormat) -> Result<(), String> {
    match (declared, probe.format) {
        (DiskFormat::Raw, DiskFormat::Qcow2) => Err(
            "declared raw but the file is a qcow2 image: set <driver type='qcow2'/> (as raw, the \
             guest would see and could overwrite the qcow2 metadata)"
                .into(),
        ),
        (DiskFormat::Qcow2, DiskFormat::Raw) => Err(
            "declared qcow2 but the file is not a qcow2 image (no qcow2 header): set <driver \
             type='raw'/> if it is a raw image"
                .into(),
        ),
        (DiskFormat::Raw, DiskFormat::Raw) => check_raw_size(probe.len),
        (DiskFormat::Qcow2, DiskFormat::Qcow2) => check_qcow2_header(&probe.header),
    }
}

/// A raw image must hold at least one sector and whole sectors only.
fn check_raw_size(len: u64) -> Result<(), String> {
    if len == 0 {
        return Err(
            "the raw image is empty (0 bytes): give it a size (qemu-img resize -f raw) \
                    or create a new image"
                .into(),
        );
    }
    if len % 512 != 0 {
        return Err(format!(
            "the raw image's size ({len} bytes) is not a multiple of 512 bytes: resize it to a \
             multiple of 512 (qemu-img resize -f raw)"
        ));
    }
    Ok(())
}

/// The parts of a qcow2 header that say whether it can be a qcow2 image at all; `imago` checks
/// the rest when it opens the image.
fn check_qcow2_header(header: &[u8]) -> Result<(), String> {
    if header.len() < QCOW2_V2_HEADER {
        return Err(
            "the qcow2 header is truncated (the image is corrupt): check it with \
                    `qemu-img check` or restore it from a backup"
                .into(),
        );
    }
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if version != 2 && version != 3 {
        return Err(format!(
            "the qcow2 header is corrupt or of an unsupported version ({version}): check it with \
             `qemu-img check` or convert it with `qemu-img convert -O qcow2`"
        ));
    }
    let cluster_bits = u32::from_be_bytes([header[20], header[21], header[22], header[23]]);
    if !(9..=21).contains(&cluster_bits) {
        return Err(format!(
            "the qcow2 header is corrupt (cluster bits {cluster_bits}): check it with \
             `qemu-img check` or restore it from a backup"
        ));
    }
    Ok(())
}
