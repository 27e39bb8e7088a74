//! The guest CPU: the exact CPUID table a VM is started with.
//!
//! Resolution turns a domain's CPU choice plus this host's KVM capabilities into a
//! [`GuestCpuid`]; topology writes the sockets/dies/cores/threads layout into the leaves a guest
//! reads it from. Everything here is pure and deterministic: the same input gives the same table,
//! which is what keeps a guest's CPU stable from one start to the next.

pub mod catalog;
pub mod map_catalog;
pub mod resolve;
pub mod table;
pub mod topology;

pub use catalog::{BasicCatalog, CpuCatalog};
pub use resolve::{
    CheckMode, CpuMode, GuestCpuSpec, HostCpuFacts, MatchMode, Policy, ResolveError, ResolvedCpu,
    resolve,
};
pub use table::{CpuidRegister, GuestCpuid, GuestCpuidEntry};
pub use topology::GuestTopology;
