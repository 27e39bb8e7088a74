//! The one bridge from a domain document to a [`VmConfig`], and the one place where "this host
//! cannot run that" is decided: unreadable kernel, initrd too large, more memory than the host
//! has, more vCPUs than KVM allows, /dev/kvm unusable, a CPU the host cannot give.

use std::path::{Path, PathBuf};

use super::cpuset::parse_cpuset;
use super::domain_facts::{self, DomainFacts};
use crate::cpu::guest::{
    CheckMode, CpuCatalog, CpuMode, GuestCpuSpec, GuestTopology, HostCpuFacts, MatchMode, Policy,
    ResolveError, ResolvedCpu, resolve,
};
use crate::cpu::map::CpuMap;
use crate::domain::Domain;
use crate::domain::units::{MemUnit, Memory};
use crate::engine::config::paravirt;
use crate::engine::{BootSource, LifecycleAction, VcpuPin, VmConfig};
use crate::host::facts;

/// Why a domain cannot be run here. Each message names the element or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The document is not XML or not a domain.
    #[error("domain XML: {0}")]
    Xml(String),
    /// A required element is missing or has a bad value.
    #[error("domain XML: {0}")]
    Invalid(String),
    /// The host lacks something the domain needs.
    #[error("this host cannot run the domain: {0}")]
    Host(String),
    /// Disks Vireo cannot attach, each named with its fix.
    #[error("{}", join_disk_problems(.0))]
    Disks(Vec<super::disks::DiskProblem>),
    /// Network interfaces Vireo cannot attach, each named with its fix.
    #[error("{}", join_disk_problems(.0))]
    Nics(Vec<super::nics::NicProblem>),
    /// The guest CPU cannot be provided.
    #[error("guest CPU")]
    Cpu(#[from] ResolveError),
}

