//! Connections: where VMs live. "This computer" is the built-in engine; libvirt connections
//! (`qemu:///system`, `qemu:///session`, `qemu+ssh://user@host/system`) go through libvirt's C
//! library via the `virt` crate (libvirt's own Rust bindings), so Vireo speaks no libvirt RPC
//! of its own (DESIGN.md §7).
//!
//! [`Target`] says which one a command means (`vireoctl -c URI`, `VIREO_DEFAULT_URI`);
//! [`libvirt::LibvirtConnection`] is one open libvirt connection with virsh's domain verbs;
//! [`cross_host`] compares a VM's CPU with every stored host and finds their common baseline.

pub mod cross_host;
mod error;
mod hypervisor_cpu;
pub mod libvirt;

pub use error::ConnectionError;
pub use hypervisor_cpu::{Comparison, HypervisorSpec, missing_features};
pub use libvirt::{DomainDetails, DomainRow, DomainState, LibvirtConnection, Lifecycle};

/// The URI that names the built-in engine explicitly (for `-c` when `VIREO_DEFAULT_URI` points
/// elsewhere).
pub const BUILTIN_URI: &str = "vireo:///session";

/// The environment variable that picks the connection when `-c` is not given, as
/// `LIBVIRT_DEFAULT_URI` does for virsh.
pub const DEFAULT_URI_ENV: &str = "VIREO_DEFAULT_URI";

/// Which connection a command addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The built-in engine ("This computer").
    Builtin,
    /// A libvirt connection by URI.
    Libvirt(String),
}

impl Target {
    /// The target for `-c URI` if given, else `$VIREO_DEFAULT_URI` if set and not empty, else
    /// the built-in engine. `vireo:///session` (or `vireo:///`) names the built-in engine.
    pub fn choose(uri: Option<&str>, default_uri: Option<&str>) -> Target {
        match uri.or(default_uri.filter(|u| !u.trim().is_empty())) {
            None => Target::Builtin,
            Some(uri) if is_builtin_uri(uri) => Target::Builtin,
            Some(uri) => Target::Libvirt(uri.to_owned()),
        }
    }

    /// [`Target::choose`] with `$VIREO_DEFAULT_URI` read from the environment.
    pub fn from_env(uri: Option<&str>) -> Target {
        let default = std::env::var(DEFAULT_URI_ENV).ok();
        Target::choose(uri, default.as_deref())
    }

    /// The URI as the user would type it.
    pub fn uri(&self) -> &str {
        match self {
            Target::Builtin => BUILTIN_URI,
            Target::Libvirt(uri) => uri,
        }
    }

    /// The name a list of hosts shows for it.
    pub fn label(&self) -> &str {
        match self {
            Target::Builtin => "This computer",
            Target::Libvirt(uri) => uri,
        }
    }
}

fn is_builtin_uri(uri: &str) -> bool {
    matches!(
        uri.trim_end_matches('/'),
        "vireo:///session" | "vireo:" | "vireo:/"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_beats_the_environment_and_nothing_means_this_computer() {
        assert_eq!(Target::choose(None, None), Target::Builtin);
        assert_eq!(Target::choose(None, Some("")), Target::Builtin);
        assert_eq!(
            Target::choose(None, Some("qemu:///system")),
            Target::Libvirt("qemu:///system".into())
        );
        assert_eq!(
            Target::choose(Some("test:///default"), Some("qemu:///system")),
            Target::Libvirt("test:///default".into())
        );
        assert_eq!(
            Target::choose(Some("vireo:///session"), Some("qemu:///system")),
            Target::Builtin
        );
        assert_eq!(Target::choose(Some("vireo:///"), None), Target::Builtin);
    }
}
