//! Linux key codes as AT keyboard scancodes. A PS/2 keyboard sends scancode set 2; the i8042
//! translates it to set 1 (the XT codes) when its command byte's XLATE bit is set, as the BIOS
//! leaves it and Linux keeps it ("AT Translated Set 2 keyboard"). Linux's key codes 1–88 are
//! the set 1 codes themselves, so each key is described once, in set 1, and its set 2 code is
//! found by running the controller's translation table backwards.

/// The i8042's set 2 → set 1 translation table (every 8042 has it; IBM's PC/AT reference).
/// Codes from 0x88 up pass unchanged.
const TRANSLATE: [u8; 0x88] = [
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
    0x80, 0x81, 0x82, 0x41, 0x54, 0x85, 0x86, 0x87,
];

/// Set 2's break prefix: the next code is a release.
pub const BREAK: u8 = 0xf0;
/// The prefix of extended keys, in both sets.
pub const EXTENDED: u8 = 0xe0;
/// Linux's `KEY_PAUSE`, which has no release and a sequence of its own.
const KEY_PAUSE: u16 = 119;

/// One byte of set 2 as the i8042 passes it on with translation on (prefixes unchanged).
pub fn translate(code: u8) -> u8 {
    TRANSLATE.get(usize::from(code)).copied().unwrap_or(code)
}

/// A key's set 1 code: the byte after an optional 0xE0 prefix.
fn set1(key: u16) -> Option<(bool, u8)> {
    let plain = |c: u8| Some((false, c));
    let extended = |c: u8| Some((true, c));
    match key {
        1..=83 | 87 | 88 => plain(key as u8),
        86 => plain(0x56),     // KEY_102ND
        89 => plain(0x73),     // KEY_RO
        92 => plain(0x79),     // KEY_HENKAN
        93 => plain(0x70),     // KEY_KATAKANAHIRAGANA
        94 => plain(0x7b),     // KEY_MUHENKAN
        95 => plain(0x5c),     // KEY_KPJPCOMMA
        96 => extended(0x1c),  // KEY_KPENTER
        97 => extended(0x1d),  // KEY_RIGHTCTRL
        98 => extended(0x35),  // KEY_KPSLASH
        99 => extended(0x37),  // KEY_SYSRQ (Print Screen, without its fake shifts)
        100 => extended(0x38), // KEY_RIGHTALT
        102 => extended(0x47), // KEY_HOME
        103 => extended(0x48), // KEY_UP
        104 => extended(0x49), // KEY_PAGEUP
        105 => extended(0x4b), // KEY_LEFT
        106 => extended(0x4d), // KEY_RIGHT
        107 => extended(0x4f), // KEY_END
        108 => extended(0x50), // KEY_DOWN
        109 => extended(0x51), // KEY_PAGEDOWN
        110 => extended(0x52), // KEY_INSERT
        111 => extended(0x53), // KEY_DELETE
        113 => extended(0x20), // KEY_MUTE
        114 => extended(0x2e), // KEY_VOLUMEDOWN
        115 => extended(0x30), // KEY_VOLUMEUP
        116 => extended(0x5e), // KEY_POWER
        117 => plain(0x59),    // KEY_KPEQUAL
        121 => plain(0x7e),    // KEY_KPCOMMA
        124 => plain(0x7d),    // KEY_YEN
        125 => extended(0x5b), // KEY_LEFTMETA
        126 => extended(0x5c), // KEY_RIGHTMETA
        127 => extended(0x5d), // KEY_COMPOSE
        142 => extended(0x5f), // KEY_SLEEP
        143 => extended(0x63), // KEY_WAKEUP
        _ => None,
    }
}

/// The set 2 code the translation table turns into `set1` (the later entry where two do: the
/// real F7 and SysRq codes, 0x83 and 0x84).
fn untranslate(set1: u8) -> Option<u8> {
    TRANSLATE.iter().rposition(|c| *c == set1).map(|i| i as u8)
}

/// The set 2 bytes a key press or release sends; `None` for keys a PC keyboard lacks.
pub fn set2(key: u16, pressed: bool) -> Option<Vec<u8>> {
    if key == KEY_PAUSE {
        // Pause sends Ctrl+NumLock's make and break, prefixed by E1, on press only.
        return Some(if pressed {
            vec![0xe1, 0x14, 0x77, 0xe1, BREAK, 0x14, BREAK, 0x77]
        } else {
            Vec::new()
        });
    }
    let (extended, code) = set1(key)?;
    let code = untranslate(code)?;
    let mut bytes = Vec::with_capacity(3);
    if extended {
        bytes.push(EXTENDED);
    }
    if !pressed {
        bytes.push(BREAK);
    }
    bytes.push(code);
    Some(bytes)
}

/// Set 2 bytes as the i8042 delivers them with translation on: each code through the table,
/// with a preceding break prefix folded into the code's top bit (set 1's release).
pub fn to_set1(set2: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(set2.len());
    let mut released = false;
    for &b in set2 {
        if b == BREAK {
            released = true;
            continue;
        }
        let t = translate(b);
        out.push(if released { t | 0x80 } else { t });
        released = false;
    }
    out
}
