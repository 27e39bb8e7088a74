//! The domain's `<cpu>` through the CPU model API: typed access, define-time checks against the
//! CPU map, and the host checks and model choice that depend on what this host's KVM supports.

use std::sync::OnceLock;

use crate::cpu::{CpuDef, CpuError, CpuMap, CpuMode, CpuidData, Policy, features_in};
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
                     (libvirt's names, e.g. 'avx2', 'pdpe1gb')",
                    feature.name
                ),
            ));
        }
    }
    problems
}

/// Features the guest CPU asks for that `kvm` (KVM's supported CPUID) cannot give: the model's
/// features and `require`d ones, minus those the definition disables, forbids or makes optional.
/// `force`d features are not counted: libvirt sets them regardless.
pub fn missing_on_kvm(
    cpu: &CpuDef,
    map: &CpuMap,
    kvm: &CpuidData,
) -> Result<Vec<String>, CpuError> {
    if cpu.mode != CpuMode::Custom {
        return Ok(Vec::new());
    }
    let policy_of = |name: &str| {
        cpu.features
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.policy)
    };
    let mut missing = match &cpu.model {
        Some(model) => crate::cpu::missing_features(map, model, kvm)?,
        None => Vec::new(),
    };
    missing.retain(|f| {
        !matches!(
            policy_of(f),
            Some(Policy::Disable | Policy::Forbid | Policy::Optional | Policy::Force)
        )
    });
    let available = features_in(map, kvm);
    for feature in &cpu.features {
        let required = matches!(feature.policy, None | Some(Policy::Require));
        if required && !available.contains(&feature.name) && !missing.contains(&feature.name) {
            missing.push(feature.name.clone());
        }
    }
    Ok(missing)
}

/// Host check of `<cpu>`: can this KVM give the guest everything it asks for?
pub fn cpu_host_problems(domain: &Domain, map: &CpuMap, kvm: &CpuidData) -> Vec<DomainError> {
    let Some(Ok(cpu)) = domain.cpu_def() else {
        return Vec::new(); // absent, or already reported by the define-time check
    };
    match missing_on_kvm(&cpu, map, kvm) {
        Ok(missing) if missing.is_empty() => Vec::new(),
        Ok(missing) => vec![problem(
            "<cpu>",
            format!(
                "{} is not usable on this host's KVM, which cannot provide: {}; choose another \
                 model, mark those features policy='disable', or use mode='host-model'",
                cpu.model
                    .as_deref()
                    .map_or("the requested CPU".to_owned(), |m| format!("model '{m}'")),
                missing.join(", ")
            ),
        )],
        Err(e) => vec![problem("<cpu>", e.to_string())],
    }
}

/// The CPU model "Nearest CPU model" writes: among the models whose every feature `kvm` can
/// give, the one with the most features, preferring the vendor of the CPU KVM reports; among
/// equals, a name guest decode uses (`Skylake-Client` rather than its alias `Skylake-Client-v1`),
/// then the later model in map order. `None` if no model is usable.
pub fn nearest_usable_model(map: &CpuMap, kvm: &CpuidData) -> Option<String> {
    let vendor = crate::cpu::decode_host(map, kvm)
        .ok()
        .and_then(|d| d.vendor);
    map.models()
        .filter(|m| {
            crate::cpu::missing_features(map, m.name(), kvm).is_ok_and(|missing| missing.is_empty())
        })
        .max_by_key(|m| {
            let same_vendor = vendor.is_some() && m.vendor() == vendor.as_deref();
            (same_vendor, m.features().len(), m.decode_guest())
        })
        .map(|m| m.name().to_owned())
}
