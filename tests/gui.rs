//! GUI tests: the real relm4 components in real GTK windows. They need a display; the README's
//! test command runs them under `xvfb-run`. Without a display they are skipped with a reason
//! (a failure under `VIREO_REQUIRE_ENV=1`, as in CI).
//!
//! GTK may only be used from the thread that initialised it, so this is a `harness = false`
//! test that runs its checks one after another on the main thread.

use relm4::adw::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{Component, ComponentController, adw, gtk};

use vireo::ui::app::App;
use vte4::prelude::*;

mod require_env;
use require_env::skip_or_fail;

/// The CPU page and honest CPU wording.
mod gui_cpu;
/// The disk tests: wizard storage, details disks, file choosers.
mod gui_disks;
use gui_cpu::{
    cpu_page_has_one_mode_control_and_a_searchable_model_list, cpu_wording_is_honest_on_this_host,
};
/// Autostart: the VMs marked start with the app; the login entry from Preferences.
mod gui_autostart;
use gui_autostart::{
    opening_the_app_starts_the_vms_marked_autostart, preferences_write_and_remove_the_login_entry,
};
/// The details window's Overview and Devices pages.
mod gui_details;
use gui_details::{
    details_boot_page_shows_disk_boot_order,
    details_offer_begin_installation_until_the_first_start,
    details_show_nics_display_and_a_one_line_state, details_start_lists_every_problem,
    unreadable_definition_opens_the_xml_editor,
};
/// libvirt connections: Add Connection, groups following events, CPU across hosts.
mod gui_connections;
// The private libvirt daemons of the connection tests, for the real migration in the app.
#[path = "connections_support/mod.rs"]
mod connections_support;
/// The console window's screen, fed by a fake runner.
mod gui_display;
/// Keyboard flow (xdotool) and checks where values are entered.
mod gui_keyboard;
/// Networking: the wizard's network selection, details network cards, Add Hardware.
mod gui_network;
use gui_disks::{
    details_lists_adds_removes_and_resizes_disks, file_chooser_opens,
    wizard_creates_a_qcow2_disk_with_progress,
    wizard_existing_image_format_mismatch_is_shown_inline,
};
use gui_keyboard::{
    details_refuses_a_missing_kernel_before_saving, small_dialogs_work_with_the_keyboard,
    wizard_works_with_the_keyboard_alone,
};
use gui_network::{
    add_hardware_works_with_the_keyboard, details_edit_network_cards_and_forwards,
    wizard_network_choice_is_defined,
};

/// Runs the GTK main loop until `done` holds or a few seconds pass.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ctx = glib::MainContext::default();
    while ctx.iteration(false) {}
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        while ctx.iteration(false) {}
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Saves a PNG of `window` as `<$VIREO_SCREENSHOT_DIR>/<name>.png` when that variable is set
/// (tools/screenshots sets it); rendered by GTK itself, so it is exactly what the window shows.
fn snap(window: &impl IsA<gtk::Widget>, name: &str) {
    let Some(dir) = std::env::var_os("VIREO_SCREENSHOT_DIR") else {
        return;
    };
    let widget = window.upcast_ref::<gtk::Widget>();
    wait_for("the window to map", || {
        widget.is_mapped() && widget.width() > 0
    });
    let settle = std::time::Instant::now() + std::time::Duration::from_millis(400);
    wait_for("the window to draw", || std::time::Instant::now() > settle);
    let (width, height) = (widget.width(), widget.height());
    let paintable = gtk::WidgetPaintable::new(Some(widget));
    let snapshot = gtk::Snapshot::new();
    paintable.snapshot(&snapshot, f64::from(width), f64::from(height));
    let Some(node) = snapshot.to_node() else {
        eprintln!("no screenshot of {name}: the window drew nothing");
        return;
    };
    let renderer = widget
        .native()
        .and_then(|n| n.renderer())
        .expect("a realized window");
    let texture = renderer.render_texture(&node, None);
    let path = std::path::Path::new(&dir).join(format!("{name}.png"));
    texture.save_to_png(&path).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// A minimal x86-64 ELF kernel (one 8-byte segment at 16 MiB): the engine's loader accepts
/// it, so the wizard and details take it as a kernel; nothing ever runs it.
pub fn tiny_kernel_bytes() -> Vec<u8> {
    let mut elf = vec![0u8; 0x80];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[6] = 1;
    elf[16..18].copy_from_slice(&2u16.to_le_bytes());
    elf[18..20].copy_from_slice(&62u16.to_le_bytes());
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    elf[24..32].copy_from_slice(&0x100_0000u64.to_le_bytes());
    elf[32..40].copy_from_slice(&0x40u64.to_le_bytes());
    elf[52..54].copy_from_slice(&64u16.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&1u16.to_le_bytes());
    let ph = 0x40;
    elf[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
    elf[ph + 8..ph + 16].copy_from_slice(&0x78u64.to_le_bytes());
    elf[ph + 16..ph + 24].copy_from_slice(&0x100_0000u64.to_le_bytes());
    elf[ph + 24..ph + 32].copy_from_slice(&0x100_0000u64.to_le_bytes());
    elf[ph + 32..ph + 40].copy_from_slice(&8u64.to_le_bytes());
    elf[ph + 40..ph + 48].copy_from_slice(&8u64.to_le_bytes());
    elf
}

/// [`tiny_kernel_bytes`] as a file in the test's temporary folder.
pub fn tiny_kernel() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("vireo-tiny-kernel-{}.elf", std::process::id()));
    if !path.exists() {
        std::fs::write(&path, tiny_kernel_bytes()).unwrap();
    }
    path
}

