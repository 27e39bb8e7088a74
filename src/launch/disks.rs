//! A domain's `<disk>` elements as the engine's [`DiskConfig`]s: the one place that decides which
//! disks Vireo can attach (files and block devices as virtio-blk, raw or qcow2) and says why
//! not for the rest. Start ([`super::prepare`]), `vireoctl validate --host` and the GUI all ask
//! [`map_disks`], so none of them can promise a disk another refuses.
//!
//! The engine attaches disks in the order given, and Linux names virtio disks in probe order
//! (`vda`, `vdb`, …, `vdz`, `vdaa`, …), so the list is sorted by target in that order: the guest
//! sees its disks in target order, `/dev/vdX` as named when the targets leave no gaps.
//!
//! [`in_use`] turns the engine's "image locked" error into the name of the VM holding it.

pub mod in_use;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::domain::devices::Disk;
use crate::domain::{Domain, DomainError};
use crate::engine::config::{CacheMode, DiskConfig, DiskFormat, IoMode};

pub use in_use::{
    StartError, explain_in_use, explain_start_error, holder_of, in_use_message, start_error,
};

/// The most bytes virtio-blk gives a serial number (`VIRTIO_BLK_ID_BYTES`).
pub const SERIAL_MAX_BYTES: usize = 20;

/// One `<disk>` Vireo cannot attach, worded for the user: the disk (target and source) and the
/// fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disk {target} ({source_path}): {message}")]
pub struct DiskProblem {
    /// `<target dev>`, or `?` when missing.
    pub target: String,
    /// The `<source>` path, or `no source`.
    pub source_path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl DiskProblem {
    /// The problem as `validate` lists problems (on `<disk>`).
    pub fn to_domain_error(&self) -> DomainError {
        DomainError::Invalid {
            element: "<disk>".into(),
            message: format!("this host cannot start the VM with it: {self}"),
        }
    }
}

/// The disks of a domain as the engine attaches them, and what the user should know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedDisks {
    /// In target order (`vda`, `vdb`, …).
    pub disks: Vec<DiskConfig>,
    /// E.g. that a CD-ROM appears as a disk.
    pub warnings: Vec<String>,
}

/// [`map_disks`] over a typed domain's `<disk>`s.
pub fn domain_disks(domain: &Domain) -> Result<MappedDisks, Vec<DiskProblem>> {
    map_disks(&domain.disks())
}

/// `validate --host`'s view: every disk problem as a [`DomainError`] on `<disk>`, and the
/// warnings start would print.
pub fn disk_host_problems(domain: &Domain) -> (Vec<DomainError>, Vec<String>) {
    match domain_disks(domain) {
        Ok(mapped) => (Vec::new(), mapped.warnings),
        Err(problems) => (
            problems.iter().map(DiskProblem::to_domain_error).collect(),
            Vec::new(),
        ),
    }
}

/// A disk's place in the guest's order (CD-ROMs on other buses after the virtio disks, then the
/// target's index) and its config.
type Placed = ((bool, u64), DiskConfig);

