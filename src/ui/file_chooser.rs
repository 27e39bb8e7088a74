//! Browse buttons beside path entries. A `gtk::FileChooserNative` is not owned by its parent
//! window: dropped right after `show()` it closes again before the user sees it (the wizard's
//! buttons did nothing but show their tooltip). Each chooser here keeps itself alive through its
//! response handler until it answers, then lets go.
//!
//! Outside a sandbox (no `GDK_DEBUG=portals`) GTK 4.8 shows its own `GtkFileChooserDialog` for a
//! native chooser, which works on any display, Xvfb included; in Flatpak it is the portal's.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{adw, gtk};

/// Opens a file chooser titled `title` over `parent`, starting in the folder of `current` when
/// that names a file, and calls `chosen` with the path the user accepts.
pub fn choose_file(
    parent: Option<&gtk::Window>,
    title: &str,
    current: &str,
    chosen: impl Fn(PathBuf) + 'static,
) {
    let chooser = gtk::FileChooserNative::new(
        Some(title),
        parent,
        gtk::FileChooserAction::Open,
        Some(&gettext("_Open")),
        Some(&gettext("_Cancel")),
    );
    run_chooser(chooser, current, chosen);
}

/// Opens a save dialog titled `title` over `parent`, proposing the file name `suggested`, and
/// calls `chosen` with the path the user accepts (the chooser asks before replacing a file).
pub fn choose_save_file(
    parent: Option<&gtk::Window>,
    title: &str,
    suggested: &str,
    chosen: impl Fn(PathBuf) + 'static,
) {
    let chooser = gtk::FileChooserNative::new(
        Some(title),
        parent,
        gtk::FileChooserAction::Save,
        Some(&gettext("_Save")),
        Some(&gettext("_Cancel")),
    );
    chooser.set_current_name(suggested);
    run_chooser(chooser, "", chosen);
}

/// Shows `chooser`, starting in the folder of `current` when that names a file, and keeps it
/// alive until it answers.
fn run_chooser(chooser: gtk::FileChooserNative, current: &str, chosen: impl Fn(PathBuf) + 'static) {
    chooser.set_modal(true);
    let folder = std::path::Path::new(current.trim()).parent();
    if let Some(folder) = folder.filter(|f| f.is_dir()) {
        let _ = chooser.set_current_folder(Some(&gtk::gio::File::for_path(folder)));
    }
    // The handler owns the only strong reference until the answer comes; taking it out then
    // breaks the cycle so the chooser is freed.
    let keep: Rc<RefCell<Option<gtk::FileChooserNative>>> = Rc::new(RefCell::new(None));
    let held = keep.clone();
    chooser.connect_response(move |chooser, response| {
        if response == gtk::ResponseType::Accept
            && let Some(path) = chooser.file().and_then(|f| f.path())
        {
            chosen(path);
        }
        held.borrow_mut().take();
    });
    chooser.show();
    keep.borrow_mut().replace(chooser);
}

/// A "browse" button for `entry`: picking a file puts its path into the entry (whose `changed`
/// signal then tells the window). `what` names the file ("kernel", "disk image").
pub fn browse_button(entry: &gtk::Entry, what: &str) -> gtk::Button {
    let button = gtk::Button::builder()
        .icon_name("document-open-symbolic")
        .tooltip_text(gettext("Choose the {what}…").replace("{what}", what))
        .valign(gtk::Align::Center)
        .build();
    let target = entry.clone();
    let title = gettext("Choose the {what}").replace("{what}", what);
    button.connect_clicked(move |button| {
        let parent = button.root().and_downcast::<gtk::Window>();
        let target_for_answer = target.clone();
        choose_file(parent.as_ref(), &title, &target.text(), move |path| {
            target_for_answer.set_text(&path.to_string_lossy());
        });
    });
    button
}

/// An entry row with a browse button, in `group`; the entry's sensitivity governs the button's.
pub fn path_row(
    group: &adw::PreferencesGroup,
    title: &str,
    value: &str,
    what: &str,
) -> (gtk::Entry, adw::ActionRow) {
    let (entry, row) = super::rows::entry_row(group, title, value);
    let button = browse_button(&entry, what);
    entry
        .bind_property("sensitive", &button, "sensitive")
        .sync_create()
        .build();
    row.add_suffix(&button);
    (entry, row)
}
