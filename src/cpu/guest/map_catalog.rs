//! Vireo's full CPU map as the catalog guest CPU resolution reads: every feature and model of
//! cpu_map/, and host-model's nearest model from the guest decode.

use super::catalog::{CpuCatalog, FeatureBit, ModelInfo};
use super::table::{CpuidRegister, GuestCpuid, GuestCpuidEntry};
use crate::cpu::map::{CpuMap, FeatureBit as MapBit, Register};
use crate::cpu::{CpuidData, CpuidLeaf, decode_guest};

fn register(reg: Register) -> CpuidRegister {
    match reg {
        Register::Eax => CpuidRegister::Eax,
        Register::Ebx => CpuidRegister::Ebx,
        Register::Ecx => CpuidRegister::Ecx,
        Register::Edx => CpuidRegister::Edx,
    }
}

/// A guest table as the `cpu` module's CPUID data (no MSRs).
pub fn to_cpuid_data(table: &GuestCpuid) -> CpuidData {
    CpuidData {
        leaves: table
            .entries()
            .iter()
            .map(|e| CpuidLeaf {
                eax_in: e.leaf,
                ecx_in: e.subleaf,
                eax: e.eax,
                ebx: e.ebx,
                ecx: e.ecx,
                edx: e.edx,
            })
            .collect(),
        msrs: Vec::new(),
    }
}

/// CPUID data as a guest table. Leaves known to take a subleaf keep it significant.
pub fn from_cpuid_data(data: &CpuidData) -> GuestCpuid {
    const INDEXED: &[u32] = &[
        4,
        7,
        0xb,
        0xd,
        0xf,
        0x10,
        0x12,
        0x14,
        0x17,
        0x18,
        0x1d,
        0x1e,
        0x1f,
        0x24,
        0x8000_001d,
        0x8000_0020,
        0x8000_0026,
    ];
    GuestCpuid::from_entries(data.leaves.iter().map(|l| GuestCpuidEntry {
        leaf: l.eax_in,
        subleaf: l.ecx_in,
        index_significant: INDEXED.contains(&l.eax_in),
        eax: l.eax,
        ebx: l.ebx,
        ecx: l.ecx,
        edx: l.edx,
    }))
}

impl CpuCatalog for CpuMap {
    fn canonical_feature(&self, name: &str) -> Option<String> {
        self.feature(name).map(|f| f.name().to_string())
    }

    fn feature_bit(&self, name: &str) -> Option<FeatureBit> {
        match self.feature(name)?.bit() {
            MapBit::Cpuid {
                leaf,
                subleaf,
                register: reg,
                bit,
            } => Some(FeatureBit {
                leaf,
                subleaf,
                reg: register(reg),
                bit,
            }),
            MapBit::Msr { .. } => None,
        }
    }

    fn feature_names(&self) -> Vec<String> {
        self.features()
            .iter()
            .filter(|f| matches!(f.bit(), MapBit::Cpuid { .. }))
            .map(|f| f.name().to_string())
            .collect()
    }

    fn model(&self, name: &str) -> Option<ModelInfo> {
        let model = CpuMap::model(self, name)?;
        let vendor = model
            .vendor()
            .and_then(|v| self.vendor(v))
            .map(|v| v.cpuid_string().to_string());
        let signature = model
            .signatures()
            .first()
            .map(|s| (s.family, s.model, s.steppings.map_or(0, |(lo, _)| lo)));
        Some(ModelInfo {
            name: model.name().to_string(),
            vendor,
            signature,
            features: model
                .features()
                .iter()
                .filter(|f| self.feature_bit(f).is_some())
                .cloned()
                .collect(),
        })
    }

    fn nearest_model(&self, cpuid: &GuestCpuid) -> Option<String> {
        decode_guest(self, &to_cpuid_data(cpuid)).ok()?.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_knows_qemu64_and_its_feature_bits() {
        let map = CpuMap::builtin().unwrap();
        let qemu64 = CpuCatalog::model(&map, "qemu64").unwrap();
        assert!(qemu64.features.iter().any(|f| f == "sse2"));
        let bit = map.feature_bit("sse3").unwrap();
        assert_eq!((bit.leaf, bit.reg, bit.bit), (1, CpuidRegister::Ecx, 0));
        assert_eq!(map.canonical_feature("sse3").as_deref(), Some("pni"));
    }

    #[test]
    fn cpuid_data_round_trips() {
        let mut t = GuestCpuid::default();
        t.set(GuestCpuidEntry::zeroed(7, 0, true));
        t.set(GuestCpuidEntry::zeroed(1, 0, false));
        assert_eq!(from_cpuid_data(&to_cpuid_data(&t)), t);
    }
}
