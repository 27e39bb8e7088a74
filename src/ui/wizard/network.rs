//! The last step's network selection (virt-manager's "Network selection"): user-mode
//! networking through passt, or none. Where passt is not installed the wizard says so, names
//! the package, and starts with None.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, WizardMsg, note};
use crate::launch::new_vm_form::NetworkChoice;
use crate::ui::rows::radio_row;

/// The network group's widgets.
pub(super) struct NetworkWidgets {
    pub group: adw::PreferencesGroup,
    pub user: gtk::CheckButton,
    pub none: gtk::CheckButton,
    /// Says that passt is missing (and how to get it); hidden where it is installed.
    pub note: gtk::Label,
}

/// Builds the group with `choice` selected; `passt_installed` decides the note.
pub(super) fn network_group(
    choice: NetworkChoice,
    passt_installed: bool,
    sender: &ComponentSender<Wizard>,
) -> NetworkWidgets {
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Network"))
        .build();
    let user = radio_row(
        &group,
        &gettext("User-mode networking (NAT, passt)"),
        &gettext("The guest reaches the network through the host; no root or bridge needed"),
        None,
    );
    let none = radio_row(
        &group,
        &gettext("None"),
        &gettext("No network card"),
        Some(&user),
    );
    user.set_active(choice == NetworkChoice::User);
    none.set_active(choice == NetworkChoice::None);
    let note = note(&group, "warning");
    if !passt_installed {
        note.set_text(&gettext(
            "passt is not installed, so the virtual machine gets no network by default: install the package “passt” (sudo apt install passt) for user-mode networking",
        ));
        note.set_visible(true);
    }
    for (check, choice) in [(&user, NetworkChoice::User), (&none, NetworkChoice::None)] {
        let sender = sender.clone();
        check.connect_toggled(move |c| {
            if c.is_active() {
                sender.input(WizardMsg::SetNetwork(choice));
            }
        });
    }
    NetworkWidgets {
        group,
        user,
        none,
        note,
    }
}

/// The summary's Network line.
pub(super) fn summary(choice: NetworkChoice) -> String {
    match choice {
        NetworkChoice::User => gettext("User-mode networking (NAT, passt), virtio card"),
        NetworkChoice::None => gettext("None"),
    }
}
