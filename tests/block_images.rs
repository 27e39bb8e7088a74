//! The block-image layer against real files: refusals that leave the image untouched, image
//! locks (between Vireo openers and against QEMU's tools), cache modes, discard and write
//! zeroes, and images that QEMU's `qemu-img` reads, checks and creates.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vireo::engine::block::{self, BlockError};
use vireo::engine::config::{CacheMode, DiskFormat};

mod block_support;
use block_support::*;

fn raw_image(dir: &Path, name: &str, size: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::File::create(&p).unwrap().set_len(size).unwrap();
    p
}

fn qcow2_image(dir: &Path, name: &str, size: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    block::create(&p, DiskFormat::Qcow2, size, &mut |_| {}).unwrap();
    p
}

/// Opens `path` as declared and expects a refusal whose text contains `expect`, with the file
/// byte-identical afterwards.
fn assert_refused(path: &Path, format: DiskFormat, expect: &str) {
    let before = fs::read(path).ok();
    let err = match block::open(&disk(path, format, false, CacheMode::Writeback)) {
        Ok(_) => panic!("{} opened as {format:?}", path.display()),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, BlockError::Disk { .. }), "{text}");
    assert!(text.starts_with("disk vda ("), "{text}");
    assert!(text.contains(expect), "{text} lacks {expect:?}");
    assert_eq!(fs::read(path).ok(), before, "{} changed", path.display());
}

#[test]
fn bad_images_are_refused_with_the_fix_and_left_untouched() {
    let dir = workdir();
    let d = dir.path();
    assert_refused(&d.join("missing.img"), DiskFormat::Raw, "does not exist");
    fs::create_dir(d.join("folder")).unwrap();
    assert_refused(&d.join("folder"), DiskFormat::Raw, "is a directory");
    assert_refused(
        &raw_image(d, "empty.img", 0),
        DiskFormat::Raw,
        "empty (0 bytes)",
    );
    assert_refused(
        &raw_image(d, "odd.img", 1000),
        DiskFormat::Raw,
        "not a multiple of 512",
    );

    let q = qcow2_image(d, "real.qcow2", 1 << 20);
    assert_refused(&q, DiskFormat::Raw, "set <driver type='qcow2'/>");
    let r = raw_image(d, "real.raw", 1 << 20);
    assert_refused(&r, DiskFormat::Qcow2, "set <driver type='raw'/>");

    let mut bytes = fs::read(&q).unwrap();
    bytes[4..8].copy_from_slice(&9u32.to_be_bytes());
    let bad_version = d.join("version.qcow2");
    fs::write(&bad_version, &bytes).unwrap();
    assert_refused(&bad_version, DiskFormat::Qcow2, "qcow2 header is corrupt");

    let mut bytes = fs::read(&q).unwrap();
    // The L1 table offset (bytes 40..48) far past the end of the file, unaligned.
    bytes[40..48].copy_from_slice(&0x7fff_ffff_0123u64.to_be_bytes());
    bytes[36..40].copy_from_slice(&1u32.to_be_bytes());
    let bad_l1 = d.join("l1.qcow2");
    fs::write(&bad_l1, &bytes).unwrap();
    assert_refused(&bad_l1, DiskFormat::Qcow2, "qemu-img check");

    fs::write(&bad_l1, &bytes[..40]).unwrap();
    assert_refused(&bad_l1, DiskFormat::Qcow2, "truncated");

    if have_qemu_img() {
        let base = raw_image(d, "base.raw", 1 << 20);
        let top = d.join("top.qcow2");
        let (ok, text) = qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "base.raw",
            "-F",
            "raw",
            top.to_str().unwrap(),
        ]);
        assert!(ok, "{text}");
        fs::remove_file(&base).unwrap();
        assert_refused(&top, DiskFormat::Qcow2, "backing file does not exist");
    }
}