fn toplevels<T: IsA<gtk::Widget>>() -> Vec<T> {
    gtk::Window::list_toplevels()
        .into_iter()
        .filter_map(|w| w.downcast::<T>().ok())
        .collect()
}

fn empty_state_is_shown() {
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the main window to map", || window.is_mapped());
    let widgets = app.widgets();
    assert_eq!(app.model().vm_count(), 0);
    assert_eq!(
        widgets.content.visible_child_name().as_deref(),
        Some("empty")
    );
    assert!(widgets.empty_state.is_drawable(), "empty state not drawn");
    assert_eq!(widgets.empty_state.title(), "No Virtual Machines");
    assert_eq!(
        widgets.create_button.label().as_deref(),
        Some("Create a Virtual Machine…")
    );
    assert_eq!(window.title().as_deref(), Some("Vireo"));
    drop(widgets);
    snap(&window, "empty-state");
    window.set_visible(false);
}

fn primary_menu_lists_preferences_shortcuts_about() {
    let app = App::builder().launch(());
    let window = app.widget().clone();
    let menu = gtk::Builder::from_resource("/dev/vireo/Vireo/menus.ui")
        .object::<gio::MenuModel>("primary_menu")
        .unwrap();
    let connections = menu
        .item_link(0, gio::MENU_LINK_SECTION.as_str())
        .expect("a first section: Add Connection");
    assert_eq!(
        connections
            .item_attribute_value(0, "action", None)
            .and_then(|v| v.get::<String>())
            .as_deref(),
        Some("win.add-connection")
    );
    let section = menu
        .item_link(1, gio::MENU_LINK_SECTION.as_str())
        .expect("a section: Preferences, Shortcuts, About");
    let actions: Vec<String> = (0..section.n_items())
        .map(|i| {
            section
                .item_attribute_value(i, "action", None)
                .and_then(|v| v.get::<String>())
                .unwrap()
        })
        .collect();
    assert_eq!(
        actions,
        ["win.preferences", "win.show-help-overlay", "win.about"]
    );
    let quit_section = menu
        .item_link(2, gio::MENU_LINK_SECTION.as_str())
        .expect("a second section: Quit");
    assert_eq!(
        quit_section
            .item_attribute_value(0, "action", None)
            .and_then(|v| v.get::<String>())
            .as_deref(),
        Some("app.quit")
    );
    for action in ["new-vm", "add-connection", "preferences", "about"] {
        assert!(
            window.lookup_action(action).is_some(),
            "win.{action} missing"
        );
    }
    window.set_visible(false);
}

fn about_window_opens_with_version_and_license() {
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the main window to map", || window.is_mapped());
    assert!(toplevels::<adw::AboutWindow>().is_empty());
    WidgetExt::activate_action(&window, "win.about", None).expect("win.about exists");
    wait_for("the About window", || {
        toplevels::<adw::AboutWindow>()
            .iter()
            .any(|w| w.is_visible())
    });
    let about = toplevels::<adw::AboutWindow>().remove(0);
    assert_eq!(about.application_name(), "Vireo");
    assert_eq!(about.version(), vireo::VERSION);
    assert_eq!(about.license_type(), gtk::License::Gpl30);
    assert_eq!(about.website(), "https://vireo.dev");
    assert_eq!(
        about.transient_for().as_ref(),
        Some(window.upcast_ref::<gtk::Window>())
    );
    about.destroy();
    window.set_visible(false);
}

fn preferences_change_the_cpu_default_on_disk() {
    use vireo::prefs::{CpuModePref, Prefs};
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    WidgetExt::activate_action(&window, "win.preferences", None).expect("win.preferences exists");
    wait_for("the Preferences window", || {
        app.model()
            .preferences()
            .is_some_and(|p| p.widget().is_visible())
    });
    // Clone the widgets out of the component: holding a borrow while the main loop runs would
    // block the component's own updates.
    let (prefs_window, buttons, confirm_force_off, font_size) = {
        let model = app.model();
        let prefs = model.preferences().unwrap();
        let widgets = prefs.widgets();
        (
            prefs.widget().clone(),
            widgets.cpu_mode_buttons.clone(),
            widgets.confirm_force_off.clone(),
            widgets.font_size.clone(),
        )
    };
    assert_eq!(buttons.len(), CpuModePref::ALL.len());
    snap(&prefs_window, "preferences");
    let index = |mode| CpuModePref::ALL.iter().position(|m| *m == mode).unwrap();
    assert!(buttons[index(Prefs::load().unwrap().new_vm_cpu_mode)].is_active());
    for mode in [
        CpuModePref::HostModel,
        CpuModePref::HostModelOnly,
        CpuModePref::HvDefault,
    ] {
        // A click on the row's radio button, as a user would.
        buttons[index(mode)].emit_by_name::<()>("activate", &[]);
        wait_for("the preference to be saved", || {
            Prefs::load().unwrap().new_vm_cpu_mode == mode
        });
        let others_active = CpuModePref::ALL
            .iter()
            .filter(|m| **m != mode)
            .any(|m| buttons[index(*m)].is_active());
        assert!(!others_active, "radio buttons must be exclusive");
    }
    confirm_force_off.set_active(false);
    wait_for("confirm-force-off to be saved", || {
        !Prefs::load().unwrap().confirm_force_off
    });
    font_size.set_value(15.0);
    wait_for("the font size to be saved", || {
        Prefs::load().unwrap().console_font_size == 15
    });
    // Hidden, not destroyed: the component still owns the window and disconnects from it.
    prefs_window.set_visible(false);
    window.set_visible(false);
}

