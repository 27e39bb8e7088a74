//! Raw CPUID/MSR data (libvirt's `<cpudata arch='x86'>` format) and the bit-level helpers that
//! turn it into features and back.

use super::error::CpuError;
use super::feature_set::FeatureSet;
use super::map::{CpuMap, FeatureBit, Register};
use super::xml_tree;

/// One CPUID leaf/subleaf and the four registers it returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CpuidLeaf {
    pub eax_in: u32,
    pub ecx_in: u32,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

impl CpuidLeaf {
    pub fn register(&self, register: Register) -> u32 {
        match register {
            Register::Eax => self.eax,
            Register::Ebx => self.ebx,
            Register::Ecx => self.ecx,
            Register::Edx => self.edx,
        }
    }

    fn register_mut(&mut self, register: Register) -> &mut u32 {
        match register {
            Register::Eax => &mut self.eax,
            Register::Ebx => &mut self.ebx,
            Register::Ecx => &mut self.ecx,
            Register::Edx => &mut self.edx,
        }
    }
}

/// The value of one model-specific register, split as RDMSR returns it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MsrValue {
    pub index: u32,
    pub eax: u32,
    pub edx: u32,
}

impl MsrValue {
    pub fn value(&self) -> u64 {
        (u64::from(self.edx) << 32) | u64::from(self.eax)
    }
}

/// A CPU's self-description: CPUID leaves plus feature-bearing MSRs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuidData {
    pub leaves: Vec<CpuidLeaf>,
    pub msrs: Vec<MsrValue>,
}

/// The vendor, family, model and stepping encoded in CPUID leaves 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawSignature {
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

impl CpuidData {
    pub fn leaf(&self, eax_in: u32, ecx_in: u32) -> Option<&CpuidLeaf> {
        self.leaves
            .iter()
            .find(|l| l.eax_in == eax_in && l.ecx_in == ecx_in)
    }

    pub fn msr(&self, index: u32) -> Option<&MsrValue> {
        self.msrs.iter().find(|m| m.index == index)
    }

    /// Family/model/stepping from leaf 1 (extended fields always added, as libvirt does).
    pub(crate) fn signature(&self) -> Option<RawSignature> {
        let eax = self.leaf(1, 0)?.eax;
        if eax == 0 {
            return None;
        }
        Some(RawSignature {
            family: ((eax >> 20) & 0xff) + ((eax >> 8) & 0xf),
            model: ((eax >> 12) & 0xf0) + ((eax >> 4) & 0xf),
            stepping: eax & 0xf,
        })
    }

    /// The vendor name whose leaf-0 string this data carries, if the map knows it.
    pub(crate) fn vendor<'m>(&self, map: &'m CpuMap) -> Option<&'m str> {
        let leaf = self.leaf(0, 0)?;
        map.vendors()
            .iter()
            .find(|v| v.registers() == (leaf.ebx, leaf.edx, leaf.ecx))
            .map(|v| v.name())
    }

    /// Whether the bit of `bit` is set.
    pub(crate) fn has_bit(&self, bit: FeatureBit) -> bool {
        match bit {
            FeatureBit::Cpuid {
                leaf,
                subleaf,
                register,
                bit,
            } => self
                .leaf(leaf, subleaf)
                .is_some_and(|l| l.register(register) & (1 << bit) != 0),
            FeatureBit::Msr { index, bit } => {
                self.msr(index).is_some_and(|m| m.value() & (1 << bit) != 0)
            }
        }
    }

    /// Sets or clears one bit, creating the leaf or MSR when setting.
    pub(crate) fn set_bit(&mut self, bit: FeatureBit, on: bool) {
        match bit {
            FeatureBit::Cpuid {
                leaf,
                subleaf,
                register,
                bit,
            } => {
                let position = self
                    .leaves
                    .iter()
                    .position(|l| l.eax_in == leaf && l.ecx_in == subleaf);
                let entry = match (position, on) {
                    (Some(i), _) => &mut self.leaves[i],
                    (None, true) => {
                        self.leaves.push(CpuidLeaf {
                            eax_in: leaf,
                            ecx_in: subleaf,
                            ..CpuidLeaf::default()
                        });
                        self.leaves.last_mut().expect("just pushed")
                    }
                    (None, false) => return,
                };
                let word = entry.register_mut(register);
                if on {
                    *word |= 1 << bit
                } else {
                    *word &= !(1 << bit)
                }
            }
            FeatureBit::Msr { index, bit } => {
                let position = self.msrs.iter().position(|m| m.index == index);
                let entry = match (position, on) {
                    (Some(i), _) => &mut self.msrs[i],
                    (None, true) => {
                        self.msrs.push(MsrValue {
                            index,
                            eax: 0,
                            edx: 0,
                        });
                        self.msrs.last_mut().expect("just pushed")
                    }
                    (None, false) => return,
                };
                let mut value = entry.value();
                if on {
                    value |= 1 << bit
                } else {
                    value &= !(1 << bit)
                }
                entry.eax = value as u32;
                entry.edx = (value >> 32) as u32;
            }
        }
    }

    /// Parses libvirt's `<cpudata arch='x86'>` document.
    pub fn from_xml(text: &str) -> Result<CpuidData, CpuError> {
        let root = xml_tree::parse(text).map_err(CpuError::InvalidXml)?;
        if root.name != "cpudata" {
            return Err(CpuError::InvalidXml(format!(
                "expected a <cpudata arch='x86'> document, found <{}>",
                root.name
            )));
        }
        if let Some(arch) = root.attr("arch").filter(|a| *a != "x86") {
            return Err(CpuError::InvalidXml(format!(
                "cpudata arch '{arch}' is not supported (only x86)"
            )));
        }
        let mut data = CpuidData::default();
        for child in &root.children {
            let num = |name: &str, default: Option<u32>| -> Result<u32, CpuError> {
                match child.attr(name) {
                    Some(text) => parse_u32(text).ok_or_else(|| {
                        CpuError::InvalidXml(format!(
                            "line {}: <{}> {name}='{text}' is not a number",
                            child.line, child.name
                        ))
                    }),
                    None => default.ok_or_else(|| {
                        CpuError::InvalidXml(format!(
                            "line {}: <{}> lacks attribute {name}",
                            child.line, child.name
                        ))
                    }),
                }
            };
            match child.name.as_str() {
                "cpuid" => data.leaves.push(CpuidLeaf {
                    eax_in: num("eax_in", None)?,
                    ecx_in: num("ecx_in", Some(0))?,
                    eax: num("eax", None)?,
                    ebx: num("ebx", None)?,
                    ecx: num("ecx", None)?,
                    edx: num("edx", None)?,
                }),
                "msr" => data.msrs.push(MsrValue {
                    index: num("index", None)?,
                    eax: num("eax", None)?,
                    edx: num("edx", None)?,
                }),
                other => {
                    return Err(CpuError::InvalidXml(format!(
                        "line {}: unexpected element <{other}> in <cpudata>",
                        child.line
                    )));
                }
            }
        }
        Ok(data)
    }

    /// Formats as libvirt's `<cpudata arch='x86'>` document (what `virsh` and the test data use).
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<cpudata arch='x86'>\n");
        for l in &self.leaves {
            out.push_str(&format!(
                "  <cpuid eax_in='0x{:08x}' ecx_in='0x{:02x}' eax='0x{:08x}' ebx='0x{:08x}' ecx='0x{:08x}' edx='0x{:08x}'/>\n",
                l.eax_in, l.ecx_in, l.eax, l.ebx, l.ecx, l.edx
            ));
        }
        for m in &self.msrs {
            out.push_str(&format!(
                "  <msr index='0x{:x}' edx='0x{:08x}' eax='0x{:08x}'/>\n",
                m.index, m.edx, m.eax
            ));
        }
        out.push_str("</cpudata>\n");
        out
    }
}

