//! The URI virt-manager's "Add Connection" dialog builds from its choices.

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

#[cfg(test)]
mod tests {
    use super::*;

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
