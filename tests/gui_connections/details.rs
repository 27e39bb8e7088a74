//! The details window of a VM on a libvirt connection (test:///default): the CPU page's edit
//! is saved on the host; a save over a change another client made meanwhile is refused with
//! Reload offered, and Reload shows the host's version.

use relm4::ComponentController;
use relm4::adw::prelude::*;

use vireo::launch::connections::LibvirtConnection;
use vireo::launch::connections::edit::CpuEdit;

use super::{AppController, URI, act, add_test_connection, launch, remove_connection};
use crate::{snap, wait_for};

fn vcpus_on_host(conn: &LibvirtConnection) -> u32 {
    CpuEdit::read(&conn.dumpxml("test", true).unwrap())
        .unwrap()
        .vcpus
}

/// Runs `f` on the open details window of the test VM.
fn with_details<T>(
    app: &AppController,
    f: impl FnOnce(&vireo::ui::connections::details::RemoteDetails) -> T,
) -> T {
    let model = app.model();
    let connections = model.connections().model();
    let details = connections
        .details
        .get(&(URI.to_owned(), "test".to_owned()))
        .expect("the details window is open");
    f(&details.model())
}

fn wait_idle(app: &AppController) {
    wait_for("the details window to finish", || {
        with_details(app, |d| !d.is_busy())
    });
}

pub fn libvirt_vm_details_save_and_refuse_to_overwrite_a_change_on_the_host() {
    let (app, window) = launch();
    add_test_connection(&app);
    let other = LibvirtConnection::open(URI).unwrap();
    let original = other.dumpxml("test", true).unwrap();
    let before = vcpus_on_host(&other);

    assert!(act(&app, "test", "details"), "Details is offered");
    wait_for("the definition loaded", || {
        app.model()
            .connections()
            .model()
            .details
            .get(&(URI.to_owned(), "test".to_owned()))
            .is_some_and(|d| d.model().loaded_xml().is_some())
    });
    let widgets = with_details(&app, |d| d.widgets.clone());
    assert!(widgets.window.is_visible());
    assert_eq!(widgets.vcpus.value() as u32, before);
    assert!(!widgets.save.is_sensitive(), "nothing to save yet");

    // The CPU page: one more vCPU, saved on the host.
    widgets.vcpus.set_value(f64::from(before + 1));
    wait_for("Save offered after the edit", || {
        widgets.save.is_sensitive()
    });
    widgets.save.emit_clicked();
    wait_idle(&app);
    let said = with_details(&app, |d| d.message()).unwrap_or_default();
    assert!(said.starts_with("Saved on the host"), "{said}");
    assert_eq!(vcpus_on_host(&other), before + 1);

    // Another client redefines it behind the window's back…
    let theirs = CpuEdit {
        vcpus: before + 5,
        ..CpuEdit::read(&other.dumpxml("test", true).unwrap()).unwrap()
    };
    other
        .define(&theirs.apply(&other.dumpxml("test", true).unwrap()).unwrap())
        .unwrap();
    // …then an edit in the XML page is saved here: refused, the host's change stands.
    let buffer = widgets.xml.buffer();
    let text = buffer
        .text(&buffer.start_iter(), &buffer.end_iter(), false)
        .to_string();
    let mine = CpuEdit {
        vcpus: before + 2,
        ..CpuEdit::read(&text).unwrap()
    };
    buffer.set_text(&mine.apply(&text).unwrap());
    wait_for("Save offered after the XML edit", || {
        widgets.save.is_sensitive()
    });
    widgets.save.emit_clicked();
    wait_idle(&app);
    assert!(with_details(&app, |d| d.changed_on_host()));
    let said = with_details(&app, |d| d.message()).unwrap_or_default();
    assert!(
        said.contains("changed on the host") && said.contains("Reload"),
        "{said}"
    );
    assert!(!widgets.save.is_sensitive(), "Save waits for Reload");
    assert!(widgets.reload.has_css_class("suggested-action"));
    assert_eq!(vcpus_on_host(&other), before + 5);
    snap(&widgets.window, "libvirt-details-changed-on-host");

    // Reload shows the host's version.
    widgets.reload.emit_clicked();
    wait_idle(&app);
    assert!(!with_details(&app, |d| d.changed_on_host()));
    assert_eq!(widgets.vcpus.value() as u32, before + 5);
    widgets.stack.set_visible_child_name("xml");
    snap(&widgets.window, "libvirt-details-xml");

    widgets.window.close();
    other.define(&original).unwrap();
    remove_connection(&app, URI);
    window.set_visible(false);
}
