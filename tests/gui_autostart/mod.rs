//! Autostart in the app: the VMs marked autostart start when the main window opens, and the
//! Preferences switch writes and removes the XDG login entry.

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController};

use super::{App, wait_for};

/// The Preferences switch "Start VMs marked autostart when I log in" writes the login entry
/// under `$XDG_CONFIG_HOME/autostart` (running this installation's vireoctl with
/// `start --autostart`) and removes it again.
pub fn preferences_write_and_remove_the_login_entry() {
    let entry = std::path::Path::new(&std::env::var_os("XDG_CONFIG_HOME").unwrap())
        .join("autostart/dev.vireo.Vireo-autostart.desktop");
    let _ = std::fs::remove_file(&entry);
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    WidgetExt::activate_action(&window, "win.preferences", None).expect("win.preferences exists");
    wait_for("the Preferences window", || {
        app.model()
            .preferences()
            .is_some_and(|p| p.widget().is_visible())
    });
    let (prefs_window, switch) = {
        let model = app.model();
        let prefs = model.preferences().unwrap();
        (
            prefs.widget().clone(),
            prefs.widgets().login_autostart.clone(),
        )
    };
    assert!(!switch.is_active(), "no entry, so the switch is off");
    // Scrolls the page down to the group for the screenshot.
    switch.grab_focus();
    super::snap(&prefs_window, "preferences-autostart");
    switch.set_active(true);
    wait_for("the login entry", || entry.is_file());
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = format!(
        "\nExec={} start --autostart\n",
        env!("CARGO_BIN_EXE_vireoctl")
    );
    assert!(text.contains(&exec), "{text}");
    assert!(
        text.starts_with("[Desktop Entry]\nType=Application\n"),
        "{text}"
    );
    switch.set_active(false);
    wait_for("the login entry to go", || !entry.exists());
    // A write that fails (the autostart folder is a file) turns the switch back off and
    // leaves that file alone.
    let folder = entry.parent().unwrap();
    std::fs::remove_dir_all(folder).unwrap();
    std::fs::write(folder, "not a folder").unwrap();
    switch.set_active(true);
    wait_for("the switch back off after the failed write", || {
        !switch.is_active()
    });
    assert_eq!(std::fs::read_to_string(folder).unwrap(), "not a folder");
    std::fs::remove_file(folder).unwrap();
    prefs_window.close();
    window.set_visible(false);
}

/// Opening the app starts the VMs marked autostart (a failing one does not stop the others)
/// and leaves the unmarked ones off.
pub fn opening_the_app_starts_the_vms_marked_autostart() {
    use vireo::domain::store::DomainStore;
    use vireo::launch::machines::RunState;
    let Some(probe) = super::probe_guest() else {
        return super::skip_or_fail(
            "the autostart test: no probe guest (tools/build-test-guests makes it)",
        );
    };
    let store = DomainStore::open_default().unwrap();
    let define = |name: &str, kernel: &str| {
        store
            .define(&format!(
                "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                 <os><type arch='x86_64'>hvm</type><kernel>{kernel}</kernel>\
                 <cmdline>console=ttyS0 vireo.probe=w</cmdline></os></domain>"
            ))
            .unwrap();
    };
    define("auto-aa-bad", "/nonexistent/vmlinuz");
    define("auto-bb-good", &probe.display().to_string());
    define("auto-cc-unmarked", &probe.display().to_string());
    store.set_autostart("auto-aa-bad", true).unwrap();
    store.set_autostart("auto-bb-good", true).unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    let running = vireo::ui::vm_list::state_text(&RunState::Running);
    let off = vireo::ui::vm_list::state_text(&RunState::ShutOff);
    wait_for("the marked VM to run", || {
        app.widgets().vm_list.state_label("auto-bb-good").as_deref() == Some(running.as_str())
    });
    // Every marked VM has been tried once the good one runs (they start in name order).
    assert_eq!(
        app.widgets().vm_list.state_label("auto-aa-bad").as_deref(),
        Some(off.as_str())
    );
    assert_eq!(
        app.widgets()
            .vm_list
            .state_label("auto-cc-unmarked")
            .as_deref(),
        Some(off.as_str())
    );
    // Leave nothing for the later tests' windows to autostart.
    for name in ["auto-aa-bad", "auto-bb-good", "auto-cc-unmarked"] {
        let _ = vireo::launch::machines::control(name, vireo::launch::machines::VmAction::ForceOff);
        store.set_autostart(name, false).unwrap();
    }
    wait_for("the VM to stop", || {
        !vireo::launch::runner::is_running("auto-bb-good")
    });
    for name in ["auto-aa-bad", "auto-bb-good", "auto-cc-unmarked"] {
        store.undefine(name, false).unwrap();
    }
    window.set_visible(false);
}
