//! The runtime directory without XDG_RUNTIME_DIR: `$TMPDIR/vireo-<uid>` is used only when it
//! is this user's own private directory; otherwise every verb that would use it refuses,
//! naming the directory and the fix (as ssh-agent and libvirt do).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Output;

fn sandbox(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("vireo-rtdir-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// The fallback directory inside `tmp`, as vireoctl computes it.
fn fallback(tmp: &std::path::Path) -> PathBuf {
    // SAFETY: getuid has no preconditions.
    tmp.join(format!("vireo-{}", unsafe { libc::getuid() }))
}

/// `vireoctl shutdown vm` with no XDG_RUNTIME_DIR and `tmp` as TMPDIR: the cheapest verb that
/// needs the runtime directory.
fn shutdown_with_tmpdir(tmp: &std::path::Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vireoctl"))
        .args(["shutdown", "vm"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", tmp)
        .env("XDG_DATA_HOME", tmp.join("data"))
        .env("XDG_CONFIG_HOME", tmp.join("config"))
        .output()
        .expect("run vireoctl")
}

fn assert_refused(out: &Output, dir: &std::path::Path, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&dir.display().to_string()),
        "names the dir: {err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "wanted {needle:?}: {err}");
    }
}

#[test]
fn a_missing_fallback_directory_is_created_private() {
    let tmp = sandbox("fresh");
    let out = shutdown_with_tmpdir(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("domain 'vm' is not running"), "{err}");
    let mode = std::fs::metadata(fallback(&tmp))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o700);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_fallback_directory_owned_by_another_user_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not a missing environment (so no skip_or_fail): which user runs the tests is the
        // runner's choice, and Vireo's own rule is to run as an ordinary user.
        eprintln!("skipping: needs root to chown a directory to another user");
        return;
    }
    let tmp = sandbox("owner");
    let dir = fallback(&tmp);
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(1234), Some(1234)).unwrap();
    assert_refused(
        &shutdown_with_tmpdir(&tmp),
        &dir,
        &["owned by uid 1234", "rm -rf"],
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_world_writable_fallback_directory_is_refused() {
    let tmp = sandbox("mode");
    let dir = fallback(&tmp);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(
        &shutdown_with_tmpdir(&tmp),
        &dir,
        &["mode 0777, not 0700", "chmod 700"],
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_symlinked_fallback_directory_is_refused() {
    let tmp = sandbox("link");
    let target = tmp.join("elsewhere");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&target)
        .unwrap();
    let dir = fallback(&tmp);
    std::os::unix::fs::symlink(&target, &dir).unwrap();
    assert_refused(
        &shutdown_with_tmpdir(&tmp),
        &dir,
        &["symbolic link", "rm -rf"],
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