fn probe_guest() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("VIREO_TEST_GUESTS")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::Path::new(&h).join(".cache/vireo/test-guests"))
        })?;
    Some(dir.join("probe.elf")).filter(|p| p.exists())
}

/// The wizard end to end, as a user clicks through it: invalid entries keep Forward/Create
/// disabled with the reason shown; Create defines the VM with the CPU the preference asks for,
/// starts it, and its console shows what the guest prints.
fn wizard_creates_starts_and_shows_the_console() {
    use vireo::domain::store::DomainStore;
    use vireo::prefs::{CpuModePref, Prefs};
    let Some(probe) = probe_guest() else {
        return skip_or_fail("the wizard test: no probe guest (tools/build-test-guests makes it)");
    };
    let mut prefs = Prefs::load().unwrap();
    prefs.new_vm_cpu_mode = CpuModePref::HostModel;
    prefs.save().unwrap();

    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    WidgetExt::activate_action(&window, "win.new-vm", None).unwrap();
    wait_for("the wizard", || {
        app.model()
            .wizard()
            .is_some_and(|w| w.widget().is_visible())
    });
    let w = {
        let model = app.model();
        let wizard = model.wizard().unwrap();
        let w = wizard.widgets();
        (
            w.kernel.clone(),
            w.forward.clone(),
            w.problem.clone(),
            w.memory.clone(),
            w.name.clone(),
            w.summary.clone(),
            w.title.clone(),
        )
    };
    let (kernel, forward, problem, memory, name, summary, title) = w;
    // Lets the wizard process what was typed (its messages travel through the main loop).
    let settle = || {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(150);
        wait_for("the wizard to settle", || std::time::Instant::now() > until);
    };
    settle();
    assert_eq!(title.subtitle(), "Step 1 of 4");
    assert!(!forward.is_sensitive(), "Forward must wait for a kernel");
    assert!(
        problem.text().contains("kernel"),
        "says what is missing: {}",
        problem.text()
    );
    kernel.set_text("/no/such/kernel");
    settle();
    assert!(!forward.is_sensitive());
    assert!(problem.text().contains("/no/such/kernel"));
    kernel.set_text(&probe.to_string_lossy());
    wait_for("Forward to enable", || forward.is_sensitive());
    forward.emit_clicked();
    wait_for("step 2", || title.subtitle() == "Step 2 of 4");
    memory.set_value(64.0);
    wait_for("Forward on step 2", || forward.is_sensitive());
    forward.emit_clicked();
    wait_for("step 3", || title.subtitle() == "Step 3 of 4");
    forward.emit_clicked();
    wait_for("step 4", || title.subtitle() == "Step 4 of 4");
    assert_eq!(
        name.text(),
        "probe",
        "a name is proposed from the kernel's file"
    );
    wait_for("Create to enable with the proposed name", || {
        forward.is_sensitive()
    });
    name.set_text("");
    settle();
    assert!(!forward.is_sensitive(), "Create must wait for a name");
    name.set_text("bad/name");
    settle();
    assert!(!forward.is_sensitive());
    name.set_text("wizard-probe");
    wait_for("Create to enable", || forward.is_sensitive());
    assert_eq!(summary[0].title(), "CPU");
    assert!(
        summary[0]
            .subtitle()
            .unwrap_or_default()
            .starts_with("Copy of the host CPU"),
        "{:?}",
        summary[0].subtitle()
    );
    assert!(
        summary[2]
            .subtitle()
            .unwrap_or_default()
            .contains("probe.elf"),
        "the boot row names the kernel"
    );
    let wizard_window = app.model().wizard().map(|w| w.widget().clone());
    if let Some(wizard_window) = wizard_window {
        snap(&wizard_window, "wizard-summary");
    }
    forward.emit_clicked();

    let store = DomainStore::open_default().unwrap();
    wait_for("the VM to be defined", || store.get("wizard-probe").is_ok());
    let xml = store.get("wizard-probe").unwrap().domain.to_xml();
    assert!(xml.contains("<cpu mode='host-model'"), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>65536</memory>"), "{xml}");
    wait_for("the console window", || {
        app.model().console("wizard-probe").is_some()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        wait_for("a moment", || true);
        let seen = app
            .model()
            .console("wizard-probe")
            .map(|c| c.model().transcript())
            .unwrap_or_default();
        if seen.contains("VIREO-PROBE BEGIN") && seen.contains("CPUID 00000001") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the console never showed the guest: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The terminal itself shows it too, not only the transcript.
    let terminal = app
        .model()
        .console("wizard-probe")
        .unwrap()
        .widgets()
        .terminal
        .clone();
    let mut shown = String::new();
    wait_for("the terminal to show the guest's output", || {
        terminal.select_all();
        shown = terminal
            .text_selected(vte4::Format::Text)
            .unwrap_or_default()
            .to_string();
        shown.contains("CPUID 0000000")
    });
    wait_for("the list to show it running", || {
        app.model().vms().iter().any(|vm| {
            vm.name == "wizard-probe" && vm.state == vireo::launch::machines::RunState::Running
        })
    });
    let console_window = app
        .model()
        .console("wizard-probe")
        .unwrap()
        .widget()
        .clone();
    snap(&console_window, "console");
    snap(&window, "main-window");
    // The details window shows the state the main window's listing saw, and follows it
    // (it never asks the runner itself, on the UI thread).
    app.emit(vireo::ui::app::AppMsg::Row(
        vireo::ui::vm_list::RowRequest::Open("wizard-probe".into()),
    ));
    wait_for("the details window", || {
        app.model().details("wizard-probe").is_some()
    });
    let state = app
        .model()
        .details("wizard-probe")
        .unwrap()
        .widgets()
        .state
        .clone();
    assert_eq!(state.text(), "Running");
    vireo::launch::machines::control("wizard-probe", vireo::launch::machines::VmAction::ForceOff)
        .unwrap();
    wait_for("the console banner", || {
        app.model()
            .console("wizard-probe")
            .is_some_and(|c| c.model().banner().is_some_and(|b| b.contains("destroyed")))
    });
    wait_for("the details window to show it shut off", || {
        state.text() == "Shut off"
    });
    app.model()
        .details("wizard-probe")
        .unwrap()
        .widget()
        .close();
    window.set_visible(false);
}

/// The details window edits the CPU as a user would and writes libvirt XML on Apply; broken
/// XML typed on the XML page is refused inline and leaves the stored file untouched.
fn details_cpu_page_edits_the_xml() {
    use vireo::cpu::Policy;
    use vireo::domain::store::DomainStore;
    use vireo::ui::details::DetailsMsg;
    let store = DomainStore::open_default().unwrap();
    store
        .define(
            &format!("<domain type='kvm'>\n  <name>details-vm</name>\n  <!-- kept as is -->\n  <memory unit='KiB'>131072</memory>\n  <vcpu placement='static'>2</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n</domain>\n", tiny_kernel().display()),
        )
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("details-vm").is_some()
    });
    assert!(app.widgets().vm_list.activate("details-vm", "open"));
    wait_for("the details window", || {
        app.model().details("details-vm").is_some()
    });
    let (
        sender,
        cpu_mode,
        vcpus,
        cores,
        sockets,
        models,
        entry,
        apply,
        xml,
        error,
        warning,
        vcpu_warning,
    ) = {
        let model = app.model();
        let details = model.details("details-vm").unwrap();
        let w = details.widgets();
        (
            details.sender().clone(),
            w.cpu_mode.clone(),
            w.vcpus.clone(),
            w.cores.clone(),
            w.sockets.clone(),
            w.model_buttons.clone(),
            w.feature_entry.clone(),
            w.apply.clone(),
            w.xml.clone(),
            w.error.clone(),
            w.host_warning.clone(),
            w.vcpu_warning.clone(),
        )
    };
    let settle = || {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(150);
        wait_for("the details to settle", || {
            std::time::Instant::now() > until
        });
    };
    assert!(!apply.is_sensitive(), "nothing to apply yet");
    cpu_mode.set_selected(1); // Named CPU model
    settle();
    // A model this host's KVM cannot run is flagged while editing, naming what is missing.
    let kvm = vireo::host::kvm::supported_cpuid().ok();
    let map = vireo::cpu::CpuMap::load().unwrap();
    let unusable = vireo::launch::cpu_edit::model_usability(&map, kvm.as_ref())
        .into_iter()
        .find(|(_, missing)| !missing.is_empty());
    if let Some((model, missing)) = unusable {
        let button = &models.iter().find(|(n, _)| *n == model).unwrap().1;
        button.emit_by_name::<()>("activate", &[]);
        // The host's CPU facts come from a worker (KVM may need a probe guest to answer).
        wait_for("the host warning", || warning.is_visible());
        assert!(
            warning.text().contains(missing[0].as_str()),
            "{}",
            warning.text()
        );
    }
    let pentium3 = &models
        .iter()
        .find(|(n, _)| n == "pentium3")
        .expect("pentium3 listed")
        .1;
    pentium3.emit_by_name::<()>("activate", &[]);
    settle();
    assert!(
        kvm.is_none() || !warning.is_visible(),
        "pentium3 runs here: {}",
        warning.text()
    );
    entry.set_text("sse");
    entry.emit_activate();
    settle();
    sender.emit(DetailsMsg::FeaturePolicy(0, Policy::Disable));
    vcpus.set_value(4.0);
    settle();
    assert_eq!(sockets.value_as_int(), 4, "sockets follow the vCPU count");
    cores.set_value(2.0);
    settle();
    assert_eq!(
        vcpus.value_as_int(),
        8,
        "the vCPU count follows the topology"
    );
    assert!(apply.is_sensitive());
    let details_window = app.model().details("details-vm").map(|d| {
        d.widgets().stack.set_visible_child_name("cpu");
        d.widget().clone()
    });
    if let Some(details_window) = details_window {
        snap(&details_window, "details-cpu");
    }
    apply.emit_clicked();
    wait_for("the checked definition to be saved", || {
        store
            .get("details-vm")
            .unwrap()
            .domain
            .to_xml()
            .contains("pentium3")
    });
    settle();
    let saved = store.get("details-vm").unwrap().domain.to_xml();
    assert!(
        saved.contains("<model fallback='forbid'>pentium3</model>"),
        "{saved}"
    );
    assert!(
        saved.contains("policy='disable'") && saved.contains("name='sse'"),
        "{saved}"
    );
    assert!(saved.contains("cores='2'"), "{saved}");
    assert!(
        saved.contains("<vcpu placement='static'>8</vcpu>"),
        "{saved}"
    );
    assert!(
        saved.contains("<!-- kept as is -->"),
        "untouched parts survive: {saved}"
    );
    assert!(!apply.is_sensitive());

    // More vCPUs than this host has CPUs: a warning, and saving stays possible.
    let host_cpus = vireo::ui::details::host_cpus();
    assert!(host_cpus >= 1);
    assert_eq!(vcpu_warning.is_visible(), host_cpus < 8);
    vcpus.set_value(1024.0);
    settle();
    assert!(vcpu_warning.is_visible(), "no warning for 1024 vCPUs");
    assert_eq!(
        vcpu_warning.text(),
        format!(
            "More vCPUs (1024) than this host has CPUs ({host_cpus}): the guest will run slower, not faster"
        )
    );
    assert!(apply.is_sensitive(), "saving is still allowed");
    if let Some(details_window) = app
        .model()
        .details("details-vm")
        .map(|d| d.widget().clone())
    {
        snap(&details_window, "details-vcpu-warning");
    }
    vcpus.set_value(8.0);
    settle();

    // Broken XML on the XML page: refused in place, the file stays as it was.
    xml.buffer().set_text("<domain><name>details-vm</name>");
    settle();
    apply.emit_clicked();
    settle();
    assert!(
        error.is_visible() && !error.text().is_empty(),
        "an inline error"
    );
    assert_eq!(store.get("details-vm").unwrap().domain.to_xml(), saved);
    window.set_visible(false);
}

/// A VM whose CPU model this host's KVM cannot give does not start; the dialog names what is
/// missing and its "Use Host CPU Model" answer switches the VM to host-model and starts it.
fn start_failure_offers_host_model() {
    use vireo::domain::store::DomainStore;
    use vireo::launch::machines::{self, RunState, VmAction};
    let Some(probe) = probe_guest() else {
        return skip_or_fail(
            "the start-failure test: no probe guest (tools/build-test-guests makes it)",
        );
    };
    let Ok(kvm) = vireo::host::kvm::supported_cpuid() else {
        return skip_or_fail("the start-failure test: /dev/kvm is not usable here");
    };
    let map = vireo::cpu::CpuMap::load().unwrap();
    let unusable = vireo::launch::cpu_edit::model_usability(&map, Some(&kvm))
        .into_iter()
        .find(|(_, missing)| !missing.is_empty());
    let Some((model, missing)) = unusable else {
        // Not a missing environment (so no skip_or_fail): a KVM that can run every model is a
        // property of the host, and no test environment can supply a model it cannot run.
        eprintln!("skipping the start-failure test: this host's KVM can run every CPU model");
        return;
    };
    let store = DomainStore::open_default().unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>cpu-mismatch</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu placement='static'>2</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n  <cpu mode='custom' match='exact' check='partial'>\n    <model fallback='forbid'>{model}</model>\n    <feature policy='disable' name='{}'/>\n  </cpu>\n</domain>\n",
            probe.display(),
            missing[0],
        ))
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("cpu-mismatch").is_some()
    });
    assert!(app.widgets().vm_list.activate("cpu-mismatch", "start"));
    let dialog = || {
        toplevels::<adw::MessageDialog>()
            .into_iter()
            .find(|d| d.is_visible() && d.heading().unwrap_or_default().contains("cpu-mismatch"))
    };
    wait_for("the start-failure dialog", || dialog().is_some());
    let dialog = dialog().unwrap();
    let body = dialog.body();
    assert!(body.contains(&model), "names the model: {body}");
    if let Some(other) = missing.get(1) {
        assert!(
            body.contains(other.as_str()),
            "names a missing feature: {body}"
        );
    }
    assert!(dialog.has_response("host-model") && dialog.has_response("edit-cpu"));
    assert_eq!(machines::run_state("cpu-mismatch").0, RunState::ShutOff);
    snap(&dialog, "start-failed");
    dialog.response("host-model");
    wait_for("the switch to host-model", || {
        store
            .get("cpu-mismatch")
            .is_ok_and(|s| s.domain.to_xml().contains("mode='host-model'"))
    });
    let xml = store.get("cpu-mismatch").unwrap().domain.to_xml();
    assert!(
        !xml.contains(&format!(">{model}<")),
        "the model is gone: {xml}"
    );
    assert!(
        xml.contains(&format!("policy='disable' name='{}'", missing[0])),
        "hiding features stays: {xml}"
    );
    wait_for("the VM to run", || {
        machines::run_state("cpu-mismatch").0 == RunState::Running
    });
    machines::control("cpu-mismatch", VmAction::ForceOff).unwrap();
    wait_for("the VM to stop", || {
        machines::run_state("cpu-mismatch").0 != RunState::Running
    });
    window.set_visible(false);
}