#[test]
fn a_read_only_file_is_refused_for_a_writable_disk() {
    let dir = workdir();
    let p = raw_image(dir.path(), "ro.img", 1 << 20);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let made_read_only = if root {
        // Root ignores mode bits; the immutable attribute refuses even root.
        Command::new("chattr")
            .arg("+i")
            .arg(&p)
            .status()
            .is_ok_and(|s| s.success())
    } else {
        let mut perms = fs::metadata(&p).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&p, perms).is_ok()
    };
    if !made_read_only {
        return skip_or_fail("cannot make a file read-only for root (chattr +i refused)");
    }
    let before = fs::read(&p).unwrap();
    let result = block::open(&disk(&p, DiskFormat::Raw, false, CacheMode::Writeback));
    let readonly_ok = block::open(&disk(&p, DiskFormat::Raw, true, CacheMode::Writeback)).is_ok();
    if root {
        Command::new("chattr").arg("-i").arg(&p).status().unwrap();
    }
    let text = result
        .err()
        .expect("a read-only file opened writable")
        .to_string();
    assert!(
        text.contains("not writable") && text.contains("<readonly/>"),
        "{text}"
    );
    assert!(readonly_ok, "the read-only file did not open read-only");
    assert_eq!(fs::read(&p).unwrap(), before);
}

fn open(
    path: &Path,
    format: DiskFormat,
    readonly: bool,
) -> Result<Box<dyn block::DiskImage>, BlockError> {
    block::open(&disk(path, format, readonly, CacheMode::Writeback))
}

fn assert_in_use(result: Result<Box<dyn block::DiskImage>, BlockError>, path: &Path) {
    match result {
        Err(BlockError::InUse {
            target, path: p, ..
        }) => {
            assert_eq!(target.as_deref(), Some("vda"));
            assert_eq!(p, path);
        }
        Err(e) => panic!("expected InUse, got {e}"),
        Ok(_) => panic!("{} opened twice", path.display()),
    }
}

#[test]
fn image_locks_keep_two_writers_apart_and_let_readers_share() {
    let dir = workdir();
    let p = raw_image(dir.path(), "shared.img", 1 << 20);
    let w = open(&p, DiskFormat::Raw, false).unwrap();
    assert_in_use(open(&p, DiskFormat::Raw, false), &p);
    assert_in_use(open(&p, DiskFormat::Raw, true), &p);
    let text = open(&p, DiskFormat::Raw, false).err().unwrap().to_string();
    assert!(
        text.contains("disk vda (") && text.contains("in use by another VM"),
        "{text}"
    );
    drop(w);

    let r1 = open(&p, DiskFormat::Raw, true).unwrap();
    let _r2 = open(&p, DiskFormat::Raw, true).unwrap();
    assert_in_use(open(&p, DiskFormat::Raw, false), &p);
    drop(r1);
    assert_in_use(open(&p, DiskFormat::Raw, false), &p);
}

#[test]
fn a_qcow2_disk_read_locks_its_backing_file() {
    let dir = workdir();
    let base = qcow2_image(dir.path(), "base.qcow2", 1 << 20);
    if !have_qemu_img() {
        return;
    }
    let top = dir.path().join("top.qcow2");
    let (ok, text) = qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        top.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let t = open(&top, DiskFormat::Qcow2, false).unwrap();
    assert_in_use(open(&base, DiskFormat::Qcow2, false), &base);
    let _reader = open(&base, DiskFormat::Qcow2, true).unwrap();
    drop(t);
    drop(_reader);
    open(&base, DiskFormat::Qcow2, false).unwrap();
}

