//! The PC's legacy interrupt wiring, programmed into KVM's in-kernel irqchip. KVM's default
//! routing sends GSI 0 (where its in-kernel PIT raises the timer) to IO-APIC pin 0, but every PC
//! (and our MADT's interrupt source override) has the timer on pin 2. Without this, Linux finds
//! no timer interrupt there ("8254 timer not connected to IO-APIC") and falls back to the 8259A
//! virtual wire. The table is the one QEMU's `pc` and `q35` machines program.

use kvm_bindings::{
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
    kvm_irq_routing_entry,
};

/// IO-APIC pins (and so legacy GSIs) of the in-kernel IO-APIC.
pub const IOAPIC_PINS: u32 = 24;

fn route(gsi: u32, chip: u32, pin: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        ..Default::default()
    };
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    e
}

/// (GSI, irqchip, pin) for every legacy line: ISA IRQs 0–15 on both 8259As (IRQ 2 is the
/// cascade) and on the IO-APIC, with IRQ 0 on pin 2; GSIs 16–23 on the IO-APIC alone.
pub fn legacy_routes() -> Vec<(u32, u32, u32)> {
    let mut routes = Vec::new();
    for irq in (0..8).filter(|i| *i != 2) {
        routes.push((irq, KVM_IRQCHIP_PIC_MASTER, irq));
    }
    for irq in 8..16 {
        routes.push((irq, KVM_IRQCHIP_PIC_SLAVE, irq - 8));
    }
    for gsi in (0..IOAPIC_PINS).filter(|g| *g != 2) {
        routes.push((gsi, KVM_IRQCHIP_IOAPIC, if gsi == 0 { 2 } else { gsi }));
    }
    routes
}

/// [`legacy_routes`] as KVM routing entries; [`super::interrupts::InterruptRouter`] programs
/// them (after KVM_CREATE_IRQCHIP) together with the MSI routes.
pub fn legacy_entries() -> Vec<kvm_irq_routing_entry> {
    legacy_routes()
        .into_iter()
        .map(|(gsi, chip, pin)| route(gsi, chip, pin))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_reaches_ioapic_pin_2_and_the_cascade_is_unrouted() {
        let routes = legacy_routes();
        assert!(routes.contains(&(0, KVM_IRQCHIP_IOAPIC, 2)));
        assert!(routes.contains(&(0, KVM_IRQCHIP_PIC_MASTER, 0)));
        assert!(!routes.iter().any(|r| r.0 == 2));
        assert!(routes.contains(&(4, KVM_IRQCHIP_IOAPIC, 4)));
        assert!(routes.contains(&(9, KVM_IRQCHIP_PIC_SLAVE, 1)));
        assert!(routes.contains(&(23, KVM_IRQCHIP_IOAPIC, 23)));
    }
}
