//! Opening a disk for a VM: the read-only checks of [`super::probe`], the image lock, the cache
//! mode's open flags, then `imago` (raw or qcow2). Backing files of a qcow2 image are opened by
//! [`LockingGate`], which checks and read-locks each of them the same way.

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use imago::file::File as ImagoFile;
use imago::format::gate::ImplicitOpenGate;
use imago::qcow2::Qcow2;
use imago::raw::Raw;
use imago::{DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, StorageOpenOptions};

use super::image::Image;
use super::lock::{ImageLock, LockError, LockMode};
use super::{BlockError, DiskImage, probe};
use crate::engine::config::{CacheMode, DiskConfig, DiskFormat};

/// See [`super::open`].
pub(crate) fn open(disk: &DiskConfig) -> Result<Box<dyn DiskImage>, BlockError> {
    let fail = |problem: String| BlockError::Disk {
        target: disk.target.clone(),
        path: disk.path.clone(),
        problem,
    };
    let found = probe::probe(&disk.path).map_err(fail)?;
    probe::check_declared(&found, disk.format).map_err(fail)?;

    let writable = !disk.readonly;
    let direct = disk.cache == CacheMode::None;
    let lock = lock(&disk.path, &disk.target, writable)?;
    let file = open_file(&disk.path, writable, direct).map_err(fail)?;
    // Raw images: the device submits reads and writes on the same open file itself.
    let raw = match disk.format {
        DiskFormat::Raw => {
            let clone = file
                .try_clone()
                .map_err(|e| fail(format!("the image cannot be used ({e})")))?;
            let info = super::RawFile {
                fd: std::os::fd::AsRawFd::as_raw_fd(&clone),
                alignment: if direct { 512 } else { 1 },
                io: disk.io,
                sync_each_write: disk.cache == CacheMode::Writethrough,
            };
            Some((clone, info))
        }
        DiskFormat::Qcow2 => None,
    };
    let opts = StorageOpenOptions::new()
        .filename(&disk.path)
        .write(writable)
        .direct(direct);
    let storage = ImagoFile::from_open_file(file, opts.clone())
        .map_err(|e| fail(format!("the image cannot be used ({e})")))?;

    let mut locks = vec![lock];
    let access = match disk.format {
        DiskFormat::Raw => {
            let raw = Raw::builder(storage)
                .write(writable)
                .open(DenyImplicitOpenGate::default())
                .map_err(|e| fail(format!("the image cannot be used ({e})")))?;
            FormatAccess::new(raw)
        }
        DiskFormat::Qcow2 => {
            let gate = LockingGate::new(&disk.target, direct);
            let opened = Qcow2::<ImagoFile>::builder(storage)
                .write(writable)
                .storage_open_options(opts)
                .open(gate.clone());
            let mut state = gate.state.borrow_mut();
            let qcow2 = opened.map_err(|e| {
                state.failure.take().unwrap_or_else(|| {
                    fail(format!(
                        "the qcow2 image cannot be opened ({e}): check it with `qemu-img check`"
                    ))
                })
            })?;
            locks.append(&mut state.locks);
            FormatAccess::new(qcow2)
        }
    };
    Ok(Box::new(Image::new(access, disk, locks, raw)))
}

/// Takes the image lock for a disk (write or read).
fn lock(path: &Path, target: &str, write: bool) -> Result<ImageLock, BlockError> {
    let mode = if write {
        LockMode::Write
    } else {
        LockMode::Read
    };
    ImageLock::acquire(path, mode).map_err(|e| match e {
        LockError::InUse => BlockError::InUse {
            target: Some(target.to_string()),
            path: path.to_path_buf(),
            write,
        },
        LockError::Io(e) => BlockError::Disk {
            target: target.to_string(),
            path: path.to_path_buf(),
            problem: format!(
                "the image cannot be locked ({e}); its filesystem must support POSIX locks"
            ),
        },
    })
}

