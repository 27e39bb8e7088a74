//! "This computer" as a [`super::Connection`]: the domain store and the runner processes the
//! GUI and `vireoctl` already use (`launch::machines`, `launch::lookup`), under the same calls
//! as a libvirt connection, so a caller lists and drives both alike.

use super::{ConnectionError, DomainRow, DomainState, Lifecycle};
use crate::domain::store::DomainStore;
use crate::launch::machines::{self, RunState, VmAction};
use crate::launch::{lookup, runner};

fn failed(action: &str, err: impl std::fmt::Display) -> ConnectionError {
    ConnectionError::Builtin(format!("{}: {action}: {err}", super::BUILTIN_URI))
}

/// Every VM of `store`, with its state; unreadable definitions show as `no state`.
pub fn list_domains(store: &DomainStore) -> Vec<DomainRow> {
    machines::list(store)
        .into_iter()
        .map(|vm| {
            let status = lookup::status(&vm.name);
            DomainRow {
                id: status.info.as_ref().map(|i| i.id),
                state: match vm.state {
                    RunState::Running => DomainState::Running,
                    RunState::Paused => DomainState::Paused,
                    RunState::ShutOff => DomainState::ShutOff,
                    RunState::Crashed(_) => DomainState::Crashed,
                    RunState::Broken(_) => DomainState::NoState,
                },
                uuid: lookup::uuid(store, &vm.name).unwrap_or_default(),
                persistent: !vm.transient,
                autostart: store.autostart(&vm.name),
                name: vm.name,
            }
        })
        .collect()
}

/// Defines (or redefines) a domain in the store; returns its name.
pub fn define(store: &DomainStore, xml: &str) -> Result<String, ConnectionError> {
    store
        .define(xml)
        .map(|stored| stored.name)
        .map_err(|e| failed("defining a domain", e))
}

/// Removes a domain's definition; its disk images stay.
pub fn undefine(store: &DomainStore, name: &str) -> Result<(), ConnectionError> {
    store
        .undefine(name, false)
        .map(drop)
        .map_err(|e| failed(&format!("undefining domain '{name}'"), e))
}

/// Starts a stored domain in its own runner process.
pub fn start(name: &str) -> Result<(), ConnectionError> {
    machines::start(name).map_err(|e| failed(&format!("starting domain '{name}'"), e))
}

/// Sends `action` to the domain's runner.
pub fn control(name: &str, action: Lifecycle) -> Result<(), ConnectionError> {
    let doing = format!("{} domain '{name}'", action.doing());
    let action = match action {
        Lifecycle::Shutdown => VmAction::Shutdown,
        Lifecycle::Reboot => VmAction::Reboot,
        Lifecycle::Destroy => VmAction::ForceOff,
        Lifecycle::Suspend => VmAction::Pause,
        Lifecycle::Resume => VmAction::Resume,
    };
    machines::control(name, action).map_err(|e| failed(&doing, e))
}

/// The live XML while it runs (unless `inactive`), else the stored one.
pub fn dumpxml(store: &DomainStore, name: &str, inactive: bool) -> Result<String, ConnectionError> {
    if !inactive && let Some(live) = runner::live_xml(name) {
        return Ok(live);
    }
    store
        .get(name)
        .map(|stored| stored.domain.to_xml())
        .map_err(|e| failed(&format!("reading domain '{name}'"), e))
}
