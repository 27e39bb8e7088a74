//! GUI tests of networking: the wizard's network selection, the details window's network cards
//! (cards and port forwards added and removed, bad input refused in place) and Add Hardware by
//! keyboard (xdotool). Run from `tests/gui.rs`'s harness, on its main thread and in its sandbox.

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController, adw, gtk};

use vireo::domain::store::DomainStore;
use vireo::launch::nics::parse_mac;
use vireo::ui::app::App;
use vireo::ui::details::{DetailsMsg, NicMsg};

use super::gui_keyboard::{focus_in, press as keys, type_text, xdotool};
use super::require_env::skip_or_fail;
use super::{snap, tiny_kernel, toplevels, wait_for};

fn settle() {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
    wait_for("the window to settle", || std::time::Instant::now() > until);
}

/// Every widget under `widget` (depth first) that is a `T` and passes `pick`.
fn find_all<T: IsA<gtk::Widget>>(widget: &gtk::Widget, pick: &dyn Fn(&T) -> bool) -> Vec<T> {
    let mut found = Vec::new();
    if let Some(w) = widget.downcast_ref::<T>()
        && pick(w)
    {
        found.push(w.clone());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        found.extend(find_all(&c, pick));
        child = c.next_sibling();
    }
    found
}

fn button_with_icon(widget: &impl IsA<gtk::Widget>, icon: &str) -> gtk::Button {
    find_all::<gtk::Button>(widget.as_ref(), &|b| b.icon_name().as_deref() == Some(icon))
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {icon} button"))
}

/// `virt-xml-validate` on `xml`: Ok, the tool's complaint, or `None` (after the skip-or-fail
/// rule) when it is not installed.
fn schema_check(xml: &str) -> Option<Result<(), String>> {
    let path = std::env::temp_dir().join(format!("vireo-net-{}.xml", std::process::id()));
    std::fs::write(&path, xml).unwrap();
    let out = match std::process::Command::new("virt-xml-validate")
        .arg(&path)
        .arg("domain")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            skip_or_fail(format!(
                "the schema check: cannot run virt-xml-validate ({e}); install libvirt-clients"
            ));
            return None;
        }
    };
    let _ = std::fs::remove_file(&path);
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

/// Goes through the wizard to its last step, picks the network (`user` or none), creates the
/// VM `name` (customized, so it is not started) and returns its stored XML.
fn create_with_network(name: &str, user: bool) -> String {
    let app = super::gui_disks::open_wizard();
    let window = app.widget().clone();
    let (kernel, forward, title, name_entry, customize, network_user, network_none, summary) = {
        let model = app.model();
        let w = model.wizard().unwrap().widgets();
        (
            w.kernel.clone(),
            w.forward.clone(),
            w.title.clone(),
            w.name.clone(),
            w.customize.clone(),
            w.network_user.clone(),
            w.network_none.clone(),
            w.summary.clone(),
        )
    };
    kernel.set_text(&tiny_kernel().to_string_lossy());
    for step in 2..=4 {
        wait_for("Forward", || forward.is_sensitive());
        forward.emit_clicked();
        let subtitle = format!("Step {step} of 4");
        wait_for(&subtitle, || title.subtitle() == subtitle);
    }
    if vireo::launch::passt::passt_installed() {
        assert!(network_user.is_active(), "user-mode is the default");
    }
    if user {
        network_user.emit_by_name::<()>("activate", &[]);
    } else {
        network_none.emit_by_name::<()>("activate", &[]);
    }
    name_entry.set_text(name);
    customize.set_active(true);
    wait_for("Create", || forward.is_sensitive());
    let network = summary[4].subtitle().unwrap_or_default();
    assert_eq!(summary[4].title(), "Network");
    assert_eq!(network.contains("passt"), user, "{network}");
    if user {
        let wizard_window = app.model().wizard().map(|w| w.widget().clone()).unwrap();
        snap(&wizard_window, "wizard-network");
    }
    forward.emit_clicked();
    let store = DomainStore::open_default().unwrap();
    wait_for("the VM to be defined", || store.get(name).is_ok());
    let xml = store.get(name).unwrap().domain.to_xml();
    for details in toplevels::<adw::Window>() {
        details.set_visible(false);
    }
    window.set_visible(false);
    xml
}

