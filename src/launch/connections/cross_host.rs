//! CPU across hosts: which hosts can run a VM's CPU (naming what each one lacks), and the CPU
//! every host can run (the migratable baseline), before a VM is moved or migrated.
//!
//! Each libvirt host answers for itself through `virConnectCompareHypervisorCPU` /
//! `virConnectBaselineHypervisorCPU` (its QEMU and KVM, not only its bare CPU); "This
//! computer" answers through the same CPU resolution `start` uses.

use super::hypervisor_cpu::{Comparison, HypervisorSpec};
use super::{ConnectionError, LibvirtConnection, Target};
use crate::cpu::{BaselineFlags, CpuDef, CpuMap};
use crate::domain::Domain;

/// One host's answer for a VM's CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAnswer {
    /// The host can give the CPU (`identical` or `superset`, libvirt's words).
    CanRun(&'static str),
    /// The VM has no fixed CPU model (`host-model`, `host-passthrough`, …, or no `<cpu>`): it
    /// takes what each host offers, so every host can start it. The mode is given.
    FollowsHost(String),
    /// The host cannot give the CPU; the features it lacks (possibly none, when the reason is
    /// another one) and the whole reason.
    Cannot { missing: Vec<String>, why: String },
    /// The host could not be asked (not reachable, no libvirt, …).
    Unreachable(String),
}

/// A host and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVerdict {
    /// "This computer" or the URI.
    pub host: String,
    pub answer: HostAnswer,
}

/// Which hypervisor on a libvirt host a domain needs: its `type`, `<os><type arch machine>`.
pub fn spec_for(domain: &Domain) -> HypervisorSpec {
    let os = domain.os();
    HypervisorSpec {
        emulator: None,
        arch: os.arch,
        machine: os.machine,
        virttype: domain.hypervisor_type().map(str::to_owned),
    }
}

/// The domain's `<cpu>` when it names a model to compare; `Err(mode)` when the CPU follows the
/// host (no `<cpu>`, or a host-derived mode).
fn fixed_cpu(domain: &Domain) -> Result<Result<String, String>, ConnectionError> {
    let Some(xml) = domain.cpu_xml() else {
        return Ok(Err("hypervisor default".into()));
    };
    let cpu = CpuDef::first_from_xml(&xml)?;
    if cpu.model.is_none() {
        return Ok(Err(mode_name(&xml)));
    }
    Ok(Ok(xml))
}

fn mode_name(cpu_xml: &str) -> String {
    cpu_xml
        .split_once("mode=")
        .and_then(|(_, rest)| rest.get(1..))
        .and_then(|rest| rest.split(['\'', '"']).next())
        .unwrap_or("host-model")
        .to_owned()
}

/// Asks every target whether it can run `domain_xml`'s CPU.
pub fn compare_on_hosts(
    domain_xml: &str,
    targets: &[Target],
) -> Result<Vec<HostVerdict>, ConnectionError> {
    let domain = Domain::parse(domain_xml).map_err(|e| ConnectionError::BadAnswer {
        uri: "domain XML".into(),
        what: e.to_string(),
    })?;
    let cpu = fixed_cpu(&domain)?;
    let spec = spec_for(&domain);
    Ok(targets
        .iter()
        .map(|target| HostVerdict {
            host: target.label().to_owned(),
            answer: match &cpu {
                Err(mode) => HostAnswer::FollowsHost(mode.clone()),
                Ok(cpu_xml) => match target {
                    Target::Builtin => builtin_answer(domain_xml),
                    Target::Libvirt(uri) => libvirt_answer(uri, &spec, cpu_xml),
                },
            },
        })
        .collect())
}

/// Asks one open libvirt connection whether it can run `domain_xml`'s CPU: the check a
/// migration makes on its destination before anything moves.
pub fn compare_on_connection(
    domain_xml: &str,
    conn: &LibvirtConnection,
) -> Result<HostAnswer, ConnectionError> {
    let domain = Domain::parse(domain_xml).map_err(|e| ConnectionError::BadAnswer {
        uri: "domain XML".into(),
        what: e.to_string(),
    })?;
    Ok(match fixed_cpu(&domain)? {
        Err(mode) => HostAnswer::FollowsHost(mode),
        Ok(cpu_xml) => answer_of(conn.compare_cpu(&spec_for(&domain), &cpu_xml)),
    })
}

fn libvirt_answer(uri: &str, spec: &HypervisorSpec, cpu_xml: &str) -> HostAnswer {
    answer_of(LibvirtConnection::open(uri).and_then(|conn| conn.compare_cpu(spec, cpu_xml)))
}

