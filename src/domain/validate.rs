//! Checks on a domain document: the document itself (at define time) and against this host
//! (before start and in `vireoctl validate --host`).
//!
//! Like libvirt, define accepts any well-formed document whose values make sense, even if Vireo's
//! engine cannot run every device in it; the engine reports unsupported parts at start. Each
//! problem names the element and says how to fix it.

use crate::domain::cpu::{cpu_map, cpu_problems, nearest_usable_model};
use crate::domain::model::parse_num;
use crate::domain::{Domain, DomainError};
use crate::host::facts;
use std::collections::HashSet;
use std::fs::File;

pub use crate::host::facts::HostFacts;

impl HostFacts {
    /// The facts describing and checking a new VM needs, without running a guest: memory,
    /// CPUs, whether KVM is hardware-backed, the KVM CPUID and the nearest usable model.
    pub fn detect() -> HostFacts {
        let kvm_cpuid = match crate::host::kvm::supported_cpuid() {
            Ok(cpuid) => Some(cpuid),
            Err(e) => {
                tracing::info!("no KVM CPUID facts: {e}");
                None
            }
        };
        let nearest_usable_model = kvm_cpuid
            .as_ref()
            .zip(cpu_map())
            .and_then(|(cpuid, map)| nearest_usable_model(map, cpuid));
        HostFacts {
            mem_total_kib: facts::mem_total_kib(),
            online_cpus: facts::online_cpus(),
            hardware_kvm: kvm_cpuid.is_some()
                && !crate::host::kvm_caps::is_pvm()
                && facts::cpu_has_vmx_or_svm(),
            nearest_usable_model,
            kvm_cpuid,
            ..HostFacts::default()
        }
    }
}

fn problem(element: &str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        element: element.to_owned(),
        message: message.into(),
    }
}

/// A domain name must be usable as a file name in the store.
pub fn check_name(name: &str) -> Result<(), DomainError> {
    crate::domain::name::check(name).map_err(|e| problem("<name>", e.to_string()))
}

/// Every problem with the document itself; empty means it can be defined.
pub fn document_problems(domain: &Domain) -> Vec<DomainError> {
    let mut problems = Vec::new();
    match domain.name() {
        None => problems.push(problem(
            "<name>",
            "missing; add <name>my-vm</name> to <domain>",
        )),
        Some(name) => problems.extend(check_name(&name).err()),
    }
    if let Some(uuid) = domain.uuid()
        && uuid::Uuid::parse_str(&uuid).is_err()
    {
        problems.push(problem(
            "<uuid>",
            format!(
                "'{uuid}' is not a valid UUID; write 32 hex digits such as \
                 c7a5fdbd-edaf-9455-926a-d65c16db1809, or remove <uuid> to have one generated"
            ),
        ));
    }
    check_memory(domain, &mut problems);
    super::interfaces::check_interfaces(domain, &mut problems);
    check_vcpus(domain, &mut problems);
    check_disk_targets(domain, &mut problems);
    // Loading the CPU map is the slowest step of validation; only documents with a <cpu> need it.
    if domain.cpu_xml().is_some()
        && let Some(map) = cpu_map()
    {
        problems.extend(cpu_problems(domain, map));
    }
    problems
}

fn check_memory(domain: &Domain, problems: &mut Vec<DomainError>) {
    match domain.memory() {
        Err(e) => problems.push(e),
        Ok(None) => problems.push(problem(
            "<memory>",
            "missing; add the guest's memory size, e.g. <memory unit='MiB'>1024</memory>",
        )),
        Ok(Some(m)) if m.amount == 0 => problems.push(problem(
            "<memory>",
            "is 0; give the guest some memory, e.g. <memory unit='MiB'>1024</memory>",
        )),
        Ok(Some(m)) if m.bytes().is_none() => problems.push(problem(
            "<memory>",
            format!(
                "{} {} is too large; use a smaller size",
                m.amount, m.unit.name
            ),
        )),
        Ok(Some(_)) => {}
    }
    if let Err(e) = domain.current_memory() {
        problems.push(e);
    }
}

