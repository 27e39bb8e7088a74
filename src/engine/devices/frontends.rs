//! The host's handles on a VM's screen and input devices. The VM makes them once, from its
//! configuration, and hands them to every machine it builds, so a viewer or a `send-key` keeps
//! working across a guest reboot (which builds a fresh machine).

use super::virtio::gpu::Scanout;
use super::virtio::input::{InputEvents, InputKind};
use crate::engine::config::VmConfig;
use crate::engine::error::EngineError;

/// The screen and input handles of one VM.
#[derive(Debug, Clone, Default)]
pub struct Frontends {
    /// Scanout 0 of the virtio-gpu, if the VM has one.
    pub scanout: Option<Scanout>,
    /// Each virtio-input device, in the order the guest enumerates them.
    pub inputs: Vec<(InputKind, InputEvents)>,
    /// The PS/2 keyboard on the i8042, if the VM has one.
    pub ps2_keyboard: Option<InputEvents>,
}

impl Frontends {
    /// The handles the devices of `config` need.
    pub fn for_config(config: &VmConfig) -> Result<Self, EngineError> {
        let inputs = config
            .inputs
            .iter()
            .map(|kind| {
                InputEvents::new()
                    .map(|events| (*kind, events))
                    .map_err(|e| {
                        EngineError::Config(format!("creating an input device's eventfd: {e}"))
                    })
            })
            .collect::<Result<_, _>>()?;
        let ps2_keyboard = if config.ps2_keyboard {
            Some(InputEvents::new().map_err(|e| {
                EngineError::Config(format!("creating the PS/2 keyboard's eventfd: {e}"))
            })?)
        } else {
            None
        };
        Ok(Self {
            scanout: config.display.map(|d| Scanout::new(d.width, d.height)),
            inputs,
            ps2_keyboard,
        })
    }

    /// The first device of `kind`.
    pub fn input(&self, kind: InputKind) -> Option<&InputEvents> {
        self.inputs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, events)| events)
    }

    /// The keyboard the host's keys go to: the virtio keyboard, else the PS/2 one (a guest
    /// with both drivers reads the virtio one; one without virtio-input only has the PS/2).
    pub fn keyboard(&self) -> Option<&InputEvents> {
        self.input(InputKind::Keyboard)
            .or(self.ps2_keyboard.as_ref())
    }
}
