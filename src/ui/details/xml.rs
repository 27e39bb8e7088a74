//! Details → XML: the definition as text; editing it makes Apply take the document from here.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Details, DetailsMsg, add_page};
use crate::domain::Domain;

/// Builds the XML page into `stack`.
pub(super) fn xml_page(
    stack: &adw::ViewStack,
    domain: &Domain,
    syncing: &std::rc::Rc<std::cell::Cell<bool>>,
    sender: &ComponentSender<Details>,
) -> gtk::TextView {
    let xml = crate::ui::rows::xml_editor();
    xml.buffer().set_text(&domain.to_xml());
    {
        let sender = sender.clone();
        let syncing = syncing.clone();
        xml.buffer().connect_changed(move |_| {
            if !syncing.get() {
                sender.input(DetailsMsg::XmlEdited);
            }
        });
    }
    let xml_scroller = gtk::ScrolledWindow::builder()
        .child(&xml)
        .vexpand(true)
        .build();
    add_page(
        stack,
        "xml",
        &gettext("XML"),
        "text-x-generic-symbolic",
        &xml_scroller,
    );
    xml
}
