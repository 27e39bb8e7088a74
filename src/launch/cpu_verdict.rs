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

/// The warning for an AMD (or Hygon) guest CPU with `threads` > 1 but no `topoext`: Linux
/// reads an AMD CPU's threads per core from CPUID 0x8000001E only when `topoext` says that leaf
/// is there, so without it the guest counts every thread as a core of its own (`lscpu`:
/// "Thread(s) per core: 1", twice the cores). QEMU warns the same way for such CPUs. `topoext`
/// only announces CPUID leaves, which Vireo fills itself, so forcing it is safe even on a host
/// CPU without it (as the test bed's emulated EPYC). `None` when the topology will show.
pub fn amd_threads_without_topoext_warning(cpu: &ResolvedCpu, threads: u32) -> Option<String> {
    if threads < 2 || !cpu.table.is_amd_like() || cpu.features.iter().any(|f| f == "topoext") {
        return None;
    }
    Some(format!(
        "<topology threads='{threads}'> on an AMD guest CPU without 'topoext': the guest counts \
         each thread as a core of its own; add <feature policy='force' name='topoext'/> to the \
         <cpu> (`vireoctl edit`) or use threads='1'"
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

    /// An AMD model without `topoext` and threads='2' is named at start, with the fix; forcing
    /// `topoext`, one thread per core or an Intel model need no word.
    #[test]
    fn amd_threads_without_topoext_are_named_at_start() {
        let map = crate::cpu::CpuMap::builtin().unwrap();
        let kvm = crate::cpu::CpuidData::from_xml(include_str!(
            "../../tests/data/pvm-amd-epyc-milan-kvm.xml"
        ))
        .unwrap();
        let host = host_cpu_facts(&kvm, true);
        let resolve = |model: &str, extra: &str| {
            let xml = format!(
                "<domain type='kvm'><name>v</name><memory unit='MiB'>64</memory><vcpu>4</vcpu>\
                 <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>{model}</model>\
                 <topology sockets='1' cores='2' threads='2'/>{extra}</cpu>\
                 <os><type arch='x86_64'>hvm</type></os></domain>"
            );
            cpu_verdict_with(&xml, &host, &map).unwrap()
        };
        let opteron = resolve("Opteron_G1", "");
        let warning = amd_threads_without_topoext_warning(&opteron, 2).unwrap();
        assert!(
            warning.contains("threads='2'") && warning.contains("policy='force' name='topoext'"),
            "{warning}"
        );
        assert_eq!(amd_threads_without_topoext_warning(&opteron, 1), None);
        let forced = resolve("Opteron_G1", "<feature policy='force' name='topoext'/>");
        assert_eq!(amd_threads_without_topoext_warning(&forced, 2), None);
        let intel = resolve("Nehalem", "");
        assert_eq!(amd_threads_without_topoext_warning(&intel, 2), None);
        // This EPYC host has topoext: passing its CPU through needs no word.
        let passthrough = cpu_verdict_with(
            "<domain type='kvm'><name>v</name><memory unit='MiB'>64</memory><vcpu>4</vcpu>\
             <cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='2'/></cpu>\
             <os><type arch='x86_64'>hvm</type></os></domain>",
            &host,
            &map,
        )
        .unwrap();
        assert_eq!(amd_threads_without_topoext_warning(&passthrough, 2), None);
    }
}
