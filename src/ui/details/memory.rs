//! Details → Memory.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{adw, gtk};

use super::{add_page, spin};
use crate::domain::Domain;

pub(super) fn memory_mib(domain: &Domain) -> u64 {
    domain
        .memory()
        .ok()
        .flatten()
        .and_then(|m| m.bytes())
        .map_or(0, |b| b >> 20)
}

/// Builds the Memory page into `stack`.
pub(super) fn memory_page(
    stack: &adw::ViewStack,
    domain: &Domain,
    edited: impl Fn() + Clone + 'static,
) -> gtk::SpinButton {
    let memory_page = adw::PreferencesPage::new();
    let memory_group = adw::PreferencesGroup::builder()
        .title(gettext("Memory"))
        .build();
    let memory = spin(
        &memory_group,
        &gettext("Memory (MiB)"),
        (16.0, 4.0 * 1024.0 * 1024.0),
        memory_mib(domain) as f64,
    );
    {
        let edited = edited.clone();
        memory.connect_value_changed(move |_| edited());
    }
    memory_page.add(&memory_group);
    add_page(
        stack,
        "memory",
        &gettext("Memory"),
        "vireo-memory-symbolic",
        &memory_page,
    );
    memory
}
