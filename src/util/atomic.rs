//! Crash-safe file replacement and per-file advisory locks.
//!
//! A definition must never be torn by a crash or power loss: we write a temp file in the same
//! directory (so the rename cannot cross filesystems), fsync it, rename it over the target (atomic
//! on POSIX) and fsync the directory so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Replaces `path` with `contents` atomically: readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files left in `dir` by writers that died mid-save (SIGKILL, power loss): those
/// whose writer process no longer exists. Live writers' temp files are left alone.
pub fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_file_writer(&name) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The writer's pid if `name` is one of [`write_atomic`]'s temp files (`.NAME.tmp.PID.RANDOM`).
fn temp_file_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp.")?;
    let (pid, random) = tail.split_once('.')?;
    (random.len() == 32).then_some(())?;
    pid.parse().ok()
}

/// Makes renames and unlinks in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock (flock) held until dropped.
///
/// Locks live in separate `.NAME.lock` files because the data file's inode is replaced on every
/// save, and a lock on a replaced inode would protect nothing.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the lock at `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // SAFETY: flock only reads the descriptor number, which `file` keeps open for the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FileLock {
            _file: file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.xml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temp_files_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let random = "0".repeat(32);
        let dead = dir.path().join(format!(".a.xml.tmp.999999999.{random}"));
        let live = dir
            .path()
            .join(format!(".a.xml.tmp.{}.{random}", std::process::id()));
        let data = dir.path().join("a.xml");
        for p in [&dead, &live, &data] {
            fs::write(p, b"x").unwrap();
        }
        remove_stale_temp_files(dir.path());
        assert!(!dead.exists());
        assert!(live.exists() && data.exists());
    }

    #[test]
    fn lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".a.lock");
        let held = FileLock::acquire(&path).unwrap();
        let other = File::open(&path).unwrap();
        // SAFETY: `other` is an open descriptor for the duration of the call.
        let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, -1, "a second exclusive lock must not be granted");
        drop(held);
        // SAFETY: as above.
        let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0);
    }
}
