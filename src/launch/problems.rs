//! Every problem that keeps a definition from starting here, at once: start stops at the first
//! (the CPU, then after a fix the kernel, then a disk…), which makes the user fix and retry
//! once per problem. The GUI shows this list when a start fails and before saving.

use std::path::Path;

use super::prepare::{HostFacts, prepare};
use crate::domain::Domain;
use crate::domain::validate::document_problems;

/// The problems of `domain` on `host`, each one line naming the culprit and the fix: the
/// document's own, the kernel and initrd as the engine's loader sees them, the disks, the CPU;
/// start's own error when those found nothing. Empty when the VM can start.
pub fn definition_problems(domain: &Domain, host: &HostFacts) -> Vec<String> {
    let mut problems: Vec<String> = document_problems(domain)
        .iter()
        .map(ToString::to_string)
        .collect();
    problems.extend(boot_file_problem(domain));
    problems.extend(
        super::disks::disk_host_problems(domain)
            .0
            .iter()
            .map(ToString::to_string),
    );
    problems.extend(missing_images(domain));
    if !host.kvm_supported.entries().is_empty() {
        let facts = crate::cpu::guest::HostCpuFacts {
            kvm_supported: host.kvm_supported.clone(),
            cpuid_enforced: host.cpuid_enforced,
        };
        let verdict = super::cpu_verdict(&domain.to_xml(), &facts);
        problems.extend(super::refusal(&verdict).map(|r| format!("guest CPU: {r}")));
    }
    if problems.is_empty()
        && let Err(e) = prepare(domain, host)
    {
        problems.push(error_chain(&e));
    }
    problems.dedup();
    problems
}

/// The kernel and initrd of a direct-kernel-boot definition, loaded as start would
/// ([`super::boot_check::check_boot_files`]); `None` when they load or none is named.
pub fn boot_file_problem(domain: &Domain) -> Option<String> {
    let os = domain.os();
    let kernel = os.kernel.filter(|k| !k.is_empty())?;
    let memory = domain
        .memory()
        .ok()
        .flatten()
        .and_then(|m| m.bytes())
        .filter(|b| *b >= 16 << 20)?;
    let initrd = os.initrd.filter(|i| !i.is_empty());
    super::boot_check::check_boot_files(
        Path::new(&kernel),
        initrd.as_deref().map(Path::new),
        memory,
    )
    .err()
    .map(|e| e.to_string())
}

/// Disk images that cannot be opened (start would fail on the first of them).
fn missing_images(domain: &Domain) -> Vec<String> {
    domain
        .disks()
        .iter()
        .filter_map(|disk| {
            let source = disk
                .source
                .as_deref()
                .filter(|s| Path::new(s).is_absolute())?;
            let error = std::fs::metadata(source).err()?;
            Some(format!(
                "disk {}: {source} cannot be opened: {error}; fix <source> or remove the disk",
                disk.target_dev.as_deref().unwrap_or("?")
            ))
        })
        .collect()
}

/// An error and its sources on one line ("guest CPU: …: …").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_at_once() {
        let xml = "<domain type='kvm'><name>two-problems</name><memory unit='MiB'>64</memory>\
            <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type><kernel>/etc/passwd</kernel></os>\
            <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>\
            <source file='/nonexistent/disk.img'/><target dev='vda' bus='virtio'/></disk>\
            </devices></domain>";
        let domain = Domain::parse(xml).unwrap();
        let problems = definition_problems(&domain, &HostFacts::default());
        assert!(
            problems.iter().any(|p| p.contains("/etc/passwd")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("/nonexistent/disk.img")),
            "{problems:?}"
        );
    }
}
