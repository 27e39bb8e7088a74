//! Killing a writer at a random moment never loses a flushed write nor corrupts a qcow2 image.
//!
//! Each trial starts this test binary again as a child that opens a fresh raw or qcow2 image
//! (alternating) with cache='none' and loops: write a 4 KiB record (sequence number, slot,
//! checksum) into the next slot of a fixed pseudo-random order, flush, report the sequence
//! number on stdout. The parent SIGKILLs it 2–50 ms after it opened the image, then checks that
//! every reported record is in the image, whole, and that `qemu-img check` finds no corruption
//! in the qcow2 images (leaked clusters are allowed, as QEMU allows them).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vireo::engine::block::{self, DiskImage};
use vireo::engine::config::{CacheMode, DiskFormat};
use vm_memory::VolatileSlice;

mod block_support;
use block_support::{assert_qcow2_consistent, disk, have_qemu_img, workdir};

const CHILD_ENV: &str = "VIREO_POWER_CUT_CHILD";
const TRIALS: u64 = 100;
const RECORD: usize = 4096;
const SLOTS: u64 = 16384;
const IMAGE_SIZE: u64 = SLOTS * RECORD as u64;

/// The slot of record `seq` in trial `trial`: a bijection of the slots (odd multiplier modulo a
/// power of two), so no record overwrites another and each can be checked on its own.
fn slot(trial: u64, seq: u64) -> u64 {
    (seq.wrapping_mul(40503)
        .wrapping_add(trial.wrapping_mul(7919)))
        % SLOTS
}

/// FNV-1a over `bytes`.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn record(trial: u64, seq: u64) -> Vec<u8> {
    let mut r = vec![0u8; RECORD];
    r[0..8].copy_from_slice(&seq.to_le_bytes());
    r[8..16].copy_from_slice(&trial.to_le_bytes());
    r[16..24].copy_from_slice(&slot(trial, seq).to_le_bytes());
    for (i, b) in r[24..RECORD - 8].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(i as u8);
    }
    let sum = checksum(&r[..RECORD - 8]);
    r[RECORD - 8..].copy_from_slice(&sum.to_le_bytes());
    r
}

/// The child: does nothing unless started by the test below.
#[test]
fn power_cut_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    let trial: u64 = parts.next().unwrap().parse().unwrap();
    let format = DiskFormat::from_libvirt(parts.next().unwrap()).unwrap();
    let path = Path::new(parts.next().unwrap());
    let mut img = block::open(&disk(path, format, false, CacheMode::None)).unwrap();
    println!("OPEN");
    for seq in 1..SLOTS {
        let mut data = record(trial, seq);
        img.write_vectored(
            slot(trial, seq) * RECORD as u64,
            &[VolatileSlice::from(&mut data[..])],
        )
        .unwrap();
        img.flush().unwrap();
        println!("SEQ {seq}");
    }
}

/// Runs one trial; returns how many flushed records it checked.
fn trial(dir: &Path, trial: u64, format: DiskFormat, kill_after: Duration) -> u64 {
    let path = dir.join(format!("t{trial}.{}", format.as_str()));
    block::create(&path, format, IMAGE_SIZE, &mut |_| {}).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "power_cut_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{trial}:{}:{}", format.as_str(), path.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (opened_tx, opened) = mpsc::channel();
    // Reads the child's reports until its end; returns the last flushed sequence number.
    let reader = std::thread::spawn(move || {
        let mut last = 0u64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.ends_with("OPEN") {
                let _ = opened_tx.send(());
            } else if let Some(n) = line.strip_prefix("SEQ ") {
                let n: u64 = n.parse().unwrap();
                assert_eq!(n, last + 1, "reports out of order");
                last = n;
            }
        }
        last
    });
    if opened.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("trial {trial}: the child did not open {}", path.display());
    }
    std::thread::sleep(kill_after);
    child.kill().unwrap();
    child.wait().unwrap();
    let reported = reader.join().unwrap();

    if format == DiskFormat::Qcow2 {
        assert_qcow2_consistent(&path);
    }
    let mut img = block::open(&disk(&path, format, true, CacheMode::Writeback)).unwrap();
    for seq in 1..=reported {
        let got = read_slot(img.as_mut(), slot(trial, seq));
        assert!(
            got == record(trial, seq),
            "trial {trial} ({}): flushed record {seq} of {reported} is missing or torn",
            format.as_str()
        );
    }
    drop(img);
    std::fs::remove_file(&path).unwrap();
    reported
}

/// Reads record slot `s` of `img`.
fn read_slot(img: &mut dyn DiskImage, s: u64) -> Vec<u8> {
    let mut buf = vec![0u8; RECORD];
    img.read_vectored(s * RECORD as u64, &[VolatileSlice::from(&mut buf[..])])
        .unwrap();
    buf
}

#[test]
fn flushed_writes_survive_a_kill_and_qcow2_stays_consistent() {
    if std::env::var_os(CHILD_ENV).is_some() || !have_qemu_img() {
        return;
    }
    let dir = workdir();
    let started = Instant::now();
    // xorshift64: a fixed seed, so a failing trial can be rerun as it was.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut records = 0;
    for t in 0..TRIALS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = Duration::from_millis(2 + rng % 49);
        let format = if t % 2 == 0 {
            DiskFormat::Raw
        } else {
            DiskFormat::Qcow2
        };
        records += trial(dir.path(), t, format, kill_after);
    }
    println!(
        "power-cut trials: {TRIALS} (raw and qcow2 alternating), {records} flushed records \
         checked, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        records > TRIALS,
        "too few records written to test anything: {records}"
    );
}
