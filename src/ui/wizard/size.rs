//! Step 2 of the wizard, memory and vCPUs, bounded by what this host has.

use gettextrs::gettext;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, page, spin_row};
use crate::launch::new_vm_form::{HostLimits, NewVmForm};

/// Builds the memory and vCPU step into `stack`: its memory and vCPU spin buttons.
pub(super) fn size_page(
    stack: &gtk::Stack,
    host: HostLimits,
    form: &NewVmForm,
    sender: &ComponentSender<Wizard>,
) -> (gtk::SpinButton, gtk::SpinButton) {
    let size_group = adw::PreferencesGroup::builder()
        .title(gettext("Memory and Processors"))
        .build();
    let memory = spin_row(
        &size_group,
        &gettext("Memory (MiB)"),
        &gettext("Up to {mib} MiB available on this host")
            .replace("{mib}", &host.memory_mib.to_string()),
        (16.0, host.memory_mib.max(16) as f64, 64.0),
        form.memory_mib as f64,
        sender,
    );
    let vcpus = spin_row(
        &size_group,
        &gettext("vCPUs"),
        &gettext("Up to {n} available on this host").replace("{n}", &host.cpus.to_string()),
        (1.0, f64::from(host.cpus.max(1)), 1.0),
        f64::from(form.vcpus),
        sender,
    );
    page(stack, "size", &[&size_group]);
    (memory, vcpus)
}
