//! Update: turning a guest CPU that depends on the host (`host-model`, `match='minimum'`,
//! `optional` features) into a self-contained custom definition for a given host, as libvirt
//! does when it starts a domain. The engine records the result as the running domain's CPU.

use super::def::{CpuDef, CpuFeatureRef, CpuKind, CpuMatch, CpuMode, Policy};
use super::error::CpuError;
use super::map::CpuMap;
use super::policy_sets::{Selection, features_of};

/// A copy of `cpu` without the features that pin a guest to its host (e.g. `invtsc`).
pub fn copy_migratable(map: &CpuMap, cpu: &CpuDef) -> CpuDef {
    let mut copy = cpu.clone();
    copy.features.retain(|f| {
        map.feature(&f.name)
            .is_none_or(|feature| feature.migratable())
    });
    copy
}

/// Sets `name` to `policy` in `features`, appending it when absent.
fn set_policy(features: &mut Vec<CpuFeatureRef>, name: &str, policy: Option<Policy>) {
    match features.iter_mut().find(|f| f.name == name) {
        Some(existing) => existing.policy = policy,
        None => features.push(CpuFeatureRef {
            name: name.to_string(),
            policy,
        }),
    }
}

/// Resolves `guest` against `host` (a host-form CPU, usually [`copy_migratable`] of this host):
/// `optional` features become `require` or `disable` by what the host has; `host-model` and
/// `match='minimum'` CPUs become the host's model and features plus the guest's own feature
/// policies, as `mode='custom' match='exact'`. Features the model's definition dropped are
/// listed as `disable`. host-passthrough and maximum CPUs are left as they are.
pub fn update(map: &CpuMap, guest: &mut CpuDef, host: &CpuDef) -> Result<(), CpuError> {
    let relative = match guest.mode {
        CpuMode::HostPassthrough | CpuMode::Maximum => return Ok(()),
        CpuMode::HostModel => true,
        CpuMode::Custom => {
            guest.match_ == Some(CpuMatch::Minimum)
                || guest
                    .features
                    .iter()
                    .any(|f| f.policy == Some(Policy::Optional))
        }
    };
    if relative {
        if host.model.is_none() {
            return Err(CpuError::InvalidCpu("the host CPU model is unknown".into()));
        }
        let host_set = features_of(map, host, Selection::Effective)?;
        for feature in guest
            .features
            .iter_mut()
            .filter(|f| f.policy == Some(Policy::Optional))
        {
            let index = map
                .feature_position(&feature.name)
                .ok_or_else(|| CpuError::UnknownFeature(feature.name.clone()))?;
            feature.policy = Some(if host_set.contains(index) {
                Policy::Require
            } else {
                Policy::Disable
            });
        }
        if guest.mode == CpuMode::HostModel || guest.match_ == Some(CpuMatch::Minimum) {
            adopt_host_model(guest, host);
        }
    }
    let name = guest
        .model
        .clone()
        .ok_or_else(|| CpuError::InvalidCpu("a custom CPU needs a model".into()))?;
    let model = map.model(&name).ok_or(CpuError::UnknownModel(name))?;
    for removed in model.removed_features() {
        if !guest.features.iter().any(|f| &f.name == removed) {
            guest.features.push(CpuFeatureRef {
                name: removed.clone(),
                policy: Some(Policy::Disable),
            });
        }
    }
    Ok(())
}

/// The host's model and features (all `require`), with the guest's own policies on top.
fn adopt_host_model(guest: &mut CpuDef, host: &CpuDef) {
    let mut features: Vec<CpuFeatureRef> = host
        .features
        .iter()
        .filter(|f| matches!(f.policy, None | Some(Policy::Require | Policy::Force)))
        .map(|f| CpuFeatureRef {
            name: f.name.clone(),
            policy: Some(Policy::Require),
        })
        .collect();
    for f in &guest.features {
        set_policy(&mut features, &f.name, f.policy);
    }
    // A custom (match='minimum') CPU keeps its own vendor; host-model takes the host's.
    if guest.mode == CpuMode::HostModel {
        guest.vendor = host.vendor.clone();
    }
    guest.kind = CpuKind::Guest;
    guest.model = host.model.clone();
    guest.features = features;
    guest.mode = CpuMode::Custom;
    guest.match_ = Some(CpuMatch::Exact);
}
