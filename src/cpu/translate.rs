//! Translate: re-express a custom guest CPU with one of a restricted list of models (what a
//! particular hypervisor build offers), keeping the CPU's explicit feature policies.

use super::cpuid::RawSignature;
use super::decode::{DecodeOptions, HypervisorModel, decode_features};
use super::def::{CpuDef, CpuFeatureRef, CpuKind, CpuMode, Fallback};
use super::error::CpuError;
use super::map::CpuMap;
use super::policy_sets::{Selection, features_of};

/// Rewrites `cpu` to use a model from `allowed` when its own model is not in the list: the
/// nearest allowed model to the CPU's full feature set, plus or minus features, with the
/// CPU's explicit policies reapplied. Fails when the CPU forbids fallback or no allowed model
/// fits. Non-custom CPUs are left as they are.
pub fn translate(map: &CpuMap, cpu: &mut CpuDef, allowed: &[&str]) -> Result<(), CpuError> {
    if cpu.mode != CpuMode::Custom {
        return Ok(());
    }
    let name = cpu
        .model
        .clone()
        .ok_or_else(|| CpuError::InvalidCpu("a custom CPU needs a model".into()))?;
    if allowed.contains(&name.as_str()) {
        return Ok(());
    }
    if cpu.fallback == Some(Fallback::Forbid) {
        return Err(CpuError::InvalidCpu(format!(
            "CPU model {name} is not offered and its fallback is 'forbid'"
        )));
    }
    let model = map
        .model(&name)
        .ok_or_else(|| CpuError::UnknownModel(name.clone()))?;
    let mut features = features_of(map, cpu, Selection::Effective)?;
    let signature = model.signatures().first().map(|s| RawSignature {
        family: s.family,
        model: s.model,
        stepping: s.steppings.map_or(0, |(lo, _)| lo),
    });
    let hv: Vec<HypervisorModel> = allowed
        .iter()
        .map(|n| HypervisorModel {
            name: n.to_string(),
            blockers: Vec::new(),
        })
        .collect();
    let opts = DecodeOptions {
        kind: Some(CpuKind::Guest),
        hv_models: Some(&hv),
        ..Default::default()
    };
    let translated = decode_features(map, &mut features, model.vendor(), signature, &opts)?;
    let mut list = translated.features;
    for f in &cpu.features {
        match list.iter_mut().find(|t| t.name == f.name) {
            Some(existing) => existing.policy = f.policy,
            None => list.push(CpuFeatureRef {
                name: f.name.clone(),
                policy: f.policy,
            }),
        }
    }
    cpu.model = translated.model;
    cpu.features = list;
    Ok(())
}