/// Maps `<disk>`s to [`DiskConfig`]s sorted by target in Linux order. Every disk Vireo cannot
/// attach is a problem (all of them, not just the first); an empty CD-ROM drive is left out.
pub fn map_disks(disks: &[Disk]) -> Result<MappedDisks, Vec<DiskProblem>> {
    let mut problems = Vec::new();
    let mut mapped: Vec<Placed> = Vec::new();
    let mut by_target: HashMap<String, String> = HashMap::new();
    for disk in disks {
        let target = disk.target_dev.clone().unwrap_or_else(|| "?".into());
        let source = disk.source.clone().unwrap_or_else(|| "no source".into());
        if let Some(target_dev) = &disk.target_dev {
            if let Some(first) = by_target.get(target_dev) {
                problems.push(DiskProblem {
                    target: target.clone(),
                    source_path: source.clone(),
                    message: format!(
                        "target {target_dev} is also used by the disk with source {first}; give \
                         each disk its own <target dev='vdX'/>"
                    ),
                });
                continue;
            }
            by_target.insert(target_dev.clone(), source.clone());
        }
        match map_one(disk) {
            Ok(Some(mapped_disk)) => mapped.push(mapped_disk),
            Ok(None) => {}
            Err(message) => problems.push(DiskProblem {
                target,
                source_path: source,
                message,
            }),
        }
    }
    shared_images(&mapped, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    mapped.sort_by_key(|(key, _)| *key);
    let mut warnings = Vec::new();
    let disks: Vec<DiskConfig> = mapped.into_iter().map(|(_, d)| d).collect();
    for (position, disk) in disks.iter().enumerate() {
        if disk.cdrom {
            warnings.push(format!(
                "disk {} ({}) is a CD-ROM: Vireo attaches it read-only as a virtio disk, so the \
                 guest sees it as /dev/{}, not as a CD drive (it cannot be booted from or \
                 ejected yet)",
                disk.target,
                disk.path.display(),
                guest_name(position as u64)
            ));
        }
    }
    Ok(MappedDisks { disks, warnings })
}

/// Two disks of one VM on the same image (after resolving links) where either writes: the
/// image lock would refuse the second one at start, and the guest would corrupt it otherwise.
fn shared_images(mapped: &[Placed], problems: &mut Vec<DiskProblem>) {
    let canonical: Vec<PathBuf> = mapped
        .iter()
        .map(|(_, d)| std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone()))
        .collect();
    for (i, (_, disk)) in mapped.iter().enumerate() {
        let first = (0..i)
            .find(|&j| canonical[j] == canonical[i] && !(mapped[j].1.readonly && disk.readonly));
        if let Some(j) = first {
            problems.push(DiskProblem {
                target: disk.target.clone(),
                source_path: disk.path.display().to_string(),
                message: format!(
                    "the image is also disk {}'s, and a disk the guest writes cannot share its \
                     image; make both <readonly/> or give each its own image",
                    mapped[j].1.target
                ),
            });
        }
    }
}

/// The guest's name for the `index`th virtio disk: `vda` … `vdz`, `vdaa`, … (Linux's
/// `virtblk_name_format`).
pub fn guest_name(index: u64) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("vd{}", String::from_utf8(letters).expect("ASCII letters"))
}

/// The index of a target name in Linux order, whatever its prefix (`vdb` and `sdb` are 1,
/// `vdaa` is 26), as libvirt's `virDiskNameToIndex` reads it; `None` when it is not a
/// prefix followed by letters.
pub fn target_index(target: &str) -> Option<u64> {
    let letters = ["xvd", "ubd", "vd", "sd", "hd", "fd"]
        .iter()
        .find_map(|prefix| target.strip_prefix(prefix))?;
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    letters
        .bytes()
        .try_fold(0u64, |n, b| {
            n.checked_mul(26)?.checked_add(u64::from(b - b'a') + 1)
        })?
        .checked_sub(1)
}

