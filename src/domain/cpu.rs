//! The domain's `<cpu>` through the CPU model API: typed access, define-time checks against the
//! CPU map, and the host checks and model choice that depend on what this host's KVM supports.

use std::sync::OnceLock;

use crate::cpu::{CpuDef, CpuError, CpuMap, CpuidData};
use crate::domain::{Domain, DomainError};

fn problem(element: &str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        element: element.to_owned(),
        message: message.into(),
    }
}

/// The CPU map with the user's overlay, loaded once per process. `None` (with a logged warning)
/// when it cannot be loaded, in which case CPU names are not checked rather than every define
/// failing.
pub fn cpu_map() -> Option<&'static CpuMap> {
    static MAP: OnceLock<Option<CpuMap>> = OnceLock::new();
    MAP.get_or_init(|| match CpuMap::load() {
        Ok(map) => Some(map),
        Err(e) => {
            tracing::warn!("CPU map unavailable, CPU models are not checked: {e}");
            None
        }
    })
    .as_ref()
}

impl Domain {
    /// The typed `<cpu>`, if the document has one.
    pub fn cpu_def(&self) -> Option<Result<CpuDef, CpuError>> {
        self.cpu_xml().map(|xml| CpuDef::from_xml(&xml))
    }

    /// Replaces `<cpu>` with `cpu` (the rest of the document is untouched).
    pub fn set_cpu(&mut self, cpu: &CpuDef) -> Result<(), DomainError> {
        let xml = cpu.to_xml_indented(2);
        self.set_cpu_xml(Some(xml.trim()))
    }
}

/// Define-time checks of `<cpu>`: it parses, and every model, vendor and feature it names is in
/// the CPU map.
pub fn cpu_problems(domain: &Domain, map: &CpuMap) -> Vec<DomainError> {
    let cpu = match domain.cpu_def() {
        None => return Vec::new(),
        Some(Err(e)) => return vec![problem("<cpu>", format!("{e}; fix the element"))],
        Some(Ok(cpu)) => cpu,
    };
    let mut problems = Vec::new();
    if let Some(model) = &cpu.model
        && map.model(model).is_none()
    {
        problems.push(problem(
            "<cpu><model>",
            format!(
                "unknown CPU model '{model}'; use a model from the CPU map (`vireoctl \
                 cpu-models`) or add it in ~/.config/vireo/cpu_map/"
            ),
        ));
    }
    if let Some(vendor) = &cpu.vendor
        && map.vendor(vendor).is_none()
    {
        problems.push(problem(
            "<cpu><vendor>",
            format!("unknown CPU vendor '{vendor}'; use Intel, AMD or Hygon"),
        ));
    }
    for feature in &cpu.features {
        if map.feature(&feature.name).is_none() {
            problems.push(problem(
                &format!("<cpu><feature name='{}'>", feature.name),
                format!(
                    "unknown CPU feature '{}'; check its spelling against the CPU map \
                     (libvirt's names, e.g. 'avx2', 'pdpe1gb'; `vireoctl cpu-features` lists \
                     them)",
                    feature.name
                ),
            ));
        }
    }
    problems
}

/// The CPU model "Nearest CPU model" writes for an x86_64 guest: among the models with long
/// mode (`lm`: without it a 64-bit kernel cannot boot, so `pentium3` never qualifies) whose every
/// feature `kvm` can give, the one with the most features, preferring the vendor of the CPU KVM
/// reports; among equals, a name guest decode uses (`Skylake-Client` rather than its alias
/// `Skylake-Client-v1`), then the later model in map order. `None` if no such model is usable
/// (see [`no_64bit_model_reason`] for why).
pub fn nearest_usable_model(map: &CpuMap, kvm: &CpuidData) -> Option<String> {
    let vendor = crate::cpu::decode_host(map, kvm)
        .ok()
        .and_then(|d| d.vendor);
    map.models()
        .filter(|m| has_long_mode(m))
        .filter(|m| {
            crate::cpu::missing_features(map, m.name(), kvm).is_ok_and(|missing| missing.is_empty())
        })
        .max_by_key(|m| {
            let same_vendor = vendor.is_some() && m.vendor() == vendor.as_deref();
            (same_vendor, m.features().len(), m.decode_guest())
        })
        .map(|m| m.name().to_owned())
}

/// Whether a model has long mode, i.e. can run an x86_64 guest.
fn has_long_mode(model: &crate::cpu::map::CpuModel) -> bool {
    model.features().iter().any(|f| f == "lm")
}

/// Why no 64-bit model is usable on `kvm`: the 64-bit model KVM comes closest to, and the
/// features KVM lacks for it, e.g. "the closest, kvm64, needs pni, which this host's KVM
/// cannot give". `None` when some 64-bit model is usable or the map knows none.
pub fn no_64bit_model_reason(map: &CpuMap, kvm: &CpuidData) -> Option<String> {
    let closest = map
        .models()
        .filter(|m| has_long_mode(m))
        .filter_map(|m| {
            let missing = crate::cpu::missing_features(map, m.name(), kvm).ok()?;
            Some((missing.len(), m.name().to_owned(), missing))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))?;
    let (count, name, missing) = closest;
    (count > 0).then(|| {
        format!(
            "the closest 64-bit model, {name}, needs {}, which this host's KVM cannot give",
            missing.join(", ")
        )
    })
}