/// The list follows the store while open (as after `vireoctl define`) and tells a VM whose
/// last run crashed from one that was shut off, with Run offered again.
fn list_follows_the_store_and_shows_crashes() {
    use vireo::domain::store::DomainStore;
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the main window to map", || window.is_mapped());
    assert!(app.widgets().vm_list.row("late-arrival").is_none());
    let store = DomainStore::open_default().unwrap();
    store
        .define("<domain type='kvm'>\n  <name>late-arrival</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n</domain>\n")
        .unwrap();
    wait_for("the new VM's row", || {
        app.widgets().vm_list.row("late-arrival").is_some()
    });
    assert_eq!(
        app.widgets().vm_list.state_label("late-arrival").as_deref(),
        Some("Shut off")
    );
    // What a runner records when its guest crashed (on_crash='destroy').
    let exit = vireo::launch::runner::exit_state_path("late-arrival").unwrap();
    std::fs::create_dir_all(exit.parent().unwrap()).unwrap();
    std::fs::write(&exit, "crashed: triple fault at rip 0x1000").unwrap();
    wait_for("the crash to show", || {
        app.widgets().vm_list.state_label("late-arrival").as_deref() == Some("Crashed")
    });
    let tooltip = app.widgets().vm_list.state_tooltip("late-arrival");
    assert_eq!(tooltip.as_deref(), Some("triple fault at rip 0x1000"));
    store.undefine("late-arrival", false).unwrap();
    let _ = std::fs::remove_file(&exit);
    wait_for("the row to go", || {
        app.widgets().vm_list.row("late-arrival").is_none()
    });
    window.set_visible(false);
}

