//! virtio-net (virtio 1.2 §5.1): one receive and one transmit queue served by the card's own
//! I/O thread, which waits on both queues' ioeventfds, a stop eventfd and the backend socket.
//! Frames travel over a stream socket in QEMU's `-netdev stream` framing (a 4-byte big-endian
//! length, then the Ethernet frame), what `passt --fd` speaks.
//!
//! Receive: while the guest has posted buffers, frames from the socket are copied in after a
//! zeroed `virtio_net_hdr_v1`; when it has none, the socket is not polled until the guest kicks
//! the receive queue, so the backend's own buffering applies back-pressure. With
//! VIRTIO_NET_F_MRG_RXBUF (what Linux takes) one frame may span several buffers, so frames
//! larger than a page (passt offers a 65520-byte MTU) fit. Transmit: the header is dropped and
//! the frame written with its length; a full socket pauses the queue until it drains.
//!
//! When the backend hangs up, the link goes down (VIRTIO_NET_F_STATUS, with a configuration
//! interrupt), an error is logged, and the guest's frames are dropped; the VM keeps running.

mod io;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP,
};
use vmm_sys_util::eventfd::EventFd;

use super::{Activation, VirtioDevice};
use crate::engine::config::{NetBackend, NetConfig, format_mac};

/// The virtio device ID of a network card.
const DEVICE_ID: u16 = 1;
/// Network controller, Ethernet.
const CLASS_ETHERNET: u32 = 0x02_00_00;
/// Each queue's size.
const QUEUE_SIZE: u16 = 256;
/// `virtio_net_hdr_v1`: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers.
const HEADER_LEN: usize = 12;

/// A network card as the guest sees it, and the socket behind it.
pub struct Net {
    config: NetConfig,
    link_up: Arc<AtomicBool>,
    worker: Option<Worker>,
}

struct Worker {
    stop: EventFd,
    thread: JoinHandle<()>,
}

impl Net {
    /// A card for `config`; its link is up while the backend is connected.
    pub fn new(config: NetConfig) -> Self {
        let NetBackend::Stream(stream) = &config.backend;
        let dead = stream.buffers().lock().map(|b| b.dead).unwrap_or(true);
        Self {
            config,
            link_up: Arc::new(AtomicBool::new(!dead)),
            worker: None,
        }
    }

    /// `virtio_net_config`: mac, status, max_virtqueue_pairs.
    fn config_bytes(&self) -> [u8; 10] {
        let mut c = [0u8; 10];
        c[0..6].copy_from_slice(&self.config.mac);
        let status = if self.link_up.load(Ordering::SeqCst) {
            VIRTIO_NET_S_LINK_UP as u16
        } else {
            0
        };
        c[6..8].copy_from_slice(&status.to_le_bytes());
        c[8..10].copy_from_slice(&1u16.to_le_bytes());
        c
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.stop.write(1);
            if worker.thread.join().is_err() {
                tracing::error!(nic = %self.config.id, "the network card's I/O thread panicked");
            }
        }
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u16 {
        DEVICE_ID
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE, QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS) | (1 << VIRTIO_NET_F_MRG_RXBUF)
    }

    fn pci_class(&self) -> u32 {
        CLASS_ETHERNET
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        super::read_config_bytes(&self.config_bytes(), offset, data);
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {
        // The MAC is not writable: no VIRTIO_NET_F_CTRL_MAC_ADDR, and modern drivers never
        // write the configuration.
    }

    fn activate(&mut self, activation: Activation) -> Result<(), String> {
        let Activation {
            memory,
            queues,
            features,
            config_interrupt,
        } = activation;
        let mut queues = queues.into_iter();
        let (Some(rx), Some(tx)) = (queues.next(), queues.next()) else {
            return Err("the driver did not enable both the receive and transmit queues".into());
        };
        self.stop_worker();
        let stop = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let card = io::Card {
            id: self.config.id.clone(),
            memory,
            rx,
            tx,
            stop: stop.try_clone().map_err(|e| e.to_string())?,
            config_interrupt,
            link_up: self.link_up.clone(),
            mergeable: features & (1 << VIRTIO_NET_F_MRG_RXBUF) != 0,
        };
        let NetBackend::Stream(stream) = self.config.backend.clone();
        tracing::debug!(nic = %self.config.id, mac = %format_mac(&self.config.mac), "virtio-net up");
        let thread = std::thread::Builder::new()
            .name(format!("net-{}", self.config.id))
            .spawn(move || io::run(card, stream))
            .map_err(|e| e.to_string())?;
        self.worker = Some(Worker { stop, thread });
        Ok(())
    }

    fn reset(&mut self) {
        self.stop_worker();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop_worker();
    }
}