/// One line (a runner reports its error on one line): the problems joined by "; ".
fn join_disk_problems<T: ToString>(problems: &[T]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

pub use crate::host::facts::HostFacts;

impl HostFacts {
    /// The facts starting a VM needs: opens /dev/kvm for its limits and CPUID, and runs the
    /// tiny CPUID-enforcement guest unless its answer is cached for this boot, kernel, KVM and
    /// CPU. (The nearest usable model, which needs the whole CPU map, is left out: no start
    /// needs it.)
    pub fn probe() -> Result<Self, ConfigError> {
        let caps = crate::host::kvm_caps::read().map_err(|e| ConfigError::Host(e.to_string()))?;
        let enforced = super::cpuid_is_enforced_cached(caps.api_version)
            .map_err(|e| ConfigError::Host(e.to_string()))?;
        Ok(Self {
            mem_total_kib: facts::mem_total_kib(),
            online_cpus: facts::online_cpus(),
            hardware_kvm: !caps.paravirtual && facts::cpu_has_vmx_or_svm(),
            kvm_supported: caps.supported_cpuid,
            cpuid_enforced: enforced,
            max_vcpus: caps.max_vcpus,
            ..Self::default()
        })
    }
}

/// A domain ready to start: its config plus what CPU resolution decided.
#[derive(Debug, Clone)]
pub struct PreparedDomain {
    /// The engine configuration.
    pub config: VmConfig,
    /// The resolved CPU (model, features — host-model's recorded expansion — and warnings).
    pub cpu: ResolvedCpu,
    /// What the VM will run with but the user should know (beside the CPU's own warnings).
    pub warnings: Vec<String>,
    /// The network cards; their backends start with [`PreparedDomain::start_network`], which
    /// fills `config.nics` (nothing is started by preparing, so `define` and `validate` may
    /// prepare freely).
    pub nics: Vec<super::nics::NicPlan>,
    /// The VNC server a runner starts for `<graphics type='vnc'>`.
    pub vnc: Option<super::vnc::VncSettings>,
}

impl PreparedDomain {
    /// Starts one passt per network card and puts the cards into `config.nics`. Keep the
    /// returned processes until the VM has ended: dropping them stops the VM's network.
    pub fn start_network(
        &mut self,
    ) -> Result<super::passt::NetworkBackends, super::passt::PasstError> {
        let (nics, backends) = super::passt::start_backends(&self.config.name, &self.nics)?;
        self.config.nics = nics;
        Ok(backends)
    }

    /// Every warning of this start: the CPU resolution's, then the rest.
    pub fn all_warnings(&self) -> Vec<String> {
        self.cpu
            .warnings
            .iter()
            .chain(&self.warnings)
            .cloned()
            .collect()
    }
}

/// The warning for more vCPUs than the host has CPUs online: the VM runs (KVM allows it, and
/// libvirt and QEMU start such guests too) but its vCPUs take turns on the host's CPUs, so
/// spinning guest code slows the whole guest down.
pub fn oversubscription(vcpus: u32, online_cpus: usize) -> Option<String> {
    (online_cpus > 0 && vcpus as usize > online_cpus).then(|| {
        format!(
            "<vcpu> is {vcpus} but this host has {online_cpus} CPU{} online: the vCPUs share them, so the guest runs slower, not faster; lower <vcpu> to {online_cpus} or fewer",
            if online_cpus == 1 { "" } else { "s" }
        )
    })
}

/// Turns a domain document into a [`VmConfig`] for this host.
pub fn from_domain_xml(xml: &str, host: &HostFacts) -> Result<VmConfig, ConfigError> {
    prepare_domain(xml, host).map(|p| p.config)
}

/// As [`from_domain_xml`], also returning the CPU resolution. CPU models and features come from
/// Vireo's CPU map (built in, plus the user's overlay).
/// Only the part of the map the domain's `<cpu>` needs is read (see [`map_for`]).
pub fn prepare_domain(xml: &str, host: &HostFacts) -> Result<PreparedDomain, ConfigError> {
    let domain = Domain::parse(xml).map_err(|e| ConfigError::Xml(e.to_string()))?;
    prepare(&domain, host)
}

/// The bridge itself: a typed domain (as the store and `define` hold it) and this host's facts
/// become the engine's [`VmConfig`].
pub fn prepare(domain: &Domain, host: &HostFacts) -> Result<PreparedDomain, ConfigError> {
    let facts = domain_facts::from_domain(domain);
    let map = map_for_facts(&facts)?;
    prepare_facts(domain, &facts, host, &map)
}

/// [`map_for`] the document's `<cpu>`, with the error start and every verdict give.
pub(super) fn map_for_facts(facts: &DomainFacts) -> Result<CpuMap, ConfigError> {
    map_for(&cpu_spec(facts)?).map_err(|e| {
        ConfigError::Host(format!(
            "cannot load the CPU map: {e}; fix or remove the overlay in $XDG_CONFIG_HOME/vireo/cpu_map"
        ))
    })
}

/// The CPU map a guest CPU needs, read no further than that (loading every model costs more
/// than the rest of a small VM's start): features only for host-passthrough and maximum, the
/// one model's file for a named model or the hypervisor default, the whole map for host-model
/// (its nearest model is searched among all). Each gives the same facts as the whole map.
pub fn map_for(spec: &GuestCpuSpec) -> Result<CpuMap, crate::cpu::map::CpuMapError> {
    match spec.mode {
        CpuMode::HostPassthrough | CpuMode::Maximum => CpuMap::load_features_only(),
        CpuMode::HypervisorDefault => {
            CpuMap::load_for_model(crate::cpu::guest::catalog::DEFAULT_MODEL)
        }
        CpuMode::Custom => match &spec.model {
            Some(model) => CpuMap::load_for_model(model),
            None => CpuMap::load_features_only(),
        },
        CpuMode::HostModel => CpuMap::load(),
    }
}

/// As [`prepare_domain`], with the CPU facts from `catalog`.
pub fn prepare_domain_with(
    xml: &str,
    host: &HostFacts,
    catalog: &dyn CpuCatalog,
) -> Result<PreparedDomain, ConfigError> {
    let domain = Domain::parse(xml).map_err(|e| ConfigError::Xml(e.to_string()))?;
    let facts = domain_facts::from_domain(&domain);
    prepare_facts(&domain, &facts, host, catalog)
}

fn prepare_facts(
    domain: &Domain,
    facts: &DomainFacts,
    host: &HostFacts,
    catalog: &dyn CpuCatalog,
) -> Result<PreparedDomain, ConfigError> {
    let name = facts
        .text("domain/name")
        .ok_or_else(|| ConfigError::Invalid("missing <name>".into()))?
        .to_string();
    // The name becomes the runner's file names: the one name rule, before anything else.
    crate::domain::name::check(&name).map_err(|e| ConfigError::Invalid(format!("<name>: {e}")))?;
    let memory_bytes = memory(facts)?;
    if let Some(host_bytes) = host.mem_total_bytes()
        && memory_bytes > host_bytes
    {
        return Err(ConfigError::Host(format!(
            "<memory> is {} MiB but the host has only {} MiB; lower <memory>",
            memory_bytes >> 20,
            host_bytes >> 20
        )));
    }
    if memory_bytes < 16 << 20 {
        return Err(ConfigError::Invalid(format!(
            "<memory> is {} KiB; a VM needs at least 16 MiB",
            memory_bytes >> 10
        )));
    }
    let vcpus = vcpu_count(facts)?;
    if host.max_vcpus > 0 && vcpus as usize > host.max_vcpus {
        return Err(ConfigError::Host(format!(
            "<vcpu> is {vcpus} but this host's KVM allows at most {} per VM; lower <vcpu>",
            host.max_vcpus
        )));
    }
    let topology = topology(facts, vcpus)?;
    let cpu = resolve_cpu(
        facts,
        &HostCpuFacts {
            kvm_supported: host.kvm_supported.clone(),
            cpuid_enforced: host.cpuid_enforced,
        },
        catalog,
    )?;
    let boot = boot_source(facts, memory_bytes)?;
    let disks = super::disks::domain_disks(domain).map_err(ConfigError::Disks)?;
    let nics = super::nics::domain_nics(domain).map_err(ConfigError::Nics)?;
    let display = super::display::domain_display(domain).map_err(ConfigError::Invalid)?;
    let mut cpuid = cpu.table.clone();
    if facts
        .first("domain/features/kvm/hidden")
        .and_then(|e| e.attr("state"))
        == Some("on")
    {
        paravirt::hide(&mut cpuid);
    } else {
        paravirt::add_kvm_leaves(&mut cpuid, &host.kvm_supported);
    }
    let config = VmConfig {
        name,
        memory_bytes,
        topology,
        cpuid,
        boot,
        on_poweroff: action(facts, "domain/on_poweroff", LifecycleAction::Destroy)?,
        on_reboot: action(facts, "domain/on_reboot", LifecycleAction::Restart)?,
        on_crash: action(facts, "domain/on_crash", LifecycleAction::Destroy)?,
        vcpu_pins: vcpu_pins(facts, vcpus)?,
        emulator_pin: match facts.first("domain/cputune/emulatorpin") {
            Some(e) => Some(
                parse_cpuset(e.attr("cpuset").unwrap_or(""))
                    .map_err(|m| ConfigError::Invalid(format!("<emulatorpin>: {m}")))?,
            ),
            None => None,
        },
        disks: disks.disks,
        nics: Vec::new(),
        display: display.display,
        inputs: display.inputs,
        ps2_keyboard: display.ps2_keyboard,
    };
    let vnc = display.vnc;
    let warnings = oversubscription(vcpus, host.online_cpus)
        .into_iter()
        .chain(super::cpu_verdict::no_long_mode_warning(&cpu))
        .chain(super::cpu_verdict::amd_threads_without_topoext_warning(
            &cpu,
            config.topology.threads,
        ))
        .chain(disks.warnings)
        .chain(display.warnings)
        .collect();
    Ok(PreparedDomain {
        config,
        cpu,
        warnings,
        nics,
        vnc,
    })
}

/// The guest CPU of a read document on a host: `<cpu>` as a spec, then [`resolve`]. Start and
/// every "can this CPU run here" answer ([`super::cpu_verdict`]) come through here.
pub(super) fn resolve_cpu(
    facts: &DomainFacts,
    host: &HostCpuFacts,
    catalog: &dyn CpuCatalog,
) -> Result<ResolvedCpu, ConfigError> {
    Ok(resolve(catalog, &cpu_spec(facts)?, host)?)
}

fn memory(facts: &DomainFacts) -> Result<u64, ConfigError> {
    let element = facts
        .first("domain/memory")
        .ok_or_else(|| ConfigError::Invalid("missing <memory>".into()))?;
    let value: u64 = element.text.parse().map_err(|_| {
        ConfigError::Invalid(format!("<memory> '{}' is not a number", element.text))
    })?;
    // The domain's unit table, so `start` accepts exactly what `define` accepted.
    let unit = element.attr("unit").unwrap_or("KiB");
    let unit = MemUnit::parse(unit).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "<memory unit='{unit}'> is not a unit libvirt knows (known: {})",
            MemUnit::all_names()
        ))
    })?;
    Memory {
        amount: value,
        unit,
    }
    .bytes()
    .ok_or_else(|| {
        ConfigError::Invalid(format!(
            "<memory unit='{}'>{value}</memory> is more than 2^64 bytes; lower <memory>",
            unit.name
        ))
    })
}

