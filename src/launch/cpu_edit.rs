//! The CPU settings the details window edits, without GTK: reading them from a domain,
//! writing them back as a libvirt `<cpu>`, keeping the topology consistent with the vCPU
//! count, and which models this host's KVM can run.

use crate::cpu::guest::{HostCpuFacts, ResolvedCpu};
use crate::cpu::{
    CpuDef, CpuFeatureRef, CpuKind, CpuMap, CpuMatch, CpuMode, CpuidData, Fallback, Policy,
    Topology, missing_features,
};
use crate::domain::Domain;
use crate::domain::model::Vcpu;
use crate::launch::ConfigError;

/// The CPU modes the details window offers, in its drop-down's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuChoice {
    /// No `<cpu>` mode: the hypervisor's default CPU.
    HvDefault,
    /// A named model (`mode='custom'`).
    Custom,
    HostModel,
    HostPassthrough,
}

impl CpuChoice {
    pub const ALL: [CpuChoice; 4] = [
        CpuChoice::HvDefault,
        CpuChoice::Custom,
        CpuChoice::HostModel,
        CpuChoice::HostPassthrough,
    ];
}

/// The CPU part of a domain as the details window shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSettings {
    pub choice: CpuChoice,
    pub model: Option<String>,
    pub features: Vec<(String, Policy)>,
    pub vcpus: u32,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

impl CpuSettings {
    /// Reads the settings from `domain` (a `<cpu>` that does not parse counts as absent).
    pub fn read(domain: &Domain) -> CpuSettings {
        let vcpus = domain.vcpu().ok().flatten().map_or(1, |v| v.count.max(1));
        let cpu = domain.cpu_def().and_then(Result::ok);
        let choice = match cpu.as_ref().map(|c| (c.mode, c.model.is_some())) {
            Some((CpuMode::HostModel, _)) => CpuChoice::HostModel,
            Some((CpuMode::HostPassthrough | CpuMode::Maximum, _)) => CpuChoice::HostPassthrough,
            Some((CpuMode::Custom, true)) => CpuChoice::Custom,
            _ => CpuChoice::HvDefault,
        };
        let topology = cpu.as_ref().and_then(|c| c.topology);
        let features = cpu
            .as_ref()
            .map(|c| {
                c.features
                    .iter()
                    .map(|f| (f.name.clone(), f.policy.unwrap_or(Policy::Require)))
                    .collect()
            })
            .unwrap_or_default();
        let (sockets, cores, threads) = topology.map_or((vcpus, 1, 1), |t| {
            (
                t.sockets.max(1),
                t.cores.max(1) * t.dies.max(1) * t.clusters.max(1),
                t.threads.max(1),
            )
        });
        CpuSettings {
            choice,
            model: cpu.and_then(|c| c.model),
            features,
            vcpus,
            sockets,
            cores,
            threads,
        }
    }

    /// Changes the vCPU count and keeps the topology consistent: the cores and threads per
    /// socket stay when they divide the new count, otherwise one core per socket.
    pub fn set_vcpus(&mut self, vcpus: u32) {
        let vcpus = vcpus.max(1);
        let per_socket = self.cores * self.threads;
        if vcpus % per_socket == 0 {
            self.sockets = vcpus / per_socket;
        } else {
            (self.sockets, self.cores, self.threads) = (vcpus, 1, 1);
        }
        self.vcpus = vcpus;
    }

    /// Changes the topology; the vCPU count follows it.
    pub fn set_topology(&mut self, sockets: u32, cores: u32, threads: u32) {
        (self.sockets, self.cores, self.threads) = (sockets.max(1), cores.max(1), threads.max(1));
        self.vcpus = self.sockets * self.cores * self.threads;
    }

    /// Whether the topology is the plain "one socket per vCPU" that needs no `<topology>`.
    fn topology_is_default(&self) -> bool {
        self.cores == 1 && self.threads == 1
    }

