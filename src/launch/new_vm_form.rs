//! The create-VM wizard's answers and their checks, without GTK: what each step accepts, why it
//! does not ([`FormProblem`], which the GUI words in the user's language), and the VM the
//! answers make.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::Domain;
use crate::domain::devices::{Disk, NewDisk};
use crate::domain::new_vm::{Boot, NewVm};
use crate::domain::store::DomainStore;
use crate::domain::validate::{HostFacts, check_name};
use crate::engine::config::DiskFormat;
use crate::prefs::{CpuModePref, Prefs};

mod display;
mod network;
pub use display::add_display;
pub use network::NetworkChoice;

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

/// What inspecting an image file found: its format, or why it cannot be used (worded by the
/// block layer, naming the file and the fix).
pub type ImageCheck = Result<DiskFormat, String>;

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
    /// The format of a new image (qcow2 unless the user picks raw).
    pub new_image_format: DiskFormat,
    pub existing_image: String,
    pub name: String,
    pub customize: bool,
    /// The network card it gets (the last step's "Network selection").
    pub network: NetworkChoice,
    /// The VM is for another host (a libvirt connection): its kernel, initrd and images are
    /// paths on that host, which this computer cannot open, so they are only required, not
    /// read; that host says at start what it cannot use. Its names are that host's too.
    pub files_elsewhere: bool,
    /// Image files inspected so far (path as typed, trimmed → what was found). The wizard fills
    /// it from a worker; a step whose image has no entry yet waits ([`FormProblem::Checking`]).
    pub images: BTreeMap<String, ImageCheck>,
    /// Kernel and initrd loads tried so far ([`crate::launch::boot_check`]), by what was
    /// loaded: the wizard fills it from a worker, as it does [`Self::images`].
    pub boot_checks: BTreeMap<BootFiles, Result<(), String>>,
}

/// A kernel, an initrd (empty for none) and the guest memory in MiB they were loaded into.
pub type BootFiles = (String, String, u64);

/// One disk the new VM gets, as the summary shows it and the definition records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDisk {
    pub path: PathBuf,
    pub format: DiskFormat,
    /// An `.iso`: `device='cdrom'`, read-only (the guest sees a read-only virtio disk).
    pub cdrom: bool,
    /// `vda`, `vdb`, …
    pub target: String,
    /// A new image, made by Create.
    pub new: bool,
}

/// Where Vireo makes disk images: `images/` beside the store's `domains/` (so
/// `$XDG_DATA_HOME/vireo/images`).
pub fn images_dir(store: &DomainStore) -> PathBuf {
    store.dir().parent().unwrap_or(store.dir()).join("images")
}

impl PlannedDisk {
    /// The `<disk>` it becomes: virtio, a CD-ROM read-only.
    pub fn element(&self) -> NewDisk {
        NewDisk {
            path: self.path.to_string_lossy().into_owned(),
            driver_type: self.format.as_str().to_owned(),
            target_dev: self.target.clone(),
            bus: "virtio".to_owned(),
            device: if self.cdrom { "cdrom" } else { "disk" }.to_owned(),
            readonly: self.cdrom,
            cache: None,
            serial: None,
        }
    }
}

/// The first `vdX` target no disk of `domain` uses (in Linux order, whatever the prefix).
pub fn free_target(domain: &Domain) -> String {
    let taken: Vec<u64> = domain
        .disks()
        .iter()
        .filter_map(|d| d.target_dev.as_deref())
        .filter_map(crate::launch::disks::target_index)
        .collect();
    (0..)
        .find(|i| !taken.contains(i))
        .map(crate::launch::disks::guest_name)
        .expect("an unbounded sequence of targets has a free one")
}

/// Whether `path` names an ISO image (install media), which becomes a read-only CD-ROM.
pub fn is_iso(path: &str) -> bool {
    Path::new(path.trim())
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("iso"))
}

/// The format a file's name promises, where it promises one (`.qcow2`; `.raw` and `.iso` are
/// raw); `.img` and others say nothing.
pub fn named_format(path: &str) -> Option<DiskFormat> {
    let extension = Path::new(path.trim())
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    match extension.as_str() {
        "qcow2" => Some(DiskFormat::Qcow2),
        "raw" | "iso" => Some(DiskFormat::Raw),
        _ => None,
    }
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
    #[error("checking {0}…")]
    Checking(String),
    #[error("{0}")]
    ImageUnusable(String),
    /// The kernel or initrd does not load (not a kernel, does not fit in memory): the
    /// engine's words, naming the file and the fix.
    #[error("{0}")]
    BootFilesUnusable(String),
    /// The existing image chosen on step 3 is the image the VM boots from.
    #[error("{0} is already the boot image; choose another image or no disk")]
    SameImage(String),
    #[error("{path} is a {found:?} image, but its name says {named:?}")]
    FormatMismatch {
        path: String,
        named: DiskFormat,
        found: DiskFormat,
    },
    #[error("give the virtual machine a name")]
    NameEmpty,
    #[error("a name cannot contain '/', start with '.' or begin or end with spaces")]
    NameInvalid,
    #[error("a virtual machine named '{0}' already exists")]
    NameTaken(String),
}