fn vcpu_count(facts: &DomainFacts) -> Result<u32, ConfigError> {
    match facts.text("domain/vcpu") {
        None => Ok(1),
        Some(t) => match t.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::Invalid(format!(
                "<vcpu> '{t}' must be a positive number"
            ))),
        },
    }
}

fn topology(facts: &DomainFacts, vcpus: u32) -> Result<GuestTopology, ConfigError> {
    let Some(t) = facts.first("domain/cpu/topology") else {
        return Ok(GuestTopology::flat(vcpus));
    };
    let get = |name: &str| -> Result<u32, ConfigError> {
        match t.attr(name) {
            None => Ok(1),
            Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError::Invalid(format!("<topology {name}='{v}'> must be a positive number"))
            }),
        }
    };
    let clusters = get("clusters")?;
    let (sockets, dies, cores, threads) = (
        get("sockets")?,
        get("dies")?,
        get("cores")?,
        get("threads")?,
    );
    // Checked: `sockets='65536' cores='65536'` must be an error, not a wrapped product.
    let product = [sockets, dies, clusters, cores, threads]
        .into_iter()
        .try_fold(1u32, u32::checked_mul)
        .ok_or_else(|| {
            ConfigError::Invalid(format!(
                "<topology sockets='{sockets}' dies='{dies}' clusters='{clusters}' \
                 cores='{cores}' threads='{threads}'> gives more than {} vCPUs; <vcpu> is \
                 {vcpus}: make the topology's product equal <vcpu>",
                u32::MAX
            ))
        })?;
    if product != vcpus {
        return Err(ConfigError::Invalid(format!(
            "<topology> gives {product} vCPUs but <vcpu> is {vcpus}; make them agree"
        )));
    }
    Ok(GuestTopology {
        sockets,
        dies,
        // Cores per die; clusters are folded in (checked above: cores × clusters ≤ product).
        cores: cores * clusters,
        threads,
    })
}

