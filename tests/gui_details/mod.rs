//! GUI tests of the details window's Overview and Devices pages: the state on one line, network
//! cards with their model, MAC and connection, graphics and video shown. Run from
//! `tests/gui.rs`'s harness, on its main thread and in its sandbox.

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController, adw, gtk};

use vireo::ui::app::App;

use super::{tiny_kernel, wait_for};

fn rows(widget: &gtk::Widget, found: &mut Vec<adw::ActionRow>) {
    if let Some(row) = widget.downcast_ref::<adw::ActionRow>() {
        found.push(row.clone());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        rows(&c, found);
        child = c.next_sibling();
    }
}

fn expander_rows(widget: &gtk::Widget, found: &mut Vec<adw::ExpanderRow>) {
    if let Some(row) = widget.downcast_ref::<adw::ExpanderRow>() {
        found.push(row.clone());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        expander_rows(&c, found);
        child = c.next_sibling();
    }
}

pub fn details_show_nics_display_and_a_one_line_state() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>devices-vm</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n  <devices>\n    <interface type='network'>\n      <mac address='52:54:00:12:34:56'/>\n      <source network='default'/>\n      <model type='virtio'/>\n    </interface>\n    <graphics type='vnc' port='5901' listen='127.0.0.1'/>\n    <video>\n      <model type='virtio'/>\n    </video>\n  </devices>\n</domain>\n",
            tiny_kernel().display()
        ))
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("devices-vm").is_some()
    });
    assert!(app.widgets().vm_list.activate("devices-vm", "open"));
    wait_for("the details window", || {
        app.model().details("devices-vm").is_some()
    });
    let (details_window, stack, state) = {
        let model = app.model();
        let details = model.details("devices-vm").unwrap();
        let w = details.widgets();
        (details.widget().clone(), w.stack.clone(), w.state.clone())
    };
    assert!(!state.wraps(), "the state stays on one line");
    let page = stack.child_by_name("devices").expect("a Devices page");
    let mut found = Vec::new();
    rows(&page, &mut found);
    let mut texts: Vec<(String, String)> = found
        .iter()
        .map(|r| {
            (
                r.title().to_string(),
                r.subtitle().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // Network cards are expander rows (their forwards below them).
    let mut cards = Vec::new();
    expander_rows(&page, &mut cards);
    texts.extend(
        cards
            .iter()
            .map(|r| (r.title().to_string(), r.subtitle().to_string())),
    );
    let nic = texts
        .iter()
        .find(|(title, _)| title == "virtio network card")
        .unwrap_or_else(|| panic!("no NIC row: {texts:?}"));
    assert!(
        nic.1.contains("52:54:00:12:34:56") && nic.1.contains("network default"),
        "{nic:?}"
    );
    assert!(texts.iter().all(|(t, _)| t != "—"), "{texts:?}");
    let vnc = texts
        .iter()
        .find(|(title, _)| title == "VNC graphics")
        .unwrap_or_else(|| panic!("no graphics row: {texts:?}"));
    assert!(vnc.1.contains("5901"), "{vnc:?}");
    assert!(
        texts.iter().any(|(t, _)| t == "virtio video card"),
        "{texts:?}"
    );
    details_window.set_visible(false);
    window.set_visible(false);
}

/// The details window's Start button (the "Begin Installation" of a VM customized before its
/// first start) starts the VM; when it cannot start, the dialog lists every problem of the
/// definition at once (here a kernel that is no kernel and a missing disk image), not the
/// first alone.
pub fn details_start_lists_every_problem() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    store
        .define(
            "<domain type='kvm'>\n  <name>two-problems</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>/etc/passwd</kernel>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='/nonexistent/disk.img'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
        )
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("two-problems").is_some()
    });
    assert!(app.widgets().vm_list.activate("two-problems", "open"));
    wait_for("the details window", || {
        app.model().details("two-problems").is_some()
    });
    let (details_window, start) = {
        let model = app.model();
        let details = model.details("two-problems").unwrap();
        (details.widget().clone(), details.widgets().start.clone())
    };
    assert!(start.is_visible(), "a stopped VM offers Start");
    start.emit_clicked();
    wait_for("the start failure", || {
        super::message_dialog("Could Not Start two-problems").is_some()
    });
    let dialog = super::message_dialog("Could Not Start two-problems").unwrap();
    let body = dialog.body();
    assert!(body.contains("/etc/passwd"), "{body}");
    assert!(body.contains("/nonexistent/disk.img"), "{body}");
    dialog.close();
    details_window.set_visible(false);
    window.set_visible(false);
}