#[test]
fn vireo_and_qemu_respect_each_others_locks() {
    if !have_qemu_img() {
        return;
    }
    let dir = workdir();
    let p = raw_image(dir.path(), "qemu.img", 1 << 20);
    // `qemu-img convert` reads its source without letting others write it.
    let copy = dir.path().join("copy.img");
    let convert = || {
        let _ = fs::remove_file(&copy);
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            p.to_str().unwrap(),
            copy.to_str().unwrap(),
        ])
    };
    let w = open(&p, DiskFormat::Raw, false).unwrap();
    let (ok, text) = convert();
    assert!(
        !ok && text.contains("lock"),
        "qemu-img convert ignored Vireo's lock: {text}"
    );
    drop(w);
    let r = open(&p, DiskFormat::Raw, true).unwrap();
    let (ok, text) = convert();
    assert!(ok, "a Vireo reader kept qemu-img from reading: {text}");
    drop(r);

    // qemu-io holding the image writable keeps Vireo out, readers included.
    let mut child = Command::new("qemu-io")
        .args(["-f", "raw", "-c", "sleep 5000", p.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut refused = false;
    while Instant::now() < deadline {
        if let Err(BlockError::InUse { .. }) = open(&p, DiskFormat::Raw, true) {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let writer_refused = matches!(
        open(&p, DiskFormat::Raw, false),
        Err(BlockError::InUse { .. })
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        refused && writer_refused,
        "Vireo opened an image qemu-io writes"
    );
}

#[test]
fn every_cache_mode_reads_back_what_it_wrote_from_unaligned_buffers() {
    let dir = workdir();
    for format in [DiskFormat::Raw, DiskFormat::Qcow2] {
        for cache in [
            CacheMode::None,
            CacheMode::Writeback,
            CacheMode::Writethrough,
            CacheMode::Unsafe,
        ] {
            let name = format!("{}-{}.img", format.as_str(), cache.as_str());
            let p = match format {
                DiskFormat::Raw => raw_image(dir.path(), &name, 4 << 20),
                DiskFormat::Qcow2 => qcow2_image(dir.path(), &name, 4 << 20),
            };
            let data = pattern(7, 3 * 512);
            {
                let mut img = block::open(&disk(&p, format, false, cache)).unwrap();
                assert_eq!(img.size(), 4 << 20);
                write(img.as_mut(), 512 * 5, &data);
                img.flush().unwrap();
                assert_eq!(read(img.as_mut(), 512 * 5, data.len()), data, "{name}");
            }
            let mut img = block::open(&disk(&p, format, true, cache)).unwrap();
            assert_eq!(
                read(img.as_mut(), 512 * 5, data.len()),
                data,
                "{name} reopened"
            );
            assert_eq!(read(img.as_mut(), 0, 512), vec![0; 512]);
        }
    }
}

#[test]
fn cache_none_on_tmpfs_works_or_says_why_not() {
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        return skip_or_fail("/dev/shm is not available");
    };
    let p = raw_image(dir.path(), "shm.img", 1 << 20);
    match block::open(&disk(&p, DiskFormat::Raw, false, CacheMode::None)) {
        Ok(mut img) => {
            // Linux 6.6+ gives tmpfs O_DIRECT; then it must simply work.
            write(img.as_mut(), 512, &pattern(3, 512));
            assert_eq!(read(img.as_mut(), 512, 512), pattern(3, 512));
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("does not support O_DIRECT") && text.contains("cache='writeback'"),
                "{text}"
            );
        }
    }
}

#[test]
fn reads_and_writes_past_the_end_fail() {
    let dir = workdir();
    let p = raw_image(dir.path(), "end.img", 1 << 20);
    let mut img = open(&p, DiskFormat::Raw, false).unwrap();
    let mut buf = vec![0u8; 1024];
    let slice = [vm_memory::VolatileSlice::from(&mut buf[..])];
    assert!(img.read_vectored((1 << 20) - 512, &slice).is_err());
    assert!(img.write_vectored((1 << 20) - 512, &slice).is_err());
    assert!(img.write_zeroes(1 << 20, 512, false).is_err());
    drop(img);
    assert_eq!(fs::metadata(&p).unwrap().len(), 1 << 20);
    let mut ro = open(&p, DiskFormat::Raw, true).unwrap();
    assert!(
        ro.write_vectored(0, &slice[..]).is_err(),
        "a read-only disk took a write"
    );
}

#[test]
fn discard_frees_raw_blocks_and_zeroes_read_back_as_zeroes() {
    let dir = workdir();
    let p = raw_image(dir.path(), "discard.img", 8 << 20);
    let mut img = open(&p, DiskFormat::Raw, false).unwrap();
    assert!(img.supports_discard());
    write(img.as_mut(), 0, &pattern(1, 4 << 20));
    img.flush().unwrap();
    let before = fs::metadata(&p).unwrap().blocks();
    img.discard(0, 2 << 20).unwrap();
    img.flush().unwrap();
    let after = fs::metadata(&p).unwrap().blocks();
    assert!(
        after * 512 <= before * 512 - (2 << 20),
        "blocks {before} -> {after}"
    );
    assert_eq!(read(img.as_mut(), 0, 4096), vec![0; 4096]);
    for may_unmap in [false, true] {
        img.write_zeroes(3 << 20, 8192, may_unmap).unwrap();
        assert_eq!(read(img.as_mut(), 3 << 20, 8192), vec![0; 8192]);
    }
    assert_eq!(
        read(img.as_mut(), (3 << 20) + 8192, 512),
        pattern(1, 4 << 20)[(3 << 20) + 8192..][..512]
    );

    let q = qcow2_image(dir.path(), "zero.qcow2", 8 << 20);
    let mut img = open(&q, DiskFormat::Qcow2, false).unwrap();
    write(img.as_mut(), 0, &pattern(2, 1 << 20));
    for (offset, may_unmap) in [(4096u64, false), (256 << 10, true)] {
        img.write_zeroes(offset, 128 << 10, may_unmap).unwrap();
        assert_eq!(read(img.as_mut(), offset, 128 << 10), vec![0; 128 << 10]);
    }
    img.discard(512 << 10, 256 << 10).unwrap();
    assert_eq!(read(img.as_mut(), 512 << 10, 256 << 10), vec![0; 256 << 10]);
    assert_eq!(read(img.as_mut(), 0, 4096), pattern(2, 4096));
    drop(img);
    if have_qemu_img() {
        assert_qcow2_consistent(&q);
    }
}

#[test]
fn created_images_pass_qemu_img_and_inspect_reports_them() {
    let dir = workdir();
    let d = dir.path();
    let mut seen = Vec::new();
    let q = d.join("new.qcow2");
    block::create(&q, DiskFormat::Qcow2, 10 << 30, &mut |f| seen.push(f)).unwrap();
    assert_eq!(seen.first(), Some(&0.0));
    assert_eq!(seen.last(), Some(&1.0));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    let r = d.join("new.raw");
    block::create(&r, DiskFormat::Raw, 1 << 30, &mut |_| {}).unwrap();
    assert_eq!(fs::metadata(&r).unwrap().len(), 1 << 30);
    assert!(
        fs::metadata(&r).unwrap().blocks() < 64,
        "the raw image is not sparse"
    );

    let info = block::inspect(&q).unwrap();
    assert_eq!(
        (info.format, info.virtual_size, info.backing),
        (DiskFormat::Qcow2, 10 << 30, None)
    );
    // Metadata is preallocated (20 L2 tables of 64 KiB and their refcounts for 10 GiB); the
    // data stays sparse.
    assert!(
        info.allocated > 0 && info.allocated < 4 << 20,
        "{}",
        info.allocated
    );
    let info = block::inspect(&r).unwrap();
    assert_eq!((info.format, info.virtual_size), (DiskFormat::Raw, 1 << 30));

    // Refusals: existing file, bad sizes; nothing left behind.
    let before = fs::read(&q).unwrap();
    let e = block::create(&q, DiskFormat::Qcow2, 1 << 20, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(fs::read(&q).unwrap(), before);
    for size in [0, 1000, (64 << 40) + 512] {
        let e = block::create(&d.join("bad.img"), DiskFormat::Raw, size, &mut |_| {}).unwrap_err();
        assert!(matches!(e, BlockError::Image { .. }), "{e}");
    }
    let e = block::create(
        &d.join("no/such/dir.img"),
        DiskFormat::Raw,
        1 << 20,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("folder does not exist"), "{e}");
    let mut names: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["new.qcow2", "new.raw"]);
    assert!(block::inspect(&d.join("nothing")).is_err());

    if !have_qemu_img() {
        return;
    }
    let (ok, text) = qemu_img(&["check", "-f", "qcow2", q.to_str().unwrap()]);
    assert!(ok && text.contains("No errors"), "{text}");
    let (ok, text) = qemu_img(&["info", "--output=json", q.to_str().unwrap()]);
    assert!(
        ok && text.contains("\"virtual-size\": 10737418240"),
        "{text}"
    );
    assert!(
        text.contains("\"cluster-size\": 65536") && text.contains("\"compat\": \"1.1\""),
        "{text}"
    );
}

#[test]
fn a_qemu_img_backing_chain_reads_through_vireo_and_vireo_writes_read_through_qemu() {
    if !have_qemu_img() {
        return;
    }
    let dir = workdir();
    let d = dir.path();
    let base = d.join("base.raw");
    let mut base_bytes = pattern(9, 2 << 20);
    fs::write(&base, &base_bytes).unwrap();
    let top = d.join("top.qcow2");
    let (ok, text) = qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.raw",
        "-F",
        "raw",
        top.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let info = block::inspect(&top).unwrap();
    assert_eq!(info.backing.as_deref(), Some(Path::new("base.raw")));
    assert_eq!(info.virtual_size, 2 << 20);

    let mut img = block::open(&disk(&top, DiskFormat::Qcow2, false, CacheMode::None)).unwrap();
    assert_eq!(read(img.as_mut(), 0, 2 << 20), base_bytes);
    let new = pattern(77, 5 * 4096 + 512);
    write(img.as_mut(), 70_000 / 512 * 512, &new);
    img.flush().unwrap();
    drop(img);
    let at = 70_000 / 512 * 512;
    base_bytes[at..at + new.len()].copy_from_slice(&new);
    assert_eq!(qemu_img_raw_bytes(&top, "qcow2", d), base_bytes);
    assert_qcow2_consistent(&top);
    assert_eq!(
        fs::read(&base).unwrap(),
        pattern(9, 2 << 20),
        "the backing file changed"
    );
}

#[test]
fn resize_grows_both_formats_and_shrinks_only_when_allowed() {
    let dir = workdir();
    let d = dir.path();
    let r = raw_image(d, "grow.raw", 1 << 20);
    let q = qcow2_image(d, "grow.qcow2", 1 << 20);
    {
        let mut img = open(&q, DiskFormat::Qcow2, false).unwrap();
        write(img.as_mut(), 4096, &pattern(5, 4096));
        let e = block::resize(&q, 2 << 20, false).unwrap_err();
        assert!(matches!(e, BlockError::InUse { target: None, .. }), "{e}");
    }
    for (p, format) in [(&r, DiskFormat::Raw), (&q, DiskFormat::Qcow2)] {
        block::resize(p, 3 << 30, false).unwrap();
        assert_eq!(block::inspect(p).unwrap().virtual_size, 3 << 30);
        let e = block::resize(p, 1 << 20, false).unwrap_err();
        assert!(e.to_string().contains("shrinking loses"), "{e}");
        assert!(block::resize(p, 1000, true).is_err());
        let mut img = open(p, format, false).unwrap();
        assert_eq!(img.size(), 3 << 30);
        write(img.as_mut(), (3 << 30) - 512, &pattern(6, 512));
        assert_eq!(read(img.as_mut(), (3 << 30) - 512, 512), pattern(6, 512));
    }
    block::resize(&r, 512 << 10, true).unwrap();
    assert_eq!(fs::metadata(&r).unwrap().len(), 512 << 10);
    let mut img = open(&q, DiskFormat::Qcow2, true).unwrap();
    assert_eq!(read(img.as_mut(), 4096, 4096), pattern(5, 4096));
    drop(img);
    if have_qemu_img() {
        assert_qcow2_consistent(&q);
        let (ok, text) = qemu_img(&["info", "--output=json", q.to_str().unwrap()]);
        assert!(
            ok && text.contains("\"virtual-size\": 3221225472"),
            "{text}"
        );
    }
}
