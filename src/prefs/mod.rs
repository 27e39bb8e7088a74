//! User preferences: `$XDG_CONFIG_HOME/vireo/prefs.toml`.
//!
//! Shared by the GUI (Preferences window) and `vireoctl prefs`. Keys are kebab-case strings so
//! both can address them uniformly through [`Prefs::get`]/[`Prefs::set`]; the file is rewritten
//! atomically so a crash never leaves half a preferences file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::util::atomic::write_atomic;

pub mod live;

/// How the `<cpu>` of a newly created VM is chosen (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuModePref {
    /// Vireo picks the best mode this host's KVM can honour (see `domain::new_vm`).
    #[default]
    AppDefault,
    /// No `<cpu>` element: the hypervisor's default CPU.
    HvDefault,
    /// The nearest named CPU model usable on this host's KVM.
    HostModelOnly,
    /// `mode='host-model'`.
    HostModel,
    /// `mode='host-passthrough'`.
    HostPassthrough,
}

impl CpuModePref {
    pub const ALL: [CpuModePref; 5] = [
        CpuModePref::AppDefault,
        CpuModePref::HvDefault,
        CpuModePref::HostModelOnly,
        CpuModePref::HostModel,
        CpuModePref::HostPassthrough,
    ];

    /// The value as stored and typed on the command line.
    pub fn key(self) -> &'static str {
        match self {
            CpuModePref::AppDefault => "app-default",
            CpuModePref::HvDefault => "hv-default",
            CpuModePref::HostModelOnly => "host-model-only",
            CpuModePref::HostModel => "host-model",
            CpuModePref::HostPassthrough => "host-passthrough",
        }
    }

    /// The label the GUI shows.
    pub fn display_name(self) -> &'static str {
        match self {
            CpuModePref::AppDefault => "Application default",
            CpuModePref::HvDefault => "Hypervisor default",
            CpuModePref::HostModelOnly => "Nearest CPU model",
            CpuModePref::HostModel => "Copy host CPU configuration",
            CpuModePref::HostPassthrough => "Host passthrough",
        }
    }
}

impl fmt::Display for CpuModePref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for CpuModePref {
    type Err = PrefsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CpuModePref::ALL
            .into_iter()
            .find(|m| m.key() == s)
            .ok_or_else(|| PrefsError::BadValue {
                key: "new-vm-cpu-mode".into(),
                value: s.into(),
                expected: CpuModePref::ALL.map(CpuModePref::key).join(", "),
            })
    }
}

/// Errors reading, writing or editing preferences.
#[derive(Debug, thiserror::Error)]
pub enum PrefsError {
    #[error("cannot find the user config directory; set XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid preferences file ({message}); fix or delete it")]
    Parse { path: PathBuf, message: String },
    #[error("unknown preference '{0}'; known keys: {keys}", keys = Prefs::KEYS.join(", "))]
    UnknownKey(String),
    #[error(
        "'{0}' is not a libvirt connection URI; give one such as qemu:///system, \
         qemu:///session or qemu+ssh://user@host/system"
    )]
    BadUri(String),
    #[error("the preferences writer stopped; restart Vireo to save preferences again")]
    WriterGone,
    #[error("no stored connection '{0}'; `vireoctl connection list` lists them")]
    NoSuchConnection(String),
    #[error("'{value}' is not a valid value for {key}; use one of: {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: String,
    },
}

/// The preferences. Missing keys take their defaults, so old files keep working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Prefs {
    pub new_vm_cpu_mode: CpuModePref,
    /// Point size of the serial console's font in the GUI.
    pub console_font_size: u32,
    /// Ask before forcing a VM off (like pulling the power cord).
    pub confirm_force_off: bool,
    /// libvirt connections the user added, besides the built-in engine ("This computer"),
    /// in the order they were added. Kept last: TOML writes tables after plain values.
    pub connections: Vec<StoredConnection>,
}

