//! The plain description of a VM the engine runs. No XML here: `crate::launch::prepare` (the only
//! bridge from a domain document) builds one of these, and tests build them directly.

use std::path::PathBuf;

use crate::cpu::guest::{GuestCpuid, GuestTopology};

pub use disk::{CacheMode, DiskConfig, DiskFormat, IoMode};
pub use net::{FrameStream, NetBackend, NetConfig, format_mac};

/// Everything the engine needs to build and run one VM.
#[derive(Debug, Clone, PartialEq)]
pub struct VmConfig {
    /// The domain's name, used in thread names, logs and messages.
    pub name: String,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// vCPU layout; its product is the vCPU count.
    pub topology: GuestTopology,
    /// The resolved CPUID table programmed into every vCPU (APIC IDs are patched per vCPU).
    pub cpuid: GuestCpuid,
    /// What to boot.
    pub boot: BootSource,
    /// What happens when the guest powers off.
    pub on_poweroff: LifecycleAction,
    /// What happens when the guest resets itself.
    pub on_reboot: LifecycleAction,
    /// What happens when the guest crashes (triple fault, KVM internal error, unhandled exit).
    pub on_crash: LifecycleAction,
    /// Host CPUs each vCPU may run on (`<vcpupin>`); vCPUs not listed run anywhere.
    pub vcpu_pins: Vec<VcpuPin>,
    /// Host CPUs the engine's own threads may run on (`<emulatorpin>`).
    pub emulator_pin: Option<Vec<usize>>,
    /// virtio-blk disks, in the order the guest enumerates them (`vda` first).
    pub disks: Vec<DiskConfig>,
    /// virtio-net cards, in the order the guest enumerates them (`eth0` first).
    pub nics: Vec<NetConfig>,
    /// The virtio-gpu display, if the VM has one.
    pub display: Option<DisplayConfig>,
    /// virtio-input devices, in the order the guest enumerates them.
    pub inputs: Vec<InputKind>,
    /// A PS/2 keyboard on the i8042 (announced to the guest as ACPI `PNP0303`), for guests
    /// without virtio-input; keys go to it when the VM has no virtio keyboard.
    pub ps2_keyboard: bool,
}

/// A virtio-gpu with one scanout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayConfig {
    /// The display size first offered to the guest (the viewer may change it later).
    pub width: u32,
    pub height: u32,
}

impl Default for DisplayConfig {
    /// 1280 × 800: fits a laptop screen with the window's chrome, and a 16:10 mode every
    /// guest knows.
    fn default() -> Self {
        Self {
            width: 1280,
            height: 800,
        }
    }
}

/// What a virtio-input device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A keyboard with the Linux key codes 1..=255 and three LEDs.
    Keyboard,
    /// An absolute pointer (0..=32767 on both axes) with three buttons and a wheel.
    Tablet,
}

impl VmConfig {
    /// The number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.topology.vcpus()
    }
}

/// Direct kernel boot: a Linux bzImage or an ELF image entered in 64-bit mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSource {
    /// The kernel image (bzImage, or an ELF such as vmlinux or the probe guest).
    pub kernel: PathBuf,
    /// An optional initial ramdisk.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
}

/// libvirt's `on_poweroff` / `on_reboot` / `on_crash` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LifecycleAction {
    /// Stop the VM and release it.
    #[default]
    Destroy,
    /// Start the VM again from scratch (same configuration, same CPUID).
    Restart,
    /// Stop the vCPUs but keep the VM's memory for inspection until it is destroyed.
    Preserve,
}

impl LifecycleAction {
    /// Parses libvirt's spelling; `rename-restart` and `coredump-*` map to their nearest
    /// meaning (restart, destroy) because the engine has no rename or core dump.
    pub fn from_libvirt(value: &str) -> Option<Self> {
        match value {
            "destroy" | "coredump-destroy" => Some(Self::Destroy),
            "restart" | "rename-restart" | "coredump-restart" => Some(Self::Restart),
            "preserve" => Some(Self::Preserve),
            _ => None,
        }
    }
}

/// One `<vcpupin vcpu='N' cpuset='…'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuPin {
    /// The vCPU index.
    pub vcpu: u32,
    /// Host CPUs it may run on.
    pub host_cpus: Vec<usize>,
}

pub mod disk;
pub mod net;
pub mod paravirt;
