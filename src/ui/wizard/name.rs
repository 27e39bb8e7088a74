//! Step 4 of the wizard: the name (a suggestion filled in), the network, the summary of what
//! Create will make, and "Customize configuration before start".

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, WizardMsg, WizardWidgets, entry_row, network, page, storage};
use crate::domain::validate::HostFacts;
use crate::launch::new_vm_form::{BootKind, NetworkChoice, NewVmForm};
use crate::ui::new_vm_text::cpu_summary_text;

/// The last step's widgets.
pub(super) struct NameWidgets {
    pub name: gtk::Entry,
    pub network_user: gtk::CheckButton,
    pub network_none: gtk::CheckButton,
    pub network_note: gtk::Label,
    pub summary: [adw::ActionRow; 6],
    pub customize: gtk::Switch,
}

/// Builds the name and summary step into `stack`.
pub(super) fn name_page(
    stack: &gtk::Stack,
    network: NetworkChoice,
    passt_installed: bool,
    sender: &ComponentSender<Wizard>,
) -> NameWidgets {
    let name_group = adw::PreferencesGroup::builder()
        .title(gettext("Name"))
        .build();
    let name = entry_row(&name_group, &gettext("Name"), None, sender);
    let network::NetworkWidgets {
        group: network_group,
        user: network_user,
        none: network_none,
        note: network_note,
    } = network::network_group(network, passt_installed, sender);
    let summary_group = adw::PreferencesGroup::builder()
        .title(gettext("Summary"))
        .build();
    let titles = [
        gettext("CPU"),
        gettext("Memory"),
        gettext("Boot"),
        gettext("Storage"),
        gettext("Network"),
        gettext("Display"),
    ];
    let summary = titles.map(|title| {
        let row = adw::ActionRow::builder().title(title).build();
        summary_group.add(&row);
        row
    });
    let start_group = adw::PreferencesGroup::new();
    let customize = gtk::Switch::builder().valign(gtk::Align::Center).build();
    let customize_row = adw::ActionRow::builder()
        .title(gettext("Customize configuration before start"))
        .subtitle(gettext(
            "Open the details instead of starting the virtual machine",
        ))
        .activatable_widget(&customize)
        .build();
    customize_row.add_suffix(&customize);
    start_group.add(&customize_row);
    {
        let sender = sender.clone();
        customize.connect_active_notify(move |_| sender.input(WizardMsg::Edited));
    }
    page(
        stack,
        "name",
        &[&name_group, &network_group, &summary_group, &start_group],
    );
    NameWidgets {
        name,
        network_user,
        network_none,
        network_note,
        summary,
        customize,
    }
}

/// The summary rows' values (CPU, Memory, Boot, Storage, Network, Display): the CPU the VM will get
/// under the current preference, memory and vCPUs, how it boots, its disks (the same list
/// Create records, so Boot and Storage never disagree), its network card.
pub(super) fn summary_values(
    form: &NewVmForm,
    host: &HostFacts,
    new_image: Option<&std::path::Path>,
) -> [String; 6] {
    let prefs = crate::prefs::live::current();
    let boot = match form.boot {
        BootKind::Kernel => gettext("Linux kernel {path}").replace("{path}", &form.kernel),
        BootKind::DiskImage => gettext("Disk image {path}").replace("{path}", &form.boot_image),
    };
    let storage = storage::summary(form, new_image);
    [
        cpu_summary_text(&prefs, host),
        gettext("{mib} MiB, {n} vCPUs")
            .replace("{mib}", &form.memory_mib.to_string())
            .replace("{n}", &form.vcpus.to_string()),
        boot,
        storage,
        network::summary(form.network),
        // What `NewVmForm::build` adds to every new VM.
        gettext("Screen (virtio-gpu) with virtio keyboard and tablet"),
    ]
}

impl Wizard {
    /// On arriving at the last step, fills the name field with a suggestion (so the wizard can
    /// be finished with the mouse only) unless the user has typed a name of their own.
    pub(super) fn propose_name(&mut self, widgets: &WizardWidgets) {
        let typed = widgets.name.text();
        if !typed.is_empty() && self.suggested_name.as_deref() != Some(typed.as_str()) {
            return;
        }
        let suggestion = self.form.suggest_name(self.store.as_ref());
        if typed != suggestion.as_str() {
            self.suggested_name = Some(suggestion.clone());
            widgets.name.set_text(&suggestion);
            self.form.name = suggestion;
        }
    }
}
