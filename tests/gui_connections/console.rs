//! The console window of a VM on a real (private) libvirtd: Open Console from the VM's row in
//! its connection's group shows the firmware's output, a key typed in the window reaches the
//! guest, and a console taken over by another client offers Take Over, which gets it back.

use std::io::Read;
use std::time::Duration;

use relm4::ComponentController;
use relm4::adw::prelude::*;

use vireo::launch::connections::{ConsoleSession, LibvirtConnection, Lifecycle};
use vireo::prefs::Prefs;
use vireo::ui::console::ConsoleMsg;

use super::super::connections_support::libvirtd::Libvirtd;
use super::{AppController, launch, remove_connection};
use crate::{snap, wait_for};

const VM: &str = "vireo-gui-con";

/// SeaBIOS alone with its output on the serial port and a long boot menu wait: it prints a
/// banner, and Esc typed on the console opens its menu.
fn guest_xml() -> String {
    format!(
        "<domain type='qemu'><name>{VM}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type><bootmenu enable='yes' timeout='60000'/>\
         <bios useserial='yes'/></os><features><acpi/></features>\
         <devices><serial type='pty'/><console type='pty'/></devices></domain>"
    )
}

fn transcript(app: &AppController, uri: &str) -> String {
    app.model()
        .remote_console(uri, VM)
        .map(|c| c.model().transcript())
        .unwrap_or_default()
}

pub fn libvirt_vm_console_shows_output_takes_keys_and_takes_over() {
    if let Some(missing) = Libvirtd::missing() {
        return crate::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let uri = daemon.uri();
    let conn = LibvirtConnection::open(&uri).unwrap();
    conn.define(&guest_xml()).unwrap();
    // Paused until the console window is attached, so the banner is not printed to nobody.
    conn.start(VM, true).unwrap();
    let mut prefs = Prefs::load().unwrap();
    prefs.add_connection(&uri, true).unwrap();
    prefs.save().unwrap();

    let (app, window) = launch();
    wait_for("the libvirt VM listed", || {
        let model = app.model();
        let connections = model.connections().model();
        connections
            .view(&uri)
            .and_then(|v| v.state_label(VM))
            .is_some()
    });
    let opened = {
        let model = app.model();
        let connections = model.connections().model();
        connections.view(&uri).unwrap().activate(VM, "console")
    };
    assert!(opened, "Open Console is offered");
    wait_for("the console attached", || {
        app.model()
            .remote_console(&uri, VM)
            .is_some_and(|c| c.model().is_attached())
    });
    let console_window = app
        .model()
        .remote_console(&uri, VM)
        .unwrap()
        .widget()
        .clone();
    assert!(console_window.is_visible());
    conn.control(VM, Lifecycle::Resume).unwrap();
    wait_for("the firmware's banner", || {
        transcript(&app, &uri).contains("Press ESC for boot menu")
    });
    assert!(transcript(&app, &uri).contains("SeaBIOS"));
    // Esc as the terminal commits it when typed.
    app.model()
        .remote_console(&uri, VM)
        .unwrap()
        .emit(ConsoleMsg::Input(b"\x1b".to_vec()));
    wait_for("the boot menu the key asked for", || {
        transcript(&app, &uri).contains("Select boot device")
    });
    snap(&console_window, "libvirt-console");

    // Another client takes the console over: the window says so and offers Take Over.
    let mut other = ConsoleSession::open(&uri, VM, true).unwrap();
    wait_for("the window to see the console taken", || {
        app.model()
            .remote_console(&uri, VM)
            .is_some_and(|c| c.model().is_busy())
    });
    let banner = app
        .model()
        .remote_console(&uri, VM)
        .and_then(|c| c.model().banner().map(str::to_owned))
        .unwrap_or_default();
    assert!(banner.contains("Take Over"), "{banner}");
    snap(&console_window, "libvirt-console-busy");
    app.model()
        .remote_console(&uri, VM)
        .unwrap()
        .emit(ConsoleMsg::TakeOver);
    wait_for("the console taken back", || {
        app.model()
            .remote_console(&uri, VM)
            .is_some_and(|c| c.model().is_attached())
    });
    // The other client was disconnected.
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    other.read_to_end(&mut rest).expect("the other client ends");

    console_window.close();
    conn.control(VM, Lifecycle::Destroy).unwrap();
    remove_connection(&app, &uri);
    window.set_visible(false);
}
