//! Pure CPU-model logic: the CPU map, host decode, compare, baseline and guest CPU resolution.
//!
//! No KVM, no GTK and no I/O beyond reading the map live here, so every rule can be tested
//! against libvirt's own test data without a hypervisor.
pub mod guest;
