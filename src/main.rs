//! `vireo`: the desktop app. Everything it does lives in the `vireo` library (`vireo::ui` for the
//! windows); this file only checks that a display exists and starts the application.

use std::process::ExitCode;

fn main() -> ExitCode {
    vireo::logging::init();
    if !vireo::ui::display_available() {
        eprintln!(
            "vireo: no graphical display found (neither WAYLAND_DISPLAY nor DISPLAY is set).\n\
             Run Vireo inside a desktop session, or manage virtual machines headless with \
             `vireoctl` (try `vireoctl --help`)."
        );
        return ExitCode::from(1);
    }
    vireo::ui::run()
}
