//! Facts about this host: KVM capabilities, this host's CPUID, host validation checks.
