//! libvirt events instead of polling: a domain's lifecycle changes (defined, started, stopped,
//! …) and the loss of the connection are pushed to a callback as they happen.
//!
//! The `virt` 0.4 crate wraps neither libvirt's event loop nor its domain events, so this
//! module calls `virt::sys` directly: `virEventRegisterDefaultImpl` once per process plus one
//! thread that runs `virEventRunDefaultImpl` forever, `virConnectDomainEventRegisterAny` for the
//! lifecycle events, `virConnectRegisterCloseCallback` and keepalive for a lost connection.
//! Callbacks run on that event-loop thread; the sink must hand the event on (to a channel)
//! rather than do work there.

use std::ffi::{CStr, c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use virt::sys;

use super::{ConnectionError, LibvirtConnection};

/// What happened to a domain, libvirt's `virDomainEventType` in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainEventKind {
    Defined,
    Undefined,
    Started,
    Suspended,
    Resumed,
    Stopped,
    Shutdown,
    PmSuspended,
    Crashed,
    /// A kind newer than this code.
    Other,
}

impl DomainEventKind {
    fn from_raw(event: c_int) -> DomainEventKind {
        match event as sys::virDomainEventType {
            sys::VIR_DOMAIN_EVENT_DEFINED => DomainEventKind::Defined,
            sys::VIR_DOMAIN_EVENT_UNDEFINED => DomainEventKind::Undefined,
            sys::VIR_DOMAIN_EVENT_STARTED => DomainEventKind::Started,
            sys::VIR_DOMAIN_EVENT_SUSPENDED => DomainEventKind::Suspended,
            sys::VIR_DOMAIN_EVENT_RESUMED => DomainEventKind::Resumed,
            sys::VIR_DOMAIN_EVENT_STOPPED => DomainEventKind::Stopped,
            sys::VIR_DOMAIN_EVENT_SHUTDOWN => DomainEventKind::Shutdown,
            sys::VIR_DOMAIN_EVENT_PMSUSPENDED => DomainEventKind::PmSuspended,
            sys::VIR_DOMAIN_EVENT_CRASHED => DomainEventKind::Crashed,
            _ => DomainEventKind::Other,
        }
    }
}

/// An event from a watched connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A domain's lifecycle changed.
    Domain { name: String, kind: DomainEventKind },
    /// The connection is gone (the daemon ended, the network or keepalive failed); the reason
    /// in words.
    Closed(String),
}

/// Where a watch delivers its events (called on libvirt's event-loop thread).
type Sink = Arc<Mutex<Box<dyn FnMut(ConnectionEvent) + Send>>>;

/// Keepalive: a probe every 5 s, the connection counted lost after 3 unanswered ones, so a
/// host that vanishes (cable, suspend) shows as disconnected within about 20 s.
const KEEPALIVE_INTERVAL_S: c_int = 5;
const KEEPALIVE_COUNT: u32 = 3;

/// Registers libvirt's default event loop and starts the thread that runs it, once per
/// process. Must happen before a connection is opened for that connection's events (and its
/// keepalive) to work, so [`watch`] calls it first.
pub fn ensure_event_loop() -> Result<(), ConnectionError> {
    static LOOP: OnceLock<Result<(), String>> = OnceLock::new();
    LOOP.get_or_init(|| {
        // SAFETY: takes no arguments; called once (OnceLock) before any connection that
        // uses events is opened, as libvirt requires.
        if unsafe { sys::virEventRegisterDefaultImpl() } < 0 {
            return Err("cannot register libvirt's event loop".into());
        }
        std::thread::Builder::new()
            .name("vireo-libvirt-events".into())
            .spawn(|| {
                loop {
                    // SAFETY: the default implementation was registered above; this thread is
                    // the only one that runs it.
                    if unsafe { sys::virEventRunDefaultImpl() } < 0 {
                        tracing::warn!("libvirt's event loop failed an iteration");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            })
            .map(drop)
            .map_err(|e| format!("cannot start libvirt's event-loop thread: {e}"))
    })
    .clone()
    .map_err(|what| ConnectionError::BadAnswer {
        uri: "libvirt".into(),
        what,
    })
}

/// A connection's event registrations; dropping it stops the events.
pub struct EventWatch {
    conn: virt::connect::Connect,
    lifecycle_id: c_int,
}

impl std::fmt::Debug for EventWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWatch")
            .field("lifecycle_id", &self.lifecycle_id)
            .finish()
    }
}

