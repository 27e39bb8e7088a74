//! The preference rows the wizard, Preferences and details windows share: a spin button, an
//! entry or a radio button in an `AdwActionRow`, added to a group. Callers connect signals.
//! Rows holding an entry or spin button are not focusable themselves, so Tab moves from field
//! to field instead of stopping on rows that take no typing.

use relm4::adw::prelude::*;
use relm4::{adw, gtk};

/// A row with a spin button over `min..=max` in `step`s, showing `value`.
pub fn spin_row(
    group: &adw::PreferencesGroup,
    title: &str,
    subtitle: Option<&str>,
    (min, max, step): (f64, f64, f64),
    value: f64,
) -> gtk::SpinButton {
    let spin = gtk::SpinButton::with_range(min, max, step);
    spin.set_value(value);
    spin.set_valign(gtk::Align::Center);
    let row = adw::ActionRow::builder()
        .title(title)
        .activatable_widget(&spin)
        .focusable(false)
        .build();
    if let Some(subtitle) = subtitle {
        row.set_subtitle(subtitle);
    }
    row.add_suffix(&spin);
    group.add(&row);
    spin
}

/// A row with a text entry holding `value`; the row is returned too, for extra suffixes.
pub fn entry_row(
    group: &adw::PreferencesGroup,
    title: &str,
    value: &str,
) -> (gtk::Entry, adw::ActionRow) {
    let entry = gtk::Entry::builder()
        .text(value)
        .valign(gtk::Align::Center)
        .hexpand(true)
        .build();
    // Not focusable itself: Tab goes straight to the entry, where typing lands.
    let row = adw::ActionRow::builder()
        .title(title)
        .focusable(false)
        .build();
    row.add_suffix(&entry);
    group.add(&row);
    (entry, row)
}

/// A row led by a radio button, in the group of `leader` when given.
pub fn radio_row(
    group: &adw::PreferencesGroup,
    title: &str,
    subtitle: &str,
    leader: Option<&gtk::CheckButton>,
) -> gtk::CheckButton {
    let check = gtk::CheckButton::builder()
        .valign(gtk::Align::Center)
        .build();
    if let Some(leader) = leader {
        check.set_group(Some(leader));
    }
    let row = adw::ActionRow::builder()
        .title(title)
        .subtitle(subtitle)
        .activatable_widget(&check)
        .build();
    row.add_prefix(&check);
    group.add(&row);
    check
}

/// A flat icon button centred in a row or a group's header (Add, Remove, Resize), its tooltip
/// saying what it does (an icon alone does not).
pub fn icon_button(icon: &str, tooltip: &str) -> gtk::Button {
    gtk::Button::builder()
        .icon_name(icon)
        .tooltip_text(tooltip)
        .valign(gtk::Align::Center)
        .css_classes(["flat"])
        .build()
}

/// The domain XML editor of a details window (built-in and libvirt VMs alike): monospace, with
/// a margin so the text does not touch the window's edge.
pub fn xml_editor() -> gtk::TextView {
    gtk::TextView::builder()
        .monospace(true)
        .top_margin(12)
        .bottom_margin(12)
        .left_margin(12)
        .right_margin(12)
        .build()
}
