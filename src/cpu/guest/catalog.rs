//! What guest CPU resolution needs to know about feature names and CPU models.
//!
//! Resolution is written against the [`CpuCatalog`] trait so it does not care where the facts
//! come from: Vireo's full cpu_map (the `cpu` module) or [`BasicCatalog`], a small built-in set
//! holding the common features and the `qemu64` default model, enough for VMs without a named
//! model and for tests.

use super::table::{CpuidRegister, GuestCpuid};

/// Where a CPUID feature bit lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeatureBit {
    /// CPUID leaf.
    pub leaf: u32,
    /// CPUID subleaf.
    pub subleaf: u32,
    /// Output register.
    pub reg: CpuidRegister,
    /// Bit number.
    pub bit: u8,
}

/// A named CPU model's identity and feature set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The canonical name.
    pub name: String,
    /// The vendor string (`GenuineIntel`, `AuthenticAMD`), or `None` for vendor-neutral models
    /// (the host's vendor is used, as QEMU does under KVM).
    pub vendor: Option<String>,
    /// CPUID signature: family, model, stepping.
    pub signature: Option<(u32, u32, u32)>,
    /// Canonical feature names.
    pub features: Vec<String>,
}

/// Feature and model facts.
pub trait CpuCatalog {
    /// The canonical name of `name` (resolving aliases), if the catalog knows it.
    fn canonical_feature(&self, name: &str) -> Option<String>;
    /// Where a (canonical) CPUID feature lives; `None` for MSR-only features.
    fn feature_bit(&self, name: &str) -> Option<FeatureBit>;
    /// Every canonical CPUID feature name, in a stable order.
    fn feature_names(&self) -> Vec<String>;
    /// A model by name (or alias).
    fn model(&self, name: &str) -> Option<ModelInfo>;
    /// The named model closest to `cpuid` (host-model's starting point).
    fn nearest_model(&self, cpuid: &GuestCpuid) -> Option<String>;

    /// The catalog's features whose bits are set in `cpuid`, in catalog order.
    fn features_in(&self, cpuid: &GuestCpuid) -> Vec<String> {
        self.feature_names()
            .into_iter()
            .filter(|name| {
                self.feature_bit(name)
                    .is_some_and(|b| cpuid.bit(b.leaf, b.subleaf, b.reg, b.bit))
            })
            .collect()
    }
}

use CpuidRegister::{Ebx, Ecx, Edx};

/// One built-in feature: (name, aliases, leaf, subleaf, register, bit).
type BasicFeature = (
    &'static str,
    &'static [&'static str],
    u32,
    u32,
    CpuidRegister,
    u8,
);

/// libvirt's names for the common CPUID features.
const BASIC_FEATURES: &[BasicFeature] = &[
    ("fpu", &[], 1, 0, Edx, 0),
    ("vme", &[], 1, 0, Edx, 1),
    ("de", &[], 1, 0, Edx, 2),
    ("pse", &[], 1, 0, Edx, 3),
    ("tsc", &[], 1, 0, Edx, 4),
    ("msr", &[], 1, 0, Edx, 5),
    ("pae", &[], 1, 0, Edx, 6),
    ("mce", &[], 1, 0, Edx, 7),
    ("cx8", &[], 1, 0, Edx, 8),
    ("apic", &[], 1, 0, Edx, 9),
    ("sep", &[], 1, 0, Edx, 11),
    ("mtrr", &[], 1, 0, Edx, 12),
    ("pge", &[], 1, 0, Edx, 13),
    ("mca", &[], 1, 0, Edx, 14),
    ("cmov", &[], 1, 0, Edx, 15),
    ("pat", &[], 1, 0, Edx, 16),
    ("pse36", &[], 1, 0, Edx, 17),
    ("clflush", &[], 1, 0, Edx, 19),
    ("mmx", &[], 1, 0, Edx, 23),
    ("fxsr", &[], 1, 0, Edx, 24),
    ("sse", &[], 1, 0, Edx, 25),
    ("sse2", &[], 1, 0, Edx, 26),
    ("ss", &[], 1, 0, Edx, 27),
    ("pni", &["sse3"], 1, 0, Ecx, 0),
    ("pclmuldq", &["pclmulqdq"], 1, 0, Ecx, 1),
    ("vmx", &[], 1, 0, Ecx, 5),
    ("ssse3", &[], 1, 0, Ecx, 9),
    ("fma", &[], 1, 0, Ecx, 12),
    ("cx16", &[], 1, 0, Ecx, 13),
    ("pdcm", &[], 1, 0, Ecx, 15),
    ("pcid", &[], 1, 0, Ecx, 17),
    ("sse4.1", &["sse4_1"], 1, 0, Ecx, 19),
    ("sse4.2", &["sse4_2"], 1, 0, Ecx, 20),
    ("x2apic", &[], 1, 0, Ecx, 21),
    ("movbe", &[], 1, 0, Ecx, 22),
    ("popcnt", &[], 1, 0, Ecx, 23),
    ("tsc-deadline", &[], 1, 0, Ecx, 24),
    ("aes", &[], 1, 0, Ecx, 25),
    ("xsave", &[], 1, 0, Ecx, 26),
    ("avx", &[], 1, 0, Ecx, 28),
    ("f16c", &[], 1, 0, Ecx, 29),
    ("rdrand", &[], 1, 0, Ecx, 30),
    ("hypervisor", &[], 1, 0, Ecx, 31),
    ("fsgsbase", &[], 7, 0, Ebx, 0),
    ("bmi1", &[], 7, 0, Ebx, 3),
    ("hle", &[], 7, 0, Ebx, 4),
    ("avx2", &[], 7, 0, Ebx, 5),
    ("smep", &[], 7, 0, Ebx, 7),
    ("bmi2", &[], 7, 0, Ebx, 8),
    ("erms", &[], 7, 0, Ebx, 9),
    ("invpcid", &[], 7, 0, Ebx, 10),
    ("rtm", &[], 7, 0, Ebx, 11),
    ("avx512f", &[], 7, 0, Ebx, 16),
    ("rdseed", &[], 7, 0, Ebx, 18),
    ("adx", &[], 7, 0, Ebx, 19),
    ("smap", &[], 7, 0, Ebx, 20),
    ("clflushopt", &[], 7, 0, Ebx, 23),
    ("clwb", &[], 7, 0, Ebx, 24),
    ("sha-ni", &[], 7, 0, Ebx, 29),
    ("umip", &[], 7, 0, Ecx, 2),
    ("pku", &[], 7, 0, Ecx, 3),
    ("vaes", &[], 7, 0, Ecx, 9),
    ("vpclmulqdq", &[], 7, 0, Ecx, 10),
    ("rdpid", &[], 7, 0, Ecx, 22),
    ("xsaveopt", &[], 0xd, 1, CpuidRegister::Eax, 0),
    ("xsavec", &[], 0xd, 1, CpuidRegister::Eax, 1),
    ("xgetbv1", &[], 0xd, 1, CpuidRegister::Eax, 2),
    ("xsaves", &[], 0xd, 1, CpuidRegister::Eax, 3),
    ("lahf_lm", &["lahf-lm"], 0x8000_0001, 0, Ecx, 0),
    ("cmp_legacy", &["cmp-legacy"], 0x8000_0001, 0, Ecx, 1),
    ("svm", &[], 0x8000_0001, 0, Ecx, 2),
    ("abm", &["lzcnt"], 0x8000_0001, 0, Ecx, 5),
    ("sse4a", &[], 0x8000_0001, 0, Ecx, 6),
    ("misalignsse", &[], 0x8000_0001, 0, Ecx, 7),
    ("3dnowprefetch", &[], 0x8000_0001, 0, Ecx, 8),
    ("topoext", &[], 0x8000_0001, 0, Ecx, 22),
    ("syscall", &[], 0x8000_0001, 0, Edx, 11),
    ("nx", &["xd"], 0x8000_0001, 0, Edx, 20),
    ("mmxext", &[], 0x8000_0001, 0, Edx, 22),
    ("fxsr_opt", &["ffxsr"], 0x8000_0001, 0, Edx, 25),
    ("pdpe1gb", &[], 0x8000_0001, 0, Edx, 26),
    ("rdtscp", &[], 0x8000_0001, 0, Edx, 27),
    ("lm", &[], 0x8000_0001, 0, Edx, 29),
];

