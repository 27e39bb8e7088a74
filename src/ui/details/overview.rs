//! Details → Overview: the name, title, description, run state and UUID.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{adw, gtk};

use super::{add_page, entry};
use crate::domain::store::StoredDomain;
use crate::launch::machines::RunState;

/// The Overview page's editable and changing fields.
pub(super) struct OverviewWidgets {
    pub title: gtk::Entry,
    pub description: gtk::Entry,
    pub state: gtk::Label,
}

/// Builds the Overview page into `stack`.
pub(super) fn overview_page(
    stack: &adw::ViewStack,
    stored: &StoredDomain,
    run_state: &RunState,
    edited: impl Fn() + Clone + 'static,
) -> OverviewWidgets {
    let domain = &stored.domain;
    let overview = adw::PreferencesPage::new();
    let about = adw::PreferencesGroup::new();
    labelled(&about, &gettext("Name"), &stored.name);
    let title = entry(
        &about,
        &gettext("Title"),
        &domain.title().unwrap_or_default(),
        edited.clone(),
    );
    let description = entry(
        &about,
        &gettext("Description"),
        &domain.description().unwrap_or_default(),
        edited.clone(),
    );
    let state = labelled(
        &about,
        &gettext("State"),
        &crate::ui::vm_list::state_text(run_state),
    );
    labelled(&about, &gettext("UUID"), &domain.uuid().unwrap_or_default());
    overview.add(&about);
    add_page(
        stack,
        "overview",
        &gettext("Overview"),
        "computer-symbolic",
        &overview,
    );
    OverviewWidgets {
        title,
        description,
        state,
    }
}

fn labelled(group: &adw::PreferencesGroup, title: &str, value: &str) -> gtk::Label {
    let label = gtk::Label::builder()
        .label(value)
        .selectable(true)
        // One line: a wrapped state or UUID in a row's suffix breaks after every word.
        .wrap(false)
        .xalign(1.0)
        .css_classes(["dim-label"])
        .build();
    let row = adw::ActionRow::builder().title(title).build();
    row.add_suffix(&label);
    group.add(&row);
    label
}