/// The wizard's network selection: user-mode gives a passt card with a valid MAC that start
/// takes; None gives no card.
pub fn wizard_network_choice_is_defined() {
    let store = DomainStore::open_default().unwrap();
    let xml = create_with_network("net-wizard", true);
    let domain = store.get("net-wizard").unwrap().domain;
    let nics = domain.interfaces();
    assert_eq!(nics.len(), 1, "{xml}");
    assert_eq!(nics[0].if_type.as_deref(), Some("user"));
    assert_eq!(nics[0].backend.as_deref(), Some("passt"));
    let mac = nics[0].mac.clone().expect("a MAC is written");
    assert!(parse_mac(&mac).is_ok(), "{mac}");
    assert!(
        vireo::launch::nics::domain_nics(&domain).is_ok(),
        "start takes it"
    );
    if let Some(checked) = schema_check(&xml) {
        checked.unwrap_or_else(|e| panic!("{xml}\n{e}"));
    }
    store.undefine("net-wizard", false).unwrap();

    let xml = create_with_network("net-none", false);
    assert!(!xml.contains("<interface"), "{xml}");
    store.undefine("net-none", false).unwrap();
}

/// Opens the details window of `name` on its Devices page.
fn open_details(name: &str) -> (relm4::component::Connector<App>, adw::Window) {
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || app.widgets().vm_list.row(name).is_some());
    assert!(app.widgets().vm_list.activate(name, "open"));
    wait_for("the details window", || app.model().details(name).is_some());
    let (details_window, stack) = {
        let model = app.model();
        let details = model.details(name).unwrap();
        (details.widget().clone(), details.widgets().stack.clone())
    };
    stack.set_visible_child_name("devices");
    (app, details_window)
}

/// What `pick` takes from the first network card of `name`'s details window.
fn first_card<T>(
    app: &relm4::component::Connector<App>,
    name: &str,
    pick: impl Fn(&vireo::ui::details::NicCard) -> T,
) -> T {
    let model = app.model();
    pick(&model.details(name).unwrap().widgets().nics.cards[0])
}

fn define(store: &DomainStore, name: &str, devices: &str) {
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n  <devices>{devices}</devices>\n</domain>\n",
            tiny_kernel().display()
        ))
        .unwrap();
}

