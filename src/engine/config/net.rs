//! The plain description of one network card the engine attaches (virtio-net) and the backend
//! its frames travel through. `crate::launch` builds these (and starts the backend process);
//! tests build them over a socketpair.

use std::fmt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// One virtio-net card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// How logs and messages name the card (`net0`, …).
    pub id: String,
    /// The card's MAC address, as the guest reads it from the device configuration.
    pub mac: [u8; 6],
    /// Where its frames go.
    pub backend: NetBackend,
}

/// Where a card's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// A stream socket in QEMU's `-netdev stream` framing (each frame after its 4-byte
    /// big-endian length), what `passt --fd` speaks.
    Stream(FrameStream),
}

/// A connected stream socket to a frame backend, shared by every incarnation of the VM (a
/// guest reboot rebuilds the devices but keeps the backend): it also keeps the bytes of a frame
/// half read or half written when a device stops, so the framing survives a reset.
#[derive(Clone)]
pub struct FrameStream {
    inner: Arc<StreamInner>,
}

struct StreamInner {
    socket: UnixStream,
    buffers: Mutex<StreamBuffers>,
}

/// Bytes in flight between the socket and the device.
#[derive(Default)]
pub(crate) struct StreamBuffers {
    /// Received bytes not yet delivered to the guest: `rx[rx_start..rx_end]` (the vector is
    /// the device's fixed-size receive buffer once it has run).
    pub rx: Vec<u8>,
    pub rx_start: usize,
    pub rx_end: usize,
    /// Framed bytes from the guest not yet written: `tx[tx_start..]`.
    pub tx: Vec<u8>,
    pub tx_start: usize,
    /// The backend hung up or broke the framing; nothing is read or written any more.
    pub dead: bool,
}

impl FrameStream {
    /// Wraps a connected socket (made non-blocking: the device's I/O thread polls it).
    pub fn new(socket: UnixStream) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            inner: Arc::new(StreamInner {
                socket,
                buffers: Mutex::new(StreamBuffers::default()),
            }),
        })
    }

    /// A card with its cable out: a stream that is dead from the start (the guest sees the link
    /// down; nothing is read or written).
    pub fn unplugged() -> std::io::Result<Self> {
        let (socket, _) = UnixStream::pair()?;
        let stream = Self::new(socket)?;
        if let Ok(mut buffers) = stream.inner.buffers.lock() {
            buffers.dead = true;
        }
        Ok(stream)
    }

    pub(crate) fn socket(&self) -> &UnixStream {
        &self.inner.socket
    }

    pub(crate) fn buffers(&self) -> &Mutex<StreamBuffers> {
        &self.inner.buffers
    }
}

impl fmt::Debug for FrameStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::fd::AsRawFd;
        write!(f, "FrameStream(fd {})", self.inner.socket.as_raw_fd())
    }
}

/// Two handles are equal when they share one socket.
impl PartialEq for FrameStream {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for FrameStream {}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