    /// Writes these settings into `domain`, touching only what differs from what it holds,
    /// so the rest of the document keeps its formatting.
    pub fn write(&self, domain: &mut Domain) -> Result<(), crate::domain::DomainError> {
        let before = CpuSettings::read(domain);
        if before == *self {
            return Ok(());
        }
        if before.vcpus != self.vcpus {
            let mut vcpu = domain.vcpu().ok().flatten().unwrap_or(Vcpu {
                count: self.vcpus,
                placement: Some("static".into()),
                current: None,
                cpuset: None,
            });
            vcpu.count = self.vcpus;
            vcpu.current = vcpu.current.filter(|c| *c <= self.vcpus);
            domain.set_vcpu(&vcpu);
        }
        let topology = (!self.topology_is_default()).then_some(Topology {
            sockets: self.sockets,
            dies: 1,
            clusters: 1,
            cores: self.cores,
            threads: self.threads,
        });
        let previous = domain.cpu_def().and_then(Result::ok);
        let mut cpu = previous
            .clone()
            .unwrap_or_else(|| CpuDef::new(CpuKind::Guest));
        cpu.topology = topology;
        cpu.features = self
            .features
            .iter()
            .map(|(name, policy)| CpuFeatureRef {
                name: name.clone(),
                policy: Some(*policy),
            })
            .collect();
        match self.choice {
            CpuChoice::HvDefault => {
                cpu.mode = CpuMode::Custom;
                cpu.model = None;
                cpu.fallback = None;
                cpu.match_ = None;
                cpu.features.clear();
            }
            CpuChoice::Custom => {
                cpu.mode = CpuMode::Custom;
                cpu.model = self.model.clone();
                if previous.as_ref().is_none_or(|p| p.mode != CpuMode::Custom) {
                    cpu.match_ = Some(CpuMatch::Exact);
                    cpu.fallback = Some(Fallback::Forbid);
                }
            }
            CpuChoice::HostModel | CpuChoice::HostPassthrough => {
                cpu.mode = if self.choice == CpuChoice::HostModel {
                    CpuMode::HostModel
                } else {
                    CpuMode::HostPassthrough
                };
                cpu.model = None;
                cpu.match_ = None;
                cpu.fallback = None;
            }
        }
        let empty = cpu.mode == CpuMode::Custom && cpu.model.is_none() && cpu.topology.is_none();
        if empty {
            domain.set_cpu_xml(None)
        } else {
            domain.set_cpu(&cpu)
        }
    }
}

/// Every model of `map` with the features `available` (KVM's supported CPUID) lacks for it;
/// an empty list means usable on this host.
pub fn model_usability(map: &CpuMap, available: Option<&CpuidData>) -> Vec<(String, Vec<String>)> {
    map.models()
        .map(|model| {
            let missing = available
                .map(|cpuid| missing_features(map, model.name(), cpuid).unwrap_or_default())
                .unwrap_or_default();
            (model.name().to_string(), missing)
        })
        .collect()
}

