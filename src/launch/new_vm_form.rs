//! The create-VM wizard's answers and their checks, without GTK: what each step accepts, why it
//! does not ([`FormProblem`], which the GUI words in the user's language), and the VM the
//! answers make.

use std::path::{Path, PathBuf};

use crate::domain::new_vm::{Boot, NewVm};
use crate::domain::store::DomainStore;
use crate::domain::validate::{HostFacts, check_name};
use crate::prefs::{CpuModePref, Prefs};

/// How the new VM boots (step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootKind {
    #[default]
    Kernel,
    DiskImage,
}

/// What storage the new VM gets (step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageKind {
    #[default]
    None,
    NewImage,
    ExistingImage,
}

/// Everything the wizard asks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewVmForm {
    pub boot: BootKind,
    pub kernel: String,
    pub initrd: String,
    pub cmdline: String,
    pub boot_image: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub storage: StorageKind,
    pub new_image_gib: u64,
    pub existing_image: String,
    pub name: String,
    pub customize: bool,
}

/// What this host can give, for the hints and limits of step 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub memory_mib: u64,
    pub cpus: u32,
}

impl HostLimits {
    /// The limits of the host `facts` describe.
    pub fn of(facts: &HostFacts) -> HostLimits {
        let memory_mib = facts.mem_total_kib.map_or(1024, |kib| kib / 1024);
        let cpus = u32::try_from(facts.online_cpus).unwrap_or(u32::MAX).max(1);
        HostLimits { memory_mib, cpus }
    }
}

/// The number of steps.
pub const STEPS: usize = 4;

/// A file the wizard asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    Kernel,
    Initrd,
    DiskImage,
}

/// Why a wizard step cannot be left yet. `Display` gives the English text; the GUI has its own
/// translated wording for each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormProblem {
    #[error("choose the {0:?} file")]
    MissingFile(FileRole),
    #[error("{0} is not a file")]
    NotAFile(String),
    #[error("cannot read {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error("a virtual machine needs at least 16 MiB of memory")]
    MemoryBelowMinimum,
    #[error("this host has only {host_mib} MiB of memory")]
    MemoryOverHost { host_mib: u64 },
    #[error("choose between 1 and {max} vCPUs")]
    VcpusOutOfRange { max: u32 },
    #[error("a new disk image needs at least 1 GiB")]
    DiskImageTooSmall,
    #[error("give the virtual machine a name")]
    NameEmpty,
    #[error("a name cannot contain '/', start with '.' or begin or end with spaces")]
    NameInvalid,
    #[error("a virtual machine named '{0}' already exists")]
    NameTaken(String),
}

fn readable_file(path: &str, role: FileRole) -> Result<(), FormProblem> {
    if path.trim().is_empty() {
        return Err(FormProblem::MissingFile(role));
    }
    match std::fs::File::open(path) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => Ok(()),
        Ok(_) => Err(FormProblem::NotAFile(path.to_string())),
        Err(err) => Err(FormProblem::Unreadable {
            path: path.to_string(),
            error: err.to_string(),
        }),
    }
}

impl NewVmForm {
    /// Sane defaults for this host: 1 GiB (less on small hosts) and 2 vCPUs where possible.
    pub fn with_defaults(host: HostLimits) -> NewVmForm {
        NewVmForm {
            memory_mib: 1024.min(host.memory_mib / 2).max(64),
            vcpus: 2.min(host.cpus).max(1),
            new_image_gib: 10,
            ..NewVmForm::default()
        }
    }

    /// Why step `step` (0-based) cannot be left yet, or `None` when it is complete.
    pub fn problem(
        &self,
        step: usize,
        host: HostLimits,
        store: Option<&DomainStore>,
    ) -> Option<FormProblem> {
        let result = match step {
            0 => self.boot_problem(),
            1 => self.size_problem(host),
            2 => self.storage_problem(),
            _ => self.name_problem(store),
        };
        result.err()
    }

    fn boot_problem(&self) -> Result<(), FormProblem> {
        match self.boot {
            BootKind::Kernel => {
                readable_file(&self.kernel, FileRole::Kernel)?;
                if !self.initrd.trim().is_empty() {
                    readable_file(&self.initrd, FileRole::Initrd)?;
                }
                Ok(())
            }
            BootKind::DiskImage => readable_file(&self.boot_image, FileRole::DiskImage),
        }
    }

    fn size_problem(&self, host: HostLimits) -> Result<(), FormProblem> {
        if self.memory_mib < 16 {
            return Err(FormProblem::MemoryBelowMinimum);
        }
        if self.memory_mib > host.memory_mib {
            return Err(FormProblem::MemoryOverHost {
                host_mib: host.memory_mib,
            });
        }
        if self.vcpus == 0 || self.vcpus > host.cpus {
            return Err(FormProblem::VcpusOutOfRange { max: host.cpus });
        }
        Ok(())
    }

