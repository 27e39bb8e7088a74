//! Details → Boot: direct kernel boot (kernel, initrd, command line), or for a VM that boots
//! from its disks, those disks in boot order.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{adw, gtk};

use super::{add_page, boot_disks, entry};
use crate::domain::Domain;

/// The Boot page's direct-kernel-boot fields.
pub(super) struct BootWidgets {
    pub kernel: gtk::Entry,
    pub initrd: gtk::Entry,
    pub cmdline: gtk::Entry,
}

/// Builds the Boot page into `stack`.
pub(super) fn boot_page(
    stack: &adw::ViewStack,
    domain: &Domain,
    edited: impl Fn() + Clone + 'static,
) -> BootWidgets {
    let os = domain.os();
    let boot_page = adw::PreferencesPage::new();
    let boot_group = adw::PreferencesGroup::builder()
        .title(gettext("Direct Kernel Boot"))
        .build();
    let kernel = path_entry(
        &boot_group,
        &gettext("Kernel"),
        os.kernel.as_deref().unwrap_or(""),
        &gettext("kernel"),
        edited.clone(),
    );
    let initrd = path_entry(
        &boot_group,
        &gettext("Initrd"),
        os.initrd.as_deref().unwrap_or(""),
        &gettext("initrd"),
        edited.clone(),
    );
    let cmdline = entry(
        &boot_group,
        &gettext("Kernel command line"),
        os.cmdline.as_deref().unwrap_or(""),
        edited.clone(),
    );
    if let Some(disk_boot) = boot_disks::disk_boot_group(domain) {
        // A disk-booted VM: its disks and their order, not empty kernel fields.
        boot_page.add(&disk_boot);
        boot_group.set_visible(false);
    }
    boot_page.add(&boot_group);
    add_page(
        stack,
        "boot",
        &gettext("Boot"),
        "system-run-symbolic",
        &boot_page,
    );
    BootWidgets {
        kernel,
        initrd,
        cmdline,
    }
}

/// An entry with a browse button, for a file path.
fn path_entry(
    group: &adw::PreferencesGroup,
    title: &str,
    value: &str,
    what: &str,
    edited: impl Fn() + 'static,
) -> gtk::Entry {
    let (entry, _) = crate::ui::file_chooser::path_row(group, title, value, what);
    entry.connect_changed(move |_| edited());
    entry
}
