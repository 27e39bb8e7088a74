//! Repairing an unreadable definition: its file's text in an editor, saved back through
//! [`DomainStore::repair`] once it is a valid domain of the same name. Offered on the VM
//! list's row of a broken definition beside Delete, so a typo need not cost the VM.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{adw, gtk};

use crate::domain::store::DomainStore;

/// Opens the repair editor for `name` over `parent`; `saved` runs after a successful save.
pub fn ask_repair(
    parent: &gtk::Window,
    store: DomainStore,
    name: &str,
    saved: impl Fn(String) + 'static,
) {
    // Read in a worker: the UI thread touches no file.
    let (parent, name, path) = (parent.clone(), name.to_owned(), store.path_of(name));
    let what = gettext("reading the definition");
    gtk::glib::spawn_future_local(async move {
        let text = super::worker::run_blocking(&what, move || std::fs::read_to_string(path))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        editor(&parent, store, &name, &text, None, std::rc::Rc::new(saved));
    });
}

/// The editor holding `text`; `refused` says why the last save was refused.
fn editor(
    parent: &gtk::Window,
    store: DomainStore,
    name: &str,
    text: &str,
    refused: Option<String>,
    saved: std::rc::Rc<dyn Fn(String)>,
) {
    let problem = store
        .get(name)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let dialog = adw::MessageDialog::builder()
        .transient_for(parent)
        .modal(true)
        .heading(gettext("Repair {name}").replace("{name}", name))
        .body(problem)
        .default_width(640)
        .build();
    let view = gtk::TextView::builder()
        .monospace(true)
        .top_margin(6)
        .bottom_margin(6)
        .left_margin(6)
        .right_margin(6)
        .build();
    view.buffer().set_text(text);
    let scroller = gtk::ScrolledWindow::builder()
        .child(&view)
        .min_content_height(280)
        .build();
    let error = gtk::Label::builder()
        .css_classes(["error"])
        .wrap(true)
        .xalign(0.0)
        .visible(refused.is_some())
        .label(refused.unwrap_or_default())
        .build();
    let content = gtk::Box::new(gtk::Orientation::Vertical, 6);
    content.append(&scroller);
    content.append(&error);
    dialog.set_extra_child(Some(&content));
    dialog.add_responses(&[("cancel", &gettext("_Cancel")), ("save", &gettext("_Save"))]);
    dialog.set_response_appearance("save", adw::ResponseAppearance::Suggested);
    dialog.set_close_response("cancel");
    // Enter in the editor is a new line; Save is the button the dialog's Enter presses
    // once the focus leaves the text (Tab).
    super::keyboard::message_dialog_keys(&dialog, "save", &[view.upcast_ref()]);
    let name = name.to_string();
    let parent = parent.clone();
    dialog.connect_response(Some("save"), move |_, _| {
        let buffer = view.buffer();
        let xml = buffer.text(&buffer.start_iter(), &buffer.end_iter(), false);
        match store.repair(&name, &xml) {
            Ok(_) => saved(name.clone()),
            // A refused text comes back in a new editor, with the reason under it.
            Err(e) => editor(
                &parent,
                store.clone(),
                &name,
                &xml,
                Some(e.to_string()),
                saved.clone(),
            ),
        }
    });
    dialog.present();
}