/// A libvirt connection the user added (virt-manager's "Add Connection").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoredConnection {
    /// The libvirt URI: `qemu:///system`, `qemu:///session`, `qemu+ssh://user@host/system`, ….
    pub uri: String,
    /// Connect when the app starts (virt-manager's "Autoconnect").
    #[serde(default)]
    pub autoconnect: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            new_vm_cpu_mode: CpuModePref::AppDefault,
            console_font_size: 12,
            confirm_force_off: true,
            connections: Vec::new(),
        }
    }
}

const FONT_SIZES: std::ops::RangeInclusive<u32> = 6..=72;

impl Prefs {
    /// Every key, in display order.
    pub const KEYS: [&'static str; 3] =
        ["new-vm-cpu-mode", "console-font-size", "confirm-force-off"];

    /// `$XDG_CONFIG_HOME/vireo/prefs.toml` (default `~/.config/vireo/prefs.toml`).
    pub fn default_path() -> Result<PathBuf, PrefsError> {
        let base = directories::BaseDirs::new().ok_or(PrefsError::NoConfigDir)?;
        Ok(base.config_dir().join("vireo").join("prefs.toml"))
    }

    /// Loads from the default path; a missing file means all defaults.
    pub fn load() -> Result<Prefs, PrefsError> {
        Self::load_from(&Self::default_path()?)
    }

    pub fn load_from(path: &Path) -> Result<Prefs, PrefsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Prefs::default()),
            Err(source) => {
                return Err(PrefsError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        let prefs: Prefs = toml::from_str(&text).map_err(|e| PrefsError::Parse {
            path: path.into(),
            message: e.message().to_owned(),
        })?;
        Ok(prefs)
    }

    /// Saves to the default path.
    pub fn save(&self) -> Result<(), PrefsError> {
        self.save_to(&Self::default_path()?)
    }

    /// Saves atomically, creating the directory if needed.
    pub fn save_to(&self, path: &Path) -> Result<(), PrefsError> {
        let io = |source| PrefsError::Io {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = toml::to_string(self).expect("preferences always serialize");
        write_atomic(path, text.as_bytes()).map_err(io)
    }

    /// The value of `key` as text.
    pub fn get(&self, key: &str) -> Result<String, PrefsError> {
        Ok(match key {
            "new-vm-cpu-mode" => self.new_vm_cpu_mode.key().to_owned(),
            "console-font-size" => self.console_font_size.to_string(),
            "confirm-force-off" => self.confirm_force_off.to_string(),
            _ => return Err(PrefsError::UnknownKey(key.into())),
        })
    }

    /// Sets `key` from text, checking the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), PrefsError> {
        let bad = |expected: &str| PrefsError::BadValue {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        };
        match key {
            "new-vm-cpu-mode" => self.new_vm_cpu_mode = value.parse()?,
            "console-font-size" => {
                let expected = format!(
                    "a whole number from {} to {}",
                    FONT_SIZES.start(),
                    FONT_SIZES.end()
                );
                self.console_font_size = value
                    .parse()
                    .ok()
                    .filter(|n| FONT_SIZES.contains(n))
                    .ok_or_else(|| bad(&expected))?
            }
            "confirm-force-off" => {
                self.confirm_force_off = value.parse().map_err(|_| bad("true, false"))?
            }
            _ => return Err(PrefsError::UnknownKey(key.into())),
        }
        Ok(())
    }
}

impl Prefs {
    /// Adds a libvirt connection, or updates the autoconnect flag of one already stored.
    /// Returns whether it was new.
    pub fn add_connection(&mut self, uri: &str, autoconnect: bool) -> Result<bool, PrefsError> {
        check_connection_uri(uri)?;
        if let Some(existing) = self.connections.iter_mut().find(|c| c.uri == uri) {
            existing.autoconnect = autoconnect;
            return Ok(false);
        }
        self.connections.push(StoredConnection {
            uri: uri.to_owned(),
            autoconnect,
        });
        Ok(true)
    }