/// Details → Devices: a card added through Add Hardware, a port forward typed into its row
/// (the stored XML passes libvirt's schema), bad ports and MACs refused in place with nothing
/// saved, the running note and the guest's addresses, and forward and card removed again.
pub fn details_edit_network_cards_and_forwards() {
    let store = DomainStore::open_default().unwrap();
    define(&store, "net-details", "");
    let (app, details_window) = open_details("net-details");
    let model_error = || {
        app.model()
            .details("net-details")
            .and_then(|d| d.model().error().map(str::to_owned))
    };
    let card_count = || {
        app.model()
            .details("net-details")
            .unwrap()
            .widgets()
            .nics
            .cards
            .len()
    };
    assert_eq!(card_count(), 0);
    let stored = || store.get("net-details").unwrap().domain;

    // Add Hardware → Network: a bad MAC is refused in place, a good one is added.
    let button = find_all::<gtk::Button>(details_window.upcast_ref(), &|b| {
        b.widget_name() == "add-hardware"
    })
    .remove(0);
    button.emit_clicked();
    let dialog = || {
        toplevels::<adw::Window>()
            .into_iter()
            .find(|w| w.is_visible() && w.title().as_deref() == Some("Add New Virtual Hardware"))
    };
    wait_for("Add Hardware", || dialog().is_some());
    let add_hw = dialog().unwrap();
    let kinds =
        find_all::<gtk::ListBox>(add_hw.upcast_ref(), &|l| l.widget_name() == "kinds").remove(0);
    assert_eq!(
        kinds.selected_row().map(|r| r.index()),
        Some(0),
        "Storage first"
    );
    kinds.select_row(kinds.row_at_index(1).as_ref());
    let mac = find_all::<gtk::Entry>(add_hw.upcast_ref(), &|e| e.widget_name() == "mac").remove(0);
    assert!(parse_mac(&mac.text()).is_ok(), "a MAC is proposed");
    mac.set_text("52:54:00:zz");
    let add = add_hw
        .default_widget()
        .and_downcast::<gtk::Button>()
        .unwrap();
    add.emit_clicked();
    settle();
    let errors = find_all::<gtk::Label>(add_hw.upcast_ref(), &|l| {
        l.is_visible() && l.has_css_class("error")
    });
    assert!(
        errors.iter().any(|l| l.text().contains("52:54:00:zz")),
        "the bad MAC is named in place"
    );
    assert!(add_hw.is_visible(), "the dialog stays");
    assert!(stored().interfaces().is_empty(), "nothing saved");
    mac.set_text("52:54:00:AA:BB:01");
    add.emit_clicked();
    wait_for("the card in the definition", || {
        stored().interfaces().len() == 1
    });
    assert!(!add_hw.is_visible(), "the dialog closes");
    assert_eq!(
        stored().interfaces()[0].mac.as_deref(),
        Some("52:54:00:aa:bb:01")
    );
    wait_for("the card's row", || card_count() == 1);

    // A port forward typed into the card's row.
    let widgets = || {
        first_card(&app, "net-details", |card| {
            (
                card.host_port.clone().expect("a user card takes forwards"),
                card.guest_port.clone().unwrap(),
                card.add_forward.clone().unwrap(),
                card.error.clone(),
            )
        })
    };
    let (host, guest, add_forward, _) = widgets();
    host.set_text("2222");
    guest.set_text("22");
    add_forward.emit_clicked();
    wait_for("the forward in the definition", || {
        stored().interfaces()[0].port_forwards.len() == 1
    });
    let xml = stored().to_xml();
    assert!(
        xml.contains("<portForward proto='tcp'>") && xml.contains("<range start='2222' to='22'/>"),
        "{xml}"
    );
    if let Some(checked) = schema_check(&xml) {
        checked.unwrap_or_else(|e| panic!("{xml}\n{e}"));
    }
    wait_for("the forward's row", || {
        first_card(&app, "net-details", |c| c.forwards.len()) == 1
    });

    // Bad ports: refused under the fields, which keep what was typed; nothing saved.
    let before = stored().to_xml();
    for (host_text, guest_text, said) in [
        ("70000", "22", "70000"),
        ("2222", "22", "forwarded already"),
        ("22", "22", "8022"),
        ("2223", "", "Guest port"),
    ] {
        let (host, guest, add_forward, error) = widgets();
        host.set_text(host_text);
        guest.set_text(guest_text);
        add_forward.emit_clicked();
        settle();
        assert!(error.is_drawable(), "an error shows for {host_text}");
        assert!(error.text().contains(said), "{said} in {}", error.text());
        assert_eq!(host.text(), host_text, "the typed port stays");
        assert_eq!(stored().to_xml(), before, "nothing saved");
    }

    // Running: the note and the guest's addresses (from passt's source, as domifaddr).
    let sender = app.model().details("net-details").unwrap().sender().clone();
    sender.emit(DetailsMsg::RunState(
        vireo::launch::machines::RunState::Running,
    ));
    let group = app
        .model()
        .details("net-details")
        .unwrap()
        .widgets()
        .nics
        .group
        .clone();
    wait_for("the running note", || {
        group
            .description()
            .is_some_and(|d| d.contains("next start"))
    });
    let address_rows =
        find_all::<adw::ActionRow>(group.upcast_ref(), &|r| r.title() == "Guest addresses");
    assert_eq!(address_rows.len(), 1);
    let expected = vireo::launch::passt::guest_addresses();
    let shown = address_rows[0].subtitle().unwrap_or_default();
    for address in &expected {
        assert!(shown.contains(&address.address.to_string()), "{shown}");
    }
    snap(&details_window, "details-network");
    sender.emit(DetailsMsg::RunState(
        vireo::launch::machines::RunState::ShutOff,
    ));
    wait_for("the note to go", || {
        group
            .description()
            .is_some_and(|d| !d.contains("next start"))
    });

    // Remove the forward with its row's button, then the card (after the question).
    let forward_row = first_card(&app, "net-details", |c| c.forwards[0].clone());
    button_with_icon(&forward_row, "user-trash-symbolic").emit_clicked();
    wait_for("the forward to go", || {
        stored().interfaces()[0].port_forwards.is_empty()
    });
    let remove = first_card(&app, "net-details", |c| c.remove.clone());
    remove.emit_clicked();
    wait_for("the question", || {
        super::message_dialog("Remove Network Card").is_some()
    });
    let question = super::message_dialog("Remove Network Card").unwrap();
    assert!(!stored().interfaces().is_empty(), "not before the answer");
    question.response("remove");
    wait_for("the card to go", || stored().interfaces().is_empty());
    wait_for("its row to go", || card_count() == 0);
    assert_eq!(model_error(), None);

    // Through the message too: a MAC typed twice is refused, with the reason.
    sender.emit(DetailsMsg::Nic(NicMsg::Add { mac: String::new() }));
    wait_for("a generated card", || stored().interfaces().len() == 1);
    let mac = stored().interfaces()[0].mac.clone().unwrap();
    sender.emit(DetailsMsg::Nic(NicMsg::Add { mac: mac.clone() }));
    wait_for("the refusal", || {
        model_error().is_some_and(|e| e.contains(&mac))
    });
    assert_eq!(stored().interfaces().len(), 1);
    details_window.close();
    store.undefine("net-details", false).unwrap();
    app.widget().set_visible(false);
}

