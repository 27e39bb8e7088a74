//! Guest CPU resolution (DESIGN.md §2): a domain's CPU choice + this host's KVM → the exact
//! CPUID table the VM starts with, or an error naming every feature that stands in the way.
//!
//! Order: model bits (vendor, signature) → features by policy → `match` → check against
//! KVM_GET_SUPPORTED_CPUID (per `check`) → intersect. Pure and deterministic.

use std::collections::BTreeSet;

use super::catalog::{CpuCatalog, DEFAULT_MODEL};
use super::table::{CpuidRegister, GuestCpuid};

/// libvirt's `<cpu mode>`, plus "no `<cpu>` element at all".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// No `<cpu>`: the built-in default model, maximum compatibility.
    HypervisorDefault,
    /// A named model (`mode='custom'`).
    Custom,
    /// The host's nearest model plus every extra feature KVM can give, fixed at start.
    HostModel,
    /// KVM_GET_SUPPORTED_CPUID as is.
    HostPassthrough,
    /// Same as host-passthrough under KVM.
    Maximum,
}

/// `<cpu match>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// The model's features at least; the host's other features are added.
    Minimum,
    /// Exactly the model's features (plus/minus explicit ones).
    Exact,
    /// Exactly, and the host must have exactly those features.
    Strict,
}

/// `<cpu check>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMode {
    /// Check nothing: features KVM lacks are dropped silently.
    None,
    /// Refuse to start when KVM lacks a requested feature.
    Partial,
    /// As partial, and refuse where KVM does not enforce guest CPUID.
    Full,
}

/// `<feature policy>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// On even if KVM lacks it (with a warning).
    Force,
    /// On; fail when KVM lacks it.
    Require,
    /// On if KVM has it.
    Optional,
    /// Off.
    Disable,
    /// Off; fail when the host has it.
    Forbid,
}

/// The parts of a domain's `<cpu>` resolution reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCpuSpec {
    /// The mode.
    pub mode: CpuMode,
    /// `match` (custom mode only; default exact).
    pub match_mode: MatchMode,
    /// `check`; `None` = the mode's default (partial for named models, none otherwise).
    pub check: Option<CheckMode>,
    /// The model name (custom mode).
    pub model: Option<String>,
    /// Explicit features with their policies, in document order.
    pub features: Vec<(String, Policy)>,
}

impl GuestCpuSpec {
    /// A spec for `mode` with nothing else set.
    pub fn mode(mode: CpuMode) -> Self {
        Self {
            mode,
            match_mode: MatchMode::Exact,
            check: None,
            model: None,
            features: Vec::new(),
        }
    }

    /// `mode='custom' match='exact'` with `model`.
    pub fn custom(model: &str) -> Self {
        Self {
            model: Some(model.into()),
            ..Self::mode(CpuMode::Custom)
        }
    }

    fn effective_check(&self) -> CheckMode {
        self.check.unwrap_or(match self.mode {
            CpuMode::Custom | CpuMode::HostModel => CheckMode::Partial,
            _ => CheckMode::None,
        })
    }
}

/// The host facts resolution depends on.
#[derive(Debug, Clone)]
pub struct HostCpuFacts {
    /// KVM_GET_SUPPORTED_CPUID.
    pub kvm_supported: GuestCpuid,
    /// Whether KVM makes the guest see the table it is given.
    pub cpuid_enforced: bool,
}

/// A resolved guest CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCpu {
    /// The CPUID table (before per-vCPU topology patching).
    pub table: GuestCpuid,
    /// The model the table is built from (for host-model: the expansion's model).
    pub model: Option<String>,
    /// The enabled features the catalog knows, in catalog order (host-model's expansion).
    pub features: Vec<String>,
    /// Things that work but deserve a word (forced features, dropped features, not enforced).
    pub warnings: Vec<String>,
}