fn answer_of(answer: Result<Comparison, ConnectionError>) -> HostAnswer {
    match answer {
        Ok(Comparison::Identical) => HostAnswer::CanRun("identical"),
        Ok(Comparison::Superset) => HostAnswer::CanRun("superset"),
        Ok(Comparison::Incompatible { features, message }) => HostAnswer::Cannot {
            missing: features,
            why: message,
        },
        Err(e) => HostAnswer::Unreachable(e.to_string()),
    }
}

fn builtin_answer(domain_xml: &str) -> HostAnswer {
    let kvm = match crate::host::kvm::supported_cpuid() {
        Ok(kvm) => kvm,
        Err(e) => return HostAnswer::Unreachable(e.to_string()),
    };
    let enforced = crate::launch::cpuid_enforcement().unwrap_or(true);
    let verdict =
        crate::launch::cpu_verdict(domain_xml, &crate::launch::host_cpu_facts(&kvm, enforced));
    match crate::launch::refusal(&verdict) {
        None => HostAnswer::CanRun("superset"),
        Some(why) => HostAnswer::Cannot {
            missing: crate::launch::missing_features(&verdict),
            why,
        },
    }
}

/// The CPU every reachable target can run, with the features that block migration left out:
/// each host's host-model CPU, baselined by the first reachable libvirt host (libvirt's
/// `virConnectBaselineHypervisorCPU` with the migratable flag), or by Vireo's own baseline when
/// only this computer answers. Returns the `<cpu>` and the hosts that could not be asked.
pub fn baseline_of_hosts(
    targets: &[Target],
) -> Result<(String, Vec<HostVerdict>), ConnectionError> {
    let plan = plan_common_cpu(targets)?;
    let unreachable = plan
        .hosts
        .into_iter()
        .filter_map(|h| match h.loses {
            Err(why) => Some(HostVerdict {
                host: h.host,
                answer: HostAnswer::Unreachable(why),
            }),
            Ok(_) => None,
        })
        .collect();
    Ok((plan.cpu_xml, unreachable))
}

/// What one host gives up when a VM uses the common CPU instead of that host's host-model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLoss {
    /// "This computer" or the URI.
    pub host: String,
    /// The features its host-model CPU has and the common CPU lacks (sorted), or why the host
    /// could not be asked.
    pub loses: Result<Vec<String>, String>,
}

/// The CPU all hosts can run and what each host loses with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonCpu {
    /// The migratable baseline, a `<cpu>` element.
    pub cpu_xml: String,
    /// Every host asked, in the order given.
    pub hosts: Vec<HostLoss>,
}

/// Finds the migratable baseline of every reachable target's host-model CPU (see
/// [`baseline_of_hosts`]) and, per host, the features its host-model has that the baseline
/// lacks: what a VM gives up on that host for being able to move between all of them.
pub fn plan_common_cpu(targets: &[Target]) -> Result<CommonCpu, ConnectionError> {
    let mut models = Vec::new();
    let mut hosts = Vec::new();
    let mut baseliner = None;
    for target in targets {
        let cpu = match target {
            Target::Builtin => builtin_host_model(),
            Target::Libvirt(uri) => LibvirtConnection::open(uri).and_then(|conn| {
                let cpu = libvirt_host_model(&conn)?;
                baseliner.get_or_insert(conn);
                Ok(cpu)
            }),
        };
        hosts.push(HostLoss {
            host: target.label().to_owned(),
            loses: cpu.as_ref().map(|_| Vec::new()).map_err(|e| e.to_string()),
        });
        models.push(cpu.ok());
    }
    let cpus: Vec<String> = models.iter().flatten().cloned().collect();
    if cpus.is_empty() {
        return Err(ConnectionError::BadAnswer {
            uri: targets
                .iter()
                .map(Target::uri)
                .collect::<Vec<_>>()
                .join(", "),
            what: "no host could be asked for its CPU".into(),
        });
    }
    let map = CpuMap::load()?;
    let cpu_xml = match baseliner {
        Some(conn) => conn.baseline_cpu(&HypervisorSpec::default(), &cpus, true, false)?,
        None => {
            let defs = cpus
                .iter()
                .map(|c| CpuDef::first_from_xml(c))
                .collect::<Result<Vec<_>, _>>()?;
            let flags = BaselineFlags {
                expand_features: false,
                migratable: true,
            };
            crate::cpu::baseline(&map, &defs, flags)?.to_xml()
        }
    };
    let common = enabled_features(&map, &cpu_xml)?;
    for (host, model) in hosts.iter_mut().zip(&models) {
        if let Some(model) = model {
            let mut lost: Vec<String> = enabled_features(&map, model)?
                .into_iter()
                .filter(|f| !common.contains(f))
                .collect();
            lost.sort();
            host.loses = Ok(lost);
        }
    }
    Ok(CommonCpu { cpu_xml, hosts })
}

