//! MSI-X for an emulated PCI function: the capability, the vector table and the pending-bit
//! array (both in a BAR), and delivery. Each vector owns a GSI whose KVM route carries the
//! message the guest wrote into the table, and an irqfd that fires it, so a device's I/O thread
//! interrupts the guest with one eventfd write and no trip through a vCPU. A masked vector
//! records its interrupt in the PBA and delivers it when unmasked, as the spec requires.

use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

use crate::engine::devices::interrupts::{InterruptRouter, MsiMessage};
use crate::engine::error::EngineError;

/// The MSI-X capability ID.
pub const CAP_ID: u8 = 0x11;
/// Bytes per table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Message control: MSI-X enable.
const ENABLE: u16 = 1 << 15;
/// Message control: function mask.
const FUNCTION_MASK: u16 = 1 << 14;
/// Vector control: this vector is masked.
const VECTOR_MASKED: u32 = 1;

#[derive(Debug, Clone, Copy)]
struct Entry {
    message: MsiMessage,
    control: u32,
}

impl Default for Entry {
    fn default() -> Self {
        // Every vector starts masked (spec: reset state).
        Self {
            message: MsiMessage::default(),
            control: VECTOR_MASKED,
        }
    }
}

/// The MSI-X state of one function.
pub struct Msix {
    entries: Vec<Entry>,
    pending: Vec<bool>,
    enabled: bool,
    function_masked: bool,
    vectors: Vec<(u32, EventFd)>,
    router: Arc<InterruptRouter>,
}

impl Msix {
    /// `count` vectors, each with a GSI and irqfd from `router`.
    pub fn new(count: u16, router: Arc<InterruptRouter>) -> Result<Self, EngineError> {
        let vectors = (0..count)
            .map(|_| router.new_msi_vector())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            entries: vec![Entry::default(); usize::from(count)],
            pending: vec![false; usize::from(count)],
            enabled: false,
            function_masked: false,
            vectors,
            router,
        })
    }

    /// The capability body (after ID and next pointer) for a table at `table_offset` and a PBA
    /// at `pba_offset` of BAR `bar`, and which of its bits the guest may write.
    pub fn capability(
        count: u16,
        bar: u8,
        table_offset: u32,
        pba_offset: u32,
    ) -> ([u8; 10], [u8; 10]) {
        let mut body = [0u8; 10];
        body[0..2].copy_from_slice(&(count - 1).to_le_bytes());
        body[2..6].copy_from_slice(&(table_offset | u32::from(bar)).to_le_bytes());
        body[6..10].copy_from_slice(&(pba_offset | u32::from(bar)).to_le_bytes());
        let mut writable = [0u8; 10];
        writable[1] = ((ENABLE | FUNCTION_MASK) >> 8) as u8;
        (body, writable)
    }

    /// Applies the message control the guest wrote.
    pub fn set_control(&mut self, control: u16) {
        let was_enabled = self.enabled;
        self.enabled = control & ENABLE != 0;
        self.function_masked = control & FUNCTION_MASK != 0;
        if self.enabled != was_enabled {
            for v in 0..self.entries.len() {
                self.update_route(v);
            }
        }
        self.deliver_pending();
    }

    fn update_route(&self, v: usize) {
        let message = self.enabled.then_some(self.entries[v].message);
        if let Err(e) = self.router.set_msi(self.vectors[v].0, message) {
            tracing::warn!("MSI-X vector {v}: {e}");
        }
    }

    fn masked(&self, v: usize) -> bool {
        self.function_masked || self.entries[v].control & VECTOR_MASKED != 0
    }

    fn deliver_pending(&mut self) {
        for v in 0..self.entries.len() {
            if self.pending[v] && self.enabled && !self.masked(v) {
                self.pending[v] = false;
                self.fire(v);
            }
        }
    }

    fn fire(&self, v: usize) {
        if let Err(e) = self.vectors[v].1.write(1) {
            tracing::warn!("MSI-X vector {v}: irqfd write failed: {e}");
        }
    }

    /// Interrupts the guest with `vector` (or marks it pending while masked). Nothing happens
    /// while MSI-X is disabled or for a vector out of range (a guest's "no vector", 0xffff).
    pub fn trigger(&mut self, vector: u16) {
        let v = usize::from(vector);
        if v >= self.entries.len() || !self.enabled {
            return;
        }
        if self.masked(v) {
            self.pending[v] = true;
        } else {
            self.fire(v);
        }
    }

    /// A guest read of the vector table.
    pub fn table_read(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            let at = offset + i as u64;
            let v = (at / ENTRY_SIZE) as usize;
            *byte = match self.entries.get(v) {
                Some(e) => {
                    let word = match (at % ENTRY_SIZE) / 4 {
                        0 => e.message.address_lo,
                        1 => e.message.address_hi,
                        2 => e.message.data,
                        _ => e.control,
                    };
                    word.to_le_bytes()[(at % 4) as usize]
                }
                None => 0,
            };
        }
    }

    /// A guest write to the vector table.
    pub fn table_write(&mut self, offset: u64, data: &[u8]) {
        let v = (offset / ENTRY_SIZE) as usize;
        let Some(entry) = self.entries.get(v).copied() else {
            return;
        };
        let mut words = [
            entry.message.address_lo,
            entry.message.address_hi,
            entry.message.data,
            entry.control,
        ];
        for (i, value) in data.iter().enumerate() {
            let at = offset % ENTRY_SIZE + i as u64;
            if at >= ENTRY_SIZE {
                break;
            }
            let mut bytes = words[(at / 4) as usize].to_le_bytes();
            bytes[(at % 4) as usize] = *value;
            words[(at / 4) as usize] = u32::from_le_bytes(bytes);
        }
        let updated = Entry {
            message: MsiMessage {
                address_lo: words[0],
                address_hi: words[1],
                data: words[2],
            },
            control: words[3] & VECTOR_MASKED,
        };
        self.entries[v] = updated;
        if updated.message != entry.message {
            self.update_route(v);
        }
        self.deliver_pending();
    }

    /// A guest read of the pending-bit array.
    pub fn pba_read(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            let first = ((offset + i as u64) * 8) as usize;
            *byte = (0..8)
                .filter(|b| self.pending.get(first + b).copied().unwrap_or(false))
                .fold(0u8, |acc, b| acc | (1 << b));
        }
    }
}
