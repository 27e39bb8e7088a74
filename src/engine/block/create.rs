//! Images outside a VM: creating them (atomically: a temporary name in the same folder, then a
//! link to the final name that never replaces a file), inspecting them, resizing them under an
//! exclusive image lock.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use imago::file::File as ImagoFile;
use imago::format::drivers::FormatDriverInstance;
use imago::qcow2::Qcow2;
use imago::raw::Raw;
use imago::{
    DenyImplicitOpenGate, FormatAccess, FormatCreateBuilder, FormatDriverBuilder,
    StorageOpenOptions,
};

use super::lock::{ImageLock, LockError, LockMode};
use super::{BlockError, ImageInfo, probe};
use crate::engine::config::DiskFormat;

/// The largest image Vireo makes or grows to: beyond this a typo is likelier than a wish.
pub(crate) const MAX_SIZE: u64 = 64 << 40;

fn image_error(path: &Path, problem: impl Into<String>) -> BlockError {
    BlockError::Image {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Checks a requested size: whole sectors, not zero, not absurd.
fn check_size(path: &Path, size: u64) -> Result<(), BlockError> {
    if size == 0 {
        return Err(image_error(path, "the size must be more than 0 bytes"));
    }
    if size % 512 != 0 {
        return Err(image_error(
            path,
            format!(
                "the size ({size} bytes) is not a multiple of 512 bytes: use a whole number of \
                 sectors, e.g. {} bytes",
                size.div_ceil(512) * 512
            ),
        ));
    }
    if size > MAX_SIZE {
        return Err(image_error(
            path,
            format!("the size ({size} bytes) is larger than the limit of 64 TiB"),
        ));
    }
    Ok(())
}

/// See [`super::create`].
pub(crate) fn create(
    path: &Path,
    format: DiskFormat,
    virtual_size: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<(), BlockError> {
    check_size(path, virtual_size)?;
    if fs::symlink_metadata(path).is_ok() {
        return Err(image_error(
            path,
            "the file already exists: choose another name, or delete the old image first",
        ));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(image_error(path, "this is not a file path"));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let temp = dir.join(format!(
        ".{}.vireo-new-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    progress(0.0);
    let made = write_new(&temp, format, virtual_size).and_then(|()| {
        progress(0.9);
        // A hard link never replaces an existing file, unlike rename.
        fs::hard_link(&temp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                "the file already exists: choose another name, or delete the old image first"
                    .to_string()
            }
            _ => format!("the image cannot be put in place ({e})"),
        })
    });
    let _ = fs::remove_file(&temp);
    made.map_err(|problem| image_error(path, problem))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    progress(1.0);
    Ok(())
}

/// Writes a new image at the temporary `temp`.
fn write_new(temp: &Path, format: DiskFormat, size: u64) -> Result<(), String> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "its folder is not writable by this user: choose another folder".to_string()
            }
            std::io::ErrorKind::NotFound => {
                "its folder does not exist: create the folder first".to_string()
            }
            _ => format!("the image cannot be created ({e})"),
        })?;
    match format {
        DiskFormat::Raw => {
            file.set_len(size)
                .map_err(|e| format!("the raw image cannot be sized ({e})"))?;
        }
        DiskFormat::Qcow2 => {
            let opts = StorageOpenOptions::new().filename(temp).write(true);
            let storage =
                ImagoFile::from_open_file(file.try_clone().map_err(|e| e.to_string())?, opts)
                    .map_err(|e| format!("the qcow2 image cannot be created ({e})"))?;
            // Metadata preallocation (qemu-img's preallocation=metadata, what libvirt gives a
            // qcow2 volume allocated up front): every L2 table and cluster mapping is written now,
            // so a running guest never makes the image allocate metadata. imago 0.2 writes a new
            // L2 table's L1 entry before the refcount that covers it reaches the file, so a VMM
            // killed in that window leaves a cluster referenced with refcount 0 (`qemu-img check`:
            // an error, not a leak). Data stays sparse on the host.
            Qcow2::<ImagoFile>::create_builder(storage)
                .size(size)
                .cluster_size(64 << 10)
                .preallocate(imago::format::PreallocateMode::FormatAllocate)
                .create()
                .map_err(|e| format!("the qcow2 image cannot be created ({e})"))?;
        }
    }
    file.sync_all()
        .map_err(|e| format!("the image cannot be written to disk ({e})"))
}