/// What start would make of the CPU `settings` describe, written into `domain`, on `host`:
/// start's own resolution ([`crate::launch::cpu_verdict_with`]), so `check=` and every
/// feature policy count as they do at start. `None` when the settings cannot be written
/// (Apply's validation reports that instead).
pub fn host_verdict(
    settings: &CpuSettings,
    domain: &Domain,
    map: &CpuMap,
    host: &HostCpuFacts,
) -> Option<Result<ResolvedCpu, ConfigError>> {
    let mut edited = domain.clone();
    settings.write(&mut edited).ok()?;
    Some(crate::launch::cpu_verdict_with(&edited.to_xml(), host, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(cpu: &str) -> Domain {
        Domain::parse(&format!(
            "<domain type='kvm'>\n  <name>t</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu placement='static'>4</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n{cpu}</domain>\n"
        ))
        .unwrap()
    }

    #[test]
    fn reads_each_mode() {
        assert_eq!(CpuSettings::read(&domain("")).choice, CpuChoice::HvDefault);
        let custom = CpuSettings::read(&domain(
            "  <cpu mode='custom' match='exact'>\n    <model fallback='forbid'>pentium3</model>\n    <feature policy='disable' name='sse'/>\n  </cpu>\n",
        ));
        assert_eq!(custom.choice, CpuChoice::Custom);
        assert_eq!(custom.model.as_deref(), Some("pentium3"));
        assert_eq!(custom.features, vec![("sse".to_string(), Policy::Disable)]);
        assert_eq!(
            CpuSettings::read(&domain("  <cpu mode='host-model'/>\n")).choice,
            CpuChoice::HostModel
        );
    }

    #[test]
    fn topology_follows_vcpus_and_back() {
        let mut s = CpuSettings::read(&domain(""));
        assert_eq!((s.vcpus, s.sockets, s.cores, s.threads), (4, 4, 1, 1));
        s.set_topology(2, 2, 2);
        assert_eq!(s.vcpus, 8);
        s.set_vcpus(4);
        assert_eq!((s.sockets, s.cores, s.threads), (1, 2, 2));
        s.set_vcpus(6);
        assert_eq!((s.sockets, s.cores, s.threads), (6, 1, 1));
    }

    #[test]
    fn writes_a_custom_model_with_features_and_topology() {
        let mut d = domain("");
        let mut s = CpuSettings::read(&d);
        s.choice = CpuChoice::Custom;
        s.model = Some("pentium3".into());
        s.features = vec![("sse".into(), Policy::Disable)];
        s.set_topology(1, 2, 2);
        s.write(&mut d).unwrap();
        let xml = d.to_xml();
        assert!(
            xml.contains("<model fallback='forbid'>pentium3</model>"),
            "{xml}"
        );
        assert!(xml.contains("match='exact'"), "{xml}");
        assert!(
            xml.contains("name='sse'") && xml.contains("policy='disable'"),
            "{xml}"
        );
        assert!(
            xml.contains("cores='2'") && xml.contains("threads='2'"),
            "{xml}"
        );
        assert_eq!(CpuSettings::read(&d), s, "reads back what it wrote");
        // Back to the hypervisor default with a plain topology: no <cpu> at all.
        s.choice = CpuChoice::HvDefault;
        s.set_topology(4, 1, 1);
        s.write(&mut d).unwrap();
        assert!(!d.to_xml().contains("<cpu"), "{}", d.to_xml());
    }

    #[test]
    fn unchanged_settings_leave_the_document_alone() {
        let original = "  <cpu mode='host-model'  check='partial'/>\n";
        let mut d = domain(original);
        let before = d.to_xml();
        CpuSettings::read(&d).write(&mut d).unwrap();
        assert_eq!(d.to_xml(), before);
    }

    #[test]
    fn the_verdict_names_what_kvm_lacks_for_the_chosen_cpu() {
        use crate::launch::{host_cpu_facts, missing_features, refusal};
        let map = CpuMap::builtin().unwrap();
        let empty = host_cpu_facts(&CpuidData::default(), true);
        let d = domain("");
        let mut s = CpuSettings::read(&d);
        let verdict = |s: &CpuSettings| host_verdict(s, &d, &map, &empty).unwrap();
        assert_eq!(refusal(&verdict(&s)), None, "no <cpu>");
        s.choice = CpuChoice::Custom;
        s.model = Some("Haswell".into());
        let missing = missing_features(&verdict(&s));
        assert!(missing.iter().any(|f| f == "avx2"), "{missing:?}");
        s.choice = CpuChoice::HostModel;
        assert_eq!(refusal(&verdict(&s)), None, "host-model");
    }

    #[test]
    fn usability_lists_missing_features() {
        let map = CpuMap::builtin().unwrap();
        let empty = CpuidData::default();
        let usability = model_usability(&map, Some(&empty));
        let (_, missing) = usability.iter().find(|(n, _)| n == "Haswell").unwrap();
        assert!(missing.iter().any(|f| f == "avx2"), "{missing:?}");
        assert!(
            model_usability(&map, None)
                .iter()
                .all(|(_, m)| m.is_empty())
        );
    }
}