impl ResolvedCpu {
    /// The resolution as a concrete libvirt `<cpu>`: the model and every enabled feature
    /// required, which resolves back to this same table on this host (host-model's recorded
    /// expansion, shown in the running domain's live XML).
    pub fn expansion_xml(&self, topology: Option<&super::topology::GuestTopology>) -> String {
        let mut xml = String::from("<cpu mode='custom' match='exact' check='partial'>\n");
        if let Some(model) = &self.model {
            xml.push_str(&format!("  <model fallback='forbid'>{model}</model>\n"));
        }
        for feature in &self.features {
            xml.push_str(&format!("  <feature policy='require' name='{feature}'/>\n"));
        }
        if let Some(t) = topology {
            xml.push_str(&format!(
                "  <topology sockets='{}' dies='{}' cores='{}' threads='{}'/>\n",
                t.sockets, t.dies, t.cores, t.threads
            ));
        }
        xml.push_str("</cpu>\n");
        xml
    }
}

/// Why a CPU cannot be given to the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The model is not in the CPU map.
    #[error("unknown CPU model '{0}'; pick one from `vireoctl cpu-models x86_64`")]
    UnknownModel(String),
    /// `mode='custom'` without `<model>`.
    #[error("<cpu mode='custom'> needs a <model>")]
    NoModel,
    /// A feature name the CPU map does not know.
    #[error("unknown CPU feature '{0}'; pick one from `vireoctl cpu-features`")]
    UnknownFeature(String),
    /// KVM cannot provide features the CPU needs.
    #[error(
        "this host's KVM lacks CPU features {model_hint}needs: {}; choose an older model, disable them, or use host-model",
        .features.join(", ")
    )]
    Missing {
        /// "the model X " or "the requested CPU ".
        model_hint: String,
        /// Every missing feature.
        features: Vec<String>,
    },
    /// Forbidden features the host has.
    #[error("the host has features this CPU forbids: {}; remove policy='forbid' or run elsewhere", .0.join(", "))]
    Forbidden(Vec<String>),
    /// match='strict' and the host differs.
    #[error("match='strict' but the host's CPU differs: {0}; use match='exact'")]
    StrictMismatch(String),
    /// check='full' where CPUID is not enforced.
    #[error(
        "check='full' requires KVM to enforce guest CPUID, and this host's KVM does not (see `vireoctl host-validate`); use check='partial'"
    )]
    NotEnforced,
}

/// Leaves/registers that hold only feature flags: cleared before a model's features are set.
const FEATURE_REGISTERS: &[(u32, u32, CpuidRegister)] = &[
    (1, 0, CpuidRegister::Ecx),
    (1, 0, CpuidRegister::Edx),
    (7, 0, CpuidRegister::Ebx),
    (7, 0, CpuidRegister::Ecx),
    (7, 0, CpuidRegister::Edx),
    (7, 1, CpuidRegister::Eax),
    (0xd, 1, CpuidRegister::Eax),
    (0x8000_0001, 0, CpuidRegister::Ecx),
    (0x8000_0001, 0, CpuidRegister::Edx),
];