fn readable_file(path: &str, role: FileRole) -> Result<(), FormProblem> {
    required(path, role)?;
    match std::fs::File::open(path) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => Ok(()),
        Ok(_) => Err(FormProblem::NotAFile(path.to_string())),
        Err(err) => Err(FormProblem::Unreadable {
            path: path.to_string(),
            error: err.to_string(),
        }),
    }
}

/// A path must be given (whether it can be read is another question).
fn required(path: &str, role: FileRole) -> Result<(), FormProblem> {
    if path.trim().is_empty() {
        Err(FormProblem::MissingFile(role))
    } else {
        Ok(())
    }
}

/// Whether two paths name the same file (the same inode, whatever the spelling).
fn same_file(a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a.trim()), std::fs::metadata(b.trim())) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl NewVmForm {
    /// Sane defaults for this host: 1 GiB (less on small hosts) and 2 vCPUs where possible.
    pub fn with_defaults(host: HostLimits) -> NewVmForm {
        NewVmForm {
            memory_mib: 1024.min(host.memory_mib / 2).max(64),
            vcpus: 2.min(host.cpus).max(1),
            new_image_gib: 10,
            new_image_format: DiskFormat::Qcow2,
            network: NetworkChoice::User,
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
            0 => self.boot_problem(host.memory_mib),
            1 => self.size_problem(host),
            2 => self.storage_problem(),
            _ => self.name_problem(store),
        };
        result.err()
    }

    fn boot_problem(&self, host_memory: u64) -> Result<(), FormProblem> {
        if self.files_elsewhere {
            return match self.boot {
                BootKind::Kernel => required(&self.kernel, FileRole::Kernel),
                BootKind::DiskImage => required(&self.boot_image, FileRole::DiskImage),
            };
        }
        match self.boot {
            BootKind::Kernel => {
                readable_file(&self.kernel, FileRole::Kernel)?;
                if !self.initrd.trim().is_empty() {
                    readable_file(&self.initrd, FileRole::Initrd)?;
                }
                self.boot_check(self.memory_mib.max(host_memory))
            }
            BootKind::DiskImage => self.image_problem(&self.boot_image),
        }
    }

    /// What loading the kernel and initrd into `memory_mib` of guest memory gave.
    fn boot_check(&self, memory_mib: u64) -> Result<(), FormProblem> {
        match self.boot_checks.get(&self.boot_files(memory_mib)) {
            None => Err(FormProblem::Checking(self.kernel.trim().to_string())),
            Some(Err(error)) => Err(FormProblem::BootFilesUnusable(error.clone())),
            Some(Ok(())) => Ok(()),
        }
    }

    fn boot_files(&self, memory_mib: u64) -> BootFiles {
        (
            self.kernel.trim().to_string(),
            self.initrd.trim().to_string(),
            memory_mib,
        )
    }

    /// The kernel loads the wizard still has to try: on step 1 into as much memory as the host
    /// allows (is it a kernel at all), from step 2 into the memory chosen (does the initrd fit).
    pub fn boot_files_to_check(&self, host: HostLimits) -> Vec<BootFiles> {
        let readable = readable_file(&self.kernel, FileRole::Kernel).is_ok()
            && (self.initrd.trim().is_empty()
                || readable_file(&self.initrd, FileRole::Initrd).is_ok());
        if self.boot != BootKind::Kernel || !readable {
            return Vec::new();
        }
        let mut keys = vec![self.boot_files(self.memory_mib.max(host.memory_mib))];
        if self.memory_mib >= 16 && self.memory_mib <= host.memory_mib {
            keys.push(self.boot_files(self.memory_mib));
        }
        keys.dedup();
        keys.retain(|k| !self.boot_checks.contains_key(k));
        keys
    }

    /// Why the image at `path` cannot be used: unreadable, not inspected yet, unusable, or its
    /// content is not the format its name promises (a raw file named `.qcow2` is almost always
    /// a mistake, and the guest would see the qcow2 structure as data).
    fn image_problem(&self, path: &str) -> Result<(), FormProblem> {
        if self.files_elsewhere {
            return required(path, FileRole::DiskImage);
        }
        readable_file(path, FileRole::DiskImage)?;
        let key = path.trim();
        match self.images.get(key) {
            None => Err(FormProblem::Checking(key.to_string())),
            Some(Err(error)) => Err(FormProblem::ImageUnusable(error.clone())),
            Some(Ok(found)) => match named_format(key) {
                Some(named) if named != *found => Err(FormProblem::FormatMismatch {
                    path: key.to_string(),
                    named,
                    found: *found,
                }),
                _ => Ok(()),
            },
        }
    }

    /// The image paths the wizard still has to inspect (readable, not yet in [`Self::images`]).
    pub fn images_to_check(&self) -> Vec<String> {
        let mut paths = Vec::new();
        if self.boot == BootKind::DiskImage {
            paths.push(self.boot_image.trim());
        }
        if self.storage == StorageKind::ExistingImage {
            paths.push(self.existing_image.trim());
        }
        paths
            .into_iter()
            .filter(|p| !self.images.contains_key(*p))
            .filter(|p| readable_file(p, FileRole::DiskImage).is_ok())
            .map(str::to_string)
            .collect()
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
        if self.boot == BootKind::Kernel && !self.kernel.trim().is_empty() && !self.files_elsewhere
        {
            self.boot_check(self.memory_mib)?;
        }
        Ok(())
    }

    fn storage_problem(&self) -> Result<(), FormProblem> {
        match self.storage {
            StorageKind::None => Ok(()),
            StorageKind::NewImage if self.new_image_gib == 0 => Err(FormProblem::DiskImageTooSmall),
            StorageKind::NewImage => Ok(()),
            StorageKind::ExistingImage => {
                self.image_problem(&self.existing_image)?;
                if self.boot == BootKind::DiskImage
                    && same_file(&self.existing_image, &self.boot_image)
                {
                    return Err(FormProblem::SameImage(
                        self.existing_image.trim().to_string(),
                    ));
                }
                Ok(())
            }
        }
    }

    fn name_problem(&self, store: Option<&DomainStore>) -> Result<(), FormProblem> {
        if self.name.is_empty() {
            return Err(FormProblem::NameEmpty);
        }
        if check_name(&self.name).is_err() || self.name.chars().any(char::is_control) {
            return Err(FormProblem::NameInvalid);
        }
        if !self.files_elsewhere && store.is_some_and(|s| s.path_of(&self.name).exists()) {
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

    /// Where a new disk image for this VM goes: beside the store, in `images/`, named after
    /// the VM (`NAME.qcow2`, or `NAME.img` for raw).
    pub fn new_image_path(&self, store: &DomainStore) -> PathBuf {
        let extension = match self.new_image_format {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "img",
        };
        images_dir(store).join(format!("{}.{extension}", self.name))
    }

    /// The disks the VM gets, in target order: the boot image (when booting one), then the
    /// storage step's disk; `new_image` is where a new image goes ([`Self::new_image_path`]).
    /// Images not inspected yet are taken as their name says (the steps wait for inspection,
    /// so Create never sees that).
    pub fn planned_disks(&self, new_image: Option<&Path>) -> Vec<PlannedDisk> {
        let existing = |path: &str| {
            let key = path.trim();
            let format = match self.images.get(key) {
                Some(Ok(format)) => *format,
                _ => named_format(key).unwrap_or_default(),
            };
            (PathBuf::from(key), format, is_iso(key))
        };
        let mut planned = Vec::new();
        if self.boot == BootKind::DiskImage {
            planned.push((existing(&self.boot_image), false));
        }
        match self.storage {
            StorageKind::None => {}
            StorageKind::NewImage => {
                let path = new_image.map_or_else(|| PathBuf::from(&self.name), Path::to_path_buf);
                planned.push(((path, self.new_image_format, false), true));
            }
            StorageKind::ExistingImage => planned.push((existing(&self.existing_image), false)),
        }
        planned
            .into_iter()
            .enumerate()
            .map(|(index, ((path, format, cdrom), new))| PlannedDisk {
                path,
                format,
                cdrom,
                target: crate::launch::disks::guest_name(index as u64),
                new,
            })
            .collect()
    }

    /// The VM these answers describe, without its disks (see [`Self::build`]).
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

    /// The complete domain: the new-VM builder's document (CPU per `prefs` on `host`) with the
    /// [planned disks](Self::planned_disks), each with its real format (`<driver type>`), an
    /// `.iso` as a read-only CD-ROM (booted from when it is the boot image), and the chosen
    /// [network card](NetworkChoice), and a [screen](add_display) with a virtio keyboard and
    /// tablet.
    pub fn build(
        &self,
        prefs: &Prefs,
        host: &HostFacts,
        new_image: Option<&Path>,
    ) -> Result<crate::domain::Domain, crate::domain::new_vm::NewVmError> {
        let mut domain = self.to_new_vm().build(prefs, host)?;
        // The builder guesses a boot image's format from its name; the planned disk knows it.
        while let Some(target) = domain.disks().first().and_then(|d| d.target_dev.clone()) {
            domain.remove_disk(&target);
        }
        let planned = self.planned_disks(new_image);
        for disk in &planned {
            domain.add_device(Disk::new_element(&disk.element()));
        }
        if self.boot == BootKind::DiskImage && planned.first().is_some_and(|d| d.cdrom) {
            domain.set_boot_order(&["cdrom"]);
        }
        self.network.add_to(&mut domain);
        add_display(&mut domain);
        domain.set_awaits_first_start(true);
        Ok(domain)
    }
}

/// Which CPU a new VM gets under the preferences on this host, for the one line the wizard's
/// summary and Preferences show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSummary {
    /// The hypervisor's default model (a basic 64-bit CPU).
    HypervisorDefault,
    /// The nearest named 64-bit model this host's KVM can run. (`None` is no longer produced:
    /// without a usable 64-bit model "Nearest CPU model" resolves to [`Self::HostModel`], see
    /// [`crate::domain::new_vm::cpu_fallback_warning`].)
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

#[cfg(test)]
mod tests;
