//! `vireoctl host-validate`: can this host run Vireo's VMs, and how well? Like
//! virt-host-validate, each check ends PASS, WARN or FAIL, and every non-PASS says how to fix it.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;

use crate::host::kvm_caps;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, with a limitation worth knowing.
    Warn,
    /// VMs cannot run until this is fixed.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (for WARN and FAIL).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn not_ok(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<34} : {} ({})", self.name, self.status, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n{:<34}   fix: {fix}", "")?;
        }
        Ok(())
    }
}

/// How this host virtualizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Virtualization {
    /// Intel VT-x or AMD-V.
    Hardware,
    /// PVM: KVM without hardware virtualization (nested in a cloud VM).
    Paravirtual,
    /// Neither.
    None,
}

/// The host's virtualization kind, from /proc/cpuinfo and the loaded KVM module.
pub fn virtualization() -> Virtualization {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hardware = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if hardware {
        Virtualization::Hardware
    } else if kvm_caps::is_pvm() {
        Virtualization::Paravirtual
    } else {
        Virtualization::None
    }
}

/// Runs every check. Checks that need /dev/kvm are skipped (with a FAIL saying why) when it is
/// not usable. `cpuid_probe` answers whether KVM enforces guest CPUID; it needs a guest to run,
/// which is the engine's business (`crate::engine::cpuid_probe`), so the caller passes it in.
pub fn run_checks<E: std::fmt::Display>(
    cpuid_probe: impl FnOnce() -> Result<bool, E>,
) -> Vec<Check> {
    let mut checks = vec![check_virtualization()];
    let kvm_ok = check_dev_kvm(&mut checks);
    if kvm_ok {
        checks.extend(check_kvm_api());
        checks.push(check_cpuid_enforcement(cpuid_probe));
    }
    checks.push(check_iommu());
    checks.push(check_cgroups());
    checks
}

fn check_virtualization() -> Check {
    const NAME: &str = "hardware virtualization";
    match virtualization() {
        Virtualization::Hardware => Check::pass(NAME, "VT-x/AMD-V present"),
        Virtualization::Paravirtual => Check::not_ok(
            NAME,
            Status::Warn,
            "none; KVM is paravirtual (PVM): 64-bit guests run, but stock distribution kernels can hit emulation errors",
            "for full compatibility run on bare metal or a VM with nested virtualization enabled",
        ),
        Virtualization::None => Check::not_ok(
            NAME,
            Status::Fail,
            "the CPU reports neither vmx nor svm",
            "enable VT-x/AMD-V (SVM) in the firmware setup, or enable nested virtualization for this VM",
        ),
    }
}

fn check_dev_kvm(checks: &mut Vec<Check>) -> bool {
    if !Path::new("/dev/kvm").exists() {
        checks.push(Check::not_ok(
            "/dev/kvm exists",
            Status::Fail,
            "no /dev/kvm",
            "load the KVM module: sudo modprobe kvm_intel (or kvm_amd)",
        ));
        return false;
    }
    checks.push(Check::pass("/dev/kvm exists", "present"));
    match OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => {
            checks.push(Check::pass("/dev/kvm accessible", "read/write"));
            true
        }
        Err(e) => {
            checks.push(Check::not_ok(
                "/dev/kvm accessible",
                Status::Fail,
                e.to_string(),
                "add your user to the kvm group: sudo usermod -aG kvm $USER, then log in again",
            ));
            false
        }
    }
}

fn check_kvm_api() -> Vec<Check> {
    match kvm_caps::read() {
        Ok(caps) => {
            let api = if caps.api_version == 12 {
                Check::pass("KVM API version", "12")
            } else {
                Check::not_ok(
                    "KVM API version",
                    Status::Fail,
                    format!("{} (Vireo needs 12)", caps.api_version),
                    "use a Linux kernel from the last decade",
                )
            };
            let leaves = caps.supported_cpuid.entries().len();
            vec![
                api,
                Check::pass(
                    "KVM vCPU limit",
                    format!(
                        "{} per VM (recommended {})",
                        caps.max_vcpus, caps.recommended_vcpus
                    ),
                ),
                Check::pass("KVM supported CPUID", format!("{leaves} leaves")),
            ]
        }
        Err(e) => vec![Check::not_ok(
            "KVM API version",
            Status::Fail,
            e.to_string(),
            "check dmesg for KVM errors",
        )],
    }
}

fn check_cpuid_enforcement<E: std::fmt::Display>(
    cpuid_probe: impl FnOnce() -> Result<bool, E>,
) -> Check {
    const NAME: &str = "guest CPUID enforced by KVM";
    match cpuid_probe() {
        Ok(true) => Check::pass(
            NAME,
            "a test guest saw exactly the CPUID table it was given",
        ),
        Ok(false) => Check::not_ok(
            NAME,
            Status::Warn,
            "no: a test guest saw the host's CPUID, not its table; guests see the host CPU whatever model is configured, and VMs with <cpu check='full'> refuse to start",
            "run on hardware KVM (VT-x/AMD-V) for CPU models to take effect",
        ),
        Err(e) => Check::not_ok(
            NAME,
            Status::Warn,
            format!("could not run the test guest: {e}"),
            "check that KVM can run guests (dmesg)",
        ),
    }
}

fn check_iommu() -> Check {
    const NAME: &str = "IOMMU (for device passthrough)";
    let groups = std::fs::read_dir("/sys/kernel/iommu_groups")
        .map(|d| d.count())
        .unwrap_or(0);
    if groups > 0 {
        Check::pass(NAME, format!("{groups} IOMMU groups"))
    } else {
        Check::not_ok(
            NAME,
            Status::Warn,
            "no IOMMU groups; PCI passthrough is unavailable (not needed otherwise)",
            "enable VT-d/AMD-Vi in the firmware and add intel_iommu=on (Intel) to the kernel command line",
        )
    }
}

fn check_cgroups() -> Check {
    const NAME: &str = "cgroup v2 controllers";
    let Ok(controllers) = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") else {
        return Check::not_ok(
            NAME,
            Status::Warn,
            "cgroup v2 is not mounted at /sys/fs/cgroup; per-VM resource limits are unavailable",
            "boot with systemd.unified_cgroup_hierarchy=1",
        );
    };
    let present: Vec<&str> = controllers.split_whitespace().collect();
    let missing: Vec<&str> = ["cpu", "memory", "cpuset", "io", "pids"]
        .into_iter()
        .filter(|c| !present.contains(c))
        .collect();
    if missing.is_empty() {
        Check::pass(NAME, present.join(" "))
    } else {
        Check::not_ok(
            NAME,
            Status::Warn,
            format!("missing {}", missing.join(", ")),
            "enable them in the parent cgroup's cgroup.subtree_control (systemd: Delegate=yes)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_check_prints_its_fix_on_the_next_line() {
        let c = Check::not_ok("x", Status::Fail, "broken", "mend it");
        let text = c.to_string();
        assert!(text.contains("FAIL (broken)"));
        assert!(text.lines().nth(1).unwrap().contains("fix: mend it"));
    }
}
