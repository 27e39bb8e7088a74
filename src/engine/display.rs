//! What the rest of Vireo sees of a VM's screen and input devices: the scanout the guest's
//! virtio-gpu shows (with its cursor and preferred size) and the event queues of its
//! virtio-input keyboard and tablet. A running [`crate::engine::Vm`] hands them out through
//! [`crate::engine::Vm::frontends`].

pub use super::devices::Frontends;
pub use super::devices::virtio::gpu::{
    CURSOR_SIDE, Cursor, Image, Mode, PixelFormat, PngError, Rect, Scanout,
};
pub use super::devices::virtio::input::{
    ABS_MAX, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, EV_ABS, EV_KEY, EV_LED, EV_REL, EV_SYN, InputEvent,
    InputEvents, InputKind,
};
