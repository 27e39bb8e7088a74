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
        Ok(Self {
            scanout: config.display.map(|d| Scanout::new(d.width, d.height)),
            inputs,
        })
    }

    /// The first device of `kind`.
    pub fn input(&self, kind: InputKind) -> Option<&InputEvents> {
        self.inputs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, events)| events)
    }
}
