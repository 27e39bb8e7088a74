//! Details → Devices, as read from the XML: disks, network cards, the display, Add Hardware.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw};

use super::{Details, DiskInfos, DiskSection, NicSection, add_hardware, add_page, other_devices};
use crate::domain::Domain;
use crate::launch::machines::RunState;

/// Builds the Devices page into `stack`: its disk and network card sections.
pub(super) fn devices_page(
    stack: &adw::ViewStack,
    domain: &Domain,
    run_state: &RunState,
    sender: &ComponentSender<Details>,
) -> (DiskSection, NicSection) {
    let devices_page = adw::PreferencesPage::new();
    let mut disk_section = DiskSection::new(sender);
    let running = matches!(run_state, RunState::Running | RunState::Paused);
    disk_section.show(&domain.disks(), &DiskInfos::new(), running, sender);
    devices_page.add(&disk_section.group);

    let mut nic_section = NicSection::new(sender);
    nic_section.show(domain, running, sender);
    devices_page.add(&nic_section.group);
    devices_page.add(&other_devices::display_group(domain));
    devices_page.add(&add_hardware::button_group(sender));
    add_page(
        stack,
        "devices",
        &gettext("Devices"),
        "drive-harddisk-symbolic",
        &devices_page,
    );
    (disk_section, nic_section)
}
