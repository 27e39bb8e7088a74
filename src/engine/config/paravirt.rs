//! KVM's paravirtual CPUID leaves (0x40000000: signature, 0x40000001: features). A Linux guest
//! that finds them uses kvm-clock (instead of calibrating the TSC against a PIT it cannot trust
//! under nesting), PV EOI, PV unhalt and friends, as it does under QEMU. libvirt's
//! `<features><kvm><hidden state='on'/></kvm></features>` hides them, and so do we.

use crate::cpu::guest::{GuestCpuid, GuestCpuidEntry};

/// The hypervisor signature leaf.
pub const SIGNATURE_LEAF: u32 = 0x4000_0000;
/// KVM's feature leaf.
pub const FEATURES_LEAF: u32 = 0x4000_0001;

/// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
const SIGNATURE: [u32; 3] = [0x4b4d_564b, 0x564b_4d56, 0x0000_004d];

/// The KVM_FEATURE_* bits (leaf 0x40000001 EAX) a guest may use with this engine: those that
/// KVM implements in the kernel without help from the VMM. Left out: MSI_EXT_DEST_ID (needs the
/// VMM's MSI routing to know extended destination IDs) and MIGRATION_CONTROL (SEV only).
const OFFERED: u32 = (1 << 0) // CLOCKSOURCE
    | (1 << 1) // NOP_IO_DELAY
    | (1 << 3) // CLOCKSOURCE2
    | (1 << 4) // ASYNC_PF
    | (1 << 5) // STEAL_TIME
    | (1 << 6) // PV_EOI
    | (1 << 7) // PV_UNHALT
    | (1 << 9) // PV_TLB_FLUSH
    | (1 << 10) // ASYNC_PF_VMEXIT
    | (1 << 11) // PV_SEND_IPI
    | (1 << 12) // POLL_CONTROL
    | (1 << 13) // PV_SCHED_YIELD
    | (1 << 14) // ASYNC_PF_INT
    | (1 << 24); // CLOCKSOURCE_STABLE_BIT

/// Replaces any hypervisor leaves in `table` with KVM's, advertising the offered features that
/// this host's KVM supports (`supported`: KVM_GET_SUPPORTED_CPUID). A host whose KVM reports no
/// feature leaf gets the signature alone.
pub fn add_kvm_leaves(table: &mut GuestCpuid, supported: &GuestCpuid) {
    hide(table);
    let features = supported
        .get(FEATURES_LEAF, 0)
        .map_or(0, |e| e.eax & OFFERED);
    table.set(GuestCpuidEntry {
        eax: FEATURES_LEAF,
        ebx: SIGNATURE[0],
        ecx: SIGNATURE[1],
        edx: SIGNATURE[2],
        ..GuestCpuidEntry::zeroed(SIGNATURE_LEAF, 0, false)
    });
    table.set(GuestCpuidEntry {
        eax: features,
        ..GuestCpuidEntry::zeroed(FEATURES_LEAF, 0, false)
    });
}

/// Removes every hypervisor leaf (0x40000000–0x400000ff), so the guest finds no KVM signature.
pub fn hide(table: &mut GuestCpuid) {
    for leaf in SIGNATURE_LEAF..=SIGNATURE_LEAF + 0xff {
        table.remove_leaf(leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported(features: u32) -> GuestCpuid {
        GuestCpuid::from_entries([GuestCpuidEntry {
            eax: features,
            ..GuestCpuidEntry::zeroed(FEATURES_LEAF, 0, false)
        }])
    }

    #[test]
    fn the_signature_reads_kvmkvmkvm() {
        let mut table = GuestCpuid::default();
        add_kvm_leaves(&mut table, &supported(0));
        let e = table.get(SIGNATURE_LEAF, 0).unwrap();
        let mut sig = Vec::new();
        for r in [e.ebx, e.ecx, e.edx] {
            sig.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&sig, b"KVMKVMKVM\0\0\0");
        assert_eq!(e.eax, FEATURES_LEAF);
    }

    #[test]
    fn only_offered_features_the_host_supports_are_advertised() {
        let mut table = GuestCpuid::default();
        // kvm-clock and PV EOI supported; MSI_EXT_DEST_ID (bit 15) supported but not offered.
        add_kvm_leaves(&mut table, &supported((1 << 3) | (1 << 6) | (1 << 15)));
        assert_eq!(
            table.get(FEATURES_LEAF, 0).unwrap().eax,
            (1 << 3) | (1 << 6)
        );
    }

    #[test]
    fn hidden_removes_every_hypervisor_leaf() {
        let mut table = GuestCpuid::default();
        add_kvm_leaves(&mut table, &supported(u32::MAX));
        hide(&mut table);
        assert!(
            table
                .entries()
                .iter()
                .all(|e| e.leaf >> 8 != SIGNATURE_LEAF >> 8)
        );
    }
}