/// Delete from the row's menu asks first; "Keep Disk Images" removes the definition only.
fn delete_asks_and_keeps_disk_images() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    let image = std::env::temp_dir().join(format!("vireo-gui-disk-{}.img", std::process::id()));
    std::fs::write(&image, b"disk").unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>doomed</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
            image.display()
        ))
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || app.widgets().vm_list.row("doomed").is_some());
    assert!(app.widgets().vm_list.activate("doomed", "delete"));
    wait_for("the confirmation", || {
        toplevels::<adw::MessageDialog>()
            .iter()
            .any(|d| d.is_visible())
    });
    let dialog = toplevels::<adw::MessageDialog>()
        .into_iter()
        .find(|d| d.is_visible())
        .unwrap();
    assert!(dialog.heading().unwrap_or_default().contains("doomed"));
    assert!(
        store.get("doomed").is_ok(),
        "nothing is deleted before the answer"
    );
    dialog.response("keep-disks");
    wait_for("the VM to go", || store.get("doomed").is_err());
    wait_for("the row to go", || {
        app.widgets().vm_list.row("doomed").is_none()
    });
    assert!(image.exists(), "the disk image is kept");
    let _ = std::fs::remove_file(&image);
    window.set_visible(false);
}

/// The visible message dialog whose heading contains `heading`, if any.
fn message_dialog(heading: &str) -> Option<adw::MessageDialog> {
    toplevels::<adw::MessageDialog>()
        .into_iter()
        .find(|d| d.is_visible() && d.heading().unwrap_or_default().contains(heading))
}

