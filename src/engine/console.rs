//! The serial console as a byte stream: a scrollback ring plus any number of live readers.
//!
//! A reader that attaches late (a GUI console tab opened after boot, `vireoctl console`) first
//! gets the scrollback, then every new byte. Readers never block the guest: each has its own
//! unbounded channel, and a reader that went away is dropped on the next write.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How much console output is kept for readers that attach later.
pub const DEFAULT_SCROLLBACK: usize = 256 * 1024;

/// A VM's console output, shared by the serial device and every reader.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    scrollback: VecDeque<u8>,
    capacity: usize,
    readers: Vec<Sender<Vec<u8>>>,
    closed: bool,
}

impl Console {
    /// An empty console keeping the last `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                scrollback: VecDeque::with_capacity(capacity.min(64 * 1024)),
                capacity,
                readers: Vec::new(),
                closed: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the ring inconsistent; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attaches a reader: it gets the scrollback so far and then every later byte.
    pub fn attach(&self) -> ConsoleReader {
        let mut inner = self.lock();
        let (tx, rx) = mpsc::channel();
        let scrollback = inner.scrollback.iter().copied().collect();
        if !inner.closed {
            inner.readers.push(tx);
        }
        ConsoleReader { scrollback, rx }
    }

    /// Everything still in the scrollback ring.
    pub fn scrollback(&self) -> Vec<u8> {
        self.lock().scrollback.iter().copied().collect()
    }

    /// Appends guest output and hands it to every reader.
    pub fn push(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        let overflow = (inner.scrollback.len() + bytes.len()).saturating_sub(inner.capacity);
        let drop_len = overflow.min(inner.scrollback.len());
        inner.scrollback.drain(..drop_len);
        let keep = bytes.len().min(inner.capacity);
        inner
            .scrollback
            .extend(bytes[bytes.len() - keep..].iter().copied());
        inner.readers.retain(|tx| tx.send(bytes.to_vec()).is_ok());
    }

    /// Ends every reader's stream (the VM is gone); the scrollback stays readable.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.readers.clear();
    }

    /// A `Write` that feeds this console (what the serial device writes to).
    pub fn sink(&self) -> ConsoleSink {
        ConsoleSink {
            console: self.clone(),
        }
    }
}

/// The serial device's output end.
pub struct ConsoleSink {
    console: Console,
}

impl io::Write for ConsoleSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.console.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One attached reader.
pub struct ConsoleReader {
    /// The output produced before this reader attached.
    pub scrollback: Vec<u8>,
    rx: Receiver<Vec<u8>>,
}

impl ConsoleReader {
    /// The next chunk of output; `None` once the VM is gone.
    pub fn recv(&self) -> Option<Vec<u8>> {
        self.rx.recv().ok()
    }

    /// The next chunk within `timeout`: `Ok(None)` on timeout, `Err(())` once the VM is gone.
    #[allow(clippy::result_unit_err)]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>, ()> {
        match self.rx.recv_timeout(timeout) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_reader_gets_scrollback_then_live_bytes() {
        let console = Console::new(8);
        console.push(b"hello ");
        console.push(b"world");
        let reader = console.attach();
        assert_eq!(reader.scrollback, b"lo world");
        console.push(b"!");
        assert_eq!(reader.recv(), Some(b"!".to_vec()));
        console.close();
        assert_eq!(reader.recv(), None);
    }

    #[test]
    fn several_readers_each_get_every_byte() {
        let console = Console::new(64);
        let a = console.attach();
        let b = console.attach();
        console.push(b"x");
        assert_eq!(a.recv(), Some(b"x".to_vec()));
        assert_eq!(b.recv(), Some(b"x".to_vec()));
    }

    #[test]
    fn oversized_write_keeps_its_tail() {
        let console = Console::new(4);
        console.push(b"abcdefgh");
        assert_eq!(console.scrollback(), b"efgh");
    }
}
