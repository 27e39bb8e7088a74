//! Adding and removing disks of a stored definition (`vireoctl attach-disk` / `detach-disk`):
//! the new disk must be one start can attach ([`super::disks::map_disks`]), its image must
//! exist and have the format the definition will declare (read from the image when not
//! given), and the edit goes through the store (atomic, locked, the previous file kept on any
//! failure). Whether a running VM may be edited is the caller's policy: this changes the
//! stored definition only, which takes effect at the next start.

use std::path::{Path, PathBuf};

use crate::domain::devices::{Disk, NewDisk};
use crate::domain::store::{DomainStore, StoreError};
use crate::engine::block::{self, BlockError};
use crate::engine::config::DiskFormat;

use super::disks::{DiskProblem, map_disks};

/// Why a disk cannot be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum DiskEditError {
    /// Reading or writing the definition failed (not found, conflict, invalid, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target already names a disk of this domain.
    #[error(
        "domain '{domain}' already has a disk on target {target} ({source_path}); choose another \
         target or detach that disk first"
    )]
    TargetTaken {
        /// The domain.
        domain: String,
        /// The target asked for.
        target: String,
        /// The source of the disk already there.
        source_path: String,
    },
    /// No disk has this target.
    #[error(
        "domain '{domain}' has no disk on target {target}; its disks are on: {}",
        list_or_none(.targets)
    )]
    NoSuchTarget {
        /// The domain.
        domain: String,
        /// The target asked for.
        target: String,
        /// The targets it has.
        targets: Vec<String>,
    },
    /// The image cannot be used (missing, unreadable, not an image).
    #[error(transparent)]
    Image(#[from] BlockError),
    /// The image's content is not the format asked for.
    #[error(
        "{path} is a {found} image but {asked} was asked for; drop --subdriver to use {found}, \
         or convert the image (qemu-img convert -O {asked} …)"
    )]
    FormatMismatch {
        /// The image.
        path: PathBuf,
        /// What it is.
        found: &'static str,
        /// What was asked.
        asked: &'static str,
    },
    /// Start would refuse the disk as described.
    #[error("{0}")]
    Unsupported(DiskProblem),
}

fn list_or_none(targets: &[String]) -> String {
    if targets.is_empty() {
        "none (it has no disks)".into()
    } else {
        targets.join(", ")
    }
}

/// A disk to add: what `attach-disk`'s arguments say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskToAttach {
    /// The image (made absolute against the current directory when relative).
    pub source: PathBuf,
    /// `vdX`.
    pub target: String,
    /// The declared format; `None` takes the image's own.
    pub format: Option<DiskFormat>,
    /// `virtio` (anything else is refused, as start would).
    pub bus: String,
    /// A CD-ROM (read-only; a warning at start) instead of a disk.
    pub cdrom: bool,
    /// `<readonly/>`.
    pub readonly: bool,
    /// `<driver cache>` (libvirt's spelling).
    pub cache: Option<String>,
    /// `<serial>`.
    pub serial: Option<String>,
}

/// Adds `disk` to the stored definition of `name`; returns the `<disk>` as written.
pub fn attach_disk(
    store: &DomainStore,
    name: &str,
    disk: &DiskToAttach,
) -> Result<NewDisk, DiskEditError> {
    let mut stored = store.get(name)?;
    if let Some(taken) = stored
        .domain
        .disks()
        .into_iter()
        .find(|d| d.target_dev.as_deref() == Some(disk.target.as_str()))
    {
        return Err(DiskEditError::TargetTaken {
            domain: name.to_owned(),
            target: disk.target.clone(),
            source_path: taken.source.unwrap_or_else(|| "no source".into()),
        });
    }
    let source = std::path::absolute(&disk.source).map_err(|e| BlockError::Image {
        path: disk.source.clone(),
        problem: format!("cannot make the path absolute: {e}; give an absolute path"),
    })?;
    let mut new = NewDisk {
        path: source.display().to_string(),
        driver_type: disk.format.unwrap_or_default().as_str().to_owned(),
        target_dev: disk.target.clone(),
        bus: disk.bus.clone(),
        device: if disk.cdrom { "cdrom" } else { "disk" }.to_owned(),
        readonly: disk.readonly || disk.cdrom,
        cache: disk.cache.clone(),
        serial: disk.serial.clone(),
    };
    // Start's own verdict on the disk as written (bus, target name, cache, serial, an image
    // another disk of this VM writes), before the image is looked at. Problems of the disks
    // already there are not this command's to refuse.
    let added = |new: &NewDisk| {
        let mut edited = stored.domain.clone();
        edited.add_device(Disk::new_element(new));
        edited
    };
    if let Err(problems) = map_disks(&added(&new).disks()) {
        if let Some(problem) = problems.into_iter().find(|p| p.target == disk.target) {
            return Err(DiskEditError::Unsupported(problem));
        }
    }
    new.driver_type = checked_format(&source, disk.format)?.as_str().to_owned();
    stored.domain = added(&new);
    store.save(&mut stored)?;
    Ok(new)
}

/// Removes the disk on `target` from the stored definition of `name`; returns its source.
pub fn detach_disk(
    store: &DomainStore,
    name: &str,
    target: &str,
) -> Result<Option<String>, DiskEditError> {
    let mut stored = store.get(name)?;
    let disks = stored.domain.disks();
    let Some(disk) = disks
        .iter()
        .find(|d| d.target_dev.as_deref() == Some(target))
    else {
        return Err(DiskEditError::NoSuchTarget {
            domain: name.to_owned(),
            target: target.to_owned(),
            targets: disks.iter().filter_map(|d| d.target_dev.clone()).collect(),
        });
    };
    let source = disk.source.clone();
    stored.domain.remove_disk(target);
    store.save(&mut stored)?;
    Ok(source)
}

/// The image's format, checked against the one asked for (a qcow2 image declared raw would
/// show the guest its metadata; a raw one declared qcow2 does not open).
fn checked_format(path: &Path, asked: Option<DiskFormat>) -> Result<DiskFormat, DiskEditError> {
    let info = block::inspect(path)?;
    match asked {
        Some(asked) if asked != info.format => Err(DiskEditError::FormatMismatch {
            path: path.to_owned(),
            found: info.format.as_str(),
            asked: asked.as_str(),
        }),
        _ => Ok(info.format),
    }
}
