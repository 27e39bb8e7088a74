//! The console window for a VM on a libvirt connection: its serial console through
//! [`ConsoleSession`] (libvirt's `virDomainOpenConsole`), in the same terminal as this
//! computer's VMs.

use std::time::Duration;

use gettextrs::gettext;

use super::Attached;
use crate::launch::connections::{ConsoleError, ConsoleSession};

/// Opening a console connects to the host first (maybe over SSH): give it longer than a local
/// runner.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the serial console of `name` on `uri` (taking it over from its holder if `force`);
/// runs in a worker.
pub fn attach(uri: &str, name: &str, force: bool) -> Attached {
    match ConsoleSession::open(uri, name, force) {
        Ok(session) => Attached::Stream(session.into_stream()),
        Err(err) => {
            tracing::debug!(uri, name, %err, "libvirt console not opened");
            refused(&err)
        }
    }
}

/// The banner for a console that could not be opened, in the user's language where the cause
/// is known (libvirt's own text otherwise).
fn refused(err: &ConsoleError) -> Attached {
    let (message, busy, retry) = match err {
        ConsoleError::Busy { .. } => (
            gettext(
                "Another client (virsh console, virt-manager or another window) is using this serial console. Take Over disconnects it.",
            ),
            true,
            false,
        ),
        ConsoleError::NotRunning { .. } => (
            gettext(
                "The virtual machine is not running. The console reconnects when it starts.",
            ),
            false,
            true,
        ),
        ConsoleError::NoConsole { message, .. } => (
            gettext(
                "This virtual machine has no serial console on a pseudo-terminal ({reason}). Add a serial device of type “pty” in its XML and start it again.",
            )
            .replace("{reason}", message),
            false,
            false,
        ),
        // No connection, no such domain, …: the message names the host and the fix; try
        // again later, the host may come back.
        other => (other.to_string(), false, true),
    };
    Attached::Refused {
        message,
        busy,
        retry,
    }
}

/// The banner once an open console ends: the VM stopped, or another client took it over.
pub fn closed_banner() -> String {
    gettext(
        "The console closed: the virtual machine stopped, or another client took the console over. It reconnects when it can.",
    )
}