fn parse_u32(text: &str) -> Option<u32> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The features of `map` whose bits are set in `data`.
pub(crate) fn feature_set_in(map: &CpuMap, data: &CpuidData) -> FeatureSet {
    map.features()
        .iter()
        .enumerate()
        .filter(|(_, f)| data.has_bit(f.bit()))
        .map(|(i, _)| i)
        .collect()
}

/// Canonical names of the features `data` has, in map order.
pub fn features_in(map: &CpuMap, data: &CpuidData) -> Vec<String> {
    map.names_of(&feature_set_in(map, data))
}

/// Sets (`on`) or clears the bit of feature `name` in `data`.
pub fn set_feature(
    map: &CpuMap,
    data: &mut CpuidData,
    name: &str,
    on: bool,
) -> Result<(), CpuError> {
    let feature = map
        .feature(name)
        .ok_or_else(|| CpuError::UnknownFeature(name.to_string()))?;
    data.set_bit(feature.bit(), on);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "<cpudata arch='x86'>\n  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n  <cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x000306c3' ebx='0x00000000' ecx='0x00000001' edx='0x00000001'/>\n  <msr index='0x10a' edx='0x00000000' eax='0x0000000b'/>\n</cpudata>\n";

    #[test]
    fn round_trips_libvirt_format_byte_for_byte() {
        let data = CpuidData::from_xml(SAMPLE).unwrap();
        assert_eq!(data.leaves.len(), 2);
        assert_eq!(data.msr(0x10a).unwrap().eax, 0xb);
        assert_eq!(data.to_xml(), SAMPLE);
    }

    #[test]
    fn decodes_vendor_signature_and_features() {
        let map = CpuMap::builtin().unwrap();
        let data = CpuidData::from_xml(SAMPLE).unwrap();
        assert_eq!(data.vendor(&map), Some("Intel"));
        assert_eq!(
            data.signature(),
            Some(RawSignature {
                family: 6,
                model: 60,
                stepping: 3
            })
        );
        assert_eq!(
            features_in(&map, &data),
            ["pni", "fpu", "rdctl-no", "ibrs-all", "skip-l1dfl-vmentry"]
        );
    }

    #[test]
    fn set_feature_flips_exactly_one_bit() {
        let map = CpuMap::builtin().unwrap();
        let mut data = CpuidData::default();
        set_feature(&map, &mut data, "sse3", true).unwrap();
        set_feature(&map, &mut data, "mds-no", true).unwrap();
        assert_eq!(features_in(&map, &data), ["pni", "mds-no"]);
        set_feature(&map, &mut data, "pni", false).unwrap();
        assert_eq!(features_in(&map, &data), ["mds-no"]);
        assert!(set_feature(&map, &mut data, "bogus", true).is_err());
    }

    #[test]
    fn rejects_bad_documents_with_specific_messages() {
        let bad_number =
            "<cpudata arch='x86'><cpuid eax_in='zz' eax='0' ebx='0' ecx='0' edx='0'/></cpudata>";
        assert!(
            CpuidData::from_xml(bad_number)
                .unwrap_err()
                .to_string()
                .contains("is not a number")
        );
        assert!(
            CpuidData::from_xml("<cpu/>")
                .unwrap_err()
                .to_string()
                .contains("expected a <cpudata")
        );
        assert!(
            CpuidData::from_xml("<cpudata>")
                .unwrap_err()
                .to_string()
                .contains("malformed XML")
        );
    }
}
