//! The new-VM builder: (preferences, name, memory, vCPUs, boot source, host facts) → a complete
//! domain document whose `<cpu>` follows DESIGN.md §2.
//!
//! Host facts are passed in ([`HostFacts`]) so the result depends only on the arguments, which
//! keeps it testable and lets the GUI show what a choice would produce on this host.

use std::path::PathBuf;

use crate::domain::validate::{HostFacts, document_problems};
use crate::domain::xml::{escape_attr, escape_text};
use crate::domain::{Domain, DomainError};
use crate::prefs::{CpuModePref, Prefs};

/// What the new VM boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Direct kernel boot.
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        cmdline: Option<String>,
    },
    /// Boot from a disk image (attached as virtio `vda`).
    Disk(PathBuf),
}

/// The user's answers in the New VM dialog or on `vireoctl new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVm {
    pub name: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub boot: Boot,
}

/// Why a new VM could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NewVmError {
    #[error("the new VM would be invalid:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<DomainError>),
}

/// The concrete CPU mode a preference stands for on a given host.
///
/// `app-default` resolves to `host-passthrough` when KVM runs on hardware virtualization
/// (VMX/SVM): the guest then gets exactly what KVM supports, which is both the fastest and the
/// safest choice for a desktop VM that never migrates. Without hardware KVM (e.g. paravirtualized
/// PVM, where guest CPUID is not intercepted) passthrough would promise features the guest cannot
/// rely on, so it resolves to `host-model`, which is expanded against KVM's supported CPUID at
/// each start.
///
/// "Nearest CPU model" resolves to `host-model` when no named 64-bit model is usable on this
/// host's KVM (a model without long mode would leave a 64-bit kernel unable to boot);
/// [`cpu_fallback_warning`] says why, where the choice is made.
pub fn resolve_cpu_mode(pref: CpuModePref, host: &HostFacts) -> CpuModePref {
    match pref {
        CpuModePref::AppDefault if host.hardware_kvm => CpuModePref::HostPassthrough,
        CpuModePref::AppDefault => CpuModePref::HostModel,
        CpuModePref::HostModelOnly if host.nearest_usable_model.is_none() => CpuModePref::HostModel,
        other => other,
    }
}

/// The warning for a preference that [`resolve_cpu_mode`] could not honour on `host`: today
/// "Nearest CPU model" when no 64-bit model is usable, naming the closest model and what KVM
/// lacks for it. `None` when the preference is honoured as chosen.
pub fn cpu_fallback_warning(pref: CpuModePref, host: &HostFacts) -> Option<String> {
    if pref != CpuModePref::HostModelOnly || host.nearest_usable_model.is_some() {
        return None;
    }
    let reason = match &host.kvm_cpuid {
        None => "this host's KVM CPUID could not be read".to_string(),
        Some(kvm) => crate::domain::cpu::cpu_map()
            .and_then(|map| crate::domain::cpu::no_64bit_model_reason(map, kvm))
            .unwrap_or_else(|| "the CPU map has no 64-bit model this host's KVM can run".into()),
    };
    Some(format!(
        "no named 64-bit CPU model (one with long mode, 'lm') is usable on this host's KVM: \
         {reason}; so instead of 'Nearest CPU model' the new VM gets a copy of the host CPU \
         (host-model), which a 64-bit guest can boot with"
    ))
}

fn cpu_element(mode: CpuModePref, host: &HostFacts) -> Option<String> {
    match resolve_cpu_mode(mode, host) {
        CpuModePref::HvDefault => None,
        CpuModePref::HostModelOnly => {
            // resolve_cpu_mode gives host-model when there is no nearest model.
            let model = host.nearest_usable_model.as_deref().unwrap_or_default();
            Some(format!(
                "  <cpu mode='custom' match='exact' check='partial'>\n    <model \
                 fallback='forbid'>{}</model>\n  </cpu>\n",
                escape_text(model)
            ))
        }
        CpuModePref::HostModel => Some("  <cpu mode='host-model' check='partial'/>\n".into()),
        CpuModePref::HostPassthrough | CpuModePref::AppDefault => {
            Some("  <cpu mode='host-passthrough' check='none'/>\n".into())
        }
    }
}

/// libvirt's disk driver type for an image, judged by its extension.
fn image_format(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("qcow2") => "qcow2",
        _ => "raw",
    }
}

impl NewVm {
    /// The complete domain document for this VM: serial console, `on_poweroff=destroy`,
    /// `on_reboot=restart`, `on_crash=destroy`, `hvm` on `x86_64`, a fresh UUID, and the CPU
    /// the preference resolves to on `host`.
    pub fn build(&self, prefs: &Prefs, host: &HostFacts) -> Result<Domain, NewVmError> {
        let text = |s: &str| escape_text(s);
        let path = |p: &PathBuf| escape_text(&p.to_string_lossy());
        let mut os_boot = String::new();
        let mut disks = String::new();
        match &self.boot {
            Boot::Kernel {
                kernel,
                initrd,
                cmdline,
            } => {
                os_boot += &format!("    <kernel>{}</kernel>\n", path(kernel));
                if let Some(initrd) = initrd {
                    os_boot += &format!("    <initrd>{}</initrd>\n", path(initrd));
                }
                if let Some(cmdline) = cmdline {
                    os_boot += &format!("    <cmdline>{}</cmdline>\n", text(cmdline));
                }
            }
            Boot::Disk(image) => {
                os_boot += "    <boot dev='hd'/>\n";
                disks = format!(
                    "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}'/>\n      \
                     <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n",
                    image_format(image),
                    escape_attr(&image.to_string_lossy())
                );
            }
        }
        let cpu = cpu_element(prefs.new_vm_cpu_mode, host).unwrap_or_default();
        let kib = self.memory_mib.saturating_mul(1024);
        let xml = format!(
            "<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>{kib}</memory>
  <currentMemory unit='KiB'>{kib}</currentMemory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
{os_boot}  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
{cpu}  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{disks}    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
",
            name = text(&self.name),
            uuid = uuid::Uuid::new_v4().hyphenated(),
            vcpus = self.vcpus,
        );
        let domain = Domain::parse(&xml).map_err(|e| NewVmError::Invalid(vec![e]))?;
        let problems = document_problems(&domain);
        if !problems.is_empty() {
            return Err(NewVmError::Invalid(problems));
        }
        Ok(domain)
    }
}
