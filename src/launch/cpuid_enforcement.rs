//! Whether this host's KVM enforces guest CPUID, answered from the per-boot cache where it can
//! be. The question needs a guest to run (the engine's [`cpuid_probe`]) and its answer is kept in
//! the host's cache file ([`enforcement_cache`]); this is where the two meet, as libvirt caches
//! its capabilities per host boot and QEMU binary.

use crate::engine::EngineError;
use crate::engine::cpuid_probe::cpuid_is_enforced;
use crate::host::enforcement_cache;
use crate::host::kvm::open_kvm;

/// [`cpuid_is_enforced`], answered from the cache when this host state (boot, kernel, KVM
/// flavour and API, host CPU) has been measured before; `api_version` is KVM_GET_API_VERSION.
pub fn cpuid_is_enforced_cached(api_version: i32) -> Result<bool, EngineError> {
    let path = enforcement_cache::default_path();
    let key = enforcement_cache::ProbeKey::current(api_version);
    enforcement_cache::cached_or_probe(path.as_deref(), key.as_ref(), cpuid_is_enforced)
}

/// Whether this host's KVM enforces guest CPUID, for callers without a KVM handle of their own
/// (the GUI, `validate`).
pub fn cpuid_enforcement() -> Result<bool, EngineError> {
    cpuid_is_enforced_cached(open_kvm()?.get_api_version())
}
