//! Where runners keep their files, and why those places are safe to use.
//!
//! The runtime directory holds control sockets: whoever can create files there can pose as a
//! runner (and receive console input) or make a runner write where they choose through a
//! planted symlink. So it must be private to this user, as ssh-agent and libvirt insist for
//! theirs: `$XDG_RUNTIME_DIR/vireo` (inside a directory that is already the user's own) or,
//! without XDG_RUNTIME_DIR, `/tmp/vireo-<uid>`, which anybody could have created first, so an
//! existing one is only used when it is a real directory (not a symlink), owned by this user,
//! with mode 0700. File names come from domain names, checked by [`crate::domain::name`]
//! before any path is built, so no name can lead out of the directory.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::RunnerError;
use crate::domain::name;

/// The runtime directory, created (mode 0700) if missing; refused when it is not private.
pub fn runtime_dir() -> Result<PathBuf, RunnerError> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(base) => {
            let dir = PathBuf::from(base).join("vireo");
            ensure_private_dir(&dir, Trust::OwnParent)?;
            Ok(dir)
        }
        None => {
            let dir = std::env::temp_dir().join(format!("vireo-{}", current_uid()));
            ensure_private_dir(&dir, Trust::SharedParent)?;
            Ok(dir)
        }
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// How far the directory's parent can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// `$XDG_RUNTIME_DIR`: private to the user, so a too-open `vireo` directory in it (made by
    /// an older Vireo) is ours and is tightened to 0700.
    OwnParent,
    /// `/tmp`: anyone may have made the directory; it must already be exactly ours, 0700.
    SharedParent,
}

/// Creates `dir` with mode 0700, or checks that the existing one is a directory (not a
/// symlink) owned by this user and private; the error names the directory and the fix.
pub(crate) fn ensure_private_dir(dir: &Path, trust: Trust) -> Result<(), RunnerError> {
    let refuse = |problem: String, fix: String| RunnerError::UnsafeRuntimeDir {
        dir: dir.to_path_buf(),
        problem,
        fix,
    };
    let created = std::fs::DirBuilder::new()
        .recursive(trust == Trust::OwnParent)
        .mode(0o700)
        .create(dir);
    if let Err(e) = created
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(refuse(
            format!("it cannot be created: {e}"),
            "check XDG_RUNTIME_DIR or the permissions of its parent".into(),
        ));
    }
    // lstat: a symlink is judged as itself, never by what it points to.
    let meta = std::fs::symlink_metadata(dir).map_err(|e| {
        refuse(
            format!("it cannot be inspected: {e}"),
            "check its parent's permissions".into(),
        )
    })?;
    let remove = format!("remove it (rm -rf {}) and try again", dir.display());
    if meta.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link".into(), remove));
    }
    if !meta.is_dir() {
        return Err(refuse("it is not a directory".into(), remove));
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(refuse(
            format!("it is owned by uid {}, not by you (uid {uid})", meta.uid()),
            remove,
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o700 {
        if trust == Trust::OwnParent {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                refuse(
                    format!("it has mode {mode:04o} and cannot be made 0700: {e}"),
                    format!("run chmod 700 {}", dir.display()),
                )
            })?;
        } else {
            return Err(refuse(
                format!("it has mode {mode:04o}, not 0700"),
                format!("run chmod 700 {} or {remove}", dir.display()),
            ));
        }
    }
    Ok(())
}

/// `<runtime dir>/<name><suffix>`, after checking the name.
fn file_of(name: &str, suffix: &str) -> Result<PathBuf, RunnerError> {
    name::check(name)?;
    Ok(runtime_dir()?.join(format!("{name}{suffix}")))
}

/// The control socket of domain `name`.
pub fn socket_path(name: &str) -> Result<PathBuf, RunnerError> {
    file_of(name, ".sock")
}

/// Where the runner of `name` keeps the domain XML as it runs (host-model expanded).
pub fn live_xml_path(name: &str) -> Result<PathBuf, RunnerError> {
    file_of(name, ".xml")
}

/// Where the runner of `name` records how the VM last ended (`shut off (…)` / `crashed: …`).
pub fn exit_state_path(name: &str) -> Result<PathBuf, RunnerError> {
    file_of(name, ".exit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vireo-paths-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let base = scratch("create");
        for trust in [Trust::SharedParent, Trust::OwnParent] {
            let dir = base.join(format!("{trust:?}"));
            ensure_private_dir(&dir, trust).unwrap();
            assert_eq!(mode_of(&dir), 0o700);
            // And an existing private one is accepted as is.
            ensure_private_dir(&dir, trust).unwrap();
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_shared_parent_directory_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            // Not a missing environment (so not failed under VIREO_REQUIRE_ENV): which user runs
            // the tests is the runner's choice, and Vireo's own rule is to run as an ordinary user.
            eprintln!("skipping: needs root to chown a directory to another user");
            return;
        }
        let base = scratch("owner");
        let dir = base.join("vireo-0");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(1234), Some(1234)).unwrap();
        let err = ensure_private_dir(&dir, Trust::SharedParent)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains("owned by uid 1234"), "{err}");
        assert!(err.contains("rm -rf"), "{err}");
        // Not even $XDG_RUNTIME_DIR/vireo is used when someone else owns it.
        assert!(ensure_private_dir(&dir, Trust::OwnParent).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_world_writable_shared_directory_is_refused_and_an_own_one_tightened() {
        let base = scratch("mode");
        let dir = base.join("vireo-open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private_dir(&dir, Trust::SharedParent)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mode 0777, not 0700"), "{err}");
        assert!(err.contains("chmod 700"), "{err}");
        assert_eq!(mode_of(&dir), 0o777, "a refused directory is left alone");
        ensure_private_dir(&dir, Trust::OwnParent).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_symlink_is_refused_even_to_a_private_directory() {
        let base = scratch("link");
        let target = base.join("target");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .unwrap();
        let link = base.join("vireo-link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for trust in [Trust::SharedParent, Trust::OwnParent] {
            let err = ensure_private_dir(&link, trust).unwrap_err().to_string();
            assert!(err.contains("symbolic link"), "{err}");
            assert!(err.contains(&link.display().to_string()), "{err}");
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn paths_are_refused_for_bad_names_before_any_is_built() {
        for bad in ["../../x", "a/b", ".x", "..", "a\0b"] {
            assert!(matches!(socket_path(bad), Err(RunnerError::BadName(_))));
            assert!(matches!(live_xml_path(bad), Err(RunnerError::BadName(_))));
            assert!(matches!(exit_state_path(bad), Err(RunnerError::BadName(_))));
        }
        let long = "n".repeat(300);
        assert!(matches!(socket_path(&long), Err(RunnerError::BadName(_))));
    }
}
