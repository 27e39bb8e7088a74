//! Usability: can a hypervisor actually provide a named model?

use super::cpuid::{CpuidData, feature_set_in};
use super::error::CpuError;
use super::map::CpuMap;

/// The features of `model` that `available` (e.g. KVM's supported CPUID) lacks, in map order.
/// Empty means the model is usable.
pub fn missing_features(
    map: &CpuMap,
    model: &str,
    available: &CpuidData,
) -> Result<Vec<String>, CpuError> {
    let model = map
        .model(model)
        .ok_or_else(|| CpuError::UnknownModel(model.to_string()))?;
    let have = feature_set_in(map, available);
    Ok(map.names_of(&model.feature_set().difference(&have)))
}
