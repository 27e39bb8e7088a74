//! Pure CPU-model logic: the CPU map, host decode, compare and baseline.
//!
//! No KVM, no GTK and no I/O beyond reading the map live here, so every rule can be tested
//! against libvirt's own test data without a hypervisor.

mod baseline;
mod caps;
mod compare;
mod cpuid;
mod decode;
mod def;
mod def_format;
mod error;
mod feature_set;
pub mod guest;
pub mod map;
mod policy_sets;
mod translate;
mod update;
mod usable;
mod xml_tree;

pub use baseline::{BaselineFlags, baseline, expand_features};
pub use caps::{ModelUsability, domcapabilities_cpu_xml, host_model, model_usability};
pub use compare::{CompareOutcome, compare, compare_explained};
pub use cpuid::{CpuidData, CpuidLeaf, MsrValue, features_in, set_feature};
pub use decode::{HypervisorModel, decode_guest, decode_guest_for, decode_host};
pub use def::{
    CpuCheck, CpuDef, CpuFeatureRef, CpuKind, CpuMatch, CpuMode, CpuSignature, Fallback, Policy,
    Topology,
};
pub use error::CpuError;
pub use feature_set::FeatureSet;
pub use map::{
    CpuFeature, CpuMap, CpuMapError, CpuModel, CpuVendor, FeatureBit, ModelSignature, Register,
};
pub use policy_sets::{has_feature, validate};
pub use translate::translate;
pub use update::{copy_migratable, update};
pub use usable::missing_features;
