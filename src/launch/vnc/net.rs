//! Where VNC clients connect: a TCP port or a Unix socket, behind one type so the sessions do
//! not care which.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The first port `autoport` tries (display :0), as libvirt and QEMU number them.
pub const FIRST_PORT: u16 = 5900;

/// A bound VNC listener.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// The socket and its path (removed when the listener is dropped).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `address:port`, or with `port` `None` the first free port from 5900 (libvirt's
    /// `autoport`).
    pub fn tcp(address: IpAddr, port: Option<u16>) -> std::io::Result<Self> {
        let Some(port) = port else {
            let mut last = None;
            for port in FIRST_PORT..=u16::MAX {
                match TcpListener::bind(SocketAddr::new(address, port)) {
                    Ok(listener) => return Ok(Self::Tcp(listener)),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            return Err(last.unwrap_or_else(|| std::io::Error::other("no free VNC port")));
        };
        TcpListener::bind(SocketAddr::new(address, port)).map(Self::Tcp)
    }

    /// Binds a Unix socket at `path` (mode 0600: only this user may connect), replacing a
    /// stale one; fails if a server answers there.
    pub fn unix(path: &Path) -> std::io::Result<Self> {
        if path.symlink_metadata().is_ok() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("a server already answers on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self::Unix(listener, path.to_path_buf()))
    }

    /// The port a TCP listener got.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Self::Unix(..) => None,
        }
    }

    /// virsh's `domdisplay` URI.
    pub fn uri(&self) -> std::io::Result<String> {
        Ok(match self {
            Self::Tcp(l) => {
                let addr = l.local_addr()?;
                match addr.ip() {
                    IpAddr::V6(ip) => format!("vnc://[{ip}]:{}", addr.port()),
                    IpAddr::V4(ip) => format!("vnc://{ip}:{}", addr.port()),
                }
            }
            Self::Unix(_, path) => format!("vnc+unix://{}", path.display()),
        })
    }

    /// Waits for the next client.
    pub fn accept(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Self::Tcp(l) => {
                let (stream, _) = l.accept()?;
                // Updates are written whole; small input replies must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                Stream::Tcp(stream)
            }
            Self::Unix(l, _) => Stream::Unix(l.accept()?.0),
        })
    }

    /// Connects to the listener once, so a blocked [`Self::accept`] returns (on shutdown).
    pub fn wake(&self) {
        match self {
            Self::Tcp(l) => {
                if let Ok(mut addr) = l.local_addr() {
                    if addr.ip().is_unspecified() {
                        addr.set_ip(match addr.ip() {
                            IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                            IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                        });
                    }
                    let _ = TcpStream::connect(addr);
                }
            }
            Self::Unix(_, path) => {
                let _ = UnixStream::connect(path);
            }
        }
    }
}

impl Listener {
    /// Removes a Unix listener's socket file (clients can no longer find it).
    pub fn remove_socket_file(&self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.remove_socket_file();
    }
}

/// One client's connection.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// A second handle on the same connection (one thread reads, one writes).
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(match self {
            Self::Tcp(s) => Self::Tcp(s.try_clone()?),
            Self::Unix(s) => Self::Unix(s.try_clone()?),
        })
    }

    /// Closes both directions, so the other thread's read or write fails and it ends too.
    pub fn shutdown(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Both),
            Self::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Bounds each read (the handshake must not hold a thread forever); `None` for none.
    pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_read_timeout(timeout),
            Self::Unix(s) => s.set_read_timeout(timeout),
        }
    }
}

impl Stream {
    /// Bounds each write: a client that stops reading must not hold its thread forever.
    pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_write_timeout(timeout),
            Self::Unix(s) => s.set_write_timeout(timeout),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.flush(),
            Self::Unix(s) => s.flush(),
        }
    }
}