/// Quitting with a VM running asks first, also on Ctrl+Q (app.quit); "Shut Down All" keeps the
/// window open while the guest (the probe guest ignores ACPI shutdown) keeps running, offers
/// Force Off after the timeout (VIREO_SHUTDOWN_TIMEOUT_S, 2 s here), and closes the window once
/// the VM is off.
fn quitting_waits_for_vms_to_stop() {
    use vireo::domain::store::DomainStore;
    use vireo::launch::machines::{self, RunState};
    let Some(probe) = probe_guest() else {
        return skip_or_fail("the quit test: no probe guest (tools/build-test-guests makes it)");
    };
    let store = DomainStore::open_default().unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>quit-probe</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n  <cpu mode='host-model'/>\n</domain>\n",
            probe.display(),
        ))
        .unwrap();
    machines::start("quit-probe").unwrap();
    wait_for("the VM to run", || {
        machines::run_state("quit-probe").0 == RunState::Running
    });
    let app = App::builder().launch(());
    let window = app.widget().clone();
    // A real application, so that app.quit and its accelerator exist as in the app itself.
    let application = adw::Application::new(None, gio::ApplicationFlags::NON_UNIQUE);
    vireo::ui::install_app_actions(&application);
    application.register(gio::Cancellable::NONE).unwrap();
    application.add_window(&window);
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("quit-probe").is_some()
    });
    assert_eq!(
        application.accels_for_action("app.quit"),
        ["<Control>q"],
        "Ctrl+Q quits"
    );

    // Ctrl+Q: the same question as closing the window, and Cancel keeps everything.
    WidgetExt::activate_action(&window, "app.quit", None).expect("app.quit exists");
    wait_for("the question on Ctrl+Q", || {
        message_dialog("Virtual Machines Are Running").is_some()
    });
    let question = message_dialog("Virtual Machines Are Running").unwrap();
    assert!(
        question.body().contains("quit-probe"),
        "{}",
        question.body()
    );
    for response in ["cancel", "shutdown", "keep"] {
        assert!(question.has_response(response), "{response} offered");
    }
    question.response("cancel");
    question.destroy();
    wait_for("a moment", || true);
    assert!(window.is_visible(), "Cancel keeps the window");
    assert_eq!(machines::run_state("quit-probe").0, RunState::Running);

    // Closing the window: Shut Down All waits for the guest, which ignores the request.
    window.close();
    wait_for("the question on close", || {
        message_dialog("Virtual Machines Are Running").is_some()
    });
    let question = message_dialog("Virtual Machines Are Running").unwrap();
    question.response("shutdown");
    question.destroy();
    wait_for("the progress dialog", || {
        message_dialog("Shutting Down").is_some()
    });
    let progress = message_dialog("Shutting Down").unwrap();
    assert!(
        progress
            .body()
            .contains("Waiting for 1 virtual machine to shut down"),
        "{}",
        progress.body()
    );
    assert!(
        !progress.has_response("force-off"),
        "not before the timeout"
    );
    snap(&progress, "shutting-down");
    wait_for("Force Off after the timeout", || {
        progress.has_response("force-off")
    });
    assert!(progress.has_response("keep"), "Keep Running is offered too");
    assert!(window.is_visible(), "the window waits for the VM");
    assert_eq!(
        machines::run_state("quit-probe").0,
        RunState::Running,
        "the probe guest ignores ACPI shutdown"
    );
    progress.response("force-off");
    wait_for("the window to close once the VM is off", || {
        !window.is_visible()
    });
    assert_ne!(machines::run_state("quit-probe").0, RunState::Running);
    assert!(
        message_dialog("Shutting Down").is_none(),
        "no dialog outlives the window"
    );
    store.undefine("quit-probe", false).unwrap();
}

