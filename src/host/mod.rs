//! Facts about this host: KVM capabilities, this host's CPUID, host validation checks.

pub mod cpuid;
pub mod enforcement_cache;
pub mod facts;
pub mod kvm;
pub mod kvm_caps;
pub mod validate;
