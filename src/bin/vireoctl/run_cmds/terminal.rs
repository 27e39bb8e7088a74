//! The local terminal as a serial console: raw mode, and Ctrl+] as the escape.

use std::io::Read;

use vireo::engine::Vm;

/// The byte Ctrl+] sends, virsh's console escape.
pub const ESCAPE: u8 = 0x1d;

/// Copies stdin to the guest's serial port on a background thread; Ctrl+] forces the VM off.
pub fn forward_stdin(vm: &Vm) {
    let control = vm.controller();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = &buf[..n];
                    if let Some(at) = bytes.iter().position(|b| *b == ESCAPE) {
                        control.send_input(&bytes[..at]);
                        control.force_off();
                        break;
                    }
                    control.send_input(bytes);
                }
            }
        }
    });
}

/// Puts the terminal in raw mode while the console is attached; restores it on drop.
pub struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    pub fn enter() -> Option<Self> {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(0) } != 1 {
            return None;
        }
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0, checked below.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is a terminal and `saved` is a valid termios to write into.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct we own.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: fd 0 is a terminal; `raw` is a valid termios.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same terminal in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}