/// A VM that boots from its disks shows them in boot order on the Boot page (a CD-ROM labelled
/// as one), not direct-kernel fields.
pub fn details_boot_page_shows_disk_boot_order() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    store
        .define(
            "<domain type='kvm'>\n  <name>disk-boot</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='/images/system.img'/>\n      <target dev='vda' bus='virtio'/>\n      <boot order='2'/>\n    </disk>\n    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='/images/installer.iso'/>\n      <target dev='vdb' bus='virtio'/>\n      <readonly/>\n      <boot order='1'/>\n    </disk>\n  </devices>\n</domain>\n",
        )
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("disk-boot").is_some()
    });
    assert!(app.widgets().vm_list.activate("disk-boot", "open"));
    wait_for("the details window", || {
        app.model().details("disk-boot").is_some()
    });
    let (details_window, stack, kernel) = {
        let model = app.model();
        let details = model.details("disk-boot").unwrap();
        let w = details.widgets();
        (details.widget().clone(), w.stack.clone(), w.kernel.clone())
    };
    stack.set_visible_child_name("boot");
    wait_for("the Boot page", || {
        stack.visible_child_name().as_deref() == Some("boot")
    });
    let page = stack.child_by_name("boot").unwrap();
    let mut found = Vec::new();
    rows(&page, &mut found);
    let titles: Vec<String> = found
        .iter()
        .filter(|r| r.is_drawable())
        .map(|r| r.title().to_string())
        .collect();
    assert_eq!(
        titles,
        ["1. CD-ROM vdb", "2. Disk vda"],
        "the disks in boot order"
    );
    assert!(!kernel.is_drawable(), "no direct-kernel fields");
    details_window.set_visible(false);
    window.set_visible(false);
}

/// A definition whose file no longer parses is offered for repair, not only for deletion: Open
/// shows its text in an editor, a still-broken text is refused with the reason, and a fixed
/// one is saved so the VM is readable again.
pub fn unreadable_definition_opens_the_xml_editor() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    let path = store.path_of("typo-vm");
    std::fs::write(
        &path,
        "<domain type='kvm'><name>typo-vm</name><memory unit='KiB'>65536</memory><os><type>hvm</type></os>",
    )
    .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || app.widgets().vm_list.row("typo-vm").is_some());
    wait_for("the broken state", || {
        app.widgets().vm_list.activate("typo-vm", "open")
    });
    wait_for("the repair editor", || {
        super::message_dialog("Repair typo-vm").is_some()
    });
    let dialog = super::message_dialog("Repair typo-vm").unwrap();
    let mut views: Vec<gtk::TextView> = Vec::new();
    fn find(widget: &gtk::Widget, found: &mut Vec<gtk::TextView>) {
        if let Some(v) = widget.downcast_ref::<gtk::TextView>() {
            found.push(v.clone());
        }
        let mut child = widget.first_child();
        while let Some(c) = child {
            find(&c, found);
            child = c.next_sibling();
        }
    }
    find(dialog.upcast_ref(), &mut views);
    let view = views.first().expect("an XML editor").clone();
    let buffer = view.buffer();
    let text = buffer.text(&buffer.start_iter(), &buffer.end_iter(), false);
    assert!(text.contains("<name>typo-vm</name>"), "{text}");
    buffer.set_text(&format!("{text}</domain>"));
    dialog.response("save");
    wait_for("the repaired definition", || store.get("typo-vm").is_ok());
    window.set_visible(false);
}

/// A VM the wizard made that has never run offers "Begin Installation" (virt-manager's
/// wording) in its details; once it runs, and for any other VM, the button says "Start".
pub fn details_offer_begin_installation_until_the_first_start() {
    use vireo::domain::Domain;
    use vireo::domain::store::DomainStore;
    use vireo::launch::machines::RunState;
    use vireo::ui::details::DetailsMsg;
    let store = DomainStore::open_default().unwrap();
    let xml = |name: &str| {
        format!(
            "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>/nonexistent/vmlinuz</kernel>\n  </os>\n</domain>\n"
        )
    };
    let mut fresh = Domain::parse(&xml("fresh-install")).unwrap();
    fresh.set_awaits_first_start(true);
    store.define(&fresh.to_xml()).unwrap();
    store.define(&xml("ran-before")).unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    let open = |name: &str| {
        wait_for("the row", || app.widgets().vm_list.row(name).is_some());
        assert!(app.widgets().vm_list.activate(name, "open"));
        wait_for("the details window", || app.model().details(name).is_some());
    };
    let label = |name: &str| {
        let model = app.model();
        let details = model.details(name).unwrap();
        details.widgets().start.label().unwrap().to_string()
    };
    open("fresh-install");
    open("ran-before");
    assert_eq!(label("fresh-install"), "_Begin Installation");
    let fresh_window = app
        .model()
        .details("fresh-install")
        .unwrap()
        .widget()
        .clone();
    super::snap(&fresh_window, "details-begin-installation");
    assert_eq!(label("ran-before"), "_Start");
    // The VM ran (as `vireoctl start` does, the marker is cleared on disk first).
    store.note_started("fresh-install").unwrap();
    assert!(
        !store
            .get("fresh-install")
            .unwrap()
            .domain
            .awaits_first_start()
    );
    app.model()
        .details("fresh-install")
        .unwrap()
        .emit(DetailsMsg::RunState(RunState::Running));
    wait_for("the relabelled button", || {
        label("fresh-install") == "_Start"
    });
    for name in ["fresh-install", "ran-before"] {
        app.model()
            .details(name)
            .unwrap()
            .widget()
            .set_visible(false);
    }
    window.set_visible(false);
}