pub(super) fn cpu_spec(facts: &DomainFacts) -> Result<GuestCpuSpec, ConfigError> {
    let Some(cpu) = facts.first("domain/cpu") else {
        return Ok(GuestCpuSpec::mode(CpuMode::HypervisorDefault));
    };
    let model = facts.text("domain/cpu/model").map(str::to_string);
    let mode = match cpu.attr("mode") {
        Some("custom") => CpuMode::Custom,
        None if model.is_some() => CpuMode::Custom,
        None => CpuMode::HypervisorDefault,
        Some("host-model") => CpuMode::HostModel,
        Some("host-passthrough") => CpuMode::HostPassthrough,
        Some("maximum") => CpuMode::Maximum,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "<cpu mode='{other}'> is not custom, host-model, host-passthrough or maximum"
            )));
        }
    };
    let match_mode = match cpu.attr("match") {
        None | Some("exact") => MatchMode::Exact,
        Some("minimum") => MatchMode::Minimum,
        Some("strict") => MatchMode::Strict,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "<cpu match='{other}'> is not minimum, exact or strict"
            )));
        }
    };
    let check = match cpu.attr("check") {
        None => None,
        Some("none") => Some(CheckMode::None),
        Some("partial") => Some(CheckMode::Partial),
        Some("full") => Some(CheckMode::Full),
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "<cpu check='{other}'> is not none, partial or full"
            )));
        }
    };
    let mut features = Vec::new();
    for f in facts.all("domain/cpu/feature") {
        let name = f
            .attr("name")
            .ok_or_else(|| ConfigError::Invalid("<feature> without name".into()))?;
        let policy = match f.attr("policy").unwrap_or("require") {
            "force" => Policy::Force,
            "require" => Policy::Require,
            "optional" => Policy::Optional,
            "disable" => Policy::Disable,
            "forbid" => Policy::Forbid,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "<feature name='{name}' policy='{other}'>: policy must be force, require, optional, disable or forbid"
                )));
            }
        };
        features.push((name.to_string(), policy));
    }
    Ok(GuestCpuSpec {
        mode,
        match_mode,
        check,
        model,
        features,
    })
}

