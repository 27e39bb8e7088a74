//! Domain XML: libvirt-compatible VM definitions, kept losslessly, and the per-user store.
//!
//! - [`xml`]: the lossless tree every document lives in.
//! - [`Domain`] ([`model`], [`devices`]): typed getters and in-place setters.
//! - [`cpu`]: `<cpu>` through the CPU model API (map checks, KVM usability, nearest model).
//! - [`name`]: the one rule for domain names (they become file names).
//! - [`units`]: libvirt memory units.
//! - [`store`]: the per-user store ([`DomainStore`]), atomic and locked (`crate::util::atomic`).
//! - [`validate`]: document and host checks ([`interfaces`]: what an `<interface>` must be).
//! - [`canon`]: canonical form for comparing documents (attribute order, whitespace aside).

pub mod canon;
pub mod cpu;
pub mod devices;
pub mod first_start;
pub mod interfaces;
pub mod model;
pub mod name;
pub mod new_vm;
pub mod store;
pub mod units;
pub mod validate;
pub mod xml;

pub use model::{CpuTune, Domain, LifecycleEvent, NumaTune, Os, OsText, Pin, Vcpu};
pub use store::{BrokenDomain, DomainStore, StoreError, StoredDomain};
pub use units::{MemUnit, Memory};
pub use validate::HostFacts;

/// Something wrong with a domain document. Every message names the element and the fix.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    #[error("{element}: {message}")]
    Invalid { element: String, message: String },
}
