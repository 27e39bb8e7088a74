//! ACPI tables: how the guest learns how many CPUs it has (MADT), where the power-management
//! registers are (FADT) and how to power off (the `_S5_` object in the DSDT).
//!
//! Debian's cloud kernels are built without MP-table parsing, so an SMP guest needs the MADT; the
//! FADT's fixed-hardware power button and PM1 control block give a clean poweroff and a graceful
//! shutdown request without any AML methods. The fixed-layout tables are written here (small and
//! checked byte by byte in the tests); the DSDT's AML comes from rust-vmm's `acpi_tables`.

use acpi_tables::{Aml, aml};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::engine::devices::legacy::pm::{PM1_CNT_PORT, PM1_EVT_PORT, S5_SLEEP_TYPE, SCI_IRQ};
use crate::engine::devices::legacy::{cmos, i8042, pvpanic};
use crate::engine::devices::pci::root as pci_config;
use crate::engine::error::EngineError;
use crate::engine::layout::{
    ACPI_ADDR, PCI_ECAM_BASE, PCI_ECAM_SIZE, PCI_MMIO32_END, PCI_MMIO32_START,
};

const OEM_ID: &[u8; 6] = b"VIREO ";
const OEM_TABLE_ID: &[u8; 8] = b"VIREOVM ";
const CREATOR_ID: &[u8; 4] = b"VIRE";
const LOCAL_APIC_ADDR: u32 = 0xfee0_0000;
const IO_APIC_ADDR: u32 = 0xfec0_0000;

/// A system description table under construction: the standard 36-byte header, then the body.
struct Sdt {
    bytes: Vec<u8>,
}

impl Sdt {
    fn new(signature: &[u8; 4], revision: u8) -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(signature);
        bytes.extend_from_slice(&0u32.to_le_bytes()); // length, set by finish()
        bytes.push(revision);
        bytes.push(0); // checksum, set by finish()
        bytes.extend_from_slice(OEM_ID);
        bytes.extend_from_slice(OEM_TABLE_ID);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(CREATOR_ID);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Self { bytes }
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }
    fn zeros(&mut self, n: usize) -> &mut Self {
        self.bytes.resize(self.bytes.len() + n, 0);
        self
    }
    /// A Generic Address Structure for an I/O port block.
    fn io_gas(&mut self, port: u16, bit_width: u8) -> &mut Self {
        let access_size = match bit_width {
            8 => 1,
            16 => 2,
            _ => 3,
        };
        self.u8(1)
            .u8(bit_width)
            .u8(0)
            .u8(access_size)
            .u64(u64::from(port))
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[4..8].copy_from_slice(&len.to_le_bytes());
        self.bytes[9] = checksum(&self.bytes);
        self.bytes
    }
}