fn boot_source(facts: &DomainFacts, memory_bytes: u64) -> Result<BootSource, ConfigError> {
    let kernel = facts.text("domain/os/kernel").ok_or_else(|| {
        ConfigError::Invalid(
            "no <os><kernel>: Vireo boots guests by direct kernel boot so far; add <kernel>/path/to/vmlinuz</kernel>"
                .into(),
        )
    })?;
    let kernel = PathBuf::from(kernel);
    let kernel_size = readable_size(&kernel, "kernel", "<os><kernel>")?;
    let initrd = facts.text("domain/os/initrd").map(PathBuf::from);
    if let Some(initrd) = &initrd {
        let size = readable_size(initrd, "initrd", "<os><initrd>")?;
        // The kernel decompresses above 16 MiB; the initrd goes at the top of low memory.
        let room = crate::engine::layout::low_ram_end(memory_bytes)
            .saturating_sub(kernel_size.saturating_mul(4).saturating_add(16 << 20));
        if size > room {
            return Err(ConfigError::Host(format!(
                "initrd {} is {} MiB, too large for {} MiB of guest memory; raise <memory> or shrink the initrd",
                initrd.display(),
                size >> 20,
                memory_bytes >> 20
            )));
        }
    }
    Ok(BootSource {
        kernel,
        initrd,
        cmdline: facts.text("domain/os/cmdline").unwrap_or("").to_string(),
    })
}

fn readable_size(path: &Path, what: &str, element: &str) -> Result<u64, ConfigError> {
    let file = std::fs::File::open(path).map_err(|e| {
        ConfigError::Host(format!(
            "{what} {} cannot be read: {e}; fix the path in {element} or its permissions",
            path.display()
        ))
    })?;
    let meta = file
        .metadata()
        .map_err(|e| ConfigError::Host(format!("{what} {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(ConfigError::Host(format!(
            "{what} {} is not a regular file; fix {element}",
            path.display()
        )));
    }
    Ok(meta.len())
}

fn action(
    facts: &DomainFacts,
    path: &str,
    default: LifecycleAction,
) -> Result<LifecycleAction, ConfigError> {
    match facts.text(path) {
        None => Ok(default),
        Some(v) => LifecycleAction::from_libvirt(v).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "<{}>{v}</…> is not destroy, restart or preserve",
                path.rsplit('/').next().unwrap_or(path)
            ))
        }),
    }
}