/// Resolves `spec` on a host with `host` facts.
pub fn resolve(
    catalog: &dyn CpuCatalog,
    spec: &GuestCpuSpec,
    host: &HostCpuFacts,
) -> Result<ResolvedCpu, ResolveError> {
    let check = spec.effective_check();
    if check == CheckMode::Full && !host.cpuid_enforced {
        return Err(ResolveError::NotEnforced);
    }
    // "hypervisor" (CPUID.1:ECX[31]) is the VMM's to set, so KVM_GET_SUPPORTED_CPUID never
    // reports it; every KVM guest may have it. Without it a guest believes it runs on bare
    // metal: Linux then looks for no KVM signature (no kvm-clock), calibrates its TSC against
    // the PIT and probes PMU MSRs as on hardware.
    let mut host_features: BTreeSet<String> = catalog
        .features_in(&host.kvm_supported)
        .into_iter()
        .collect();
    host_features.insert("hypervisor".into());
    let mut warnings = Vec::new();

    let (mut requested, model, mut table) = match spec.mode {
        CpuMode::HostPassthrough | CpuMode::Maximum => {
            (host_features.clone(), None, host.kvm_supported.clone())
        }
        CpuMode::HostModel => {
            let name = catalog.nearest_model(&host.kvm_supported);
            (host_features.clone(), name, host.kvm_supported.clone())
        }
        CpuMode::HypervisorDefault | CpuMode::Custom => {
            let name = match spec.mode {
                CpuMode::Custom => spec.model.clone().ok_or(ResolveError::NoModel)?,
                _ => DEFAULT_MODEL.to_string(),
            };
            let info = catalog
                .model(&name)
                .ok_or_else(|| ResolveError::UnknownModel(name.clone()))?;
            let table = model_skeleton(&host.kvm_supported, info.vendor.as_deref(), info.signature);
            let mut features: BTreeSet<String> = info.features.into_iter().collect();
            // Every KVM guest is told it runs on a hypervisor, as QEMU does.
            features.insert("hypervisor".into());
            (features, Some(info.name), table)
        }
    };

    let mut forced = BTreeSet::new();
    let mut disabled = BTreeSet::new();
    let mut explicit_required = BTreeSet::new();
    let mut forbidden_present = Vec::new();
    for (raw, policy) in &spec.features {
        let name = catalog
            .canonical_feature(raw)
            .ok_or_else(|| ResolveError::UnknownFeature(raw.clone()))?;
        match policy {
            Policy::Force => {
                forced.insert(name.clone());
                requested.insert(name);
            }
            Policy::Require => {
                explicit_required.insert(name.clone());
                requested.insert(name);
            }
            Policy::Optional => {
                if host_features.contains(&name) {
                    requested.insert(name);
                } else {
                    requested.remove(&name);
                }
            }
            Policy::Disable | Policy::Forbid => {
                if *policy == Policy::Forbid && host_features.contains(&name) {
                    forbidden_present.push(name.clone());
                }
                requested.remove(&name);
                disabled.insert(name);
            }
        }
    }
    if !forbidden_present.is_empty() {
        return Err(ResolveError::Forbidden(forbidden_present));
    }

    if spec.mode == CpuMode::Custom {
        match spec.match_mode {
            MatchMode::Minimum => {
                requested.extend(host_features.difference(&disabled).cloned());
            }
            MatchMode::Exact => {}
            MatchMode::Strict => {
                let extra: Vec<&String> = host_features
                    .difference(&requested)
                    .filter(|f| !disabled.contains(*f))
                    .collect();
                if !extra.is_empty() {
                    return Err(ResolveError::StrictMismatch(format!(
                        "the host also has {}",
                        extra
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    }

    let missing: Vec<String> = catalog
        .feature_names()
        .into_iter()
        .filter(|f| requested.contains(f) && !host_features.contains(f) && !forced.contains(f))
        .collect();
    if !missing.is_empty() {
        // "hypervisor" is ours to add, not the model's; never fail over it.
        let hard: Vec<String> = missing
            .iter()
            .filter(|f| *f != "hypervisor" || explicit_required.contains(*f))
            .cloned()
            .collect();
        if check == CheckMode::None || hard.is_empty() {
            if !hard.is_empty() {
                warnings.push(format!(
                    "KVM lacks {}; the guest will not see them",
                    hard.join(", ")
                ));
            }
        } else {
            return Err(ResolveError::Missing {
                model_hint: match &model {
                    Some(m) if spec.mode == CpuMode::Custom => format!("the model {m} "),
                    _ => "the requested CPU ".into(),
                },
                features: hard,
            });
        }
        for f in &missing {
            requested.remove(f);
        }
    }
    for f in &forced {
        if !host_features.contains(f) {
            warnings.push(format!(
                "feature {f} is forced although KVM does not offer it; the guest may fault using it"
            ));
        }
    }

    for name in catalog.feature_names() {
        if let Some(bit) = catalog.feature_bit(&name) {
            table.set_bit(
                bit.leaf,
                bit.subleaf,
                bit.reg,
                bit.bit,
                requested.contains(&name),
            );
        }
    }
    if !host.cpuid_enforced {
        warnings.push(
            "this host's KVM does not enforce guest CPUID: the guest may see the host's CPU instead"
                .into(),
        );
    }
    let features = catalog.features_in(&table);
    Ok(ResolvedCpu {
        table,
        model,
        features,
        warnings,
    })
}

/// KVM's table with the vendor and signature of a model and every feature register cleared,
/// keeping the informational leaves (caches, XSAVE sizes, address widths) KVM reports.
fn model_skeleton(
    kvm: &GuestCpuid,
    vendor: Option<&str>,
    signature: Option<(u32, u32, u32)>,
) -> GuestCpuid {
    let mut table = kvm.clone();
    for (leaf, subleaf, reg) in FEATURE_REGISTERS {
        if let Some(e) = table.get_mut(*leaf, *subleaf) {
            *e.reg_mut(*reg) = 0;
        }
    }
    if let Some(vendor) = vendor.filter(|v| v.len() == 12)
        && let Some(e) = table.get_mut(0, 0)
    {
        let b = vendor.as_bytes();
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        e.ebx = word(0);
        e.edx = word(4);
        e.ecx = word(8);
    }
    if let Some((family, model, stepping)) = signature
        && let Some(e) = table.get_mut(1, 0)
    {
        e.eax = encode_signature(family, model, stepping);
    }
    table
}

/// CPUID leaf 1 EAX for a family/model/stepping (extended fields where the family needs them).
pub fn encode_signature(family: u32, model: u32, stepping: u32) -> u32 {
    let (base_family, ext_family) = if family > 0xf {
        (0xf, family - 0xf)
    } else {
        (family, 0)
    };
    (ext_family << 20) | ((model >> 4) << 16) | (base_family << 8) | ((model & 0xf) << 4) | stepping
}

#[cfg(test)]
mod tests {
    use super::super::catalog::BasicCatalog;
    use super::super::table::GuestCpuidEntry;
    use super::*;

    /// A small host: qemu64's features except pni and svm (like PVM), plus avx2.
    fn host(enforced: bool) -> HostCpuFacts {
        let mut t = GuestCpuid::from_entries([
            GuestCpuidEntry::zeroed(0, 0, false),
            GuestCpuidEntry::zeroed(1, 0, false),
            GuestCpuidEntry::zeroed(7, 0, true),
            GuestCpuidEntry::zeroed(0x8000_0000, 0, false),
            GuestCpuidEntry::zeroed(0x8000_0001, 0, false),
        ]);
        let qemu64 = BasicCatalog.model(DEFAULT_MODEL).unwrap().features;
        let host_features = qemu64
            .iter()
            .map(String::as_str)
            .filter(|f| !matches!(*f, "pni" | "svm"));
        for f in host_features.chain(["avx2"]) {
            let b = BasicCatalog.feature_bit(f).unwrap();
            t.set_bit(b.leaf, b.subleaf, b.reg, b.bit, true);
        }
        HostCpuFacts {
            kvm_supported: t,
            cpuid_enforced: enforced,
        }
    }

    fn spec_with(features: &[(&str, Policy)]) -> GuestCpuSpec {
        GuestCpuSpec {
            features: features.iter().map(|(f, p)| (f.to_string(), *p)).collect(),
            ..GuestCpuSpec::custom(DEFAULT_MODEL)
        }
    }

    #[test]
    fn custom_model_needing_missing_features_names_every_one() {
        let err = resolve(&BasicCatalog, &GuestCpuSpec::custom("qemu64"), &host(true)).unwrap_err();
        let ResolveError::Missing { features, .. } = &err else {
            panic!("{err}")
        };
        assert!(features.contains(&"pni".to_string()) && features.contains(&"svm".to_string()));
        assert!(err.to_string().contains("pni"));
    }

    #[test]
    fn check_none_drops_what_kvm_lacks() {
        let spec = GuestCpuSpec {
            check: Some(CheckMode::None),
            ..GuestCpuSpec::custom("qemu64")
        };
        let r = resolve(&BasicCatalog, &spec, &host(true)).unwrap();
        assert!(r.features.contains(&"sse2".to_string()));
        assert!(!r.features.contains(&"pni".to_string()));
    }

    #[test]
    fn disable_hides_a_feature_and_forbid_fails_when_present() {
        let mut spec = GuestCpuSpec::mode(CpuMode::HostPassthrough);
        spec.features = vec![("avx2".into(), Policy::Disable)];
        let r = resolve(&BasicCatalog, &spec, &host(true)).unwrap();
        assert!(!r.features.contains(&"avx2".to_string()));
        spec.features = vec![("avx2".into(), Policy::Forbid)];
        assert_eq!(
            resolve(&BasicCatalog, &spec, &host(true)),
            Err(ResolveError::Forbidden(vec!["avx2".into()]))
        );
    }

    #[test]
    fn require_optional_and_force() {
        let h = host(true);
        let spec = GuestCpuSpec {
            check: Some(CheckMode::None),
            ..spec_with(&[
                ("avx2", Policy::Require),
                ("aes", Policy::Optional),
                ("sse3", Policy::Force),
            ])
        };
        let r = resolve(&BasicCatalog, &spec, &h).unwrap();
        assert!(r.features.contains(&"avx2".to_string()));
        assert!(!r.features.contains(&"aes".to_string()));
        assert!(r.features.contains(&"pni".to_string()));
        assert!(r.warnings.iter().any(|w| w.contains("pni")));
        let spec = GuestCpuSpec {
            check: Some(CheckMode::Partial),
            ..spec_with(&[
                ("aes", Policy::Require),
                ("pni", Policy::Force),
                ("svm", Policy::Disable),
            ])
        };
        let err = resolve(&BasicCatalog, &spec, &h).unwrap_err();
        assert_eq!(
            err,
            ResolveError::Missing {
                model_hint: "the model qemu64 ".into(),
                features: vec!["aes".into()]
            }
        );
    }

    #[test]
    fn minimum_adds_host_features_and_strict_refuses_extras() {
        let mut spec = spec_with(&[("pni", Policy::Disable), ("svm", Policy::Disable)]);
        spec.match_mode = MatchMode::Minimum;
        let r = resolve(&BasicCatalog, &spec, &host(true)).unwrap();
        assert!(r.features.contains(&"avx2".to_string()));
        spec.match_mode = MatchMode::Strict;
        assert!(matches!(
            resolve(&BasicCatalog, &spec, &host(true)),
            Err(ResolveError::StrictMismatch(_))
        ));
    }

    #[test]
    fn full_check_needs_enforcement() {
        let spec = GuestCpuSpec {
            check: Some(CheckMode::Full),
            ..GuestCpuSpec::mode(CpuMode::HostPassthrough)
        };
        assert_eq!(
            resolve(&BasicCatalog, &spec, &host(false)),
            Err(ResolveError::NotEnforced)
        );
        assert!(resolve(&BasicCatalog, &spec, &host(true)).is_ok());
    }

    #[test]
    fn default_and_host_model_are_deterministic() {
        let h = host(true);
        for mode in [
            CpuMode::HypervisorDefault,
            CpuMode::HostModel,
            CpuMode::HostPassthrough,
        ] {
            let spec = GuestCpuSpec::mode(mode);
            assert_eq!(
                resolve(&BasicCatalog, &spec, &h),
                resolve(&BasicCatalog, &spec, &h)
            );
        }
        let r = resolve(&BasicCatalog, &GuestCpuSpec::mode(CpuMode::HostModel), &h).unwrap();
        assert_eq!(r.model.as_deref(), Some("qemu64"));
        assert!(r.features.contains(&"avx2".to_string()));
    }

    #[test]
    fn signature_encoding_uses_extended_family() {
        assert_eq!(encode_signature(6, 0x55, 4), 0x0005_0654);
        assert_eq!(encode_signature(0x19, 0x21, 0), 0x00a2_0f10);
    }
}
