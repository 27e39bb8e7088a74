//! Pure CPU-model logic: the CPU map, host decode, compare and baseline.
//!
//! No KVM, no GTK and no I/O beyond reading the map live here, so every rule can be tested
//! against libvirt's own test data without a hypervisor.

mod feature_set;
pub mod map;
mod xml_tree;

pub use feature_set::FeatureSet;
pub use map::{CpuFeature, CpuMap, CpuMapError, CpuModel, CpuVendor, FeatureBit, ModelSignature, Register};