fn vcpu_pins(facts: &DomainFacts, vcpus: u32) -> Result<Vec<VcpuPin>, ConfigError> {
    facts
        .all("domain/cputune/vcpupin")
        .iter()
        .map(|pin| {
            let vcpu: u32 = pin
                .attr("vcpu")
                .and_then(|v| v.parse().ok())
                .filter(|v| *v < vcpus)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "<vcpupin vcpu='{}'> must name a vCPU below {vcpus}",
                        pin.attr("vcpu").unwrap_or("")
                    ))
                })?;
            let host_cpus = parse_cpuset(pin.attr("cpuset").unwrap_or(""))
                .map_err(|m| ConfigError::Invalid(format!("<vcpupin vcpu='{vcpu}'>: {m}")))?;
            Ok(VcpuPin { vcpu, host_cpus })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PVM host's KVM-supported CPUID (AMD EPYC Milan), so the results do not depend on this
    /// machine.
    fn host() -> HostFacts {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/pvm-amd-epyc-milan-kvm.xml"
        ))
        .unwrap();
        let data = crate::cpu::CpuidData::from_xml(&text).unwrap();
        HostFacts {
            kvm_supported: crate::cpu::guest::map_catalog::from_cpuid_data(&data),
            cpuid_enforced: false,
            max_vcpus: 64,
            online_cpus: 2,
            ..HostFacts::default()
        }
    }

    #[test]
    fn more_vcpus_than_host_cpus_start_with_a_warning() {
        let kernel = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(kernel.path(), b"not read before start").unwrap();
        let xml = |vcpus: u32| {
            domain(kernel.path(), "").replace("<vcpu>1</vcpu>", &format!("<vcpu>{vcpus}</vcpu>"))
        };
        let map = CpuMap::load().unwrap();
        let two = prepare_domain_with(&xml(2), &host(), &map).unwrap();
        assert!(two.warnings.is_empty(), "{:?}", two.warnings);
        let many = prepare_domain_with(&xml(64), &host(), &map).unwrap();
        assert_eq!(many.config.vcpus(), 64);
        assert!(
            many.all_warnings()
                .iter()
                .any(|w| w.contains("<vcpu> is 64 but this host has 2 CPUs online")),
            "{:?}",
            many.all_warnings()
        );
        let too_many = prepare_domain_with(&xml(65), &host(), &map).unwrap_err();
        assert!(too_many.to_string().contains("at most 64"), "{too_many}");
        assert_eq!(
            oversubscription(3, 0),
            None,
            "unknown host CPU count: no warning"
        );
    }

    /// Start gets the disks in target order, the CD-ROM's warning among the start's warnings,
    /// and a disk it cannot attach is start's error.
    #[test]
    fn disks_reach_the_config_and_refusals_stop_the_start() {
        let kernel = tempfile::NamedTempFile::new().unwrap();
        let map = CpuMap::load().unwrap();
        let with_devices = |devices: &str| {
            domain(kernel.path(), "").replace(
                "</domain>",
                &format!("<devices>{devices}</devices></domain>"),
            )
        };
        let ok = with_devices(
            "<disk type='file' device='cdrom'><source file='/iso/a.iso'/>\
             <target dev='sda' bus='sata'/></disk>\
             <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='/img/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>\
             <disk type='file' device='disk'><source file='/img/a.raw'/>\
             <target dev='vda' bus='virtio'/></disk>",
        );
        let prepared = prepare_domain_with(&ok, &host(), &map).unwrap();
        let targets: Vec<&str> = prepared
            .config
            .disks
            .iter()
            .map(|d| d.target.as_str())
            .collect();
        assert_eq!(targets, ["vda", "vdb", "sda"]);
        assert!(
            prepared
                .all_warnings()
                .iter()
                .any(|w| w.contains("disk sda (/iso/a.iso)") && w.contains("/dev/vdc")),
            "{:?}",
            prepared.all_warnings()
        );
        let bad = with_devices(
            "<disk type='file' device='disk'><source file='/img/a.raw'/>\
             <target dev='sda' bus='sata'/></disk>",
        );
        let err = prepare_domain_with(&bad, &host(), &map).unwrap_err();
        assert!(matches!(err, ConfigError::Disks(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("disk sda (/img/a.raw): bus 'sata'"),
            "{err}"
        );
        let typed = Domain::parse(&bad).unwrap();
        assert!(
            matches!(prepare(&typed, &host()), Err(ConfigError::Disks(_))),
            "prepare() maps disks too"
        );
    }

    fn domain(kernel: &Path, cpu: &str) -> String {
        format!(
            "<domain type='kvm'><name>m</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             {cpu}<os><type arch='x86_64'>hvm</type><kernel>{}</kernel></os></domain>",
            kernel.display()
        )
    }

    /// Reading only the part of the map a `<cpu>` needs gives the same CPU as the whole map.
    #[test]
    fn the_partial_map_resolves_as_the_whole_map_does() {
        let kernel = tempfile::NamedTempFile::new().unwrap();
        let full = CpuMap::load().unwrap();
        for cpu in [
            "",
            "<cpu mode='host-passthrough'/>",
            "<cpu mode='host-passthrough'><feature policy='disable' name='avx2'/></cpu>",
            "<cpu mode='maximum'/>",
            "<cpu mode='host-model'/>",
            "<cpu mode='custom' match='exact' check='none'><model>Haswell-noTSX</model></cpu>",
            "<cpu mode='custom' match='exact'><model>EPYC-Rome</model>\
             <feature policy='disable' name='svm'/></cpu>",
            "<cpu mode='custom' match='minimum' check='none'><model>qemu64</model></cpu>",
        ] {
            let xml = domain(kernel.path(), cpu);
            let partial = prepare_domain(&xml, &host()).map(|p| p.cpu);
            let whole = prepare_domain_with(&xml, &host(), &full).map(|p| p.cpu);
            match (partial, whole) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{cpu}"),
                (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{cpu}"),
                (a, b) => panic!("{cpu}: partial {a:?}, whole {b:?}"),
            }
        }
    }
}
