//! GUI tests of libvirt connections against libvirt's in-process `test:///default` driver:
//! Add Connection stores the URI and lists the driver's VM under its own group; the row's
//! actions and changes made behind the app's back arrive as libvirt events; a bad URI is said
//! in the dialog, an unreachable one in the group with Reconnect; CPU Across Hosts lists every
//! host with its answer. Run from `tests/gui.rs`'s harness, on its main thread and sandbox.

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController, gtk};

use vireo::launch::connections::cross_host::{HostAnswer, HostLoss};
use vireo::launch::connections::{DomainState, LibvirtConnection, Lifecycle};
use vireo::prefs::Prefs;
use vireo::ui::app::App;
use vireo::ui::connections::cross_host::{answer_text, loss_text};

use super::gui_keyboard::{focus_in, focus_window, press, type_text, xdotool};

pub mod migrate;
use super::{snap, wait_for};

mod console;
mod details;
mod lost;
mod wizard;
pub use console::libvirt_vm_console_shows_output_takes_keys_and_takes_over;
pub use details::libvirt_vm_details_save_and_refuse_to_overwrite_a_change_on_the_host;
pub use lost::lost_libvirt_connection_shows_disconnected_and_the_window_stays_responsive;
pub use wizard::wizard_defines_on_a_chosen_libvirt_connection;

const URI: &str = "test:///default";

type AppController = relm4::component::Connector<App>;

fn launch() -> (AppController, gtk::Window) {
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the main window to map", || window.is_mapped());
    (app, window.upcast())
}

/// Opens File → Add Connection (the window action behind the menu item) and returns its widgets.
fn open_add(app: &AppController) -> vireo::ui::connections::add_dialog::AddDialog {
    gtk::prelude::WidgetExt::activate_action(app.widget(), "win.add-connection", None).unwrap();
    wait_for("the Add Connection dialog", || {
        app.model()
            .connections()
            .model()
            .add_dialog
            .as_ref()
            .is_some_and(|d| d.window.is_mapped())
    });
    app.model()
        .connections()
        .model()
        .add_dialog
        .clone()
        .unwrap()
}

fn state_of(app: &AppController, vm: &str) -> Option<String> {
    app.model()
        .connections()
        .model()
        .view(URI)
        .and_then(|v| v.state_label(vm))
}

/// Adds test:///default through the dialog and waits for its VM to be listed.
fn add_test_connection(app: &AppController) {
    let dialog = open_add(app);
    dialog.custom.set_active(true);
    dialog.custom_uri.set_text(URI);
    dialog.add.emit_clicked();
    wait_for("the test driver's VM listed", || {
        state_of(app, "test").is_some()
    });
}

/// The open CPU Across Hosts dialog.
fn cross_host_dialog(app: &AppController) -> vireo::ui::connections::cross_host::CrossHostDialog {
    app.model()
        .connections()
        .model()
        .cross_host
        .clone()
        .expect("CPU Across Hosts is open")
}

/// Activates `vm`'s row action `action` on the test connection.
fn act(app: &AppController, vm: &str, action: &str) -> bool {
    let model = app.model();
    let connections = model.connections().model();
    connections.view(URI).unwrap().activate(vm, action)
}

fn remove_connection(app: &AppController, uri: &str) {
    let remove = {
        let model = app.model();
        let connections = model.connections().model();
        let view = connections.view(uri).expect("the group");
        view.root
            .first_child()
            .and_then(|header| header.last_child())
            .and_downcast::<gtk::Button>()
            .expect("the header's Remove button")
    };
    remove.emit_clicked();
    wait_for("the group to go", || {
        app.model().connections().model().view(uri).is_none()
    });
    // Written in the background: the file follows soon after the window.
    wait_for("the connection removed from prefs.toml", || {
        Prefs::load()
            .unwrap()
            .connections
            .iter()
            .all(|c| c.uri != uri)
    });
}

