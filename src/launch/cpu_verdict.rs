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
