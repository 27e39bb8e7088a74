//! What a console window shows (a VM of this computer or of a libvirt connection) and what
//! attaching to its serial console found.

use std::os::unix::net::UnixStream;

/// Which VM a console window shows: one of this computer's, or one on a libvirt connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsoleTarget {
    pub name: String,
    /// The libvirt connection's URI; `None` for this computer's built-in engine.
    pub uri: Option<String>,
}

impl ConsoleTarget {
    /// A VM of this computer.
    pub fn builtin(name: &str) -> ConsoleTarget {
        ConsoleTarget {
            name: name.to_owned(),
            uri: None,
        }
    }

    /// A VM on the libvirt connection `uri`.
    pub fn libvirt(uri: &str, name: &str) -> ConsoleTarget {
        ConsoleTarget {
            name: name.to_owned(),
            uri: Some(uri.to_owned()),
        }
    }
}

/// The outcome of connecting to the runner, from a worker: the connection, or how the VM
/// last ended (the runner's exit state) when it is not running; the outer error is a worker
/// that timed out or panicked.
pub type AttachResult = Result<Attached, String>;

/// What attaching found.
#[derive(Debug)]
pub enum Attached {
    /// The console, to read and write.
    Stream(UnixStream),
    /// This computer's VM is not running; how it last ended, if known.
    Stopped(Option<String>),
    /// A libvirt console that could not be opened: why, whether another client holds it (Take
    /// Over helps), and whether trying again later may work (the VM is not running yet).
    Refused {
        message: String,
        busy: bool,
        retry: bool,
    },
}