/// Opens the image for I/O with the cache mode's flags. The error is the problem in words.
pub(crate) fn open_file(
    path: &Path,
    writable: bool,
    direct: bool,
) -> Result<std::fs::File, String> {
    let mut options = OpenOptions::new();
    options.read(true).write(writable);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    options
        .open(path)
        .map_err(|e| match (e.raw_os_error(), writable) {
            (Some(libc::EINVAL), _) if direct => format!(
                "the filesystem of {} does not support O_DIRECT, which cache='none' needs; use \
             cache='writeback'",
                path.display()
            ),
            (Some(libc::EACCES) | Some(libc::EPERM), true) => {
                "the image is not writable by this user: make it writable (chmod/chown), or attach \
             it read-only (<readonly/>)"
                    .to_string()
            }
            (Some(libc::EROFS), true) => "the image is on a read-only filesystem: attach it \
                                      read-only (<readonly/>) or move it"
                .to_string(),
            _ => format!("the image cannot be opened ({e})"),
        })
}

/// What the gate learnt while imago opened a backing chain.
struct GateState {
    /// The locks of every file opened so far.
    locks: Vec<ImageLock>,
    /// The first refusal, worded for the user (imago's own error names less).
    failure: Option<BlockError>,
}

/// Opens the files a qcow2 image refers to (its backing chain) the way [`open`] opens the image
/// itself: checked read-only first, locked (read-only for backing files), with the same cache
/// flags. Imago passes clones down the chain; they share one state.
#[derive(Clone)]
struct LockingGate {
    target: String,
    direct: bool,
    state: Rc<RefCell<GateState>>,
}

impl LockingGate {
    fn new(target: &str, direct: bool) -> Self {
        Self {
            target: target.to_string(),
            direct,
            state: Rc::new(RefCell::new(GateState {
                locks: Vec::new(),
                failure: None,
            })),
        }
    }

    /// Records a refusal for `path` and returns the error imago passes up.
    fn refuse(&self, failure: BlockError) -> io::Error {
        let text = failure.to_string();
        let mut state = self.state.borrow_mut();
        if state.failure.is_none() {
            state.failure = Some(failure);
        }
        io::Error::other(text)
    }

    fn backing_problem(&self, path: &Path, problem: String) -> BlockError {
        BlockError::Disk {
            target: self.target.clone(),
            path: path.to_path_buf(),
            problem,
        }
    }
}

impl ImplicitOpenGate<ImagoFile> for LockingGate {
    fn open_format<F: FormatDriverBuilder<ImagoFile>>(
        &mut self,
        builder: F,
    ) -> io::Result<FormatAccess<ImagoFile>> {
        Ok(FormatAccess::new(builder.open(self.clone())?))
    }

    fn open_storage(&mut self, opts: StorageOpenOptions) -> io::Result<ImagoFile> {
        let path: PathBuf = opts
            .get_filename()
            .ok_or_else(|| io::Error::other("a file the image refers to has no name"))?
            .to_path_buf();
        let writable = opts.get_writable();
        if writable {
            // Only an external data file is opened writable; Vireo does not create them.
            return Err(self.refuse(
                self.backing_problem(
                    &path,
                    "the qcow2 image uses an external data file, which Vireo does not support: \
                 convert it (qemu-img convert -O qcow2)"
                        .into(),
                ),
            ));
        }
        if let Err(problem) = probe::probe(&path) {
            let problem = if path.exists() {
                format!("a backing file of the image is unusable: {problem}")
            } else {
                "the image's backing file does not exist: restore it, or point the image at \
                 its new place (qemu-img rebase -u -b NEW)"
                    .to_string()
            };
            return Err(self.refuse(self.backing_problem(&path, problem)));
        }
        let lock = lock(&path, &self.target, false).map_err(|e| self.refuse(e))?;
        let file = open_file(&path, false, self.direct)
            .map_err(|problem| self.refuse(self.backing_problem(&path, problem)))?;
        self.state.borrow_mut().locks.push(lock);
        ImagoFile::from_open_file(file, opts.direct(self.direct))
    }
}