/// The features of `qemu64`, the default model for VMs without `<cpu>`: what every x86-64 KVM
/// host can offer (SSE3 and SVM are dropped where KVM lacks them, as QEMU does).
const QEMU64_FEATURES: &[&str] = &[
    "apic", "clflush", "cmov", "cx16", "cx8", "de", "fpu", "fxsr", "lm", "mca", "mce", "mmx",
    "msr", "mtrr", "nx", "pae", "pat", "pge", "pni", "pse", "pse36", "sep", "sse", "sse2", "svm",
    "syscall", "tsc",
];

/// The name of the built-in default model.
pub const DEFAULT_MODEL: &str = "qemu64";

/// The built-in catalog: common CPUID features plus the `qemu64` model.
#[derive(Debug, Default, Clone, Copy)]
pub struct BasicCatalog;

impl CpuCatalog for BasicCatalog {
    fn canonical_feature(&self, name: &str) -> Option<String> {
        BASIC_FEATURES
            .iter()
            .find(|f| f.0 == name || f.1.contains(&name))
            .map(|f| f.0.to_string())
    }

    fn feature_bit(&self, name: &str) -> Option<FeatureBit> {
        BASIC_FEATURES
            .iter()
            .find(|f| f.0 == name)
            .map(|f| FeatureBit {
                leaf: f.2,
                subleaf: f.3,
                reg: f.4,
                bit: f.5,
            })
    }

    fn feature_names(&self) -> Vec<String> {
        BASIC_FEATURES.iter().map(|f| f.0.to_string()).collect()
    }

    fn model(&self, name: &str) -> Option<ModelInfo> {
        (name == DEFAULT_MODEL).then(|| ModelInfo {
            name: DEFAULT_MODEL.into(),
            vendor: None,
            signature: Some((15, 107, 1)),
            features: QEMU64_FEATURES.iter().map(|f| f.to_string()).collect(),
        })
    }

    fn nearest_model(&self, _cpuid: &GuestCpuid) -> Option<String> {
        Some(DEFAULT_MODEL.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_libvirt_names() {
        assert_eq!(
            BasicCatalog.canonical_feature("sse3").as_deref(),
            Some("pni")
        );
        assert_eq!(
            BasicCatalog.canonical_feature("sse4_2").as_deref(),
            Some("sse4.2")
        );
        assert_eq!(BasicCatalog.canonical_feature("no-such"), None);
    }

    #[test]
    fn every_qemu64_feature_has_a_bit() {
        let model = BasicCatalog.model(DEFAULT_MODEL).unwrap();
        for f in &model.features {
            assert!(BasicCatalog.feature_bit(f).is_some(), "{f}");
        }
    }
}
