//! A VNC (RFB 3.8) server for a running VM's screen: `<graphics type='vnc'>` served by the
//! runner from the VM's [`Scanout`] and virtio keyboard and tablet.
//!
//! Hand-written rather than a crate: the RFB server crates on crates.io are either built on
//! tokio (`rustvncserver`, `rfb2`; the runner is plain threads and has no runtime), own the
//! framebuffer themselves (so every guest flush would be copied into theirs and diffed again),
//! take no Unix-socket listeners, or are unmaintained (`rfb` 0.1, 2022) or C bindings
//! (`libvnc`). The part of RFB a VM viewer needs is small: security None or VNC
//! authentication (DES from the RustCrypto `des` crate), 8/16/32-bit true colour, Raw
//! rectangles of the 64 × 64 tiles that changed since the client's last update, DesktopSize
//! when the guest changes mode, and key and pointer events into the virtio input devices.
//!
//! One thread accepts; each client gets a thread reading its messages (input goes straight to
//! the devices) and one writing updates. A client that sends something malformed is closed;
//! the runner and the other clients go on.

mod auth;
mod keysym;
mod net;
mod pixels;
mod rfb;
mod session;
mod settings;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::display::{Frontends, InputEvents, InputKind, Scanout};

pub use net::{Listener, Stream};
pub use settings::{VncListen, VncSettings, vnc_settings};

/// What a VNC server shows and where it sends input.
#[derive(Debug, Clone)]
pub struct VncSources {
    /// The guest's screen.
    pub scanout: Scanout,
    /// The keyboard (virtio, else PS/2), if the VM has one (key events are dropped otherwise).
    pub keyboard: Option<InputEvents>,
    /// The virtio tablet, if the VM has one (pointer events are dropped otherwise).
    pub tablet: Option<InputEvents>,
}

impl VncSources {
    /// The screen and input devices of a VM; `None` when it has no display.
    pub fn of(frontends: &Frontends) -> Option<Self> {
        Some(Self {
            scanout: frontends.scanout.clone()?,
            keyboard: frontends.keyboard().cloned(),
            tablet: frontends.input(InputKind::Tablet).cloned(),
        })
    }
}

/// Why the VNC server of a domain could not listen.
#[derive(Debug, thiserror::Error)]
pub enum VncError {
    #[error("cannot listen for VNC on {target}: {cause}; {fix}")]
    Bind {
        target: String,
        cause: std::io::Error,
        fix: &'static str,
    },
    #[error(transparent)]
    Runner(#[from] super::runner::RunnerError),
}

/// Binds the listener `settings` ask for, for domain `name` (a socket without a path is
/// `<name>.vnc` in the runtime directory, private to this user).
pub fn bind(settings: &VncSettings, name: &str) -> Result<Listener, VncError> {
    match &settings.listen {
        VncListen::Tcp { address, port } => {
            Listener::tcp(*address, *port).map_err(|cause| VncError::Bind {
                target: match port {
                    Some(port) => format!("{address} port {port}"),
                    None => format!("{address} (any port from {})", net::FIRST_PORT),
                },
                cause,
                fix: "choose another port with `vireoctl edit`, or autoport='yes'",
            })
        }
        VncListen::Unix(path) => {
            let path = match path {
                Some(path) => path.clone(),
                None => super::runner::runtime_dir()?.join(format!("{name}.vnc")),
            };
            Listener::unix(&path).map_err(|cause| VncError::Bind {
                target: path.display().to_string(),
                cause,
                fix: "choose another socket path, or stop whatever serves there",
            })
        }
    }
}

/// A VNC server accepting clients on its listener until dropped.
pub struct VncServer {
    uri: String,
    stop: Arc<AtomicBool>,
    listener: Arc<Listener>,
}

impl VncServer {
    /// Serves `sources` on `listener`; `password` turns on VNC authentication. The desktop
    /// name clients show is `name`.
    pub fn start(
        listener: Listener,
        sources: VncSources,
        name: &str,
        password: Option<&str>,
    ) -> std::io::Result<Self> {
        let uri = listener.uri()?;
        let stop = Arc::new(AtomicBool::new(false));
        let listener = Arc::new(listener);
        let config = Arc::new(session::Config {
            sources,
            name: name.to_string(),
            password: password.map(auth::key),
        });
        let (accepting, stopped) = (listener.clone(), stop.clone());
        std::thread::Builder::new()
            .name("vnc-accept".into())
            .spawn(move || {
                loop {
                    let stream = accepting.accept();
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    match stream {
                        Ok(stream) => session::spawn(stream, config.clone(), stopped.clone()),
                        Err(err) => {
                            tracing::warn!(%err, "VNC: accepting a client failed");
                            std::thread::sleep(std::time::Duration::from_millis(100));
                        }
                    }
                }
            })?;
        Ok(Self {
            uri,
            stop,
            listener,
        })
    }

    /// Where clients connect, as virsh's `domdisplay` prints it (`vnc://127.0.0.1:5900`,
    /// `vnc+unix:///path`).
    pub fn uri(&self) -> &str {
        &self.uri
    }
}

impl Drop for VncServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.listener.wake();
        // Now, not when the accepting thread lets go of the listener.
        self.listener.remove_socket_file();
    }
}