/// One `<disk>` in its place; `Ok(None)` for an empty CD-ROM drive; `Err` with the message
/// otherwise.
fn map_one(disk: &Disk) -> Result<Option<Placed>, String> {
    let cdrom = match disk.device.as_deref() {
        None | Some("disk") => false,
        Some("cdrom") => true,
        Some(other @ ("floppy" | "lun")) => {
            return Err(format!(
                "device='{other}' is not supported: Vireo attaches disks and CD-ROMs only; use \
                 device='disk' with <target dev='vdX' bus='virtio'/>"
            ));
        }
        Some(other) => {
            return Err(format!(
                "device='{other}' is not a disk device libvirt knows; use device='disk' or \
                 device='cdrom'"
            ));
        }
    };
    let disk_type = disk.disk_type.as_deref().unwrap_or("file");
    if !matches!(disk_type, "file" | "block") {
        return Err(format!(
            "type='{disk_type}' disks are not supported yet: Vireo opens local image files \
             (type='file') and block devices (type='block'); copy the image to a local file"
        ));
    }
    let Some(source) = disk.source.as_deref().filter(|s| !s.is_empty()) else {
        if cdrom {
            return Ok(None); // an empty drive: nothing to attach
        }
        let attr = if disk_type == "block" { "dev" } else { "file" };
        return Err(format!(
            "no <source>; add <source {attr}='/path/to/image'/> or remove the disk"
        ));
    };
    let path = PathBuf::from(source);
    if !path.is_absolute() {
        return Err(format!(
            "the source path '{source}' is relative; libvirt requires an absolute path: write \
             it from / (e.g. {})",
            Path::new("/var/lib/images").join(&path).display()
        ));
    }
    let target = disk
        .target_dev
        .as_deref()
        .ok_or("no <target dev>; add <target dev='vdX' bus='virtio'/>")?;
    let bus = disk.target_bus.as_deref().or_else(|| {
        // libvirt picks the bus from the name when none is given: vdX is virtio.
        target.starts_with("vd").then_some("virtio")
    });
    let on_virtio = bus == Some("virtio");
    if !cdrom && !on_virtio {
        return Err(format!(
            "bus '{}' is not supported: Vireo attaches disks on virtio only: set <target \
             dev='vdX' bus='virtio'/>",
            bus.unwrap_or("none")
        ));
    }
    let index = match target_index(target) {
        Some(index) if !on_virtio || target.starts_with("vd") => index,
        _ => {
            return Err(format!(
                "target '{target}' is not a virtio disk name; name it vda, vdb, … (vdz, vdaa, \
                 …) in the order the guest should see the disks"
            ));
        }
    };
    let format = match disk.driver_type.as_deref() {
        None => DiskFormat::Raw,
        Some(value) => DiskFormat::from_libvirt(value).ok_or_else(|| {
            format!(
                "<driver type='{value}'> is not supported: Vireo opens raw and qcow2 images; \
                 convert it (qemu-img convert -O qcow2 {source} NEW.qcow2) and point <source> \
                 at the copy"
            )
        })?,
    };
    let cache = match disk.cache.as_deref() {
        None => CacheMode::default(),
        Some("directsync") => {
            return Err(
                "<driver cache='directsync'> is not supported yet: use cache='none' (no host \
                 page cache; the guest's flushes reach the disk) or cache='writethrough' \
                 (every write reaches the disk)"
                    .into(),
            );
        }
        Some(value) => CacheMode::from_libvirt(value).ok_or_else(|| {
            format!(
                "<driver cache='{value}'> is not a cache mode; use none, writeback, \
                 writethrough or unsafe"
            )
        })?,
    };
    let io = match disk.io.as_deref() {
        None | Some("default" | "threads") => IoMode::Threads,
        // Vireo's native submission is io_uring.
        Some("native" | "io_uring") => IoMode::Native,
        Some(value) => {
            return Err(format!(
                "<driver io='{value}'> is not an I/O mode; use threads or native"
            ));
        }
    };
    let discard = match disk.discard.as_deref() {
        None | Some("ignore") => false,
        Some("unmap") => true,
        Some(value) => {
            return Err(format!(
                "<driver discard='{value}'> is not a discard mode; use unmap or ignore"
            ));
        }
    };
    if let Some(serial) = &disk.serial
        && serial.len() > SERIAL_MAX_BYTES
    {
        return Err(format!(
            "<serial> '{serial}' is {} bytes; the guest reads at most {SERIAL_MAX_BYTES}: \
             shorten it",
            serial.len()
        ));
    }
    Ok(Some((
        (!on_virtio, index),
        DiskConfig {
            target: target.to_owned(),
            path,
            format,
            readonly: disk.readonly || cdrom,
            cache,
            io,
            discard,
            serial: disk.serial.clone(),
            cdrom,
        },
    )))
}

#[cfg(test)]
mod tests;
