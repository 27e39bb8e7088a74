//! Domain ids: virsh shows an `Id` for each running domain, a small number that grows with
//! each start and stays the same while the domain runs (also across `reboot`). The last id
//! handed out lives in the runtime directory (`last-id`), so ids restart from 1 after a host
//! reboot, as libvirt's do after libvirtd restarts with nothing running.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;

use super::{RunnerError, runtime_dir};

/// The next id: one more than the last handed out on this host since boot. Runners started at
/// the same moment get different ids (the counter file is locked while it is read and
/// written).
pub fn allocate_id() -> Result<u32, RunnerError> {
    let path = runtime_dir()?.join("last-id");
    let io = |cause| RunnerError::Io {
        name: "last-id".to_string(),
        cause,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for the call;
    // the lock goes with the descriptor when `file` is dropped.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    let id = text
        .trim()
        .parse::<u32>()
        .unwrap_or(0)
        .wrapping_add(1)
        .max(1);
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(format!("{id}\n").as_bytes()).map_err(io)?;
    Ok(id)
}
