//! The device model: a port-I/O bus and an MMIO bus (a lock per device), the legacy PC devices,
//! the PCI root with its functions, MSI-X and KVM interrupt routing, and virtio devices over
//! PCI. [`DeviceManager`] builds and owns them; vCPU threads dispatch their exits to it.

pub mod bus;
mod frontends;
pub mod interrupts;
pub mod irq_routing;
pub mod legacy;
mod manager;
pub mod pci;
pub mod virtio;

pub use frontends::Frontends;
pub use manager::DeviceManager;

/// What a guest's port write asks of the VM as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestRequest {
    /// The guest reset the machine (i8042 reset line).
    Reset,
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The guest kernel reported a panic (pvpanic).
    Panicked,
}