fn check_vcpus(domain: &Domain, problems: &mut Vec<DomainError>) {
    let vcpu = match domain.vcpu() {
        Err(e) => return problems.push(e),
        Ok(v) => v,
    };
    let count = vcpu.as_ref().map_or(1, |v| v.count);
    if count == 0 {
        problems.push(problem(
            "<vcpu>",
            "is 0; a guest needs at least one virtual CPU, e.g. <vcpu>1</vcpu>",
        ));
    }
    if let Some(current) = vcpu.as_ref().and_then(|v| v.current)
        && (current == 0 || current > count)
    {
        problems.push(problem(
            "<vcpu current>",
            format!("current='{current}' must be between 1 and the maximum {count}; lower it"),
        ));
    }
    let Some(topology) = domain.document().at(&["cpu", "topology"]) else {
        return;
    };
    // None once the product no longer fits: a clear error, never a wrapped number.
    let mut product: Option<u64> = Some(1);
    for attr in ["sockets", "dies", "clusters", "cores", "threads"] {
        let Some(value) = topology.attr(attr) else {
            continue;
        };
        let element = format!("<topology {attr}>");
        match parse_num::<u64>(value, &element, "write a whole number") {
            Ok(0) => problems.push(problem(&element, "must be at least 1")),
            Ok(n) => product = product.and_then(|p| p.checked_mul(n)),
            Err(e) => problems.push(e),
        }
    }
    let Some(product) = product else {
        problems.push(problem(
            "<cpu><topology>",
            format!(
                "sockets × dies × clusters × cores × threads is larger than 2^64 but <vcpu> \
                 is {count}; make them equal (change <vcpu> or the topology)"
            ),
        ));
        return;
    };
    if product != u64::from(count) {
        problems.push(problem(
            "<cpu><topology>",
            format!(
                "sockets × dies × clusters × cores × threads = {product} but <vcpu> is {count}; \
                 make them equal (change <vcpu> or the topology)"
            ),
        ));
    }
}

fn check_disk_targets(domain: &Domain, problems: &mut Vec<DomainError>) {
    let mut seen = HashSet::new();
    for disk in domain.disks() {
        let Some(target) = disk.target_dev else {
            continue;
        };
        if !seen.insert(target.clone()) {
            problems.push(problem(
                "<disk><target>",
                format!(
                    "dev='{target}' is used by more than one disk; give each disk its own \
                     target (vda, vdb, …)"
                ),
            ));
        }
    }
}

/// Problems running this domain on a host with these facts: memory it cannot give, files it
/// cannot read. (The guest CPU is judged by start's own resolution:
/// `vireo::launch::cpu_verdict`.)
pub fn host_problems(domain: &Domain, host: &HostFacts) -> Vec<DomainError> {
    let mut problems = Vec::new();
    if let (Ok(Some(mem)), Some(total)) = (domain.memory(), host.mem_total_kib) {
        let kib = mem.to_kib().unwrap_or(u64::MAX);
        if kib > total {
            problems.push(problem(
                "<memory>",
                format!(
                    "{} {} is more than this host's {} MiB of RAM; lower <memory> to at most \
                     that",
                    mem.amount,
                    mem.unit.name,
                    total / 1024
                ),
            ));
        }
    }
    let os = domain.os();
    for (element, path) in [("<os><kernel>", os.kernel), ("<os><initrd>", os.initrd)] {
        if let Some(path) = path {
            problems.extend(check_readable(element, &path).err());
        }
    }
    for disk in domain.disks() {
        let is_local = matches!(disk.disk_type.as_deref(), None | Some("file" | "block"));
        if let (true, Some(source)) = (is_local, disk.source) {
            problems.extend(check_readable("<disk><source>", &source).err());
        }
    }
    // Whether this host can run the `<cpu>` is start's own answer,
    // `vireo::launch::cpu_verdict`, which `vireoctl validate --host` adds.
    problems
}

fn check_readable(element: &str, path: &str) -> Result<(), DomainError> {
    File::open(path).map(drop).map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::NotFound => "create it or point the element at an existing file",
            std::io::ErrorKind::PermissionDenied => "make it readable by your user (chmod/chown)",
            _ => "check the path",
        };
        problem(element, format!("'{path}' cannot be opened ({e}); {fix}"))
    })
}
