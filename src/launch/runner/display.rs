//! The runner's screen and input requests: a PNG of what the guest's virtio-gpu shows, keys
//! pressed on its virtio keyboard, the pointer moved on its virtio tablet. Both ends live here:
//! the runner's answers (from the VM's [`Frontends`](crate::engine::display::Frontends)) and
//! the client calls `vireoctl` makes.

use std::io::Read;
use std::time::Duration;

use super::{Reply, Request, RunnerError, exchange, unexpected};
use crate::engine::display::InputKind;
use crate::engine::vm::Vm;

/// The longest a key is held (the client waits for the answer).
const MAX_HOLD_MS: u32 = 5000;
/// A screenshot larger than this is not a PNG a runner sent (8K RGBA uncompressed is 128 MiB).
const MAX_PNG_BYTES: u64 = 256 << 20;

/// The guest's screen as PNG, or why there is none.
pub(super) fn png_of_screen(vm: &Vm, name: &str) -> Result<Vec<u8>, String> {
    let Some(scanout) = &vm.frontends().scanout else {
        return Err(format!(
            "domain '{name}' has no display; add <video><model type='virtio'/></video> with \
             `vireoctl edit {name}` and start it again"
        ));
    };
    let image = scanout.image().ok_or_else(|| {
        format!(
            "domain '{name}' shows nothing yet: its guest has not set up the display (still \
             booting, or no virtio_gpu driver); try again once it has"
        )
    })?;
    image.to_png().map_err(|e| e.to_string())
}

/// Presses `codes` together, holds them, releases them in reverse order.
pub(super) fn press_keys(vm: &Vm, name: &str, codes: &[u16], hold_ms: u32) -> Reply {
    let Some(keyboard) = vm.frontends().keyboard() else {
        return Reply::Error {
            message: format!(
                "domain '{name}' has no keyboard; add <input type='keyboard' \
                 bus='virtio'/> (or bus='ps2' for a guest without virtio drivers) with `vireoctl edit {name}` and start it again, or type into \
                 `vireoctl console {name}`"
            ),
        };
    };
    for code in codes {
        keyboard.key(*code, true);
    }
    std::thread::sleep(Duration::from_millis(u64::from(hold_ms.min(MAX_HOLD_MS))));
    for code in codes.iter().rev() {
        keyboard.key(*code, false);
    }
    Reply::Ok
}

/// Moves the tablet's pointer and sets its buttons. Every button's state is sent each time;
/// the guest's input core passes on only the changes.
pub(super) fn move_pointer(vm: &Vm, name: &str, x: u32, y: u32, buttons: u8) -> Reply {
    let Some(tablet) = vm.frontends().input(InputKind::Tablet) else {
        return Reply::Error {
            message: format!(
                "domain '{name}' has no virtio tablet; add <input type='tablet' bus='virtio'/> \
                 with `vireoctl edit {name}` and start it again"
            ),
        };
    };
    tablet.move_to(x, y);
    tablet.send(&super::screen::button_events(buttons));
    Reply::Ok
}

/// virsh's `screenshot`: the running VM's screen as PNG bytes.
pub fn screenshot(name: &str) -> Result<Vec<u8>, RunnerError> {
    let (reply, mut stream) = exchange(name, Request::Screenshot)?;
    let Reply::Screenshot { bytes } = reply else {
        return Err(unexpected(name, Request::Screenshot, &reply));
    };
    if bytes > MAX_PNG_BYTES {
        return Err(RunnerError::Refused(format!(
            "the runner of '{name}' announced a {bytes}-byte screenshot; is it from another \
             version?"
        )));
    }
    let mut png = vec![0u8; bytes as usize];
    stream
        .read_exact(&mut png)
        .map_err(|cause| RunnerError::Io {
            name: name.to_string(),
            cause,
        })?;
    Ok(png)
}

/// virsh's `send-key`: presses Linux key `codes` together for `hold_ms`.
pub fn send_keys(name: &str, codes: Vec<u16>, hold_ms: u32) -> Result<(), RunnerError> {
    super::control(name, Request::SendKeys { codes, hold_ms })
}

/// Moves the tablet's pointer to (`x`, `y`) on its 0..=32767 scale with `buttons` held.
pub fn pointer(name: &str, x: u32, y: u32, buttons: u8) -> Result<(), RunnerError> {
    super::control(name, Request::Pointer { x, y, buttons })
}
