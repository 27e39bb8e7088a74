//! The serial console of a libvirt domain through `virDomainOpenConsole`, handed to the caller
//! as one end of a Unix socket pair, so `vireoctl console` and the app's console window read
//! and write it exactly as they do the built-in engine's console (a `UnixStream`).
//!
//! Why a socket pair and not `virt::stream::Stream` directly: a blocking libvirt stream holds
//! the connection's lock while it waits for output, so a keystroke could not be sent until the
//! guest printed something. A non-blocking stream is driven by libvirt's event loop
//! ([`super::events::ensure_event_loop`]); its readable callback copies the guest's output into
//! the socket, and a thread copies what the caller writes into the stream. Each session has its
//! own connection, opened after the event loop, so the app's connection is never blocked by a
//! console and the console's stream events work.
//!
//! The `virt` 0.4 crate's stream callback keeps a pointer to the `Stream` value (which must
//! then never move), so this module calls `virt::sys` for the stream.

use std::ffi::{c_int, c_void};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use virt::error::{Error as VirtError, ErrorNumber};
use virt::sys;

use super::{ConnectionError, LibvirtConnection, events};

/// A console that cannot be opened, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Another client (virsh console, virt-manager, another Vireo) holds the console.
    #[error(
        "{uri}: the serial console of domain '{name}' is in use by another client \
         (virsh console, virt-manager or another Vireo window); take it over with \
         `vireoctl -c {uri} console --force {name}` (that client is disconnected)"
    )]
    Busy { uri: String, name: String },
    /// The domain does not run, so it has no console to open.
    #[error(
        "{uri}: domain '{name}' is not running, so its serial console cannot be opened; \
         start it with `vireoctl -c {uri} start {name}`"
    )]
    NotRunning { uri: String, name: String },
    /// The domain has no serial console on a pty.
    #[error(
        "{uri}: domain '{name}' has no serial console that libvirt can open ({message}); \
         add `<serial type='pty'/>` and `<console type='pty'/>` to its <devices> and start \
         it again"
    )]
    NoConsole {
        uri: String,
        name: String,
        message: String,
    },
    /// Any other refusal (no connection, no such domain, …).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The local socket pair could not be made.
    #[error("cannot set up the console of domain '{name}': {source}")]
    Local {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConsoleError {
    /// Whether taking the console over (`force`) would help.
    pub fn is_busy(&self) -> bool {
        matches!(self, ConsoleError::Busy { .. })
    }

    fn from_open(uri: &str, name: &str, err: &VirtError) -> ConsoleError {
        let message = err.message().to_owned();
        let lower = message.to_ascii_lowercase();
        let (uri, name) = (uri.to_owned(), name.to_owned());
        if lower.contains("active console session") {
            ConsoleError::Busy { uri, name }
        } else if err.code() == ErrorNumber::OperationInvalid && lower.contains("not running") {
            ConsoleError::NotRunning { uri, name }
        } else if lower.contains("character device") || lower.contains("pty") {
            ConsoleError::NoConsole { uri, name, message }
        } else {
            ConsoleError::Connection(ConnectionError::from_virt(
                &uri,
                format!("opening the console of domain '{name}'"),
                err,
            ))
        }
    }
}

/// An open serial console: read the guest's output, write keystrokes. Dropping it (or
/// shutting down its stream) closes the console on the host, so another client may open it.
#[derive(Debug)]
pub struct ConsoleSession {
    stream: UnixStream,
}

impl ConsoleSession {
    /// Opens the serial console of the running domain `name` on `uri`; `force` takes it over
    /// from a client that holds it (as `virsh console --force`).
    pub fn open(uri: &str, name: &str, force: bool) -> Result<ConsoleSession, ConsoleError> {
        events::ensure_event_loop()?;
        let conn = LibvirtConnection::open(uri)?;
        let domain = conn.domain(name)?;
        let name = domain
            .get_name()
            .map_err(|e| ConnectionError::from_virt(uri, "reading a domain's name", &e))?;
        // SAFETY: a plain constructor on an open connection; null means failure (checked).
        let stream = unsafe { sys::virStreamNew(conn.raw().as_ptr(), sys::VIR_STREAM_NONBLOCK) };
        if stream.is_null() {
            let err = VirtError::last_error();
            return Err(ConnectionError::from_virt(uri, "creating a stream", &err).into());
        }
        let stream = OwnedStream(stream);
        let flags = if force {
            sys::VIR_DOMAIN_CONSOLE_FORCE
        } else {
            0
        } | sys::VIR_DOMAIN_CONSOLE_SAFE;
        // SAFETY: the domain and stream are live; a null device name means the first console.
        if unsafe { sys::virDomainOpenConsole(domain.as_ptr(), std::ptr::null(), stream.0, flags) }
            < 0
        {
            return Err(ConsoleError::from_open(
                uri,
                &name,
                &VirtError::last_error(),
            ));
        }
        let local = |source| ConsoleError::Local {
            name: name.clone(),
            source,
        };
        let (theirs, ours) = UnixStream::pair().map_err(local)?;
        let to_caller = ours.try_clone().map_err(local)?;
        // The event loop must not stall for long on a caller that stopped reading.
        to_caller
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(local)?;
        let opaque = Box::into_raw(Box::new(to_caller)) as *mut c_void;
        let events = sys::VIR_STREAM_EVENT_READABLE
            | sys::VIR_STREAM_EVENT_ERROR
            | sys::VIR_STREAM_EVENT_HANGUP;
        // SAFETY: `on_stream` matches virStreamEventCallback; `opaque` is a leaked
        // `Box<UnixStream>` that `free_opaque` frees when libvirt drops the callback.
        if unsafe {
            sys::virStreamEventAddCallback(
                stream.0,
                events as c_int,
                Some(on_stream),
                opaque,
                Some(free_opaque),
            )
        } < 0
        {
            // SAFETY: not registered, so libvirt did not take `opaque`.
            drop(unsafe { Box::from_raw(opaque as *mut UnixStream) });
            let err = VirtError::last_error();
            return Err(
                ConnectionError::from_virt(uri, "watching the console stream", &err).into(),
            );
        }
        tracing::debug!(uri, %name, force, "console opened");
        std::thread::Builder::new()
            .name(format!("vireo-console-{name}"))
            .spawn(move || forward_input(ours, stream, conn))
            .map_err(local)?;
        Ok(ConsoleSession { stream: theirs })
    }

    /// The session as a socket: the guest's output to read, keystrokes to write.
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// A second handle on the same session (one thread reads while another writes).
    pub fn try_clone(&self) -> std::io::Result<ConsoleSession> {
        Ok(ConsoleSession {
            stream: self.stream.try_clone()?,
        })
    }

    /// Reads output, waiting at most `timeout` (`None`: until some arrives).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Closes the console on the host (every handle of this session then reads end of file).
    pub fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

impl Read for ConsoleSession {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for ConsoleSession {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// A libvirt stream reference, aborted and freed when dropped.
struct OwnedStream(sys::virStreamPtr);

// SAFETY: libvirt's stream calls are thread-safe; the pointer is only freed once, in drop.
unsafe impl Send for OwnedStream {}

impl Drop for OwnedStream {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a stream this value owns one reference of; removing an absent
        // callback or aborting a finished stream only returns an error.
        unsafe {
            sys::virStreamEventRemoveCallback(self.0);
            sys::virStreamAbort(self.0);
            sys::virStreamFree(self.0);
        }
    }
}

/// Copies what the caller writes into the stream until the caller closes its end (or the
/// guest's side ends, which shuts `ours` down); then closes the stream and the connection.
fn forward_input(mut ours: UnixStream, stream: OwnedStream, conn: LibvirtConnection) {
    let mut buf = [0u8; 1024];
    'reading: loop {
        let n = match ours.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            // SAFETY: the stream is live (owned by this thread); `rest` is valid for its
            // length and libvirt only reads it.
            let sent = unsafe { sys::virStreamSend(stream.0, rest.as_ptr().cast(), rest.len()) };
            match sent {
                // The stream's outgoing buffer is full: let the event loop drain it.
                -2 => std::thread::sleep(Duration::from_millis(5)),
                n if n > 0 => rest = &rest[n as usize..],
                _ => {
                    tracing::debug!(
                        uri = conn.uri(),
                        "console input failed: {}",
                        VirtError::last_error()
                    );
                    break 'reading;
                }
            }
        }
    }
    let _ = ours.shutdown(Shutdown::Both);
    drop(stream);
    tracing::debug!(uri = conn.uri(), "console closed");
    drop(conn);
}

/// libvirt's stream callback (on the event-loop thread): the guest's output into the socket;
/// at the stream's end, the socket shut down so the caller reads end of file.
unsafe extern "C" fn on_stream(stream: sys::virStreamPtr, events: c_int, opaque: *mut c_void) {
    // SAFETY: libvirt passes back the `Box<UnixStream>` registered with this callback, live
    // until `free_opaque` runs.
    let mut to_caller = unsafe { &*(opaque as *const UnixStream) };
    let mut ended = events as u32 & (sys::VIR_STREAM_EVENT_ERROR | sys::VIR_STREAM_EVENT_HANGUP)
        != 0
        && events as u32 & sys::VIR_STREAM_EVENT_READABLE == 0;
    let mut buf = [0u8; 4096];
    while !ended {
        // SAFETY: `stream` is the live stream this callback watches; `buf` is writable for
        // its length.
        let n = unsafe { sys::virStreamRecv(stream, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            -2 => break,
            n if n > 0 => {
                if to_caller.write_all(&buf[..n as usize]).is_err() {
                    ended = true;
                }
            }
            _ => ended = true,
        }
    }
    if ended {
        // SAFETY: stops further events from a stream that has ended (no busy loop on hangup).
        unsafe { sys::virStreamEventUpdateCallback(stream, 0) };
        let _ = to_caller.shutdown(Shutdown::Both);
    }
}

unsafe extern "C" fn free_opaque(opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Box<UnixStream>` leaked in `ConsoleSession::open`; libvirt
    // calls this once, when it drops the callback.
    drop(unsafe { Box::from_raw(opaque as *mut UnixStream) });
}
