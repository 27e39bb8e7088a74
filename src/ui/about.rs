//! The About window (AdwAboutWindow): version, license, website, credits.

use gettextrs::gettext;
use relm4::{adw, gtk};

/// Builds the About window for `parent`. Translators get credited through the
/// `translator-credits` string, as GNOME apps do.
pub fn about_window(parent: &impl gtk::prelude::IsA<gtk::Window>) -> adw::AboutWindow {
    let translators = gettext("translator-credits");
    let window = adw::AboutWindow::builder()
        .transient_for(parent)
        .modal(true)
        .application_name(gettext("Vireo"))
        .application_icon(crate::APP_ID)
        .version(crate::VERSION)
        .developer_name(gettext("The Vireo developers"))
        .comments(gettext(
            "Create and run virtual machines with exactly the CPU you choose.",
        ))
        .website("https://vireo.dev")
        .issue_url("https://github.com/vireo-vm/vireo/issues")
        .license_type(gtk::License::Gpl30)
        .copyright("© 2026 The Vireo developers")
        .build();
    if translators != "translator-credits" {
        window.set_translator_credits(&translators);
    }
    window
}
