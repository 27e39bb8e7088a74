//! The wizard defines on a chosen connection: with test:///default connected, "Create on"
//! offers it on the first step, and a kernel path on that host (missing here) is taken as it
//! is, while this computer refuses it; the summary's CPU line says what that host gives (the test driver lists no CPU
//! models, and says so); a new disk image is refused there; Create defines the VM on that host
//! with the host's own hypervisor type (and opens its details there with "Customize").

use relm4::ComponentController;
use relm4::adw::prelude::*;
use relm4::gtk;

use vireo::launch::connections::LibvirtConnection;

use super::{URI, add_test_connection, launch, remove_connection};
use crate::{snap, wait_for};

pub fn wizard_defines_on_a_chosen_libvirt_connection() {
    let (app, window) = launch();
    add_test_connection(&app);
    gtk::prelude::WidgetExt::activate_action(&window, "win.new-vm", None).unwrap();
    wait_for("the wizard", || {
        app.model()
            .wizard()
            .is_some_and(|w| w.widget().is_visible())
    });
    let w = {
        let model = app.model();
        let w = model.wizard().unwrap().widgets();
        (
            w.kernel.clone(),
            w.forward.clone(),
            w.title.clone(),
            w.storage_new.clone(),
            w.storage_none.clone(),
            w.name.clone(),
            w.target.clone(),
            w.summary.clone(),
            w.problem.clone(),
            w.customize.clone(),
        )
    };
    let (
        kernel,
        forward,
        title,
        storage_new,
        storage_none,
        name,
        target,
        summary,
        problem,
        customize,
    ) = w;
    assert!(
        target.is_visible(),
        "Create on is offered with a host connected, on the first step"
    );
    assert_eq!(target.selected(), 0, "This computer by default");
    // A path on the host: this computer cannot open it, and refuses it for itself.
    let on_host = "/srv/only-on-the-host/vmlinuz";
    kernel.set_text(on_host);
    wait_for("the kernel refused for this computer", || {
        problem.text().contains(on_host)
    });
    assert!(!forward.is_sensitive());
    target.set_selected(1);
    wait_for("the host's path taken as it is", || forward.is_sensitive());
    forward.emit_clicked();
    wait_for("step 2", || title.subtitle() == "Step 2 of 4");
    forward.emit_clicked();
    wait_for("step 3", || title.subtitle() == "Step 3 of 4");
    storage_new.emit_by_name::<()>("activate", &[]);
    forward.emit_clicked();
    wait_for("step 4", || title.subtitle() == "Step 4 of 4");
    name.set_text("made-on-host");
    wait_for("the host's CPU in the summary", || {
        summary[0]
            .subtitle()
            .is_some_and(|s| s.contains(URI) && !s.starts_with("Asking"))
    });
    let cpu = summary[0].subtitle().unwrap();
    assert!(cpu.contains("does not list its CPU models"), "{cpu}");
    assert!(cpu.contains("(test;"), "the host's own type: {cpu}");
    // A new image would be made here, not there: refused with the way out.
    wait_for("the storage refusal", || {
        problem.text().contains("existing image")
    });
    assert!(!forward.is_sensitive());
    let wizard_window = app.model().wizard().unwrap().widget().clone();
    snap(&wizard_window, "wizard-create-on-host");
    // Back to step 3 for no storage.
    let back = app.model().wizard().unwrap().widgets().back.clone();
    back.emit_clicked();
    wait_for("step 3", || title.subtitle() == "Step 3 of 4");
    storage_none.emit_by_name::<()>("activate", &[]);
    forward.emit_clicked();
    wait_for("step 4", || title.subtitle() == "Step 4 of 4");
    wait_for("Create", || forward.is_sensitive());
    // Customize: the new VM's details open on its host instead.
    customize.set_active(true);
    forward.emit_clicked();
    wait_for("the wizard to close", || {
        app.model().wizard().is_none() || problem.is_visible() && !problem.text().is_empty()
    });
    assert!(app.model().wizard().is_none(), "{}", problem.text());

    let host = LibvirtConnection::open(URI).unwrap();
    let xml = host.dumpxml("made-on-host", true).unwrap();
    assert!(xml.starts_with("<domain type='test'>"), "{xml}");
    assert!(xml.contains(on_host), "the host's kernel path: {xml}");
    wait_for("the new VM listed in its group", || {
        let model = app.model();
        let connections = model.connections().model();
        connections
            .view(URI)
            .and_then(|v| v.state_label("made-on-host"))
            .is_some()
    });
    wait_for("its details on the host", || {
        app.model()
            .connections()
            .model()
            .details
            .get(&(URI.to_owned(), "made-on-host".to_owned()))
            .is_some_and(|d| d.model().loaded_xml().is_some())
    });
    let details = {
        let model = app.model();
        let connections = model.connections().model();
        let key = (URI.to_owned(), "made-on-host".to_owned());
        connections.details[&key].model().widgets.window.clone()
    };
    assert!(details.is_visible());
    details.close();
    host.undefine("made-on-host").unwrap();
    remove_connection(&app, URI);
    window.set_visible(false);
}
