//! Baseline: the richest CPU every one of several CPUs can run, and feature expansion.

use super::decode::{DecodeOptions, decode_features};
use super::def::{CpuDef, CpuFeatureRef, CpuKind, CpuMatch, Fallback, Policy};
use super::error::CpuError;
use super::map::CpuMap;
use super::policy_sets::{Selection, features_of};

/// Options of [`baseline`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaselineFlags {
    /// List every feature of the resulting model explicitly.
    pub expand_features: bool,
    /// Leave out features a guest cannot keep across migration (e.g. `invtsc`).
    pub migratable: bool,
}

/// The baseline of `cpus`: a guest CPU (model + required features) all of them can run.
/// Mixed vendors, unknown models/features/vendors and an empty list are errors.
///
/// Policies follow libvirt's `virCPUx86Baseline`: each input counts as model + `force`/
/// `require` − `disable`/`forbid` (`optional` changes nothing); the intersection is decoded
/// as a guest CPU, so a model feature missing from any input is `disable`d, a feature the
/// model's definition dropped is `disable`d unless every input requires it, and a feature
/// outside the model that not every input has is left out.
pub fn baseline(map: &CpuMap, cpus: &[CpuDef], flags: BaselineFlags) -> Result<CpuDef, CpuError> {
    let (first, rest) = cpus.split_first().ok_or(CpuError::NoCpus)?;
    let mut common = features_of(map, first, Selection::Effective)?;
    let mut vendor = match &first.vendor {
        Some(v) => Some(
            map.vendor(v)
                .ok_or_else(|| CpuError::UnknownVendor(v.clone()))?
                .name(),
        ),
        None => None,
    };
    let mut show_vendor = first.vendor.is_some();
    let mut model_names: Vec<&str> = first.model.as_deref().into_iter().collect();

    for cpu in rest {
        if let Some(name) = cpu.model.as_deref().filter(|n| !model_names.contains(n)) {
            model_names.push(name);
        }
        let features = features_of(map, cpu, Selection::Effective)?;
        let model_vendor = cpu
            .model
            .as_deref()
            .and_then(|m| map.model(m))
            .and_then(|m| m.vendor());
        if let (Some(cv), Some(mv)) = (cpu.vendor.as_deref(), model_vendor) {
            if cv != mv {
                let model = cpu.model.as_deref().unwrap_or_default();
                return Err(CpuError::VendorMismatch(format!(
                    "CPU vendor {mv} of model {model} differs from vendor {cv}"
                )));
            }
        }
        let this_vendor = match cpu.vendor.as_deref() {
            Some(v) => Some(v),
            None => {
                show_vendor = false;
                model_vendor
            }
        };
        if let Some(v) = this_vendor {
            match vendor {
                None => {
                    vendor = Some(
                        map.vendor(v)
                            .ok_or_else(|| CpuError::UnknownVendor(v.to_string()))?
                            .name(),
                    )
                }
                Some(known) if known != v => {
                    return Err(CpuError::VendorMismatch(format!(
                        "{known} and {v} CPUs cannot share a baseline"
                    )));
                }
                Some(_) => {}
            }
        }
        common.intersect_with(&features);
    }
    if common.is_empty() {
        return Err(CpuError::IncompatibleCpus);
    }
    let opts = DecodeOptions {
        kind: Some(CpuKind::Guest),
        preferred: &model_names,
        migratable: flags.migratable,
        ..Default::default()
    };
    let mut cpu = decode_features(map, &mut common, vendor, None, &opts)?;
    cpu.match_ = Some(CpuMatch::Exact);
    let single_model = model_names.len() == 1 && cpu.model.as_deref() == Some(model_names[0]);
    cpu.fallback = Some(if single_model {
        Fallback::Forbid
    } else {
        Fallback::Allow
    });
    if !show_vendor {
        cpu.vendor = None;
    }
    if flags.expand_features {
        expand_features(map, &mut cpu)?;
    }
    Ok(cpu)
}

/// Rewrites `cpu` so its feature list names every feature of its model explicitly (sorted by
/// name), keeping its own `require`/`disable` entries and disabling features the model's
/// definition later dropped.
pub fn expand_features(map: &CpuMap, cpu: &mut CpuDef) -> Result<(), CpuError> {
    let name = cpu
        .model
        .clone()
        .ok_or_else(|| CpuError::InvalidCpu("cannot expand a CPU without a model".into()))?;
    let model = map.model(&name).ok_or(CpuError::UnknownModel(name))?;
    let host = cpu.kind == CpuKind::Host;
    let default_policy = (!host).then_some(Policy::Require);
    let mut expanded: Vec<CpuFeatureRef> = map
        .names_of(model.feature_set())
        .into_iter()
        .map(|name| CpuFeatureRef {
            name,
            policy: default_policy,
        })
        .collect();
    let mut update = |name: &str, policy: Option<Policy>, only_if_missing: bool| match expanded
        .iter_mut()
        .find(|f| f.name == name)
    {
        Some(_) if only_if_missing => {}
        Some(existing) => existing.policy = policy,
        None => expanded.push(CpuFeatureRef {
            name: name.to_string(),
            policy,
        }),
    };
    for feature in &cpu.features {
        if host || matches!(feature.policy, Some(Policy::Require | Policy::Disable)) {
            update(&feature.name, feature.policy, false);
        }
    }
    if !host {
        for removed in model.removed_features() {
            update(removed, Some(Policy::Disable), true);
        }
    }
    expanded.sort_by(|a, b| a.name.cmp(&b.name));
    cpu.features = expanded;
    Ok(())
}
