//! Turning a `<cpu>` definition into feature sets, per policy — the common first step of
//! compare, baseline and usability checks.

use super::def::{CpuDef, CpuKind, Policy};
use super::error::CpuError;
use super::feature_set::FeatureSet;
use super::map::CpuMap;

/// Which features of a definition to collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Everything the CPU ends up with: model + forced/required − disabled/forbidden.
    Effective,
    /// Only features with this policy (the model's own features count as `require`).
    Only(Policy),
}

/// The features `cpu` selects; errors name an unknown model or feature.
pub(crate) fn features_of(
    map: &CpuMap,
    cpu: &CpuDef,
    selection: Selection,
) -> Result<FeatureSet, CpuError> {
    let wants_model = matches!(
        selection,
        Selection::Effective | Selection::Only(Policy::Require)
    );
    // A host CPU only has present features; other policies select nothing.
    if cpu.kind == CpuKind::Host && !wants_model {
        return Ok(FeatureSet::new());
    }
    let mut set = match (&cpu.model, wants_model) {
        (Some(name), true) => map
            .model(name)
            .ok_or_else(|| CpuError::UnknownModel(name.clone()))?
            .feature_set()
            .clone(),
        _ => FeatureSet::new(),
    };
    for feature in &cpu.features {
        let policy = feature.policy.unwrap_or(Policy::Require);
        let wanted = match selection {
            Selection::Effective => policy != Policy::Optional,
            Selection::Only(p) => p == policy,
        };
        if !wanted {
            continue;
        }
        let index = map
            .feature_position(&feature.name)
            .ok_or_else(|| CpuError::UnknownFeature(feature.name.clone()))?;
        match (selection, policy) {
            (Selection::Effective, Policy::Disable | Policy::Forbid) => set.remove(index),
            _ => set.insert(index),
        }
    }
    Ok(set)
}

/// Checks that every model, vendor and feature `cpu` names exists in the map.
pub fn validate(map: &CpuMap, cpu: &CpuDef) -> Result<(), CpuError> {
    if let Some(name) = &cpu.model {
        map.model(name)
            .ok_or_else(|| CpuError::UnknownModel(name.clone()))?;
    }
    if let Some(vendor) = &cpu.vendor {
        map.vendor(vendor)
            .ok_or_else(|| CpuError::UnknownVendor(vendor.clone()))?;
    }
    for feature in &cpu.features {
        map.feature(&feature.name)
            .ok_or_else(|| CpuError::UnknownFeature(feature.name.clone()))?;
    }
    Ok(())
}

/// Whether `cpu` (model + its feature list) ends up with feature `name`.
pub fn has_feature(map: &CpuMap, cpu: &CpuDef, name: &str) -> Result<bool, CpuError> {
    let index = map
        .feature_position(name)
        .ok_or_else(|| CpuError::UnknownFeature(name.to_string()))?;
    Ok(features_of(map, cpu, Selection::Effective)?.contains(index))
}