    fn storage_problem(&self) -> Result<(), FormProblem> {
        match self.storage {
            StorageKind::None => Ok(()),
            StorageKind::NewImage if self.new_image_gib == 0 => Err(FormProblem::DiskImageTooSmall),
            StorageKind::NewImage => Ok(()),
            StorageKind::ExistingImage => readable_file(&self.existing_image, FileRole::DiskImage),
        }
    }

    fn name_problem(&self, store: Option<&DomainStore>) -> Result<(), FormProblem> {
        if self.name.is_empty() {
            return Err(FormProblem::NameEmpty);
        }
        if check_name(&self.name).is_err() || self.name.chars().any(char::is_control) {
            return Err(FormProblem::NameInvalid);
        }
        if store.is_some_and(|s| s.path_of(&self.name).exists()) {
            return Err(FormProblem::NameTaken(self.name.clone()));
        }
        Ok(())
    }

    /// A name for the new VM, so that none has to be typed: the boot file's name without a
    /// known extension (`debian-12.qcow2` gives `debian-12`, `vmlinuz-6.1` gives `linux-6.1`),
    /// or `vm`, made unique in `store` with `-2`, `-3`, …
    pub fn suggest_name(&self, store: Option<&DomainStore>) -> String {
        let source = match self.boot {
            BootKind::Kernel => &self.kernel,
            BootKind::DiskImage => &self.boot_image,
        };
        let file = Path::new(source.trim())
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut base = file.as_str();
        for extension in [".img", ".raw", ".qcow2", ".iso", ".elf", ".bin", ".efi"] {
            base = base.strip_suffix(extension).unwrap_or(base);
        }
        let base: String = match base.strip_prefix("vmlinuz") {
            Some(version) => format!("linux{version}"),
            None => base.to_string(),
        }
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
        let base = base.trim_start_matches(['.', '-']).to_string();
        let base = if base.is_empty() {
            "vm".to_string()
        } else {
            base
        };
        let taken = |name: &str| store.is_some_and(|s| s.path_of(name).exists());
        std::iter::once(base.clone())
            .chain((2..).map(|n| format!("{base}-{n}")))
            .find(|name| !taken(name))
            .expect("an unbounded sequence of names has a free one")
    }

    /// Where a new disk image for this VM goes: beside the store, in `images/`.
    pub fn new_image_path(&self, store: &DomainStore) -> PathBuf {
        let base = store.dir().parent().unwrap_or(store.dir());
        base.join("images").join(format!("{}.img", self.name))
    }

    /// The VM these answers describe (the storage disk is attached by [`Self::build`]).
    pub fn to_new_vm(&self) -> NewVm {
        let boot = match self.boot {
            BootKind::Kernel => Boot::Kernel {
                kernel: PathBuf::from(self.kernel.trim()),
                initrd: Some(self.initrd.trim())
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
                cmdline: Some(self.cmdline.trim().to_string()).filter(|s| !s.is_empty()),
            },
            BootKind::DiskImage => Boot::Disk(PathBuf::from(self.boot_image.trim())),
        };
        NewVm {
            name: self.name.clone(),
            memory_mib: self.memory_mib,
            vcpus: self.vcpus,
            boot,
        }
    }

    /// The complete domain: the new-VM builder's document (CPU per `prefs` on `host`) plus the
    /// storage disk `disk`, as the next free virtio disk.
    pub fn build(
        &self,
        prefs: &Prefs,
        host: &HostFacts,
        disk: Option<&Path>,
    ) -> Result<crate::domain::Domain, crate::domain::new_vm::NewVmError> {
        let mut domain = self.to_new_vm().build(prefs, host)?;
        if let Some(disk) = disk {
            let taken = domain.disks().len();
            let target = format!("vd{}", (b'a' + taken as u8) as char);
            let format = if disk.extension().is_some_and(|e| e == "qcow2") {
                "qcow2"
            } else {
                "raw"
            };
            domain.add_device(crate::domain::devices::Disk::file_element(
                &disk.to_string_lossy(),
                format,
                &target,
                "virtio",
            ));
        }
        Ok(domain)
    }
}

/// Which CPU a new VM gets under the preferences on this host, for the one line the wizard's
/// summary and Preferences show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSummary {
    /// The hypervisor's default model (a basic 64-bit CPU).
    HypervisorDefault,
    /// The nearest named model this host's KVM can run, or `None` when none is usable.
    NearestModel(Option<String>),
    /// host-model: the nearest model plus every feature KVM offers.
    HostModel,
    /// host-passthrough.
    HostPassthrough,
}