/// Starts this test binary again with a German locale and checks the window speaks German.
/// A child process, because the locale is process-wide state that GTK reads at start-up.
fn german_translation_is_used() {
    let has_german = std::process::Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                l.eq_ignore_ascii_case("de_DE.utf8") || l.eq_ignore_ascii_case("de_DE.UTF-8")
            })
        })
        .unwrap_or(false);
    if !has_german {
        return skip_or_fail(
            "the German check: no de_DE.UTF-8 locale (tools/dev test generates it)",
        );
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env("VIREO_GUI_TEST_CHILD", "german")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("LANGUAGE", "de")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "Keine virtuellen Maschinen|Virtuelle Maschine erstellen …"
    );
}

/// The child side of [`german_translation_is_used`]: prints what the empty state says.
fn print_empty_state_texts() {
    let app = App::builder().launch(());
    let widgets = app.widgets();
    println!(
        "{}|{}",
        widgets.empty_state.title(),
        widgets.create_button.label().unwrap_or_default()
    );
}

/// Every GUI test, run one after another on the main thread.
const TESTS: [(&str, fn()); 42] = [
    ("empty_state_is_shown", empty_state_is_shown),
    (
        "primary_menu_lists_preferences_shortcuts_about",
        primary_menu_lists_preferences_shortcuts_about,
    ),
    (
        "about_window_opens_with_version_and_license",
        about_window_opens_with_version_and_license,
    ),
    (
        "preferences_change_the_cpu_default_on_disk",
        preferences_change_the_cpu_default_on_disk,
    ),
    (
        "wizard_creates_starts_and_shows_the_console",
        wizard_creates_starts_and_shows_the_console,
    ),
    (
        "console_shows_the_screen_and_sends_input",
        gui_display::console_shows_the_screen_and_sends_input,
    ),
    (
        "details_cpu_page_edits_the_xml",
        details_cpu_page_edits_the_xml,
    ),
    (
        "list_follows_the_store_and_shows_crashes",
        list_follows_the_store_and_shows_crashes,
    ),
    (
        "start_failure_offers_host_model",
        start_failure_offers_host_model,
    ),
    (
        "delete_asks_and_keeps_disk_images",
        delete_asks_and_keeps_disk_images,
    ),
    (
        "quitting_waits_for_vms_to_stop",
        quitting_waits_for_vms_to_stop,
    ),
    ("file_chooser_opens", file_chooser_opens),
    (
        "wizard_creates_a_qcow2_disk_with_progress",
        wizard_creates_a_qcow2_disk_with_progress,
    ),
    (
        "wizard_existing_image_format_mismatch_is_shown_inline",
        wizard_existing_image_format_mismatch_is_shown_inline,
    ),
    (
        "details_lists_adds_removes_and_resizes_disks",
        details_lists_adds_removes_and_resizes_disks,
    ),
    (
        "wizard_works_with_the_keyboard_alone",
        wizard_works_with_the_keyboard_alone,
    ),
    (
        "details_refuses_a_missing_kernel_before_saving",
        details_refuses_a_missing_kernel_before_saving,
    ),
    (
        "cpu_page_has_one_mode_control_and_a_searchable_model_list",
        cpu_page_has_one_mode_control_and_a_searchable_model_list,
    ),
    (
        "cpu_wording_is_honest_on_this_host",
        cpu_wording_is_honest_on_this_host,
    ),
    (
        "details_show_nics_display_and_a_one_line_state",
        details_show_nics_display_and_a_one_line_state,
    ),
    (
        "details_start_lists_every_problem",
        details_start_lists_every_problem,
    ),
    (
        "details_boot_page_shows_disk_boot_order",
        details_boot_page_shows_disk_boot_order,
    ),
    (
        "unreadable_definition_opens_the_xml_editor",
        unreadable_definition_opens_the_xml_editor,
    ),
    (
        "wizard_network_choice_is_defined",
        wizard_network_choice_is_defined,
    ),
    (
        "details_edit_network_cards_and_forwards",
        details_edit_network_cards_and_forwards,
    ),
    (
        "add_hardware_works_with_the_keyboard",
        add_hardware_works_with_the_keyboard,
    ),
    ("german_translation_is_used", german_translation_is_used),
    (
        "preferences_write_and_remove_the_login_entry",
        preferences_write_and_remove_the_login_entry,
    ),
    (
        "opening_the_app_starts_the_vms_marked_autostart",
        opening_the_app_starts_the_vms_marked_autostart,
    ),
    (
        "details_offer_begin_installation_until_the_first_start",
        details_offer_begin_installation_until_the_first_start,
    ),
    (
        "small_dialogs_work_with_the_keyboard",
        small_dialogs_work_with_the_keyboard,
    ),
    (
        "added_connection_lists_vms_and_follows_events",
        gui_connections::added_connection_lists_vms_and_follows_events,
    ),
    (
        "bad_uri_is_said_inline",
        gui_connections::bad_uri_is_said_inline,
    ),
    (
        "add_connection_works_with_the_keyboard",
        gui_connections::add_connection_works_with_the_keyboard,
    ),
    (
        "cross_host_dialog_lists_hosts_and_names_features",
        gui_connections::cross_host_dialog_lists_hosts_and_names_features,
    ),
    (
        "local_vm_copies_to_a_host_and_asks_all_hosts",
        gui_connections::local_vm_copies_to_a_host_and_asks_all_hosts,
    ),
    (
        "migrate_dialog_checks_the_destination_first",
        gui_connections::migrate::migrate_dialog_checks_the_destination_first,
    ),
    (
        "migrate_dialog_moves_a_vm_between_real_hosts",
        gui_connections::migrate::migrate_dialog_moves_a_vm_between_real_hosts,
    ),
    (
        "libvirt_vm_console_shows_output_takes_keys_and_takes_over",
        gui_connections::libvirt_vm_console_shows_output_takes_keys_and_takes_over,
    ),
    (
        "libvirt_vm_details_save_and_refuse_to_overwrite_a_change_on_the_host",
        gui_connections::libvirt_vm_details_save_and_refuse_to_overwrite_a_change_on_the_host,
    ),
    (
        "wizard_defines_on_a_chosen_libvirt_connection",
        gui_connections::wizard_defines_on_a_chosen_libvirt_connection,
    ),
    (
        "lost_libvirt_connection_shows_disconnected_and_the_window_stays_responsive",
        gui_connections::lost_libvirt_connection_shows_disconnected_and_the_window_stays_responsive,
    ),
];

