//! What this host can give guests, in libvirt's capabilities and domain-capabilities shapes:
//! host-model (what KVM can provide, decoded) and each named model's usability.
//!
//! Pure functions over CPUID data, so they are tested with captured dumps; `vireoctl` and the
//! GUI feed them this host's live data.

use super::cpuid::{CpuidData, feature_set_in};
use super::decode::{DecodeOptions, decode_with};
use super::def::{CpuDef, CpuKind, CpuMode, Fallback};
use super::error::CpuError;
use super::map::CpuMap;
use super::xml_tree::escape;

/// Whether a named model can run under the hypervisor, and if not, what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsability {
    pub name: String,
    pub vendor: Option<String>,
    /// Features of the model the hypervisor cannot provide; empty = usable.
    pub blockers: Vec<String>,
}

impl ModelUsability {
    pub fn usable(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// Usability of every model in map order against `available` (KVM's supported CPUID).
pub fn model_usability(map: &CpuMap, available: &CpuidData) -> Vec<ModelUsability> {
    let have = feature_set_in(map, available);
    map.models()
        .map(|m| ModelUsability {
            name: m.name().to_string(),
            vendor: m.vendor().map(str::to_string),
            blockers: map.names_of(&m.feature_set().difference(&have)),
        })
        .collect()
}

/// host-model: the nearest model to what KVM can give, with the features to add and remove,
/// in guest form (`mode='host-model'`, `fallback='forbid'`).
///
/// Unlike decoding a real CPU, the family/model in KVM's CPUID does not pick the model: KVM
/// may offer far less than the CPU generation it reports (a paravirtual KVM lacks even SSE3),
/// and a same-generation model that must disable dozens of features is a worse description
/// than a generic model plus a few extras.
pub fn host_model(map: &CpuMap, available: &CpuidData) -> Result<CpuDef, CpuError> {
    let opts = DecodeOptions {
        kind: Some(CpuKind::Guest),
        ignore_signature: true,
        ..Default::default()
    };
    let mut cpu = decode_with(map, available, &opts)?;
    cpu.mode = CpuMode::HostModel;
    cpu.fallback = Some(Fallback::Forbid);
    Ok(cpu)
}

/// The `<cpu>` section of `vireoctl domcapabilities`, indented by `indent` spaces.
pub fn domcapabilities_cpu_xml(
    host_model: Option<&CpuDef>,
    models: &[ModelUsability],
    indent: usize,
) -> String {
    let pad = " ".repeat(indent);
    let mut out = format!("{pad}<cpu>\n");
    out.push_str(&format!(
        "{pad}  <mode name='host-passthrough' supported='yes'>\n"
    ));
    out.push_str(&format!(
        "{pad}    <enum name='hostPassthroughMigratable'>\n"
    ));
    out.push_str(&format!(
        "{pad}      <value>on</value>\n{pad}      <value>off</value>\n"
    ));
    out.push_str(&format!("{pad}    </enum>\n{pad}  </mode>\n"));
    match host_model {
        Some(cpu) => {
            out.push_str(&format!(
                "{pad}  <mode name='host-model' supported='yes'>\n"
            ));
            for line in cpu.children() {
                out.push_str(&format!("{pad}    {line}\n"));
            }
            out.push_str(&format!("{pad}  </mode>\n"));
        }
        None => out.push_str(&format!(
            "{pad}  <mode name='host-model' supported='no'/>\n"
        )),
    }
    out.push_str(&format!("{pad}  <mode name='custom' supported='yes'>\n"));
    for m in models {
        let usable = if m.usable() { "yes" } else { "no" };
        let vendor = m.vendor.as_deref().unwrap_or("unknown");
        out.push_str(&format!(
            "{pad}    <model usable='{usable}' vendor='{}'>{}</model>\n",
            escape(vendor),
            escape(&m.name)
        ));
        if !m.usable() {
            out.push_str(&format!(
                "{pad}    <blockers model='{}'>\n",
                escape(&m.name)
            ));
            for f in &m.blockers {
                out.push_str(&format!("{pad}      <feature name='{}'/>\n", escape(f)));
            }
            out.push_str(&format!("{pad}    </blockers>\n"));
        }
    }
    out.push_str(&format!("{pad}  </mode>\n{pad}</cpu>\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{CpuidLeaf, set_feature};

    /// A CPUID with leaf 0 = GenuineIntel and exactly `features` set.
    fn data_with(map: &CpuMap, features: &[&str]) -> CpuidData {
        let (ebx, edx, ecx) = map.vendor("Intel").unwrap().registers();
        let mut data = CpuidData {
            leaves: vec![CpuidLeaf {
                eax_in: 0,
                ecx_in: 0,
                eax: 0xd,
                ebx,
                ecx,
                edx,
            }],
            msrs: Vec::new(),
        };
        for f in features {
            set_feature(map, &mut data, f, true).unwrap();
        }
        data
    }

    #[test]
    fn usability_lists_exactly_the_missing_features() {
        let map = CpuMap::builtin().unwrap();
        let data = data_with(&map, &["fpu", "pse", "vme"]);
        let all = model_usability(&map, &data);
        let m486 = all.iter().find(|m| m.name == "486").unwrap();
        assert!(m486.usable());
        let pentium = all.iter().find(|m| m.name == "pentium").unwrap();
        assert!(!pentium.usable() && pentium.blockers.contains(&"tsc".to_string()));
        let xml = domcapabilities_cpu_xml(None, &all[..2], 2);
        assert!(
            xml.contains("    <model usable='yes' vendor='unknown'>486</model>\n"),
            "{xml}"
        );
        assert!(xml.contains("<mode name='host-model' supported='no'/>"));
    }
}