/// The CPU a new VM gets under `prefs` on `host`, and whether that came from the application
/// default (rather than the user's explicit choice).
pub fn cpu_summary(prefs: &Prefs, host: &HostFacts) -> (CpuSummary, bool) {
    let resolved = crate::domain::new_vm::resolve_cpu_mode(prefs.new_vm_cpu_mode, host);
    let summary = match resolved {
        CpuModePref::HvDefault => CpuSummary::HypervisorDefault,
        CpuModePref::HostModelOnly => CpuSummary::NearestModel(host.nearest_usable_model.clone()),
        CpuModePref::HostModel => CpuSummary::HostModel,
        CpuModePref::HostPassthrough | CpuModePref::AppDefault => CpuSummary::HostPassthrough,
    };
    (summary, prefs.new_vm_cpu_mode == CpuModePref::AppDefault)
}

/// Creates a sparse raw disk image of `gib` GiB at `path`, calling `progress` with the share
/// done. Refuses to overwrite an existing file. Sparse files are what libvirt and QEMU create
/// for raw images too: the space is taken as the guest writes.
pub fn create_raw_image(path: &Path, gib: u64, progress: impl Fn(f64)) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let total = gib << 30;
    let steps = 20u64;
    for step in 1..=steps {
        file.set_len(total * step / steps)?;
        progress(step as f64 / steps as f64);
    }
    file.flush()?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostLimits = HostLimits {
        memory_mib: 8192,
        cpus: 4,
    };

    #[test]
    fn defaults_fit_the_host() {
        let small = NewVmForm::with_defaults(HostLimits {
            memory_mib: 512,
            cpus: 1,
        });
        assert_eq!((small.memory_mib, small.vcpus), (256, 1));
        let big = NewVmForm::with_defaults(HOST);
        assert_eq!((big.memory_mib, big.vcpus), (1024, 2));
        assert_eq!(big.problem(1, HOST, None), None);
    }

    #[test]
    fn suggested_names_come_from_the_boot_file_and_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = DomainStore::open_at(dir.path().join("domains")).unwrap();
        let mut form = NewVmForm {
            kernel: "/boot/vmlinuz-6.1.0-13-amd64".into(),
            ..NewVmForm::default()
        };
        assert_eq!(form.suggest_name(Some(&store)), "linux-6.1.0-13-amd64");
        form.kernel = "/srv/probe.elf".into();
        assert_eq!(form.suggest_name(Some(&store)), "probe");
        form.boot = BootKind::DiskImage;
        form.boot_image = "/images/My Debian 12.qcow2".into();
        assert_eq!(form.suggest_name(None), "My-Debian-12");
        form.boot_image = String::new();
        assert_eq!(form.suggest_name(None), "vm");
        let xml = |name: &str| {
            format!(
                "<domain type='kvm'><name>{name}</name><memory unit='KiB'>65536</memory><os><type arch='x86_64'>hvm</type></os></domain>"
            )
        };
        store.define(&xml("vm")).unwrap();
        store.define(&xml("vm-2")).unwrap();
        assert_eq!(form.suggest_name(Some(&store)), "vm-3");
        form.name = form.suggest_name(Some(&store));
        assert!(
            form.problem(3, HOST, Some(&store)).is_none(),
            "the suggestion is valid"
        );
    }

    #[test]
    fn each_step_names_what_is_missing() {
        let mut form = NewVmForm::with_defaults(HOST);
        assert_eq!(
            form.problem(0, HOST, None),
            Some(FormProblem::MissingFile(FileRole::Kernel))
        );
        form.kernel = "/definitely/not/here".into();
        assert!(
            form.problem(0, HOST, None)
                .unwrap()
                .to_string()
                .contains("/definitely/not/here")
        );
        form.kernel = "/proc/self/stat".into();
        assert_eq!(form.problem(0, HOST, None), None);
        form.memory_mib = 9000;
        assert_eq!(
            form.problem(1, HOST, None),
            Some(FormProblem::MemoryOverHost { host_mib: 8192 })
        );
        form.memory_mib = 512;
        form.vcpus = 5;
        assert_eq!(
            form.problem(1, HOST, None),
            Some(FormProblem::VcpusOutOfRange { max: 4 })
        );
        form.storage = StorageKind::ExistingImage;
        assert!(form.problem(2, HOST, None).is_some());
        form.storage = StorageKind::NewImage;
        assert_eq!(form.problem(2, HOST, None), None);
        assert!(form.problem(3, HOST, None).is_some(), "empty name");
        form.name = "a/b".into();
        assert!(form.problem(3, HOST, None).is_some());
        form.name = "good-name".into();
        assert_eq!(form.problem(3, HOST, None), None);
    }

    #[test]
    fn raw_images_are_sparse_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images/disk.img");
        let seen = std::cell::RefCell::new(Vec::new());
        create_raw_image(&path, 2, |p| seen.borrow_mut().push(p)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 << 30);
        assert_eq!(seen.borrow().last().copied(), Some(1.0));
        assert!(create_raw_image(&path, 1, |_| {}).is_err());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 << 30);
    }
}