/// The byte that makes `bytes` sum to zero (with the checksum byte itself counted as zero).
fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// The DSDT's AML, built with rust-vmm's `acpi_tables`: the `_S5_` sleep type the guest writes
/// to power off, the CMOS RTC (`PNP0B00`, so rtc_cmos binds to it as on a PC) and the pvpanic
/// device (`QEMU0001`, as QEMU describes it), and with `ps2_keyboard` the i8042's keyboard
/// (`PNP0303`): Linux's i8042 driver looks for it there, and without it (and without the
/// FADT's 8042 flag) leaves the controller alone, so VMs without the keyboard boot without
/// probing it. No `PNP0F13` mouse: the driver then skips the auxiliary port too.
fn dsdt_aml(ps2_keyboard: bool) -> Vec<u8> {
    let s5 = S5_SLEEP_TYPE as u8;
    let sleep = aml::Name::new(
        "_S5_".into(),
        &aml::Package::new(vec![&s5, &s5, &0u8, &0u8]),
    );
    let rtc_io = aml::IO::new(cmos::INDEX_PORT, cmos::INDEX_PORT, 1, 2);
    let rtc_crs = aml::ResourceTemplate::new(vec![&rtc_io]);
    let rtc_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0B00"));
    let rtc_crs = aml::Name::new("_CRS".into(), &rtc_crs);
    let rtc = aml::Device::new("RTC_".into(), vec![&rtc_hid, &rtc_crs]);
    let panic_io = aml::IO::new(pvpanic::PORT, pvpanic::PORT, 1, 1);
    let panic_crs = aml::ResourceTemplate::new(vec![&panic_io]);
    let panic_hid = aml::Name::new("_HID".into(), &"QEMU0001");
    let panic_crs = aml::Name::new("_CRS".into(), &panic_crs);
    let panic_sta = aml::Name::new("_STA".into(), &0x0fu8);
    let pvpanic_device = aml::Device::new("PEVT".into(), vec![&panic_hid, &panic_crs, &panic_sta]);
    // The PCI host bridge: bus 0, the configuration ports, and the I/O and 32-bit memory
    // windows its devices' BARs come from. A conventional PCI root (PNP0A03): no _OSC needed.
    let pci_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0A03"));
    let pci_adr = aml::Name::new("_ADR".into(), &0u8);
    let pci_seg = aml::Name::new("_SEG".into(), &0u8);
    let pci_uid = aml::Name::new("_UID".into(), &0u8);
    let pci_bbn = aml::Name::new("_BBN".into(), &0u8);
    let bus = aml::AddressSpace::new_bus_number(0u16, 0u16);
    let config_ports = aml::IO::new(pci_config::ADDRESS_PORT, pci_config::ADDRESS_PORT, 1, 8);
    let io_low = aml::AddressSpace::new_io(0u16, pci_config::ADDRESS_PORT - 1, None);
    let io_high = aml::AddressSpace::new_io(0x0d00u16, 0xffffu16, None);
    let mmio32 = aml::AddressSpace::new_memory(
        aml::AddressSpaceCacheable::NotCacheable,
        true,
        PCI_MMIO32_START as u32,
        (PCI_MMIO32_END - 1) as u32,
        None,
    );
    let pci_resources =
        aml::ResourceTemplate::new(vec![&bus, &config_ports, &io_low, &io_high, &mmio32]);
    let pci_crs = aml::Name::new("_CRS".into(), &pci_resources);
    let pci0 = aml::Device::new(
        "PCI0".into(),
        vec![&pci_hid, &pci_adr, &pci_seg, &pci_uid, &pci_bbn, &pci_crs],
    );
    // Motherboard resources: the ECAM window, so Linux accepts the MCFG's region.
    let ecam = aml::Memory32Fixed::new(false, PCI_ECAM_BASE as u32, PCI_ECAM_SIZE as u32);
    let ecam_crs = aml::ResourceTemplate::new(vec![&ecam]);
    let mb_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C02"));
    let mb_uid = aml::Name::new("_UID".into(), &"ECAM");
    let mb_crs = aml::Name::new("_CRS".into(), &ecam_crs);
    let motherboard = aml::Device::new("RES0".into(), vec![&mb_hid, &mb_uid, &mb_crs]);
    let kbd_data = aml::IO::new(i8042::DATA_PORT, i8042::DATA_PORT, 1, 1);
    let kbd_command = aml::IO::new(i8042::COMMAND_PORT, i8042::COMMAND_PORT, 1, 1);
    let kbd_irq = IrqNoFlags(i8042::KEYBOARD_IRQ as u8);
    let kbd_crs = aml::ResourceTemplate::new(vec![&kbd_data, &kbd_command, &kbd_irq]);
    let kbd_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0303"));
    let kbd_crs = aml::Name::new("_CRS".into(), &kbd_crs);
    let kbd_sta = aml::Name::new("_STA".into(), &0x0fu8);
    let keyboard = aml::Device::new("KBD_".into(), vec![&kbd_hid, &kbd_sta, &kbd_crs]);
    let mut devices: Vec<&dyn Aml> = vec![&pci0, &motherboard, &rtc, &pvpanic_device];
    if ps2_keyboard {
        devices.push(&keyboard);
    }
    let system_bus = aml::Scope::new("\\_SB_".into(), devices);
    let mut body = Vec::new();
    sleep.to_aml_bytes(&mut body);
    system_bus.to_aml_bytes(&mut body);
    body
}

/// An ISA `IRQNoFlags` descriptor (edge, active high, exclusive), as QEMU gives the
/// keyboard; `acpi_tables` only has the extended form.
struct IrqNoFlags(u8);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.byte(0x22); // small IRQ descriptor, 2 bytes
        sink.word(1 << self.0);
    }
}

