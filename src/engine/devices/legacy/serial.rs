//! COM1: a 16550 UART (vm-superio) whose output feeds the console and whose interrupt reaches
//! IRQ 4 through an irqfd. Console input larger than the UART's FIFO waits in a backlog and moves
//! in as the guest reads.

use std::collections::VecDeque;

use vm_superio::Serial;
use vm_superio::serial::NoEvents;

use crate::engine::console::ConsoleSink;
use crate::engine::devices::GuestRequest;
use crate::engine::devices::bus::BusDevice;
use crate::engine::devices::interrupts::IrqFdTrigger;

/// COM1's base port.
pub const COM1_PORT: u16 = 0x3f8;
/// COM1's ISA IRQ.
pub const COM1_IRQ: u32 = 4;
/// Registers of a 16550.
pub const PORT_COUNT: u64 = 8;

/// The UART and its input backlog.
pub struct SerialPort {
    serial: Serial<IrqFdTrigger, NoEvents, ConsoleSink>,
    backlog: VecDeque<u8>,
}

impl SerialPort {
    /// A UART raising `irq` and writing to `sink`.
    pub fn new(irq: IrqFdTrigger, sink: ConsoleSink) -> Self {
        Self {
            serial: Serial::new(irq, sink),
            backlog: VecDeque::new(),
        }
    }

    /// Queues console input for the guest.
    pub fn send_input(&mut self, bytes: &[u8]) {
        self.backlog.extend(bytes);
        self.refill();
    }

    fn refill(&mut self) {
        let room = self.serial.fifo_capacity();
        if self.backlog.is_empty() || room == 0 {
            return;
        }
        let chunk: Vec<u8> = self.backlog.drain(..room.min(self.backlog.len())).collect();
        match self.serial.enqueue_raw_bytes(&chunk) {
            Ok(taken) if taken < chunk.len() => {
                for b in chunk[taken..].iter().rev() {
                    self.backlog.push_front(*b);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("serial input dropped: {e:?}"),
        }
    }
}

impl BusDevice for SerialPort {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        if data.len() != 1 {
            data.fill(0xff);
            return;
        }
        data[0] = self.serial.read(offset as u8);
        self.refill();
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) -> Option<GuestRequest> {
        if data.len() == 1
            && let Err(e) = self.serial.write(offset as u8, data[0])
        {
            tracing::warn!("serial write failed: {e:?}");
        }
        None
    }
}
