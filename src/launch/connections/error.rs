//! What goes wrong talking to libvirt, with the URI, libvirt's own message and, where the
//! cause is a common one, the fix.

use virt::error::{Error as VirtError, ErrorNumber};

use super::uri::RemoteHost;

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
    /// A URI whose scheme libvirt does not know.
    #[error(
        "{uri}: unknown URI scheme '{scheme}'; libvirt connections look like qemu:///system, \
         qemu:///session or qemu+ssh://user@host/system (test:///default for libvirt's test driver)"
    )]
    UnknownScheme { uri: String, scheme: String },
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
    if let Some(host) = RemoteHost::of(uri)
        && uri.contains("ssh")
        && let Some(fix) = ssh_fix(&host, &lower)
    {
        return Some(fix);
    }
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

/// The fix for what goes wrong on the way to a host over SSH, from ssh's own words in
/// libvirt's message. libvirt runs `ssh` without a terminal, so nothing can be typed or
/// confirmed: keys and host keys must be in place beforehand.
fn ssh_fix(host: &RemoteHost, lower: &str) -> Option<String> {
    let name = &host.host;
    if lower.contains("host key verification failed") {
        return Some(format!(
            "SSH does not know the host key of {name} yet (or it changed): connect once with \
             `{}` and accept it, then connect again",
            host.ssh_command("ssh")
        ));
    }
    if lower.contains("permission denied (publickey") || lower.contains("too many authentication") {
        return Some(format!(
            "{name} refused your SSH key: install it there with `{}` (or name another key with \
             ?keyfile=PATH in the URI); a password cannot be typed here",
            host.ssh_command("ssh-copy-id")
        ));
    }
    if lower.contains("could not resolve hostname") {
        return Some(format!(
            "the name {name} does not resolve: check its spelling, or use its IP address"
        ));
    }
    if lower.contains("ssh: connect to host") {
        let what = if lower.contains("connection refused") {
            "nothing accepts SSH connections on"
        } else {
            "no answer from"
        };
        return Some(format!(
            "{what} {}: check the host name and port, that the host is up and that sshd runs \
             there (`{}` must work)",
            host.host_and_port(),
            host.ssh_command("ssh")
        ));
    }
    if lower.contains("nc: not found") {
        return Some(format!(
            "{name} lacks netcat, which the socket= parameter needs: install netcat-openbsd \
             there, or leave socket= out so that libvirt's virt-ssh-helper is used"
        ));
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

    #[test]
    fn ssh_failures_get_the_ssh_fix() {
        let uri = "qemu+ssh://root@far:2222/system";
        let fix = |message: &str| fix_for(uri, ErrorNumber::SystemError, message).unwrap();
        let hint = fix(
            "Cannot recv data: root@far: Permission denied (publickey).: Connection reset by peer",
        );
        assert!(hint.contains("ssh-copy-id -p 2222 root@far"), "{hint}");
        let hint = fix(
            "Cannot recv data: ssh: connect to host far port 2222: Connection refused: Connection reset by peer",
        );
        assert!(
            hint.starts_with("nothing accepts SSH connections on far port 2222"),
            "{hint}"
        );
        let hint = fix("Cannot recv data: Host key verification failed.: Connection reset by peer");
        assert!(hint.contains("`ssh -p 2222 root@far`"), "{hint}");
        let hint =
            fix("Cannot recv data: ssh: Could not resolve hostname far: Name or service not known");
        assert!(hint.contains("the name far does not resolve"), "{hint}");
        // A daemon that is not running over SSH keeps its own fix.
        let hint = fix(
            "virt-ssh-helper: cannot connect to '/var/run/libvirt/libvirt-sock': Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
        );
        assert!(hint.contains("not running on that host"), "{hint}");
    }
}