/// Add Connection (custom URI test:///default) stores it and lists the test driver's VM in its
/// group under "This computer"; Force Off and Run from the row, and a destroy done by another
/// connection, change the state shown — through libvirt's events, the list is not polled.
pub fn added_connection_lists_vms_and_follows_events() {
    // Force Off asks first by default; an earlier test may have turned that off.
    let mut prefs = Prefs::load().unwrap();
    prefs.confirm_force_off = true;
    prefs.save().unwrap();
    let (app, window) = launch();
    let dialog = open_add(&app);
    assert_eq!(dialog.uri.text(), "qemu:///system", "the default choice");
    dialog.ssh.set_active(true);
    dialog.user.set_text("me");
    dialog.host.set_text("far.example");
    assert_eq!(dialog.uri.text(), "qemu+ssh://me@far.example/system");
    dialog.session.set_active(true);
    assert_eq!(dialog.uri.text(), "qemu+ssh://me@far.example/session");
    dialog.custom.set_active(true);
    dialog.custom_uri.set_text(URI);
    assert_eq!(dialog.uri.text(), URI);
    dialog.add.emit_clicked();
    wait_for("the dialog to close", || !dialog.window.is_visible());
    wait_for("the test driver's VM listed", || {
        state_of(&app, "test").as_deref() == Some("Running")
    });
    wait_for("the connection stored in prefs.toml", || {
        Prefs::load()
            .unwrap()
            .connections
            .iter()
            .any(|c| c.uri == URI && c.autoconnect)
    });
    // CPU use from libvirt's domain info, once a second, as for this computer's rows (the test
    // driver counts wall time as CPU time, so its VM reads busy).
    wait_for("the CPU use of the host's VM", || {
        app.model()
            .connections()
            .model()
            .view(URI)
            .and_then(|v| v.cpu_use("test"))
            .is_some_and(|t| t.starts_with("CPU use: ") && t != "CPU use: 0%")
    });
    snap(&window, "connections-group");

    assert!(act(&app, "test", "force-off"));
    // Force Off asks first, as for this computer's VMs (the default preference).
    wait_for("the Force Off question", || {
        super::message_dialog("Force Off test?").is_some()
    });
    super::message_dialog("Force Off test?")
        .unwrap()
        .response("force-off");
    wait_for("Shut off after Force Off", || {
        state_of(&app, "test").as_deref() == Some("Shut off")
    });
    assert!(!act(&app, "test", "force-off"), "not offered when off");
    assert!(act(&app, "test", "start"));
    wait_for("Running after Run", || {
        state_of(&app, "test").as_deref() == Some("Running")
    });

    // Behind the app's back: only the domain event can tell the window.
    let other = LibvirtConnection::open(URI).unwrap();
    other.control("test", Lifecycle::Suspend).unwrap();
    wait_for("Paused by event", || {
        state_of(&app, "test").as_deref() == Some("Paused")
    });
    other.control("test", Lifecycle::Resume).unwrap();
    wait_for("Running by event", || {
        state_of(&app, "test").as_deref() == Some("Running")
    });
    assert_eq!(other.domstate("test").unwrap().0, DomainState::Running);
    remove_connection(&app, URI);
    window.set_visible(false);
}

/// A URI of the wrong shape is said in the dialog, which stays open; a well-formed one that
/// cannot connect shows its group disconnected, with libvirt's error and Reconnect.
pub fn bad_uri_is_said_inline() {
    let (app, window) = launch();
    let dialog = open_add(&app);
    dialog.custom.set_active(true);
    dialog.add.emit_clicked();
    assert!(
        dialog.error.text().starts_with("Enter a libvirt URI"),
        "{}",
        dialog.error.text()
    );
    dialog.custom_uri.set_text("not a uri");
    dialog.add.emit_clicked();
    assert!(dialog.error.is_visible());
    assert!(
        dialog.error.text().contains("not a uri"),
        "{}",
        dialog.error.text()
    );
    assert!(dialog.window.is_visible(), "the dialog stays open");
    dialog.custom_uri.set_text("nosuchdriver:///system");
    assert!(
        !dialog.error.is_visible(),
        "the error goes once the URI changes"
    );
    dialog.add.emit_clicked();
    wait_for("the group to say it failed", || {
        app.model()
            .connections()
            .model()
            .view("nosuchdriver:///system")
            .is_some_and(|v| v.error.is_visible() && v.reconnect.is_visible())
    });
    let error = app
        .model()
        .connections()
        .model()
        .view("nosuchdriver:///system")
        .unwrap()
        .error
        .text()
        .to_string();
    assert!(error.starts_with("nosuchdriver:///system"), "{error}");
    snap(&window, "connections-bad-uri");
    remove_connection(&app, "nosuchdriver:///system");
    window.set_visible(false);
}

