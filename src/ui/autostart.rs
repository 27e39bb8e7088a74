//! Starting the VMs marked autostart when the app starts (libvirt's session daemon does the
//! same when it starts): in a background thread, so the window never waits; each VM that
//! cannot start is named in a toast with the reason, and the list is re-read once all have
//! been tried. The work itself is [`crate::launch::autostart`].

use gettextrs::gettext;

use super::app::AppMsg;
use crate::domain::store::DomainStore;
use crate::launch::{autostart, machines};

/// Starts every VM marked autostart that is not running, reporting to the main window.
pub fn start_marked_vms(input: relm4::Sender<AppMsg>) {
    let spawned = std::thread::Builder::new()
        .name("vireo-autostart".into())
        .spawn(move || {
            let Ok(store) = DomainStore::open_default() else {
                // The main window reports an unreadable store itself.
                return;
            };
            let results = autostart::start_marked(&store, machines::start);
            for outcome in &results {
                if let Err(error) = &outcome.result {
                    input.emit(AppMsg::Notify(
                        gettext("{name} did not start automatically: {error}")
                            .replace("{name}", &outcome.name)
                            .replace("{error}", error),
                    ));
                }
            }
            if !results.is_empty() {
                input.emit(AppMsg::Refresh);
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the autostart thread");
    }
}
