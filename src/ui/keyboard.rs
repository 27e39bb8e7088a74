//! Keyboard flow shared by the wizard and dialogs: Enter in an entry presses the window's
//! default button (Forward, Create, Add), Escape closes the window (Cancel), and a window
//! opens with focus in its first field rather than on its first header button.

use relm4::adw::prelude::*;
use relm4::gtk;

/// Makes `default` the button Enter presses in `window` and Escape close it.
pub fn dialog_keys(window: &impl IsA<gtk::Window>, default: &impl IsA<gtk::Widget>) {
    let window = window.as_ref();
    window.set_default_widget(Some(default));
    let shortcuts = gtk::ShortcutController::new();
    shortcuts.set_scope(gtk::ShortcutScope::Managed);
    shortcuts.add_shortcut(gtk::Shortcut::new(
        gtk::ShortcutTrigger::parse_string("Escape"),
        Some(gtk::NamedAction::new("window.close")),
    ));
    window.add_controller(shortcuts);
}

/// Enter in `entry` presses its window's default button.
pub fn enter_presses_default(entry: &impl IsA<gtk::Editable>) {
    if let Some(text) = entry.delegate().and_downcast::<gtk::Text>() {
        text.set_activates_default(true);
    } else if let Some(entry) = entry.dynamic_cast_ref::<gtk::Entry>() {
        entry.set_activates_default(true);
    }
}

/// Puts the keyboard focus in `widget` once its window is shown (and now, if it already is).
pub fn focus_when_shown(window: &impl IsA<gtk::Window>, widget: &impl IsA<gtk::Widget>) {
    let widget = widget.as_ref().clone();
    if window.as_ref().is_mapped() {
        widget.grab_focus();
    }
    window.as_ref().connect_map(move |_| {
        widget.grab_focus();
    });
}