/// The keyboard: the dialog opens with the focus on the first choice, Escape cancels, Enter
/// adds (typed into the custom URI).
pub fn add_connection_works_with_the_keyboard() {
    if xdotool(&["version"]).is_none() {
        return;
    }
    let (app, window) = launch();
    let dialog = open_add(&app);
    wait_for("the focus on the first choice", || {
        focus_in(&dialog.window, &dialog.system)
    });
    let focus = || focus_window("^Add Connection$");
    focus();
    press("Escape");
    wait_for("Escape to cancel", || !dialog.window.is_visible());
    // Down to Custom URI, Space picks it and puts the cursor in the URI; Enter adds.
    let dialog = open_add(&app);
    focus();
    press("Down");
    press("Down");
    press("space");
    assert!(dialog.custom.is_active());
    assert!(focus_in(&dialog.window, &dialog.custom_uri));
    type_text(URI);
    assert_eq!(dialog.uri.text(), URI);
    press("Return");
    wait_for("Enter to add", || state_of(&app, "test").is_some());
    assert!(!dialog.window.is_visible());
    remove_connection(&app, URI);
    window.set_visible(false);
}

/// CPU Across Hosts from a VM's row lists this computer and the connection, each with its
/// answer; a host that lacks features is told by name.
pub fn cross_host_dialog_lists_hosts_and_names_features() {
    let (app, window) = launch();
    add_test_connection(&app);
    let other = LibvirtConnection::open(URI).unwrap();
    let xml = other.dumpxml("test", true).unwrap();
    // A fixed model, so each host must be asked (the test driver's VM has none).
    let fixed = vireo::launch::connections::cross_host::with_cpu(
        &xml,
        "<cpu mode='custom' match='exact'><model>qemu64</model></cpu>",
    )
    .unwrap();
    other.define(&fixed).unwrap();
    assert!(act(&app, "test", "cross-host"));
    let cross = || cross_host_dialog(&app);
    wait_for("the hosts' answers", || {
        cross().hosts.row_at_index(1).is_some()
    });
    let subtitles: Vec<(String, String)> = (0..2)
        .map(|i| {
            let row = cross()
                .hosts
                .row_at_index(i)
                .and_downcast::<relm4::adw::ActionRow>()
                .unwrap();
            (
                row.title().to_string(),
                row.subtitle().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(subtitles[0].0, "This computer");
    assert_eq!(subtitles[1].0, URI);
    // The test driver cannot compare CPUs; it says so rather than guessing.
    assert!(
        subtitles[1].1.starts_with("Not asked") && subtitles[1].1.contains("not supported"),
        "{subtitles:?}"
    );
    assert!(!subtitles[0].1.is_empty(), "{subtitles:?}");
    snap(&cross().window, "connections-cross-host");
    // The common CPU: this computer answers through Vireo's own baseline; applying it
    // redefines the VM on its host.
    if cross().apply.is_sensitive() {
        assert!(cross().common.text().starts_with("Common CPU: "));
        cross().apply.emit_clicked();
        wait_for("the common CPU applied", || {
            cross().status.text().contains("now uses the common CPU")
        });
        let model = cross().common.text().replace("Common CPU: ", "");
        assert!(
            other
                .dumpxml("test", true)
                .unwrap()
                .contains(&format!(">{model}</model>")),
            "{model}"
        );
    } else {
        assert!(cross().common.text().starts_with("No common CPU"));
    }
    cross().window.close();
    remove_connection(&app, URI);
    window.set_visible(false);

    // The words for a host that lacks features name them.
    let text = answer_text(&HostAnswer::Cannot {
        missing: vec!["avx512f".into(), "pku".into()],
        why: "Host CPU does not provide required features: avx512f, pku".into(),
    });
    assert_eq!(text, "Cannot run it: lacks avx512f, pku");
    let loss = loss_text(&HostLoss {
        host: "qemu+ssh://far/system".into(),
        loses: Ok(vec!["avx512f".into()]),
    });
    assert_eq!(loss, "Loses against its host-model CPU: avx512f");
}

/// One of this computer's VMs: CPU Across Hosts from its row asks this computer and the
/// connection; Copy to Another Host warns that disks are not copied, then defines it there,
/// and refuses to replace a VM of the same name.
pub fn local_vm_copies_to_a_host_and_asks_all_hosts() {
    let store = vireo::domain::store::DomainStore::open_default().unwrap();
    store
        .define(
            "<domain type='kvm'><name>copy-me</name><memory unit='MiB'>64</memory>\
             <os><type arch='x86_64'>hvm</type></os>\
             <cpu mode='custom' match='exact'><model>qemu64</model></cpu></domain>",
        )
        .unwrap();
    let (app, window) = launch();
    add_test_connection(&app);
    wait_for("the local VM listed", || {
        app.widgets().vm_list.row("copy-me").is_some()
    });
    assert!(app.widgets().this_computer.is_visible());

    assert!(app.widgets().vm_list.activate("copy-me", "cross-host"));
    let cross = || cross_host_dialog(&app);
    wait_for("the hosts' answers", || {
        cross().vm == "copy-me" && cross().hosts.row_at_index(1).is_some()
    });
    let titles: Vec<String> = (0..2)
        .map(|i| {
            cross()
                .hosts
                .row_at_index(i)
                .and_downcast::<relm4::adw::ActionRow>()
                .unwrap()
                .title()
                .to_string()
        })
        .collect();
    assert_eq!(titles, ["This computer", URI]);
    cross().window.close();

    let copy_dialog = || super::message_dialog("Copy copy-me to Another Host");
    assert!(app.widgets().vm_list.activate("copy-me", "copy"));
    wait_for("the copy dialog", || copy_dialog().is_some());
    let body = copy_dialog().unwrap().body().to_string();
    assert!(body.contains("disk images are not"), "{body}");
    copy_dialog().unwrap().response("copy");
    wait_for("the copy listed on the host", || {
        app.model().connections().model().last_copy.as_deref()
            == Some("copy-me copied to test:///default")
            && state_of(&app, "copy-me").as_deref() == Some("Shut off")
    });
    let other = LibvirtConnection::open(URI).unwrap();
    let copied = other.dumpxml("copy-me", true).unwrap();
    assert!(copied.contains("qemu64</model>"), "{copied}");
    // Again: the host has one by that name now; nothing is replaced.
    other.undefine("copy-me").unwrap();
    other
        .define(
            "<domain type='test'><name>copy-me</name><memory unit='MiB'>32</memory>\
             <os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
    assert!(app.widgets().vm_list.activate("copy-me", "copy"));
    wait_for("the copy dialog again", || copy_dialog().is_some());
    copy_dialog().unwrap().response("copy");
    wait_for("the refused copy", || {
        app.model()
            .connections()
            .model()
            .last_copy
            .as_deref()
            .is_some_and(|t| t.contains("already has a virtual machine named copy-me"))
    });
    assert!(
        other
            .dumpxml("copy-me", true)
            .unwrap()
            .contains("type='test'"),
        "the host's own VM was replaced"
    );
    other.undefine("copy-me").unwrap();
    remove_connection(&app, URI);
    store.undefine("copy-me", false).unwrap();
    window.set_visible(false);
}
