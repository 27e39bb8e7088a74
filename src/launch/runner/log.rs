//! Each VM's log file, as libvirt keeps one per domain: the runner's own messages and those
//! of the engine, passt and the VNC server inside it (a dying passt, a refused device, a
//! guest crash). The runner is detached from any terminal, so without this file whatever it
//! logs would be lost. It lives under `$XDG_STATE_HOME/vireo/log/` (`~/.local/state`), the
//! XDG place for logs, private to the user (0700 directory, 0600 files), and is appended to
//! by every run of the VM, one header line per start; past [`ROTATE_AT`] it is moved to
//! `NAME.log.old` first, so a chatty VM never fills the disk.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::RunnerError;
use super::paths::{Trust, ensure_private_dir};
use crate::domain::name;

/// Size past which a VM's log is moved aside when the VM starts.
pub const ROTATE_AT: u64 = 1024 * 1024;

/// The user's XDG state directory: `$XDG_STATE_HOME`, else `~/.local/state`.
fn state_home() -> Result<PathBuf, RunnerError> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        })
        .ok_or_else(|| RunnerError::UnsafeRuntimeDir {
            dir: PathBuf::from("$XDG_STATE_HOME"),
            problem: "neither XDG_STATE_HOME nor HOME is set".into(),
            fix: "set HOME (VM logs go to ~/.local/state/vireo/log)".into(),
        })
}

/// The log file of domain `name` (its directory created, mode 0700, if missing).
pub fn log_path(name: &str) -> Result<PathBuf, RunnerError> {
    log_path_in(&state_home()?, name)
}

fn log_path_in(state_home: &Path, name: &str) -> Result<PathBuf, RunnerError> {
    name::check(name)?;
    let dir = state_home.join("vireo").join("log");
    ensure_private_dir(&dir, Trust::OwnParent)?;
    Ok(dir.join(format!("{name}.log")))
}

/// Opens the log of `name` for appending (0600), moving a log past [`ROTATE_AT`] aside first.
pub fn open_log(name: &str) -> Result<File, RunnerError> {
    open_at(name, &log_path(name)?)
}

fn open_at(name: &str, path: &Path) -> Result<File, RunnerError> {
    let io = |cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    };
    if std::fs::metadata(path).is_ok_and(|m| m.len() > ROTATE_AT) {
        std::fs::rename(path, path.with_extension("log.old")).map_err(io)?;
    }
    // O_NOFOLLOW: a planted symlink is refused, never written through.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_log_is_private_appended_and_rotated_past_its_limit() {
        let state = tempfile::tempdir().unwrap();
        let path = log_path_in(state.path(), "logged").unwrap();
        assert_eq!(path, state.path().join("vireo/log/logged.log"));
        writeln!(open_at("logged", &path).unwrap(), "first").unwrap();
        writeln!(open_at("logged", &path).unwrap(), "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "only the user reads a VM's log");
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::write(&path, vec![b'x'; ROTATE_AT as usize + 1]).unwrap();
        writeln!(open_at("logged", &path).unwrap(), "fresh").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fresh\n");
        let old = std::fs::metadata(path.with_extension("log.old")).unwrap();
        assert_eq!(old.len(), ROTATE_AT + 1);
        assert!(
            log_path_in(state.path(), "../x").is_err(),
            "names are checked first"
        );
        // A symlink planted where the log goes is refused, not followed.
        let target = state.path().join("elsewhere");
        let planted = state.path().join("vireo/log/planted.log");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        assert!(open_at("planted", &planted).is_err());
        assert!(!target.exists());
    }
}
