//! libvirt URIs: the one virt-manager's "Add Connection" dialog builds from its choices, the
//! host a remote one names (for messages and fixes), and the schemes libvirt knows (an unknown
//! one is refused before libvirt turns it into a TLS connection attempt, whose error about a
//! missing CA certificate would not say what is wrong).

use super::ConnectionError;

/// Which libvirt daemon a new connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// QEMU/KVM, the system daemon (`qemu:///system`): VMs shared by the machine's users.
    QemuSystem,
    /// QEMU/KVM, the user's own session daemon (`qemu:///session`).
    QemuSession,
}

/// The URI for `hypervisor`, over SSH when `ssh_host` is given (with `ssh_user` if not empty):
/// `qemu:///system`, `qemu+ssh://me@far/system`, ….
pub fn connection_uri(hypervisor: Hypervisor, ssh_user: &str, ssh_host: Option<&str>) -> String {
    let path = match hypervisor {
        Hypervisor::QemuSystem => "system",
        Hypervisor::QemuSession => "session",
    };
    match ssh_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => format!("qemu:///{path}"),
        Some(host) => {
            let user = ssh_user.trim();
            let at = if user.is_empty() {
                String::new()
            } else {
                format!("{user}@")
            };
            format!("qemu+ssh://{at}{host}/{path}")
        }
    }
}

/// libvirt's hypervisor drivers: the part of a scheme before `+`.
const DRIVERS: [&str; 19] = [
    "qemu",
    "test",
    "lxc",
    "xen",
    "libxl",
    "vbox",
    "vmwareplayer",
    "vmwarews",
    "vmwarefusion",
    "esx",
    "gsx",
    "vpx",
    "hyperv",
    "bhyve",
    "ch",
    "vz",
    "openvz",
    "parallels",
    "remote",
];

/// libvirt's transports: the part of a scheme after `+`.
const TRANSPORTS: [&str; 7] = ["ssh", "libssh", "libssh2", "unix", "tcp", "tls", "ext"];

/// Refuses a URI whose scheme libvirt does not know (`foo://host/system`, `qemu+sftp://…`),
/// naming the schemes it does.
pub fn check_scheme(uri: &str) -> Result<(), ConnectionError> {
    let scheme = uri.split_once(':').map_or("", |(scheme, _)| scheme);
    let (driver, transport) = match scheme.split_once('+') {
        Some((driver, transport)) => (driver, Some(transport)),
        None => (scheme, None),
    };
    let driver_ok = DRIVERS.contains(&driver.to_ascii_lowercase().as_str());
    let transport_ok =
        transport.is_none_or(|t| TRANSPORTS.contains(&t.to_ascii_lowercase().as_str()));
    if driver_ok && transport_ok && uri.contains(':') {
        return Ok(());
    }
    Err(ConnectionError::UnknownScheme {
        uri: uri.to_owned(),
        scheme: scheme.to_owned(),
    })
}

/// The host a remote URI names: `qemu+ssh://me@far:2222/system` → user `me`, host `far`, port
/// 2222.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl RemoteHost {
    /// The host of `uri`, if it names one (`qemu:///system` does not).
    pub fn of(uri: &str) -> Option<RemoteHost> {
        let (_, rest) = uri.split_once("://")?;
        let authority = rest.split(['/', '?']).next()?;
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host_port)) => (Some(user.to_owned()), host_port),
            None => (None, authority),
        };
        // [v6]:port, or host:port.
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(RemoteHost {
            user,
            host: host.to_owned(),
            port: port.and_then(|p| p.parse().ok()),
        })
    }

    /// The `ssh` command line that reaches it: `ssh -p 2222 me@far`.
    pub fn ssh_command(&self, program: &str) -> String {
        let port = self.port.map(|p| format!("-p {p} ")).unwrap_or_default();
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!("{program} {port}{user}{}", self.host)
    }

    /// "far port 2222" (the port SSH uses when none is given: 22).
    pub fn host_and_port(&self) -> String {
        format!("{} port {}", self.host, self.port.unwrap_or(22))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_schemes_pass_and_unknown_ones_are_named() {
        for ok in [
            "qemu:///system",
            "qemu+ssh://me@far/system",
            "QEMU+SSH://far/system",
            "test:///default",
            "qemu+unix:///system?socket=/x",
            "lxc:///",
        ] {
            check_scheme(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "foo://far/system",
            "qemu+sftp://far/system",
            "far/system",
            "",
        ] {
            let err = check_scheme(bad).unwrap_err().to_string();
            assert!(err.starts_with(bad), "{err}");
            assert!(err.contains("unknown URI scheme"), "{err}");
            assert!(err.contains("qemu+ssh://user@host/system"), "{err}");
        }
    }

    #[test]
    fn the_remote_host_comes_from_the_uri() {
        assert_eq!(
            RemoteHost::of("qemu+ssh://me@far:2222/system?keyfile=/k"),
            Some(RemoteHost {
                user: Some("me".into()),
                host: "far".into(),
                port: Some(2222),
            })
        );
        let far = RemoteHost::of("qemu+ssh://far/system").unwrap();
        assert_eq!(far.ssh_command("ssh-copy-id"), "ssh-copy-id far");
        assert_eq!(far.host_and_port(), "far port 22");
        let v6 = RemoteHost::of("qemu+ssh://root@[::1]:22/system").unwrap();
        assert_eq!(v6.ssh_command("ssh"), "ssh -p 22 root@::1");
        assert_eq!(RemoteHost::of("qemu:///system"), None);
        assert_eq!(RemoteHost::of("test:///default"), None);
    }

    #[test]
    fn the_choices_make_virt_managers_uris() {
        assert_eq!(
            connection_uri(Hypervisor::QemuSystem, "", None),
            "qemu:///system"
        );
        assert_eq!(
            connection_uri(Hypervisor::QemuSession, "me", Some("  ")),
            "qemu:///session"
        );
        assert_eq!(
            connection_uri(Hypervisor::QemuSystem, " me ", Some("far.example")),
            "qemu+ssh://me@far.example/system"
        );
        assert_eq!(
            connection_uri(Hypervisor::QemuSession, "", Some("far")),
            "qemu+ssh://far/session"
        );
    }
}
