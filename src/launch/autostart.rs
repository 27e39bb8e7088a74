//! Acting on `vireoctl autostart`: libvirt's session daemon starts the domains marked to start
//! automatically when it starts; Vireo has no daemon, so the same happens when the app starts
//! and when `vireoctl start --autostart` runs (at login, from the opt-in XDG autostart entry
//! that Preferences writes). Each marked VM that is not running is started; one that fails is
//! reported by name and the others are still started.

use std::io;
use std::path::{Path, PathBuf};

use crate::domain::store::DomainStore;
use crate::launch::runner;

/// The login entry's file name under `$XDG_CONFIG_HOME/autostart/`.
pub const LOGIN_ENTRY_FILE: &str = "dev.vireo.Vireo-autostart.desktop";

/// Why the login entry could not be written or removed.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("no configuration folder (set HOME or XDG_CONFIG_HOME)")]
    NoConfigDir,
    #[error("cannot write the login entry {path}: {source}; check that folder's permissions")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove the login entry {path}: {source}; remove it by hand")]
    Remove { path: PathBuf, source: io::Error },
}

/// One marked VM's start: its name and what starting it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutostartResult {
    pub name: String,
    pub result: Result<(), String>,
}

/// The VMs marked to start automatically that are not running now, sorted by name. A marked
/// definition that cannot be read is listed too, so its failure is reported rather than lost.
pub fn pending(store: &DomainStore) -> Vec<String> {
    store
        .list()
        .into_iter()
        .map(|entry| match entry {
            Ok(stored) => stored.name,
            Err(broken) => broken.name,
        })
        .filter(|name| store.autostart(name) && !runner::is_running(name))
        .collect()
}

/// Starts every [`pending`] VM with `start`, one after another, and returns each answer; a
/// failure does not stop the others.
pub fn start_marked(
    store: &DomainStore,
    mut start: impl FnMut(&str) -> Result<(), String>,
) -> Vec<AutostartResult> {
    pending(store)
        .into_iter()
        .map(|name| {
            let result = start(&name);
            if let Err(error) = &result {
                tracing::warn!(%name, %error, "autostart failed");
            }
            AutostartResult { name, result }
        })
        .collect()
}

/// `$XDG_CONFIG_HOME/autostart/dev.vireo.Vireo-autostart.desktop`.
pub fn login_entry_path() -> Result<PathBuf, AutostartError> {
    let base = directories::BaseDirs::new().ok_or(AutostartError::NoConfigDir)?;
    Ok(base.config_dir().join("autostart").join(LOGIN_ENTRY_FILE))
}

/// Whether the login entry exists.
pub fn login_entry_enabled() -> bool {
    login_entry_path().is_ok_and(|p| p.is_file())
}

/// Quotes one argument of a desktop entry's `Exec` key (the Desktop Entry Specification's
/// rules): plain words stay as they are, others go in double quotes with `"`, `` ` ``, `$`
/// and `\` escaped.
fn exec_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.+,:=@".contains(c));
    if plain {
        return arg.to_string();
    }
    let mut out = String::from("\"");
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    // The key's value is itself a string with escapes: a backslash is written twice.
    out.replace('\\', "\\\\")
}

/// The login entry's text: a hidden-from-menus application that runs
/// `VIREOCTL start --autostart` once at login.
pub fn login_entry_text(vireoctl: &Path, name: &str, comment: &str) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName={name}\nComment={comment}\n\
         Exec={} start --autostart\nNoDisplay=true\nTerminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        exec_quote(&vireoctl.to_string_lossy())
    )
}

/// Writes (`Some(text)`, see [`login_entry_text`]) or removes (`None`) the login entry.
pub fn set_login_entry(text: Option<&str>) -> Result<(), AutostartError> {
    let path = login_entry_path()?;
    match text {
        Some(text) => {
            let write = |source| AutostartError::Write {
                path: path.clone(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(write)?;
            }
            crate::util::atomic::write_atomic(&path, text.as_bytes()).map_err(write)
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(AutostartError::Remove {
                path: path.clone(),
                source: e,
            }),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn define(store: &DomainStore, name: &str) {
        store
            .define(&format!(
                "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory>\
                 <os><type>hvm</type><kernel>/k</kernel></os></domain>"
            ))
            .unwrap();
    }

    #[test]
    fn only_marked_vms_start_and_a_failure_does_not_stop_the_others() {
        let dir = std::env::temp_dir().join(format!("vireo-autostart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = DomainStore::open_at(&dir).unwrap();
        for name in ["alpha", "beta", "gamma"] {
            define(&store, name);
        }
        store.set_autostart("alpha", true).unwrap();
        store.set_autostart("gamma", true).unwrap();
        let mut asked = Vec::new();
        let results = start_marked(&store, |name| {
            asked.push(name.to_string());
            if name == "alpha" {
                Err("no kernel".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(asked, ["alpha", "gamma"]);
        assert_eq!(
            results,
            [
                AutostartResult {
                    name: "alpha".into(),
                    result: Err("no kernel".into())
                },
                AutostartResult {
                    name: "gamma".into(),
                    result: Ok(())
                },
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exec_paths_are_quoted_as_the_desktop_spec_says() {
        assert_eq!(exec_quote("/usr/bin/vireoctl"), "/usr/bin/vireoctl");
        assert_eq!(
            exec_quote("/opt/my apps/vireoctl"),
            "\"/opt/my apps/vireoctl\""
        );
        assert_eq!(exec_quote("/a$b"), "\"/a\\\\$b\"");
        let text = login_entry_text(Path::new("/usr/bin/vireoctl"), "Vireo", "Start VMs");
        assert!(
            text.contains("\nExec=/usr/bin/vireoctl start --autostart\n"),
            "{text}"
        );
        assert!(text.starts_with("[Desktop Entry]\n"));
    }
}
