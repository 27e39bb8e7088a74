//! X keysyms (what VNC clients send) to Linux key codes (what the virtio keyboard reports),
//! for a US layout: the guest applies its own keymap to the codes, so a symbol maps to the
//! key that carries it there, and shifted symbols to the same key as unshifted ones (the
//! client sends Shift itself).

/// The Linux key code for `keysym`, if it is on a PC keyboard.
pub fn linux_code(keysym: u32) -> Option<u16> {
    if let Some(c) = char::from_u32(keysym).filter(|_| keysym < 0x100) {
        return ascii(c.to_ascii_lowercase());
    }
    Some(match keysym {
        0xff08 => 14,  // BackSpace
        0xff09 => 15,  // Tab
        0xfe20 => 15,  // ISO_Left_Tab (Shift+Tab)
        0xff0d => 28,  // Return
        0xff13 => 119, // Pause
        0xff14 => 70,  // Scroll_Lock
        0xff15 => 99,  // Sys_Req
        0xff1b => 1,   // Escape
        0xff50 => 102, // Home
        0xff51 => 105, // Left
        0xff52 => 103, // Up
        0xff53 => 106, // Right
        0xff54 => 108, // Down
        0xff55 => 104, // Page_Up
        0xff56 => 109, // Page_Down
        0xff57 => 107, // End
        0xff61 => 99,  // Print
        0xff63 => 110, // Insert
        0xff67 => 127, // Menu
        0xff7f => 69,  // Num_Lock
        0xff8d => 96,  // KP_Enter
        0xff95 => 71,  // KP_Home
        0xff96 => 75,  // KP_Left
        0xff97 => 72,  // KP_Up
        0xff98 => 77,  // KP_Right
        0xff99 => 80,  // KP_Down
        0xff9a => 73,  // KP_Page_Up
        0xff9b => 81,  // KP_Page_Down
        0xff9c => 79,  // KP_End
        0xff9e => 82,  // KP_Insert
        0xff9f => 83,  // KP_Delete
        0xffaa => 55,  // KP_Multiply
        0xffab => 78,  // KP_Add
        0xffad => 74,  // KP_Subtract
        0xffae => 83,  // KP_Decimal
        0xffaf => 98,  // KP_Divide
        0xffb0..=0xffb9 => [82, 79, 80, 81, 75, 76, 77, 71, 72, 73][(keysym - 0xffb0) as usize],
        0xffbe..=0xffc7 => 59 + (keysym - 0xffbe) as u16, // F1..F10
        0xffc8 => 87,                                     // F11
        0xffc9 => 88,                                     // F12
        0xffe1 => 42,                                     // Shift_L
        0xffe2 => 54,                                     // Shift_R
        0xffe3 => 29,                                     // Control_L
        0xffe4 => 97,                                     // Control_R
        0xffe5 => 58,                                     // Caps_Lock
        0xffe7 | 0xffeb => 125,                           // Meta_L, Super_L
        0xffe8 | 0xffec => 126,                           // Meta_R, Super_R
        0xffe9 => 56,                                     // Alt_L
        0xffea | 0xfe03 => 100,                           // Alt_R, ISO_Level3_Shift (AltGr)
        0xffff => 111,                                    // Delete
        _ => return None,
    })
}

/// Printable ASCII (lower case) to the US key carrying it.
fn ascii(c: char) -> Option<u16> {
    const LETTERS: [u16; 26] = [
        30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17,
        45, 21, 44,
    ];
    Some(match c {
        'a'..='z' => LETTERS[(c as u8 - b'a') as usize],
        '1'..='9' => 2 + (c as u8 - b'1') as u16,
        '0' | ')' => 11,
        '!' => 2,
        '@' => 3,
        '#' => 4,
        '$' => 5,
        '%' => 6,
        '^' => 7,
        '&' => 8,
        '*' => 9,
        '(' => 10,
        '-' | '_' => 12,
        '=' | '+' => 13,
        '[' | '{' => 26,
        ']' | '}' => 27,
        ';' | ':' => 39,
        '\'' | '"' => 40,
        '`' | '~' => 41,
        '\\' | '|' => 43,
        ',' | '<' => 51,
        '.' | '>' => 52,
        '/' | '?' => 53,
        ' ' => 57,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_keysyms_map_to_linux_codes() {
        assert_eq!(linux_code(u32::from(b'a')), Some(30)); // KEY_A
        assert_eq!(linux_code(u32::from(b'A')), Some(30));
        assert_eq!(linux_code(u32::from(b'z')), Some(44));
        assert_eq!(linux_code(u32::from(b'1')), Some(2));
        assert_eq!(linux_code(u32::from(b'?')), Some(53));
        assert_eq!(linux_code(0xff0d), Some(28)); // Return → KEY_ENTER
        assert_eq!(linux_code(0xffc9), Some(88)); // F12
        assert_eq!(linux_code(0xffe3), Some(29)); // Control_L
        assert_eq!(linux_code(0x20ac), None); // EuroSign: no key of its own
    }
}