/// Every feature a `<cpu>` turns on: its model's, expanded with Vireo's CPU map, plus its
/// own `require`d ones, less the `disable`d ones.
fn enabled_features(map: &CpuMap, cpu_xml: &str) -> Result<Vec<String>, ConnectionError> {
    let mut cpu = CpuDef::first_from_xml(cpu_xml)?;
    if cpu.model.is_some() {
        crate::cpu::expand_features(map, &mut cpu)?;
    }
    Ok(cpu
        .features
        .into_iter()
        .filter(|f| {
            !matches!(
                f.policy,
                Some(crate::cpu::Policy::Disable | crate::cpu::Policy::Forbid)
            )
        })
        .map(|f| f.name)
        .collect())
}

/// A domain's XML with its `<cpu>` replaced by `cpu_xml` (the common CPU), ready to redefine.
pub fn with_cpu(domain_xml: &str, cpu_xml: &str) -> Result<String, ConnectionError> {
    let bad = |e: crate::domain::DomainError| ConnectionError::BadAnswer {
        uri: "domain XML".into(),
        what: e.to_string(),
    };
    let mut domain = Domain::parse(domain_xml).map_err(bad)?;
    domain.set_cpu_xml(Some(cpu_xml)).map_err(bad)?;
    Ok(domain.to_xml())
}

/// The host-model CPU a libvirt host offers (from its domain capabilities), as a `<cpu>`.
pub fn libvirt_host_model(conn: &LibvirtConnection) -> Result<String, ConnectionError> {
    let caps = conn.domcapabilities(&HypervisorSpec::default())?;
    let cpu = CpuDef::all_from_xml(&caps).map_err(|e| ConnectionError::BadAnswer {
        uri: conn.uri().to_owned(),
        what: format!("its domain capabilities offer no host-model CPU ({e})"),
    })?;
    Ok(cpu[0].to_xml())
}

fn builtin_host_model() -> Result<String, ConnectionError> {
    let kvm = crate::host::kvm::supported_cpuid().map_err(|e| ConnectionError::BadAnswer {
        uri: super::BUILTIN_URI.into(),
        what: e.to_string(),
    })?;
    let map = CpuMap::load()?;
    Ok(crate::cpu::host_model(&map, &kvm)?.to_xml())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_without_a_model_follows_every_host() {
        let passthrough = Domain::parse(
            "<domain type='kvm'><name>a</name><cpu mode='host-passthrough'/></domain>",
        )
        .unwrap();
        assert_eq!(
            fixed_cpu(&passthrough).unwrap(),
            Err("host-passthrough".into())
        );
        let none = Domain::parse("<domain type='kvm'><name>a</name></domain>").unwrap();
        assert_eq!(fixed_cpu(&none).unwrap(), Err("hypervisor default".into()));
        let custom = Domain::parse(
            "<domain type='kvm'><name>a</name><os><type arch='x86_64' machine='q35'>hvm</type></os>\
             <cpu mode='custom'><model>Haswell</model></cpu></domain>",
        )
        .unwrap();
        assert!(fixed_cpu(&custom).unwrap().unwrap().contains("Haswell"));
        let spec = spec_for(&custom);
        assert_eq!(spec.virttype.as_deref(), Some("kvm"));
        assert_eq!(spec.machine.as_deref(), Some("q35"));
        assert_eq!(spec.arch.as_deref(), Some("x86_64"));
    }

    #[test]
    fn what_a_host_loses_is_its_model_less_the_common_cpu() {
        let map = CpuMap::load().unwrap();
        let haswell = enabled_features(
            &map,
            "<cpu mode='custom'><model>Haswell</model>\
             <feature policy='disable' name='avx2'/><feature policy='require' name='vmx'/></cpu>",
        )
        .unwrap();
        assert!(haswell.iter().any(|f| f == "sse4.2"), "{haswell:?}");
        assert!(haswell.iter().any(|f| f == "vmx"), "{haswell:?}");
        assert!(!haswell.iter().any(|f| f == "avx2"), "{haswell:?}");
        let xml = with_cpu(
            "<domain type='kvm'><name>a</name><cpu mode='host-model'/></domain>",
            "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>",
        )
        .unwrap();
        assert!(xml.contains("<model>Nehalem</model>"), "{xml}");
        assert!(!xml.contains("host-model"), "{xml}");
    }
}
