//! QEMU's pvpanic device at I/O port 0x505 (ACPI `QEMU0001`): a guest kernel that panics writes
//! "panicked" there before it reboots or halts, so the VM ends as crashed and `on_crash` applies,
//! as libvirt does with the same device. Linux drives it with the pvpanic-mmio module, which
//! binds through the DSDT and reads the port first to learn which events the device takes.

/// The port (QEMU's default for the ISA pvpanic device).
pub const PORT: u16 = 0x505;

/// The guest kernel panicked.
pub const PANICKED: u8 = 1 << 0;
/// A crash kernel (kdump) was loaded and takes over: not a crash of the VM.
pub const CRASH_LOADED: u8 = 1 << 1;

/// Events the device accepts, as a guest reads them from the port.
pub fn capabilities() -> u8 {
    PANICKED | CRASH_LOADED
}

/// Whether a guest write of `value` reports a panic that ends the VM.
pub fn is_panic(value: u8) -> bool {
    value & PANICKED != 0
}
