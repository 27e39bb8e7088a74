//! A libvirt connection lost under the open window: the private libvirtd is stopped while the
//! app lists its VM; the group turns "Not connected" with the reason and Reconnect (no
//! polling: libvirt's close callback), the window keeps answering, and Reconnect to the gone
//! daemon says why it failed.

use relm4::ComponentController;
use relm4::adw::prelude::*;

use vireo::launch::connections::LibvirtConnection;
use vireo::prefs::Prefs;

use super::super::connections_support::libvirtd::Libvirtd;
use super::{AppController, launch, open_add, remove_connection};
use crate::{snap, wait_for};

fn group_text(app: &AppController, uri: &str) -> (String, String, bool) {
    let model = app.model();
    let connections = model.connections().model();
    let view = connections.view(uri).expect("the group");
    (
        view.status.text().to_string(),
        view.error.text().to_string(),
        view.reconnect.is_visible(),
    )
}

pub fn lost_libvirt_connection_shows_disconnected_and_the_window_stays_responsive() {
    if let Some(missing) = Libvirtd::missing() {
        return crate::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let uri = daemon.uri();
    let conn = LibvirtConnection::open(&uri).unwrap();
    conn.define(
        "<domain type='qemu'><name>vireo-lost</name><memory unit='MiB'>64</memory>\
         <os><type arch='x86_64'>hvm</type></os></domain>",
    )
    .unwrap();
    drop(conn);
    let mut prefs = Prefs::load().unwrap();
    prefs.add_connection(&uri, true).unwrap();
    prefs.save().unwrap();
    let (app, window) = launch();
    wait_for("the VM listed", || {
        let model = app.model();
        let connections = model.connections().model();
        connections
            .view(&uri)
            .and_then(|v| v.state_label("vireo-lost"))
            .is_some()
    });

    drop(daemon);
    wait_for("the group to show the loss", || {
        group_text(&app, &uri).0 == "Not connected"
    });
    let (_, error, reconnect) = group_text(&app, &uri);
    assert!(error.starts_with("Connection lost: "), "{error}");
    assert!(reconnect, "Reconnect is offered");
    let listed = {
        let model = app.model();
        let connections = model.connections().model();
        connections.view(&uri).unwrap().state_label("vireo-lost")
    };
    assert_eq!(
        listed, None,
        "a lost host's VMs are not shown as if current"
    );
    snap(&window, "connections-lost");

    // The window still answers: a dialog opens and closes.
    let dialog = open_add(&app);
    dialog.window.close();
    wait_for("the dialog to close", || !dialog.window.is_visible());

    // Reconnect to the stopped daemon fails with the reason, and the window stays usable.
    let button = {
        let model = app.model();
        let connections = model.connections().model();
        connections.view(&uri).unwrap().reconnect.clone()
    };
    button.emit_clicked();
    wait_for("the failed reconnect", || {
        let (status, error, _) = group_text(&app, &uri);
        status == "Not connected" && !error.starts_with("Connection lost")
    });
    let (_, error, reconnect) = group_text(&app, &uri);
    assert!(
        error.contains(&uri) && error.contains("cannot connect"),
        "{error}"
    );
    assert!(reconnect);
    remove_connection(&app, &uri);
    window.set_visible(false);
}
