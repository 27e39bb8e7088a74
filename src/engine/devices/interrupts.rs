//! Interrupt delivery through KVM: legacy ISA lines by irqfd on the in-kernel irqchip, and MSI
//! (what MSI-X vectors of PCI devices become) through GSIs whose route KVM_SET_GSI_ROUTING
//! programs with the message's address and data, each fired by its own irqfd. KVM takes the
//! whole routing table at once, so the router keeps it: the legacy PC wiring
//! ([`super::irq_routing`]) plus one MSI route per programmed vector.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kvm_bindings::{KVM_IRQ_ROUTING_MSI, KvmIrqRouting, kvm_irq_routing_entry};
use kvm_ioctls::VmFd;
use vm_allocator::IdAllocator;
use vm_superio::Trigger;
use vmm_sys_util::eventfd::EventFd;

use crate::engine::devices::irq_routing::{IOAPIC_PINS, legacy_entries};
use crate::engine::error::EngineError;

/// Raises an interrupt through a KVM irqfd.
pub struct IrqFdTrigger(pub EventFd);

impl Trigger for IrqFdTrigger {
    type E = std::io::Error;

    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// The highest GSI handed out for MSI (KVM's routing table holds 4096 entries on x86).
const LAST_MSI_GSI: u32 = 4095;

/// One MSI message: where the guest told the device to write, and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsiMessage {
    /// Message address (low 32 bits).
    pub address_lo: u32,
    /// Message address (high 32 bits).
    pub address_hi: u32,
    /// Message data.
    pub data: u32,
}

/// The VM's GSI routing table and the GSIs given to MSI vectors.
pub struct InterruptRouter {
    vm: Arc<VmFd>,
    state: Mutex<RouterState>,
}

struct RouterState {
    msi_routes: BTreeMap<u32, MsiMessage>,
    gsis: IdAllocator,
}

impl InterruptRouter {
    /// Programs the legacy routes into `vm` (after KVM_CREATE_IRQCHIP).
    pub fn new(vm: Arc<VmFd>) -> Result<Self, EngineError> {
        let gsis = IdAllocator::new(IOAPIC_PINS, LAST_MSI_GSI)
            .map_err(|e| EngineError::Config(format!("GSI allocator: {e}")))?;
        let router = Self {
            vm,
            state: Mutex::new(RouterState {
                msi_routes: BTreeMap::new(),
                gsis,
            }),
        };
        router.commit(&router.lock())?;
        Ok(router)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RouterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new GSI for an MSI vector, with an irqfd that fires it. The GSI has no route (firing
    /// it does nothing) until [`InterruptRouter::set_msi`] gives it one.
    pub fn new_msi_vector(&self) -> Result<(u32, EventFd), EngineError> {
        let gsi = self
            .lock()
            .gsis
            .allocate_id()
            .map_err(|e| EngineError::Config(format!("no free GSI for an MSI vector: {e}")))?;
        let fd = EventFd::new(libc::EFD_NONBLOCK)
            .map_err(|e| EngineError::Config(format!("creating an MSI irqfd: {e}")))?;
        self.vm
            .register_irqfd(&fd, gsi)
            .map_err(EngineError::kvm("KVM_IRQFD"))?;
        Ok((gsi, fd))
    }

    /// Routes `gsi` to `message` (`None` removes the route) and reprograms KVM if it changed.
    pub fn set_msi(&self, gsi: u32, message: Option<MsiMessage>) -> Result<(), EngineError> {
        let mut state = self.lock();
        let changed = match message {
            Some(m) => state.msi_routes.insert(gsi, m) != Some(m),
            None => state.msi_routes.remove(&gsi).is_some(),
        };
        if changed {
            self.commit(&state)?;
        }
        Ok(())
    }

    fn commit(&self, state: &RouterState) -> Result<(), EngineError> {
        let mut entries = legacy_entries();
        for (&gsi, m) in &state.msi_routes {
            let mut e = kvm_irq_routing_entry {
                gsi,
                type_: KVM_IRQ_ROUTING_MSI,
                ..Default::default()
            };
            e.u.msi.address_lo = m.address_lo;
            e.u.msi.address_hi = m.address_hi;
            e.u.msi.data = m.data;
            entries.push(e);
        }
        let routing = KvmIrqRouting::from_entries(&entries)
            .map_err(|e| EngineError::Config(format!("GSI routing table: {e:?}")))?;
        self.vm
            .set_gsi_routing(&routing)
            .map_err(EngineError::kvm("KVM_SET_GSI_ROUTING"))
    }
}