/// Forces off every VM still running in the sandbox and returns their names: after each test,
/// so a test that fails midway (and skips its own clean-up) leaves no guest spinning for hours
/// after the run, and a test that passes but forgot one fails.
fn force_off_leftovers() -> Vec<String> {
    use vireo::launch::runner;
    let mut stopped = runner::running_names();
    stopped.retain(|name| runner::control(name, runner::Request::Destroy).is_ok());
    stopped
}

/// This process's children that have ended but were never waited for. The app starts each VM's
/// runner as its own child, so a runner it forgets to reap stays a zombie while the app runs.
fn zombie_children() -> Vec<String> {
    let mut zombies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) S …": the state follows the last ')'.
            if let Some((comm, rest)) = stat.rsplit_once(')')
                && rest.trim_start().starts_with('Z')
            {
                zombies.push(format!(
                    "{pid} {})",
                    comm.split_once('(').map_or("", |c| c.1)
                ));
            }
        }
    }
    zombies
}

fn main() {
    if !vireo::ui::display_available() {
        // Panics (so this test binary fails) under VIREO_REQUIRE_ENV=1.
        skip_or_fail(
            "GUI tests: no display (run them under xvfb-run, as the README's test command does)",
        );
        println!("0 passed, 0 failed, {} skipped", TESTS.len());
        return;
    }
    // Keep the user's real VMs and preferences out of the tests.
    let sandbox = std::env::temp_dir().join(format!("vireo-gui-test-{}", std::process::id()));
    // SAFETY: set_var is unsafe because other threads may read the environment concurrently;
    // none exist yet (GTK, relm4 and the engine start theirs below).
    unsafe {
        std::env::set_var("XDG_CONFIG_HOME", sandbox.join("config"));
        std::env::set_var("XDG_DATA_HOME", sandbox.join("data"));
        std::env::set_var("XDG_RUNTIME_DIR", sandbox.join("run"));
        std::env::set_var("XDG_STATE_HOME", sandbox.join("state"));
        std::env::set_var("VIREO_VIREOCTL", env!("CARGO_BIN_EXE_vireoctl"));
        // Force Off is offered after 2 s instead of 30 s (quitting_waits_for_vms_to_stop).
        std::env::set_var("VIREO_SHUTDOWN_TIMEOUT_S", "2");
        // GTK's software GL path (Mesa llvmpipe) under Xvfb can deadlock when a frame and a
        // screenshot render at once on a loaded machine; the cairo renderer draws the same.
        if std::env::var_os("GSK_RENDERER").is_none() {
            std::env::set_var("GSK_RENDERER", "cairo");
        }
    }
    vireo::ui::i18n::init();
    gtk::init().expect("GTK initialises on the test display");
    adw::init().expect("libadwaita initialises");
    vireo::ui::register_resources();
    if std::env::var("VIREO_GUI_TEST_CHILD").as_deref() == Ok("german") {
        print_empty_state_texts();
        return;
    }

    // `cargo test --test gui -- NAME…` runs only the tests whose names contain a NAME.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in TESTS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let outcome = std::panic::catch_unwind(test);
        let left_running = force_off_leftovers();
        // A runner that just ended is reaped within moments.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut zombies = zombie_children();
        while !zombies.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            zombies = zombie_children();
        }
        match outcome {
            Ok(()) if left_running.is_empty() && zombies.is_empty() => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Ok(()) if zombies.is_empty() => {
                println!("test {name} ... FAILED: it left {left_running:?} running");
                failed += 1;
            }
            Ok(()) => {
                println!("test {name} ... FAILED: child processes never reaped: {zombies:?}");
                failed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&sandbox);
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
