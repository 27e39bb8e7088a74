//! The GTK4 + libadwaita desktop app (relm4 components). Only compiled with the `gui` feature.

pub mod about;
pub mod app;
pub mod autostart;
pub mod connections;
pub mod console;
pub mod details;
pub mod display;
pub mod file_chooser;
pub mod i18n;
pub mod keyboard;
pub mod new_vm_text;
pub mod preferences;
pub mod renderer;
pub mod repair;
pub mod rows;
pub mod vm_list;
pub mod wizard;
pub mod worker;

use relm4::gtk::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{RelmApp, adw, gtk};

/// Registers the compiled GResource bundle (ui/ files, icons, CSS) and, once a display exists,
/// its icons with the icon theme. Safe to call repeatedly.
pub fn register_resources() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gio::resources_register_include!("vireo.gresource")
            .expect("the GResource bundle compiled by build.rs is valid");
    });
    // The application adds its resource icons to the theme itself; windows built without one
    // (the GUI tests) need them added once a display exists.
    if let Some(display) = gtk::gdk::Display::default() {
        let theme = gtk::IconTheme::for_display(&display);
        let path = "/dev/vireo/Vireo/icons";
        if !theme.resource_path().iter().any(|p| p == path) {
            theme.add_resource_path(path);
        }
    }
}

/// Whether a display server is reachable, judged from the environment before GTK starts.
pub fn display_available() -> bool {
    ["WAYLAND_DISPLAY", "DISPLAY"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// Runs the desktop app: one instance per session (GApplication with the app id), the main
/// window, app-wide actions and their keyboard shortcuts.
pub fn run() -> std::process::ExitCode {
    startup_mark("main");
    renderer::apply();
    i18n::init();
    startup_mark("i18n");
    register_resources();
    startup_mark("resources");
    let app = adw::Application::builder()
        .application_id(crate::APP_ID)
        .resource_base_path("/dev/vireo/Vireo/")
        .build();
    app.connect_startup(|_| {
        startup_mark("GTK started");
        gtk::Window::set_default_icon_name(crate::APP_ID);
        load_css();
        startup_mark("CSS loaded");
    });
    install_app_actions(&app);
    startup_mark("app built");
    let relm = RelmApp::from_app(app);
    startup_mark("relm app");
    relm.run::<app::App>(());
    std::process::ExitCode::SUCCESS
}

/// The application's own actions and every keyboard shortcut. Quit (Ctrl+Q, the primary
/// menu's Quit) closes the main window, so it asks the same question about running VMs as
/// closing the window does; the app ends once its window is gone.
pub fn install_app_actions(app: &adw::Application) {
    let quit = gio::SimpleAction::new("quit", None);
    quit.connect_activate(glib::clone!(
        #[weak]
        app,
        move |_, _| {
            let main_window = app
                .windows()
                .into_iter()
                .find(|w| w.is::<adw::ApplicationWindow>());
            match main_window {
                Some(window) => window.close(),
                None => app.quit(),
            }
        }
    ));
    app.add_action(&quit);
    app.set_accels_for_action("app.quit", &["<Control>q"]);
    app.set_accels_for_action("win.new-vm", &["<Control>n"]);
    app.set_accels_for_action("win.preferences", &["<Control>comma"]);
    app.set_accels_for_action("win.show-help-overlay", &["<Control>question"]);
}

/// Logs (at debug level, target `vireo::startup`) how long after [`run`] began a step of the
/// start-up was reached, so that `RUST_LOG=vireo::startup=debug vireo` shows where cold-start
/// time goes (tools/bench/startup.sh measures the whole).
pub fn startup_mark(step: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
    tracing::debug!(target: "vireo::startup", "{:7.1} ms  {step}", elapsed.as_secs_f64() * 1e3);
}

fn load_css() {
    let provider = gtk::CssProvider::new();
    provider.load_from_resource("/dev/vireo/Vireo/style.css");
    if let Some(display) = gtk::gdk::Display::default() {
        gtk::style_context_add_provider_for_display(
            &display,
            &provider,
            gtk::STYLE_PROVIDER_PRIORITY_APPLICATION,
        );
    }
}