/// Opens `uri` with the event loop running and sends its domain lifecycle events and its loss
/// to `sink` until the returned [`EventWatch`] is dropped.
pub fn watch(
    uri: &str,
    sink: impl FnMut(ConnectionEvent) + Send + 'static,
) -> Result<(LibvirtConnection, EventWatch), ConnectionError> {
    ensure_event_loop()?;
    let conn = LibvirtConnection::open(uri)?;
    let sink: Sink = Arc::new(Mutex::new(Box::new(sink)));
    let raw = conn.raw().as_ptr();

    let opaque = Box::into_raw(Box::new(sink.clone())) as *mut c_void;
    // SAFETY: the lifecycle callback has the signature libvirt calls for
    // VIR_DOMAIN_EVENT_ID_LIFECYCLE (the generic type is how the API takes every callback);
    // `opaque` is a leaked `Box<Sink>` that `free_sink` frees when libvirt drops the
    // registration.
    let lifecycle_id = unsafe {
        let callback: unsafe extern "C" fn(
            sys::virConnectPtr,
            sys::virDomainPtr,
            c_int,
            c_int,
            *mut c_void,
        ) = on_lifecycle;
        sys::virConnectDomainEventRegisterAny(
            raw,
            std::ptr::null_mut(),
            sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            Some(std::mem::transmute::<
                unsafe extern "C" fn(
                    sys::virConnectPtr,
                    sys::virDomainPtr,
                    c_int,
                    c_int,
                    *mut c_void,
                ),
                unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void),
            >(callback)),
            opaque,
            Some(free_sink),
        )
    };
    if lifecycle_id < 0 {
        // SAFETY: libvirt did not take `opaque` when the registration failed.
        drop(unsafe { Box::from_raw(opaque as *mut Sink) });
        let err = virt::error::Error::last_error();
        return Err(ConnectionError::from_virt(
            uri,
            "watching domain events",
            &err,
        ));
    }

    let close_opaque = Box::into_raw(Box::new(sink)) as *mut c_void;
    // SAFETY: `on_close` matches virConnectCloseFunc; `close_opaque` is a leaked `Box<Sink>`
    // freed by `free_sink` when the callback is unregistered or the connection freed.
    if unsafe {
        sys::virConnectRegisterCloseCallback(raw, Some(on_close), close_opaque, Some(free_sink))
    } < 0
    {
        // SAFETY: not registered, so not taken by libvirt.
        drop(unsafe { Box::from_raw(close_opaque as *mut Sink) });
        tracing::debug!(uri, "this connection has no close callback");
    }
    // SAFETY: a plain call on an open connection; drivers without keepalive (local ones)
    // answer -1 or 1, which only means no probes are sent.
    if unsafe { sys::virConnectSetKeepAlive(raw, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT) } != 0 {
        tracing::debug!(uri, "keepalive not available on this connection");
    }
    let watch = EventWatch {
        conn: conn.raw().clone(),
        lifecycle_id,
    };
    Ok((conn, watch))
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        let raw = self.conn.as_ptr();
        // SAFETY: `lifecycle_id` came from a successful registration on this connection, which
        // `self.conn` (a counted reference) keeps open; unregistering an absent close callback
        // only returns an error.
        unsafe {
            sys::virConnectDomainEventDeregisterAny(raw, self.lifecycle_id);
            sys::virConnectUnregisterCloseCallback(raw, Some(on_close));
        }
        if let Err(err) = self.conn.close() {
            tracing::debug!("releasing the watched connection: {err}");
        }
    }
}

fn deliver(opaque: *mut c_void, event: ConnectionEvent) {
    // SAFETY: libvirt passes back the `opaque` registered in `watch`, a live `Box<Sink>` until
    // `free_sink` runs.
    let sink = unsafe { &*(opaque as *const Sink) };
    // A panic in the sink must not unwind into C.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Ok(mut sink) = sink.lock() {
            sink(event);
        }
    }));
    if result.is_err() {
        tracing::error!("a libvirt event handler panicked");
    }
}

unsafe extern "C" fn on_lifecycle(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    _detail: c_int,
    opaque: *mut c_void,
) {
    // SAFETY: libvirt passes a valid domain for the duration of the callback; its name is a
    // NUL-terminated string owned by the domain.
    let name = unsafe {
        let name = sys::virDomainGetName(dom);
        if name.is_null() {
            return;
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    };
    deliver(
        opaque,
        ConnectionEvent::Domain {
            name,
            kind: DomainEventKind::from_raw(event),
        },
    );
}

unsafe extern "C" fn on_close(_conn: sys::virConnectPtr, reason: c_int, opaque: *mut c_void) {
    let why = match reason as sys::virConnectCloseReason {
        sys::VIR_CONNECT_CLOSE_REASON_EOF => "the host closed the connection",
        sys::VIR_CONNECT_CLOSE_REASON_KEEPALIVE => "the host stopped answering (keepalive)",
        sys::VIR_CONNECT_CLOSE_REASON_CLIENT => "the connection was closed",
        _ => "the connection failed",
    };
    deliver(opaque, ConnectionEvent::Closed(why.to_owned()));
}

unsafe extern "C" fn free_sink(opaque: *mut c_void) {
    // SAFETY: `opaque` is a `Box<Sink>` leaked in `watch`; libvirt calls this once per
    // registration, when it drops it.
    drop(unsafe { Box::from_raw(opaque as *mut Sink) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const URI: &str = "test:///default";

    fn next_for(rx: &mpsc::Receiver<ConnectionEvent>, name: &str) -> DomainEventKind {
        loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(ConnectionEvent::Domain { name: n, kind }) if n == name => return kind,
                Ok(_) => continue,
                Err(e) => panic!("no event for {name}: {e}"),
            }
        }
    }

    #[test]
    fn lifecycle_events_arrive_for_define_start_destroy_undefine() {
        let (tx, rx) = mpsc::channel();
        let (conn, watch) = watch(URI, move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        let xml = "<domain type='test'><name>evented</name><memory unit='MiB'>64</memory>\
                   <os><type arch='x86_64'>hvm</type></os></domain>";
        conn.define(xml).unwrap();
        assert_eq!(next_for(&rx, "evented"), DomainEventKind::Defined);
        conn.start("evented", false).unwrap();
        assert_eq!(next_for(&rx, "evented"), DomainEventKind::Started);
        conn.control("evented", super::super::Lifecycle::Suspend)
            .unwrap();
        assert_eq!(next_for(&rx, "evented"), DomainEventKind::Suspended);
        conn.control("evented", super::super::Lifecycle::Destroy)
            .unwrap();
        assert_eq!(next_for(&rx, "evented"), DomainEventKind::Stopped);
        conn.undefine("evented").unwrap();
        assert_eq!(next_for(&rx, "evented"), DomainEventKind::Undefined);
        drop(watch);
    }

    #[test]
    fn a_bad_uri_fails_with_the_uri_named() {
        let err = watch("bogus:///nowhere", |_| {}).unwrap_err();
        assert!(err.to_string().starts_with("bogus:///nowhere"), "{err}");
    }
}
