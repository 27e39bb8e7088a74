//! What goes wrong talking to libvirt, with the URI, libvirt's own message and, where the
//! cause is a common one, the fix.

use virt::error::{Error as VirtError, ErrorNumber};

/// An error from a libvirt connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// libvirt refused or failed a call.
    #[error("{uri}: {action}: {message}{hint}", hint = hint_text(.hint))]
    Libvirt {
        uri: String,
        /// What Vireo asked for ("cannot connect", "starting domain 'web'", …).
        action: String,
        /// libvirt's message.
        message: String,
        /// libvirt's error number, for callers that branch on it.
        code: ErrorNumber,
        /// How to fix it, when the cause is known.
        hint: Option<String>,
    },
    /// The connection has no such domain.
    #[error("{uri}: no domain '{name}'; `vireoctl -c {uri} list --all` lists the domains there")]
    NoDomain { uri: String, name: String },
    /// A CPU given to compare or baseline could not be read.
    #[error("{0}")]
    Cpu(#[from] crate::cpu::CpuError),
    /// The CPU map (this computer's side of a baseline) could not be read.
    #[error("{0}")]
    CpuMap(#[from] crate::cpu::map::CpuMapError),
    /// This computer's engine refused (the message names `vireo:///session`, the action and
    /// the reason).
    #[error("{0}")]
    Builtin(String),
    /// An answer from libvirt that Vireo could not read.
    #[error("{uri}: {what}")]
    BadAnswer { uri: String, what: String },
}

fn hint_text(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\n  tip: {h}"))
        .unwrap_or_default()
}

impl ConnectionError {
    /// Wraps libvirt's error for `action` on `uri`, adding the fix for causes we know.
    pub(crate) fn from_virt(uri: &str, action: impl Into<String>, err: &VirtError) -> Self {
        ConnectionError::Libvirt {
            uri: uri.to_owned(),
            action: action.into(),
            message: err.message().to_owned(),
            code: err.code(),
            hint: fix_for(uri, err.code(), err.message()),
        }
    }

    /// libvirt's error number, if this came from libvirt.
    pub fn code(&self) -> Option<ErrorNumber> {
        match self {
            ConnectionError::Libvirt { code, .. } => Some(*code),
            ConnectionError::NoDomain { .. } => Some(ErrorNumber::NoDomain),
            _ => None,
        }
    }
}

/// The fix for the causes users meet most: no daemon, no permission, a driver that lacks the
/// call.
fn fix_for(uri: &str, code: ErrorNumber, message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let remote = uri.contains("+ssh") || uri.contains("+tcp") || uri.contains("+tls");
    if lower.contains("permission denied") || code == ErrorNumber::AuthFailed {
        if uri.ends_with("/system") && !remote {
            return Some(
                "qemu:///system needs membership of the libvirt group: \
                 `sudo usermod -aG libvirt $USER`, then log out and in again \
                 (or use qemu:///session)"
                    .into(),
            );
        }
        return Some("check that your user may use libvirt on that host".into());
    }
    if code == ErrorNumber::NoSupport {
        return Some(
            "this connection's driver does not implement that call; \
             a qemu:// connection does"
                .into(),
        );
    }
    let no_daemon = lower.contains("failed to connect socket")
        || lower.contains("no such file or directory")
        || lower.contains("connection refused");
    if no_daemon && (code == ErrorNumber::SystemError || code == ErrorNumber::NoConnect) {
        return Some(if remote {
            "libvirt is not running on that host; start it there with \
             `sudo systemctl start libvirtd` (or `virtqemud.socket`)"
                .into()
        } else {
            "libvirt is not running; start it with `sudo systemctl start libvirtd` \
             (or `sudo systemctl start virtqemud.socket` on modular-daemon systems); \
             install it with `sudo apt install libvirt-daemon-system`"
                .into()
        });
    }
    if code == ErrorNumber::NoConnect && lower.contains("no connection driver") {
        return Some(
            "libvirt on this computer lacks that driver; for qemu:// URIs install \
             libvirt-daemon-driver-qemu"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_causes_get_their_fix() {
        let hint = fix_for(
            "qemu:///system",
            ErrorNumber::SystemError,
            "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
        )
        .unwrap();
        assert!(hint.contains("systemctl start libvirtd"), "{hint}");
        let hint = fix_for(
            "qemu:///system",
            ErrorNumber::SystemError,
            "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied",
        )
        .unwrap();
        assert!(hint.contains("libvirt group"), "{hint}");
        let hint = fix_for(
            "qemu+ssh://me@far/system",
            ErrorNumber::SystemError,
            "Failed to connect socket: Connection refused",
        )
        .unwrap();
        assert!(hint.contains("on that host"), "{hint}");
        assert_eq!(
            fix_for("qemu:///system", ErrorNumber::XmlError, "bad XML"),
            None
        );
    }
}