/// Add Hardware by keyboard alone (real key presses through the X server): the network card
/// "+" opens it with the cursor in the MAC field, typing replaces the proposal, Enter adds the
/// card; Escape cancels and adds nothing.
pub fn add_hardware_works_with_the_keyboard() {
    if xdotool(&["version"]).is_none() {
        return;
    }
    let store = DomainStore::open_default().unwrap();
    define(&store, "net-keys", "");
    let (app, details_window) = open_details("net-keys");
    let add = app
        .model()
        .details("net-keys")
        .unwrap()
        .widgets()
        .nics
        .add
        .clone();
    let dialog = || {
        toplevels::<adw::Window>()
            .into_iter()
            .find(|w| w.is_mapped() && w.title().as_deref() == Some("Add New Virtual Hardware"))
    };
    let focus_window = || {
        let id = xdotool(&[
            "search",
            "--sync",
            "--onlyvisible",
            "--name",
            "^Add New Virtual Hardware$",
        ])
        .expect("xdotool ran");
        let id = id
            .lines()
            .last()
            .expect("the dialog's X window")
            .to_string();
        xdotool(&["windowfocus", "--sync", &id]);
        settle();
    };
    add.emit_clicked();
    wait_for("Add Hardware", || dialog().is_some());
    let add_hw = dialog().unwrap();
    let mac = find_all::<gtk::Entry>(add_hw.upcast_ref(), &|e| e.widget_name() == "mac").remove(0);
    wait_for("the focus in the MAC field", || focus_in(&add_hw, &mac));
    focus_window();
    keys("ctrl+a");
    type_text("52:54:00:12:34:99");
    assert_eq!(mac.text(), "52:54:00:12:34:99");
    keys("Return");
    wait_for("the card from Enter", || {
        store
            .get("net-keys")
            .unwrap()
            .domain
            .interfaces()
            .iter()
            .any(|i| i.mac.as_deref() == Some("52:54:00:12:34:99"))
    });
    wait_for("the dialog to close", || dialog().is_none());

    add.emit_clicked();
    wait_for("Add Hardware again", || dialog().is_some());
    focus_window();
    keys("Escape");
    wait_for("Escape to cancel", || dialog().is_none());
    assert_eq!(store.get("net-keys").unwrap().domain.interfaces().len(), 1);
    settle();
    snap(&details_window, "details-network-keyboard");
    details_window.close();
    store.undefine("net-keys", false).unwrap();
    app.widget().set_visible(false);
}