/// See [`super::inspect`].
pub(crate) fn inspect(path: &Path) -> Result<ImageInfo, BlockError> {
    let found = probe::probe(path).map_err(|p| image_error(path, p))?;
    let allocated = fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .map_err(|e| image_error(path, format!("the image cannot be examined ({e})")))?;
    match found.format {
        DiskFormat::Raw => Ok(ImageInfo {
            format: DiskFormat::Raw,
            virtual_size: found.len,
            allocated,
            backing: None,
        }),
        DiskFormat::Qcow2 => {
            probe::check_declared(&found, DiskFormat::Qcow2).map_err(|p| image_error(path, p))?;
            let qcow2 = open_qcow2_alone(path, false)?;
            Ok(ImageInfo {
                format: DiskFormat::Qcow2,
                virtual_size: qcow2.size(),
                allocated,
                backing: qcow2.implicit_backing_file().map(PathBuf::from),
            })
        }
    }
}

/// Opens a qcow2 image without its backing chain or data file (for its header).
fn open_qcow2_alone(path: &Path, write: bool) -> Result<Qcow2<ImagoFile>, BlockError> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(|e| image_error(path, format!("the image cannot be opened ({e})")))?;
    let opts = StorageOpenOptions::new().filename(path).write(write);
    let storage = ImagoFile::from_open_file(file, opts)
        .map_err(|e| image_error(path, format!("the image cannot be opened ({e})")))?;
    Qcow2::<ImagoFile>::builder(storage)
        .write(write)
        .backing(None)
        .data_file(None)
        .open(DenyImplicitOpenGate::default())
        .map_err(|e| {
            image_error(
                path,
                format!("the qcow2 image cannot be opened ({e}): check it with `qemu-img check`"),
            )
        })
}

/// See [`super::resize`].
pub(crate) fn resize(path: &Path, new_size: u64, allow_shrink: bool) -> Result<(), BlockError> {
    check_size(path, new_size)?;
    let found = probe::probe(path).map_err(|p| image_error(path, p))?;
    probe::check_declared(&found, found.format).map_err(|p| image_error(path, p))?;
    let _lock = ImageLock::acquire(path, LockMode::Exclusive).map_err(|e| match e {
        LockError::InUse => BlockError::InUse {
            target: None,
            path: path.to_path_buf(),
            write: true,
        },
        LockError::Io(e) => image_error(path, format!("the image cannot be locked ({e})")),
    })?;
    let refuse_shrink = |old: u64| {
        image_error(
            path,
            format!(
                "{new_size} bytes is smaller than the image ({old} bytes); shrinking loses the \
                 data at its end: shrink the file systems inside first and allow shrinking"
            ),
        )
    };
    let fail = |e: std::io::Error| image_error(path, format!("the image cannot be resized ({e})"));
    match found.format {
        DiskFormat::Raw => {
            if new_size < found.len && !allow_shrink {
                return Err(refuse_shrink(found.len));
            }
            let file = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(fail)?;
            let storage = ImagoFile::from_open_file(file, StorageOpenOptions::new().write(true))
                .map_err(fail)?;
            let mut raw = FormatAccess::new(
                Raw::builder(storage)
                    .write(true)
                    .open(DenyImplicitOpenGate::default())
                    .map_err(fail)?,
            );
            raw.resize(new_size, imago::format::PreallocateMode::None)
                .map_err(fail)?;
            raw.flush().and_then(|()| raw.sync()).map_err(fail)
        }
        DiskFormat::Qcow2 => {
            let qcow2 = open_qcow2_alone(path, true)?;
            let old = qcow2.size();
            if new_size < old && !allow_shrink {
                return Err(refuse_shrink(old));
            }
            let mut access = FormatAccess::new(qcow2);
            access
                .resize(new_size, imago::format::PreallocateMode::None)
                .map_err(fail)?;
            access.flush().and_then(|()| access.sync()).map_err(fail)
        }
    }
}
