//! The one answer to "can this CPU run here": what `start` will make of a domain's `<cpu>` on a
//! host, for `vireoctl validate --host` and the GUI's CPU page. It is start's own resolution
//! ([`crate::cpu::guest::resolve`] via the same document reading), so `check=`, `match=` and
//! every feature policy (`force`, `require`, `optional`, `disable`, `forbid`) count exactly as
//! they do when the VM starts.

use super::domain_facts;
use super::prepare::{ConfigError, map_for_facts, resolve_cpu};
use crate::cpu::CpuidData;
use crate::cpu::guest::map_catalog::from_cpuid_data;
use crate::cpu::guest::{CpuCatalog, HostCpuFacts, ResolveError, ResolvedCpu};

/// Host CPU facts from KVM's supported CPUID as the `cpu` module reads it (what the GUI and
/// `validate` hold) and whether KVM enforces guest CPUID.
pub fn host_cpu_facts(kvm: &CpuidData, cpuid_enforced: bool) -> HostCpuFacts {
    HostCpuFacts {
        kvm_supported: from_cpuid_data(kvm),
        cpuid_enforced,
    }
}

/// What start does with `xml`'s `<cpu>` on `host`: the resolved CPU (its warnings say what
/// works but deserves a word, e.g. features `check='none'` drops) or the error start gives.
/// Reads only the part of the CPU map the `<cpu>` needs, as start does.
pub fn cpu_verdict(xml: &str, host: &HostCpuFacts) -> Result<ResolvedCpu, ConfigError> {
    let facts = domain_facts::read(xml).map_err(ConfigError::Xml)?;
    let map = map_for_facts(&facts)?;
    resolve_cpu(&facts, host, &map)
}

/// As [`cpu_verdict`], with the CPU facts from `catalog`.
pub fn cpu_verdict_with(
    xml: &str,
    host: &HostCpuFacts,
    catalog: &dyn CpuCatalog,
) -> Result<ResolvedCpu, ConfigError> {
    let facts = domain_facts::read(xml).map_err(ConfigError::Xml)?;
    resolve_cpu(&facts, host, catalog)
}

/// The verdict as one sentence naming the cause and the fix, `None` when the CPU can start.
pub fn refusal(verdict: &Result<ResolvedCpu, ConfigError>) -> Option<String> {
    match verdict {
        Ok(_) => None,
        Err(ConfigError::Cpu(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// The features KVM lacks that stop the CPU from starting (empty when it starts, or when it
/// fails for another reason: see [`refusal`]).
pub fn missing_features(verdict: &Result<ResolvedCpu, ConfigError>) -> Vec<String> {
    match verdict {
        Err(ConfigError::Cpu(ResolveError::Missing { features, .. })) => features.clone(),
        _ => Vec::new(),
    }
}

/// The verdict as a problem on `<cpu>`, the way `validate --host` lists problems; `None` when
/// the CPU can start.
pub fn cpu_host_problem(
    verdict: &Result<ResolvedCpu, ConfigError>,
) -> Option<crate::domain::DomainError> {
    refusal(verdict).map(|message| crate::domain::DomainError::Invalid {
        element: "<cpu>".into(),
        message: format!("this host cannot start the VM with this CPU: {message}"),
    })
}

/// The warning for a guest CPU without long mode (`lm`), e.g. a domain made when "Nearest CPU
/// model" could still pick `pentium3`: the VM starts, but a 64-bit kernel stops at once
/// ("requires an x86-64 CPU"). `None` when the CPU has long mode.
pub fn no_long_mode_warning(cpu: &ResolvedCpu) -> Option<String> {
    if cpu.features.iter().any(|f| f == "lm") {
        return None;
    }
    let model = cpu.model.as_deref().unwrap_or("the guest CPU");
    Some(format!(
        "the guest CPU model {model} has no long mode ('lm'), so a 64-bit kernel cannot boot on \
         it; choose a 64-bit model or host-model (the details' CPU page, or `vireoctl edit`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pentium3`, which "Nearest CPU model" used to pick on PVM hosts, has no long mode.
    #[test]
    fn a_cpu_without_long_mode_is_named_at_start() {
        let map = crate::cpu::CpuMap::builtin().unwrap();
        let kvm = crate::cpu::CpuidData::from_xml(include_str!(
            "../../tests/data/pvm-amd-epyc-milan-kvm.xml"
        ))
        .unwrap();
        let host = host_cpu_facts(&kvm, true);
        let xml = |model: &str| {
            format!(
                "<domain type='kvm'><name>v</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                 <cpu mode='custom' match='exact'><model fallback='forbid'>{model}</model></cpu>\
                 <os><type arch='x86_64'>hvm</type></os></domain>"
            )
        };
        let pentium3 = cpu_verdict_with(&xml("pentium3"), &host, &map).unwrap();
        let warning = no_long_mode_warning(&pentium3).unwrap();
        assert!(
            warning.contains("pentium3") && warning.contains("64-bit"),
            "{warning}"
        );
        let passthrough = cpu_verdict_with(
            &xml("x").replace(
                "<cpu mode='custom' match='exact'><model fallback='forbid'>x</model></cpu>",
                "<cpu mode='host-passthrough'/>",
            ),
            &host,
            &map,
        )
        .unwrap();
        assert_eq!(no_long_mode_warning(&passthrough), None);
    }
}
