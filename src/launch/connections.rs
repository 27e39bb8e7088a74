//! Connections: where VMs live. "This computer" is the built-in engine; libvirt connections
//! (`qemu:///system`, `qemu:///session`, `qemu+ssh://user@host/system`) go through libvirt's C
//! library via the `virt` crate (libvirt's own Rust bindings), so Vireo speaks no libvirt RPC
//! of its own (DESIGN.md §7).
//!
//! [`Target`] says which one a command means (`vireoctl -c URI`, `VIREO_DEFAULT_URI`);
//! [`libvirt::LibvirtConnection`] is one open libvirt connection with virsh's domain verbs;
//! [`cross_host`] compares a VM's CPU with every stored host and finds their common baseline;
//! [`migrate`] moves a running VM between two libvirt hosts after checking that CPU first.

mod builtin;
pub mod console;
pub mod cross_host;
pub mod edit;
mod error;
pub mod events;
mod hypervisor_cpu;
pub mod libvirt;
pub mod migrate;
pub mod new_vm;
pub mod uri;

pub use console::{ConsoleError, ConsoleSession};
pub use error::ConnectionError;

use crate::domain::store::DomainStore;
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

/// An open connection: this computer's engine or a libvirt host, with the verbs both have.
#[derive(Debug)]
pub enum Connection {
    /// This computer: its domain store and runner processes.
    Builtin(DomainStore),
    Libvirt(LibvirtConnection),
}

impl Connection {
    /// Opens `target` (this computer: the user's domain store).
    pub fn open(target: &Target) -> Result<Connection, ConnectionError> {
        match target {
            Target::Builtin => DomainStore::open_default()
                .map(Connection::Builtin)
                .map_err(|e| ConnectionError::Builtin(e.to_string())),
            Target::Libvirt(uri) => LibvirtConnection::open(uri).map(Connection::Libvirt),
        }
    }

    /// The URI (`vireo:///session` for this computer).
    pub fn uri(&self) -> &str {
        match self {
            Connection::Builtin(_) => BUILTIN_URI,
            Connection::Libvirt(conn) => conn.uri(),
        }
    }

    /// Every domain with its state.
    pub fn list_domains(&self) -> Result<Vec<DomainRow>, ConnectionError> {
        match self {
            Connection::Builtin(store) => Ok(builtin::list_domains(store)),
            Connection::Libvirt(conn) => conn.list_domains(),
        }
    }

    /// Each running domain's CPU time, for a libvirt host's list (this computer's list reads
    /// its runners' CPU time itself: nothing here).
    pub fn cpu_times(&self) -> Result<Vec<libvirt::CpuTime>, ConnectionError> {
        match self {
            Connection::Builtin(_) => Ok(Vec::new()),
            Connection::Libvirt(conn) => conn.cpu_times(),
        }
    }

    /// Defines (or redefines) a domain from its XML; returns its name.
    pub fn define(&self, xml: &str) -> Result<String, ConnectionError> {
        match self {
            Connection::Builtin(store) => builtin::define(store, xml),
            Connection::Libvirt(conn) => conn.define(xml),
        }
    }

    /// Removes a domain's definition (disk images stay).
    pub fn undefine(&self, name: &str) -> Result<(), ConnectionError> {
        match self {
            Connection::Builtin(store) => builtin::undefine(store, name),
            Connection::Libvirt(conn) => conn.undefine(name),
        }
    }

    /// Starts a defined domain.
    pub fn start(&self, name: &str) -> Result<(), ConnectionError> {
        match self {
            Connection::Builtin(_) => builtin::start(name),
            Connection::Libvirt(conn) => conn.start(name, false),
        }
    }

    /// Shuts down, reboots, forces off, pauses or resumes a running domain.
    pub fn control(&self, name: &str, action: Lifecycle) -> Result<(), ConnectionError> {
        match self {
            Connection::Builtin(_) => builtin::control(name, action),
            Connection::Libvirt(conn) => conn.control(name, action),
        }
    }

    /// The domain's XML: the live one while it runs unless `inactive`.
    pub fn dumpxml(&self, name: &str, inactive: bool) -> Result<String, ConnectionError> {
        match self {
            Connection::Builtin(store) => builtin::dumpxml(store, name, inactive),
            Connection::Libvirt(conn) => conn.dumpxml(name, inactive),
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

    #[test]
    fn this_computer_and_a_libvirt_host_answer_the_same_calls() {
        let dir = tempfile::tempdir().unwrap();
        let store = DomainStore::open_at(dir.path().join("domains")).unwrap();
        let xml = "<domain type='kvm'><name>both</name><memory unit='MiB'>64</memory>\
                   <os><type arch='x86_64'>hvm</type></os></domain>";
        let test_xml = xml.replace("'kvm'", "'test'");
        for (conn, xml) in [
            (Connection::Builtin(store), xml),
            (
                Connection::open(&Target::Libvirt("test:///default".into())).unwrap(),
                test_xml.as_str(),
            ),
        ] {
            assert_eq!(conn.define(xml).unwrap(), "both", "{}", conn.uri());
            let row = conn
                .list_domains()
                .unwrap()
                .into_iter()
                .find(|r| r.name == "both")
                .unwrap();
            assert_eq!((row.state, row.persistent), (DomainState::ShutOff, true));
            assert!(
                conn.dumpxml("both", true)
                    .unwrap()
                    .contains("<name>both</name>")
            );
            let err = conn.control("both", Lifecycle::Suspend).unwrap_err();
            assert!(err.to_string().starts_with(conn.uri()), "{err}");
            conn.undefine("both").unwrap();
            assert!(
                conn.list_domains()
                    .unwrap()
                    .iter()
                    .all(|r| r.name != "both")
            );
        }
    }
}
