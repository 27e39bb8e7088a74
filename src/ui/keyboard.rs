//! Keyboard flow shared by the wizard and dialogs: Enter in an entry presses the window's
//! default button (Forward, Create, Add), Escape closes the window (Cancel), and a window
//! opens with focus in its first field rather than on its first header button.

use relm4::adw::prelude::*;
use relm4::gtk;

/// Makes `default` the button Enter presses in `window` and Escape close it.
pub fn dialog_keys(window: &impl IsA<gtk::Window>, default: &impl IsA<gtk::Widget>) {
    window.as_ref().set_default_widget(Some(default));
    escape_closes(window);
}

/// Escape closes `window` (a dialog without a default button).
pub fn escape_closes(window: &impl IsA<gtk::Window>) {
    let shortcuts = gtk::ShortcutController::new();
    shortcuts.set_scope(gtk::ShortcutScope::Managed);
    shortcuts.add_shortcut(gtk::Shortcut::new(
        gtk::ShortcutTrigger::parse_string("Escape"),
        Some(gtk::NamedAction::new("window.close")),
    ));
    window.as_ref().add_controller(shortcuts);
}

/// Enter in `entry` presses its window's default button.
pub fn enter_presses_default(entry: &impl IsA<gtk::Editable>) {
    if let Some(text) = entry.delegate().and_downcast::<gtk::Text>() {
        text.set_activates_default(true);
    } else if let Some(entry) = entry.dynamic_cast_ref::<gtk::Entry>() {
        entry.set_activates_default(true);
    }
}

/// A message dialog's keys: Enter presses the `default` response (also from `fields`, the
/// entries and spin buttons of its extra child), Escape gives its close response, and it
/// opens with the focus in `fields`' first one, or on the default button when it has none.
pub fn message_dialog_keys(
    dialog: &relm4::adw::MessageDialog,
    default: &str,
    fields: &[&gtk::Widget],
) {
    dialog.set_default_response(Some(default));
    for field in fields {
        if let Some(editable) = field.dynamic_cast_ref::<gtk::Editable>() {
            enter_presses_default(editable);
        }
    }
    if let Some(first) = fields.first() {
        focus_when_shown(dialog, *first);
    } else {
        // The dialog makes its default response's button the window's default widget; a
        // check box in its extra child would otherwise take the focus (and Enter toggle it).
        dialog.connect_map(|dialog| {
            if let Some(button) = dialog.default_widget() {
                button.grab_focus();
            }
        });
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