    /// Removes a stored libvirt connection.
    pub fn remove_connection(&mut self, uri: &str) -> Result<(), PrefsError> {
        let before = self.connections.len();
        self.connections.retain(|c| c.uri != uri);
        if self.connections.len() == before {
            return Err(PrefsError::NoSuchConnection(uri.to_owned()));
        }
        Ok(())
    }
}

/// Checks the shape every libvirt URI has (`driver[+transport]://[user@][host][/path][?query]`);
/// whether the driver exists is libvirt's to say when connecting.
pub fn check_connection_uri(uri: &str) -> Result<(), PrefsError> {
    let scheme_ok = uri.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    });
    if !scheme_ok || uri.chars().any(char::is_whitespace) {
        return Err(PrefsError::BadUri(uri.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vireo/prefs.toml");
        assert_eq!(Prefs::load_from(&path).unwrap(), Prefs::default());
        let mut prefs = Prefs::default();
        prefs.set("new-vm-cpu-mode", "host-model-only").unwrap();
        prefs.set("console-font-size", "14").unwrap();
        prefs.set("confirm-force-off", "false").unwrap();
        prefs.save_to(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("new-vm-cpu-mode = \"host-model-only\""),
            "{text}"
        );
        assert_eq!(Prefs::load_from(&path).unwrap(), prefs);
    }

    #[test]
    fn bad_keys_and_values_say_what_is_allowed() {
        let mut prefs = Prefs::default();
        let err = prefs
            .set("new-vm-cpu-mode", "fast")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'fast'") && err.contains("host-passthrough"),
            "{err}"
        );
        let err = prefs
            .set("console-font-size", "500")
            .unwrap_err()
            .to_string();
        assert!(err.contains("from 6 to 72"), "{err}");
        let err = prefs.get("colour").unwrap_err().to_string();
        assert!(err.contains("known keys: new-vm-cpu-mode"), "{err}");
        assert_eq!(prefs, Prefs::default());
    }

    #[test]
    fn a_partial_file_takes_defaults_and_a_broken_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefs.toml");
        std::fs::write(&path, "console-font-size = 20\n").unwrap();
        let prefs = Prefs::load_from(&path).unwrap();
        assert_eq!(prefs.console_font_size, 20);
        assert_eq!(prefs.new_vm_cpu_mode, CpuModePref::AppDefault);
        std::fs::write(&path, "new-vm-cpu-mode = \"turbo\"\n").unwrap();
        let err = Prefs::load_from(&path).unwrap_err().to_string();
        assert!(err.contains("fix or delete it"), "{err}");
    }

    #[test]
    fn connections_are_added_once_removed_and_kept_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefs.toml");
        let mut prefs = Prefs::default();
        assert!(prefs.add_connection("qemu:///system", true).unwrap());
        assert!(
            prefs
                .add_connection("qemu+ssh://me@far/system", false)
                .unwrap()
        );
        assert!(!prefs.add_connection("qemu:///system", false).unwrap());
        assert_eq!(prefs.connections.len(), 2);
        assert!(
            !prefs.connections[0].autoconnect,
            "re-adding updates autoconnect"
        );
        prefs.save_to(&path).unwrap();
        let loaded = Prefs::load_from(&path).unwrap();
        assert_eq!(loaded, prefs);
        prefs.remove_connection("qemu:///system").unwrap();
        assert_eq!(prefs.connections[0].uri, "qemu+ssh://me@far/system");
        let err = prefs.remove_connection("qemu:///system").unwrap_err();
        assert!(err.to_string().contains("connection list"), "{err}");
    }

    #[test]
    fn malformed_uris_are_refused_with_examples() {
        let mut prefs = Prefs::default();
        for bad in ["system", "qemu:/system", "://x", "qemu:///sys tem"] {
            let err = prefs.add_connection(bad, false).unwrap_err().to_string();
            assert!(err.contains("qemu:///system"), "{bad}: {err}");
        }
        assert!(prefs.connections.is_empty());
    }
}
