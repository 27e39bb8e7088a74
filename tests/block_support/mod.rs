//! Helpers of the block-image tests: disk configurations, reading and writing through a
//! `DiskImage` with plain byte buffers, and running `qemu-img` (the cross-check).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vireo::engine::block::DiskImage;
use vireo::engine::config::{CacheMode, DiskConfig, DiskFormat, IoMode};
use vm_memory::VolatileSlice;

#[path = "../require_env/mod.rs"]
mod require_env;
pub use require_env::skip_or_fail;

/// A disk `vda` on `path`.
pub fn disk(path: &Path, format: DiskFormat, readonly: bool, cache: CacheMode) -> DiskConfig {
    DiskConfig {
        target: "vda".into(),
        path: path.to_path_buf(),
        format,
        readonly,
        cache,
        io: IoMode::Threads,
        discard: true,
        serial: None,
        cdrom: false,
    }
}

/// A temporary folder on the build's disk (ext4 here), where O_DIRECT works.
pub fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Reads `len` bytes at `offset`, into a buffer that starts one byte off alignment so the
/// O_DIRECT path must realign.
pub fn read(img: &mut dyn DiskImage, offset: u64, len: usize) -> Vec<u8> {
    let mut backing = vec![0u8; len + 1];
    {
        let (a, b) = backing[1..].split_at_mut(len / 2);
        let bufs = [VolatileSlice::from(a), VolatileSlice::from(b)];
        img.read_vectored(offset, &bufs).unwrap();
    }
    backing.remove(0);
    backing
}

/// Writes `data` at `offset` from a misaligned buffer split in two.
pub fn write(img: &mut dyn DiskImage, offset: u64, data: &[u8]) {
    let mut backing = vec![0u8; data.len() + 3];
    backing[3..].copy_from_slice(data);
    let (a, b) = backing[3..].split_at_mut(data.len() / 2);
    let bufs = [VolatileSlice::from(a), VolatileSlice::from(b)];
    img.write_vectored(offset, &bufs).unwrap();
}

/// A recognisable pattern of `len` bytes.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Whether `qemu-img` is installed; otherwise skips (or fails under VIREO_REQUIRE_ENV=1).
pub fn have_qemu_img() -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok();
    if !ok {
        skip_or_fail("qemu-img is not installed (Debian package qemu-utils)");
    }
    ok
}

/// Runs `qemu-img` with `args`; returns (success, stdout+stderr).
pub fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Asserts `qemu-img check` finds no corruption (leaked clusters are allowed, as QEMU says).
pub fn assert_qcow2_consistent(path: &Path) {
    let p = path.to_str().unwrap();
    let out = Command::new("qemu-img")
        .args(["check", "-f", "qcow2", p])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit codes: 0 clean, 3 leaks only; 1 and 2 are errors and corruption.
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "qemu-img check {p}: {text}"
    );
}

/// Converts an image to raw with `qemu-img convert` and returns its bytes.
pub fn qemu_img_raw_bytes(path: &Path, format: &str, dir: &Path) -> Vec<u8> {
    let out: PathBuf = dir.join("converted.raw");
    let _ = std::fs::remove_file(&out);
    let (ok, text) = qemu_img(&[
        "convert",
        "-U",
        "-f",
        format,
        "-O",
        "raw",
        path.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(ok, "qemu-img convert: {text}");
    std::fs::read(out).unwrap()
}
