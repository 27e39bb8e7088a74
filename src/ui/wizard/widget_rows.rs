//! Small widget helpers of the wizard's steps, and reading the form back from the widgets.

use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, WizardMsg, WizardWidgets};
use crate::launch::new_vm_form::NewVmForm;
use crate::ui::rows;

/// A small wrapped note under a group's rows.
pub(super) fn note(group: &adw::PreferencesGroup, css: &str) -> gtk::Label {
    let label = gtk::Label::builder()
        .wrap(true)
        .xalign(0.0)
        .visible(false)
        .margin_top(6)
        .css_classes([css])
        .build();
    group.add(&label);
    label
}

/// A spin-button row whose changes count as edits of the form.
pub(super) fn spin_row(
    group: &adw::PreferencesGroup,
    title: &str,
    subtitle: &str,
    range: (f64, f64, f64),
    value: f64,
    sender: &ComponentSender<Wizard>,
) -> gtk::SpinButton {
    let spin = rows::spin_row(group, title, Some(subtitle), range, value);
    crate::ui::keyboard::enter_presses_default(&spin);
    let sender = sender.clone();
    spin.connect_value_changed(move |_| sender.input(WizardMsg::Edited));
    spin
}

/// Copies the widgets' values into a form (radio choices, the format and the inspected images
/// come from `base`).
pub(super) fn read_form(base: &NewVmForm, w: &WizardWidgets) -> NewVmForm {
    NewVmForm {
        boot: base.boot,
        storage: base.storage,
        new_image_format: base.new_image_format,
        network: base.network,
        files_elsewhere: base.files_elsewhere,
        images: base.images.clone(),
        boot_checks: base.boot_checks.clone(),
        kernel: w.kernel.text().into(),
        initrd: w.initrd.text().into(),
        cmdline: w.cmdline.text().into(),
        boot_image: w.boot_image.text().into(),
        memory_mib: w.memory.value_as_int().max(0) as u64,
        vcpus: w.vcpus.value_as_int().max(0) as u32,
        new_image_gib: w.new_size.value_as_int().max(0) as u64,
        existing_image: w.existing_image.text().into(),
        name: w.name.text().into(),
        customize: w.customize.is_active(),
    }
}