fn dsdt(ps2_keyboard: bool) -> Vec<u8> {
    let mut t = Sdt::new(b"DSDT", 2);
    t.raw(&dsdt_aml(ps2_keyboard));
    t.finish()
}

/// The Firmware ACPI Control Structure: no checksum, 64-byte aligned; full-hardware (non
/// reduced) ACPI needs one for its global lock and waking vector, unused here.
fn facs() -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(b"FACS");
    f.extend_from_slice(&64u32.to_le_bytes());
    f.resize(32, 0); // hardware signature, waking vectors, global lock, flags
    f.push(2); // version
    f.resize(64, 0);
    f
}

fn fadt(facs_addr: u64, dsdt_addr: u64) -> Vec<u8> {
    const FLAG_WBINVD: u32 = 1;
    const FLAG_NO_SLEEP_BUTTON: u32 = 1 << 5;
    const BOOT_ARCH_NO_VGA: u16 = 1 << 2;
    let mut t = Sdt::new(b"FACP", 6);
    t.u32(facs_addr as u32)
        .u32(dsdt_addr as u32)
        .u8(0)
        .u8(0) // preferred PM profile: unspecified
        .u16(SCI_IRQ as u16)
        .u32(0) // SMI_CMD 0: ACPI mode is always on
        .u32(0) // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        .u32(u32::from(PM1_EVT_PORT))
        .u32(0)
        .u32(u32::from(PM1_CNT_PORT))
        .u32(0)
        .u32(0) // PM2_CNT_BLK
        .u32(0) // PM_TMR_BLK: none
        .u32(0) // GPE0_BLK
        .u32(0) // GPE1_BLK
        .u8(4) // PM1_EVT_LEN
        .u8(2) // PM1_CNT_LEN
        .zeros(6) // PM2_CNT_LEN … CST_CNT
        .u16(101) // P_LVL2_LAT > 100: C2 unsupported
        .u16(1001) // P_LVL3_LAT > 1000: C3 unsupported
        .zeros(4 + 5) // FLUSH_SIZE/STRIDE, DUTY_*, alarms, CENTURY
        .u16(BOOT_ARCH_NO_VGA)
        .u8(0)
        .u32(FLAG_WBINVD | FLAG_NO_SLEEP_BUTTON)
        .zeros(12) // RESET_REG: none (the guest resets through the i8042)
        .u8(0) // RESET_VALUE
        .u16(0) // ARM_BOOT_ARCH
        .u8(0) // FADT minor version
        .u64(0) // X_FIRMWARE_CTRL
        .u64(dsdt_addr)
        .io_gas(PM1_EVT_PORT, 32)
        .zeros(12)
        .io_gas(PM1_CNT_PORT, 16)
        .zeros(12 * 7) // PM1b_CNT, PM2_CNT, PM_TMR, GPE0, GPE1, SLEEP_CONTROL, SLEEP_STATUS
        .u64(u64::from_le_bytes(*b"VIREO\0\0\0"));
    t.finish()
}

fn madt(apic_ids: &[u32]) -> Vec<u8> {
    const PCAT_COMPAT: u32 = 1;
    let mut t = Sdt::new(b"APIC", 4);
    t.u32(LOCAL_APIC_ADDR).u32(PCAT_COMPAT);
    const ENABLED: u32 = 1;
    for (uid, apic_id) in apic_ids.iter().enumerate() {
        if *apic_id < 255 && uid < 255 {
            t.u8(0).u8(8).u8(uid as u8).u8(*apic_id as u8).u32(ENABLED);
        } else {
            // Processor Local x2APIC: IDs (and UIDs) that do not fit in a byte.
            t.u8(9)
                .u8(16)
                .u16(0)
                .u32(*apic_id)
                .u32(ENABLED)
                .u32(uid as u32);
        }
    }
    t.u8(1).u8(12).u8(0).u8(0).u32(IO_APIC_ADDR).u32(0);
    // The PIT's IRQ 0 arrives on IO-APIC pin 2, as on every PC.
    t.u8(2).u8(10).u8(0).u8(0).u32(2).u16(0);
    // The SCI is level triggered, active high.
    t.u8(2)
        .u8(10)
        .u8(0)
        .u8(SCI_IRQ as u8)
        .u32(SCI_IRQ)
        .u16(0x000d);
    // LINT1 of every processor is NMI.
    t.u8(4).u8(6).u8(0xff).u16(0).u8(1);
    t.finish()
}

