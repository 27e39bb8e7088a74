//! Compare: can a host CPU run a given CPU definition, and how closely does it match?

use super::def::{CpuDef, CpuKind, CpuMatch, Policy};
use super::error::CpuError;
use super::map::CpuMap;
use super::policy_sets::{Selection, features_of};

/// The answer of [`compare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareOutcome {
    /// The host provides exactly what the CPU asks for.
    Identical,
    /// The host provides everything asked for, and more.
    Superset,
    /// The host cannot run the CPU; `features` are the offending ones (empty when the reason
    /// is not a feature, e.g. a different vendor or architecture — see [`compare_explained`]).
    Incompatible { features: Vec<String> },
}

/// Compares `cpu` against `host` (a host-form CPU, e.g. a decode of this machine).
pub fn compare(map: &CpuMap, host: &CpuDef, cpu: &CpuDef) -> Result<CompareOutcome, CpuError> {
    compare_explained(map, host, cpu).map(|(outcome, _)| outcome)
}

/// Like [`compare`], with a sentence saying why the CPU is incompatible.
pub fn compare_explained(
    map: &CpuMap,
    host: &CpuDef,
    cpu: &CpuDef,
) -> Result<(CompareOutcome, Option<String>), CpuError> {
    let incompatible = |features: Vec<String>, why: String| {
        Ok((CompareOutcome::Incompatible { features }, Some(why)))
    };
    if host.model.is_none() {
        return incompatible(Vec::new(), "the host CPU model is unknown".into());
    }
    if let Some(arch) = cpu
        .arch
        .as_deref()
        .filter(|a| !matches!(*a, "x86_64" | "i686"))
    {
        return incompatible(
            Vec::new(),
            format!("CPU arch {arch} does not match host arch"),
        );
    }
    if let Some(vendor) = &cpu.vendor {
        if host.vendor.as_ref() != Some(vendor) {
            return incompatible(
                Vec::new(),
                format!("host CPU vendor does not match required CPU vendor {vendor}"),
            );
        }
    }
    let host_set = features_of(map, host, Selection::Effective)?;
    let only = |p| features_of(map, cpu, Selection::Only(p));
    let (force, mut require, optional, disable, mut forbid) = (
        only(Policy::Force)?,
        only(Policy::Require)?,
        only(Policy::Optional)?,
        only(Policy::Disable)?,
        only(Policy::Forbid)?,
    );

    forbid.intersect_with(&host_set);
    if !forbid.is_empty() {
        let names = map.names_of(&forbid);
        let why = format!("host CPU provides forbidden features: {}", names.join(", "));
        return incompatible(names, why);
    }
    // Model features explicitly forced, made optional or disabled are not requirements.
    for set in [&force, &optional, &disable] {
        require.subtract(set);
    }
    let lacking = require.difference(&host_set);
    if !lacking.is_empty() {
        let names = map.names_of(&lacking);
        let why = format!(
            "host CPU does not provide required features: {}",
            names.join(", ")
        );
        return incompatible(names, why);
    }
    let mut extra = host_set;
    for set in [&optional, &require, &disable, &force] {
        extra.subtract(set);
    }
    if extra.is_empty() {
        return Ok((CompareOutcome::Identical, None));
    }
    if cpu.kind == CpuKind::Guest && cpu.match_ == Some(CpuMatch::Strict) {
        let names = map.names_of(&extra);
        let why = format!(
            "host CPU does not strictly match guest CPU: extra features: {}",
            names.join(", ")
        );
        return incompatible(names, why);
    }
    Ok((CompareOutcome::Superset, None))
}
