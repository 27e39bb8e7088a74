//! Image locks that QEMU honours and that honour QEMU's, so a Vireo VM, a QEMU VM and
//! `qemu-img` never write one image at the same time.
//!
//! QEMU's `file-posix` driver describes what an opener does with open-file-description (OFD)
//! locks on single bytes: a shared lock on byte `100 + p` says "I hold permission p", one on
//! byte `200 + p` says "I do not let others hold permission p". An opener takes its bytes first
//! and then tests the opposite bytes for any lock of another open file description; two
//! openers racing therefore both see each other and both back off, never both win.
//! Permission bits (QEMU's `BLK_PERM_*`): 0 consistent read, 1 write, 2 write-unchanged,
//! 3 resize.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Byte of "I hold permission p".
const PERM_BASE: i64 = 100;
/// Byte of "I do not share permission p".
const SHARED_BASE: i64 = 200;
/// QEMU's permission bits.
const CONSISTENT_READ: u8 = 1 << 0;
const WRITE: u8 = 1 << 1;
const WRITE_UNCHANGED: u8 = 1 << 2;
const RESIZE: u8 = 1 << 3;
/// Every permission QEMU locks.
const ALL: u8 = CONSISTENT_READ | WRITE | WRITE_UNCHANGED | RESIZE;

/// What an opener wants to do with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    /// Read it; no one may write or resize it meanwhile, other readers are welcome.
    Read,
    /// Read and write it; others may only hold it in ways that let it be written (QEMU's
    /// readers that share writes, such as `qemu-io -r`), never write or resize it.
    Write,
    /// Change its size (resize): no one else may have it open in any locked way.
    Exclusive,
}

impl LockMode {
    /// The permissions held (bytes 100+p).
    fn perms(self) -> u8 {
        match self {
            Self::Read => CONSISTENT_READ,
            Self::Write => CONSISTENT_READ | WRITE | WRITE_UNCHANGED,
            Self::Exclusive => ALL,
        }
    }

    /// The permissions others may hold meanwhile.
    fn shared(self) -> u8 {
        match self {
            Self::Read | Self::Write => CONSISTENT_READ | WRITE_UNCHANGED,
            Self::Exclusive => 0,
        }
    }
}

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another open file description holds a conflicting lock.
    InUse,
    /// The lock file could not be opened or locked for another reason.
    Io(io::Error),
}

/// Held image locks; dropping it (closing its own descriptor) releases them.
#[derive(Debug)]
pub(crate) struct ImageLock {
    _file: File,
}

impl ImageLock {
    /// Takes the locks of `mode` on `path` on a descriptor of its own (OFD locks belong to the
    /// open file description, so the image may be opened separately with any flags).
    ///
    /// A conflict is checked again a few times over ~100 ms before it is reported: while any
    /// thread of this process spawns a child, the child briefly shares every open file
    /// description (close-on-exec closes them only at its exec), so a lock just released by
    /// closing its descriptor can linger for that moment. A real holder stays.
    pub(crate) fn acquire(path: &Path, mode: LockMode) -> Result<Self, LockError> {
        let mut attempts = 0;
        loop {
            match Self::try_acquire(path, mode) {
                Err(LockError::InUse) if attempts < 5 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    fn try_acquire(path: &Path, mode: LockMode) -> Result<Self, LockError> {
        let file = File::open(path).map_err(LockError::Io)?;
        let (perms, shared) = (mode.perms(), mode.shared());
        for bit in 0..4 {
            let p = 1u8 << bit;
            if perms & p != 0 {
                set_shared(&file, PERM_BASE + i64::from(bit))?;
            }
            if ALL & !shared & p != 0 {
                set_shared(&file, SHARED_BASE + i64::from(bit))?;
            }
        }
        for bit in 0..4 {
            let p = 1u8 << bit;
            if perms & p != 0 && held_by_other(&file, SHARED_BASE + i64::from(bit))? {
                return Err(LockError::InUse);
            }
            if ALL & !shared & p != 0 && held_by_other(&file, PERM_BASE + i64::from(bit))? {
                return Err(LockError::InUse);
            }
        }
        Ok(Self { _file: file })
    }
}

/// A `struct flock` for one byte.
fn flock(kind: libc::c_short, start: i64) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is a valid value (l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = 1;
    fl
}

/// Takes a shared OFD lock on byte `start`.
fn set_shared(file: &File, start: i64) -> Result<(), LockError> {
    let fl = flock(libc::F_RDLCK as libc::c_short, start);
    // SAFETY: the descriptor is open for the call's duration and `fl` is a valid flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Err(LockError::InUse),
        _ => Err(LockError::Io(err)),
    }
}

/// Whether another open file description holds any lock on byte `start`.
fn held_by_other(file: &File, start: i64) -> Result<bool, LockError> {
    let mut fl = flock(libc::F_WRLCK as libc::c_short, start);
    // SAFETY: as above; F_OFD_GETLK writes the conflicting lock (or F_UNLCK) into `fl`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(LockError::Io(io::Error::last_os_error()));
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(1 << 20).unwrap();
        f
    }

    #[test]
    fn writers_exclude_each_other_and_readers() {
        let f = image();
        let w = ImageLock::acquire(f.path(), LockMode::Write).unwrap();
        assert!(matches!(
            ImageLock::acquire(f.path(), LockMode::Write),
            Err(LockError::InUse)
        ));
        assert!(matches!(
            ImageLock::acquire(f.path(), LockMode::Read),
            Err(LockError::InUse)
        ));
        drop(w);
        ImageLock::acquire(f.path(), LockMode::Write).unwrap();
    }

    #[test]
    fn readers_share_but_keep_writers_and_resizers_out() {
        let f = image();
        let _a = ImageLock::acquire(f.path(), LockMode::Read).unwrap();
        let _b = ImageLock::acquire(f.path(), LockMode::Read).unwrap();
        assert!(matches!(
            ImageLock::acquire(f.path(), LockMode::Write),
            Err(LockError::InUse)
        ));
        assert!(matches!(
            ImageLock::acquire(f.path(), LockMode::Exclusive),
            Err(LockError::InUse)
        ));
    }

    #[test]
    fn a_failed_attempt_leaves_no_locks_behind() {
        let f = image();
        let r = ImageLock::acquire(f.path(), LockMode::Read).unwrap();
        assert!(ImageLock::acquire(f.path(), LockMode::Write).is_err());
        drop(r);
        // The failed writer's descriptor was closed with its error, so nothing blocks now.
        ImageLock::acquire(f.path(), LockMode::Exclusive).unwrap();
    }
}
