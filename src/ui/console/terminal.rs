//! The terminal side of the serial console: line ends as a serial terminal shows them, and
//! pasting the clipboard as typed input.

use relm4::gtk;
use relm4::gtk::{gdk, prelude::*};
use vte4::prelude::*;

/// `bytes` with every LF not preceded by CR turned into CR LF; `previous` is the byte before.
pub(super) fn crlf(bytes: &[u8], previous: Option<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    let mut last = previous;
    for &b in bytes {
        if b == b'\n' && last != Some(b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        last = Some(b);
    }
    out
}

/// Sends the clipboard's text to the guest through the terminal (as typed input).
pub(super) fn paste_into(terminal: &vte4::Terminal) {
    let Some(display) = gdk::Display::default() else {
        return;
    };
    let terminal = terminal.clone();
    display
        .clipboard()
        .read_text_async(None::<&gtk::gio::Cancellable>, move |text| {
            if let Ok(Some(text)) = text {
                terminal.paste_text(&text);
            }
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_line_feeds_get_a_carriage_return() {
        assert_eq!(super::crlf(b"a\nb\r\nc", None), b"a\r\nb\r\nc");
        assert_eq!(super::crlf(b"\n", Some(b'\r')), b"\n");
        assert_eq!(super::crlf(b"\n", Some(b'x')), b"\r\n");
    }
}
