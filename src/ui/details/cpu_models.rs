//! The CPU page's model list: ~150 named models behind a search field, in a scrolled list of
//! bounded height, so Features and Topology below stay in reach. Each row says whether this
//! host's KVM can give the model and, when not, names the missing features in the row itself.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Details, DetailsMsg};

/// How many missing features a row names before "and N more".
const NAMED: usize = 4;

/// The row's subtitle for a model KVM lacks `missing` of (empty: usable).
pub fn usability_text(missing: &[String]) -> String {
    if missing.is_empty() {
        if crate::ui::worker::cpuid_enforced() == Some(false) {
            return gettext("KVM accepts it; the guest sees the host CPU here");
        }
        return gettext("Usable on this host");
    }
    let mut named = missing
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if missing.len() > NAMED {
        named = gettext("{features} and {n} more")
            .replace("{features}", &named)
            .replace("{n}", &(missing.len() - NAMED).to_string());
    }
    gettext("Not usable here: KVM lacks {features}").replace("{features}", &named)
}

/// The model rows, their search field and radio buttons, added to `expander`.
pub struct ModelList {
    pub search: gtk::SearchEntry,
    pub buttons: Vec<(String, gtk::CheckButton)>,
}

/// Builds the list for `usability` (model name → features KVM lacks) into `expander`.
pub fn model_list(
    expander: &adw::ExpanderRow,
    usability: Vec<(String, Vec<String>)>,
    syncing: &std::rc::Rc<std::cell::Cell<bool>>,
    sender: &ComponentSender<Details>,
) -> ModelList {
    let search = gtk::SearchEntry::builder()
        .placeholder_text(gettext("Search models"))
        .hexpand(true)
        .build();
    let list = gtk::ListBox::builder()
        .selection_mode(gtk::SelectionMode::None)
        .build();
    let mut buttons: Vec<(String, gtk::CheckButton)> = Vec::new();
    let mut rows: Vec<(String, adw::ActionRow)> = Vec::new();
    for (name, missing) in usability {
        let check = gtk::CheckButton::builder()
            .valign(gtk::Align::Center)
            .build();
        if let Some((_, first)) = buttons.first() {
            check.set_group(Some(first));
        }
        let row = adw::ActionRow::builder()
            .title(name.as_str())
            .subtitle(usability_text(&missing))
            .activatable_widget(&check)
            .build();
        if !missing.is_empty() {
            row.set_tooltip_text(Some(
                &gettext("Missing: {features}").replace("{features}", &missing.join(", ")),
            ));
            row.add_css_class("dim-label");
        }
        row.add_prefix(&check);
        list.append(&row);
        let sender = sender.clone();
        let syncing = syncing.clone();
        let model_name = name.clone();
        check.connect_toggled(move |c| {
            if c.is_active() && !syncing.get() {
                sender.input(DetailsMsg::Model(model_name.clone()));
            }
        });
        rows.push((name.clone(), row));
        buttons.push((name, check));
    }
    search.connect_search_changed(move |entry| {
        let query = entry.text().trim().to_lowercase();
        for (name, row) in &rows {
            row.set_visible(query.is_empty() || name.to_lowercase().contains(&query));
        }
    });
    let scroller = gtk::ScrolledWindow::builder()
        .child(&list)
        .hscrollbar_policy(gtk::PolicyType::Never)
        .min_content_height(120)
        .max_content_height(320)
        .propagate_natural_height(true)
        .build();
    let content = gtk::Box::builder()
        .orientation(gtk::Orientation::Vertical)
        .spacing(6)
        .margin_top(6)
        .margin_bottom(6)
        .margin_start(6)
        .margin_end(6)
        .build();
    content.append(&search);
    content.append(&scroller);
    let holder = gtk::ListBoxRow::builder()
        .activatable(false)
        .focusable(false)
        .child(&content)
        .build();
    expander.add_row(&holder);
    ModelList { search, buttons }
}