/// The PCI Express memory-mapped configuration table: one ECAM window, segment 0, bus 0.
fn mcfg() -> Vec<u8> {
    let mut t = Sdt::new(b"MCFG", 1);
    t.zeros(8) // reserved
        .u64(PCI_ECAM_BASE)
        .u16(0) // PCI segment group
        .u8(0) // first bus
        .u8(0) // last bus
        .u32(0); // reserved
    t.finish()
}

fn xsdt(tables: &[u64]) -> Vec<u8> {
    let mut t = Sdt::new(b"XSDT", 1);
    for addr in tables {
        t.u64(*addr);
    }
    t.finish()
}

fn rsdp(xsdt_addr: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(36);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(OEM_ID);
    r.push(2); // ACPI 2.0+
    r.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt_addr.to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

/// Builds every table for vCPUs with `apic_ids`, laid out from `base`, as (address, bytes).
/// The RSDP comes first, at `base`, 16-byte aligned as the RSDP search requires.
pub fn build(base: u64, apic_ids: &[u32], ps2_keyboard: bool) -> Vec<(u64, Vec<u8>)> {
    let align = |a: u64| (a + 15) & !15;
    let facs_addr = (base + 36 + 63) & !63;
    let dsdt_addr = align(facs_addr + 64);
    let dsdt = dsdt(ps2_keyboard);
    let fadt_addr = align(dsdt_addr + dsdt.len() as u64);
    let fadt = fadt(facs_addr, dsdt_addr);
    let madt_addr = align(fadt_addr + fadt.len() as u64);
    let madt = madt(apic_ids);
    let mcfg_addr = align(madt_addr + madt.len() as u64);
    let mcfg = mcfg();
    let xsdt_addr = align(mcfg_addr + mcfg.len() as u64);
    let xsdt = xsdt(&[fadt_addr, madt_addr, mcfg_addr]);
    vec![
        (base, rsdp(xsdt_addr)),
        (facs_addr, facs()),
        (dsdt_addr, dsdt),
        (fadt_addr, fadt),
        (madt_addr, madt),
        (mcfg_addr, mcfg),
        (xsdt_addr, xsdt),
    ]
}

/// Writes the tables for vCPUs with `apic_ids` (and the PS/2 keyboard, if asked) at
/// [`ACPI_ADDR`].
pub fn write(
    mem: &GuestMemoryMmap,
    apic_ids: &[u32],
    ps2_keyboard: bool,
) -> Result<(), EngineError> {
    for (addr, bytes) in build(ACPI_ADDR, apic_ids, ps2_keyboard) {
        mem.write_slice(&bytes, GuestAddress(addr))
            .map_err(|e| EngineError::Boot(format!("writing ACPI tables at {addr:#x}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_to_zero(bytes: &[u8]) -> bool {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
    }

    #[test]
    fn the_dsdt_describes_s5_the_rtc_and_pvpanic() {
        let aml = dsdt_aml(false);
        // Name (_S5_, Package (4) { 5, 5, 0, 0 }), as the PM code expects.
        assert!(aml.starts_with(&[0x08, b'_', b'S', b'5', b'_', 0x12]));
        let find = |needle: &[u8]| aml.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"QEMU0001\0"), "pvpanic _HID");
        assert!(
            find(&[0x47, 1, 0x05, 0x05, 0x05, 0x05, 1, 1]),
            "pvpanic IO(0x505)"
        );
        assert!(find(&[0x47, 1, 0x70, 0, 0x70, 0, 1, 2]), "RTC IO(0x70, 2)");
        assert!(find(b"PEVT") && find(b"RTC_") && find(b"_SB_"));
        assert!(
            find(b"PCI0") && find(b"RES0"),
            "host bridge and motherboard resources"
        );
        let ecam = [
            &[0x86u8, 9, 0, 0][..],
            &(PCI_ECAM_BASE as u32).to_le_bytes(),
        ]
        .concat();
        assert!(find(&ecam), "Memory32Fixed for the ECAM window");
    }

    #[test]
    fn the_ps2_keyboard_is_in_the_dsdt_only_when_the_vm_has_one() {
        let find = |aml: &[u8], needle: &[u8]| aml.windows(needle.len()).any(|w| w == needle);
        // EISAID("PNP0303"), IO(0x60), IO(0x64) and IRQNoFlags() {1}.
        let pnp0303 = [0x0c, 0x41, 0xd0, 0x03, 0x03];
        let resources = [
            0x47, 1, 0x60, 0, 0x60, 0, 1, 1, 0x47, 1, 0x64, 0, 0x64, 0, 1, 1, 0x22, 0x02, 0x00,
        ];
        let with = dsdt_aml(true);
        assert!(find(&with, &pnp0303) && find(&with, b"KBD_"));
        assert!(find(&with, &resources));
        let without = dsdt_aml(false);
        assert!(!find(&without, &pnp0303) && !find(&without, b"KBD_"));
    }

    #[test]
    fn every_table_checksums_and_has_its_length() {
        for (_, bytes) in build(ACPI_ADDR, &[0, 1, 2, 3], false).into_iter().skip(2) {
            assert!(sums_to_zero(&bytes));
            let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len());
        }
    }

    #[test]
    fn facs_is_64_byte_aligned_and_referenced_by_the_fadt() {
        let tables = build(ACPI_ADDR, &[0], false);
        let (facs_addr, facs) = &tables[1];
        assert_eq!(
            (facs_addr % 64, &facs[..4], facs.len()),
            (0, &b"FACS"[..], 64)
        );
        let fadt = &tables[3].1;
        assert_eq!(
            u32::from_le_bytes(fadt[36..40].try_into().unwrap()) as u64,
            *facs_addr
        );
    }

    #[test]
    fn rsdp_checksums_and_points_at_the_xsdt() {
        let tables = build(ACPI_ADDR, &[0], false);
        let rsdp = &tables[0].1;
        assert!(sums_to_zero(&rsdp[..20]));
        assert!(sums_to_zero(rsdp));
        let xsdt_addr = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
        let (_, xsdt) = tables.iter().find(|(a, _)| *a == xsdt_addr).unwrap();
        assert_eq!(&xsdt[..4], b"XSDT");
        let listed: Vec<&[u8]> = xsdt[36..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .map(|a| &tables.iter().find(|(t, _)| *t == a).unwrap().1[..4])
            .collect();
        assert_eq!(listed, [b"FACP", b"APIC", b"MCFG"]);
    }

    #[test]
    fn the_mcfg_announces_the_ecam_window_for_bus_0() {
        let m = mcfg();
        assert!(sums_to_zero(&m));
        assert_eq!(m.len(), 36 + 8 + 16);
        assert_eq!(
            u64::from_le_bytes(m[44..52].try_into().unwrap()),
            PCI_ECAM_BASE
        );
        assert_eq!((m[54], m[55]), (0, 0), "bus 0 to 0");
    }

    #[test]
    fn fadt_is_acpi_6_sized_and_madt_lists_each_cpu() {
        let tables = build(ACPI_ADDR, &[0, 1, 4, 5], false);
        assert_eq!(tables[3].1.len(), 276);
        let madt = &tables[4].1;
        let lapics: Vec<u8> = madt[44..]
            .chunks(8)
            .take(4)
            .map(|entry| {
                assert_eq!(&entry[..2], &[0, 8]);
                entry[3]
            })
            .collect();
        assert_eq!(lapics, vec![0, 1, 4, 5]);
    }

    #[test]
    fn apic_ids_beyond_a_byte_get_x2apic_entries() {
        let ids: Vec<u32> = (0..300).collect();
        let tables = build(ACPI_ADDR, &ids, false);
        let madt = &tables[4].1;
        let body = &madt[44..];
        let x2apic = &body[255 * 8..255 * 8 + 16];
        assert_eq!(&x2apic[..2], &[9, 16]);
        assert_eq!(u32::from_le_bytes(x2apic[4..8].try_into().unwrap()), 255);
        assert!(sums_to_zero(madt));
    }
}
