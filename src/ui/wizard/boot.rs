//! Step 1 of the wizard, how to boot: a Linux kernel and initrd, or an existing disk image.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, WizardMsg, entry_row, note, page};
use crate::launch::new_vm_form::BootKind;
use crate::ui::rows::radio_row;

/// The boot step's widgets.
pub(super) struct BootWidgets {
    pub boot_kernel: gtk::CheckButton,
    pub boot_disk: gtk::CheckButton,
    pub kernel: gtk::Entry,
    pub initrd: gtk::Entry,
    pub cmdline: gtk::Entry,
    pub boot_image: gtk::Entry,
    pub kernel_group: adw::PreferencesGroup,
    pub disk_group: adw::PreferencesGroup,
    pub boot_note: gtk::Label,
}

/// Builds the boot step into `stack`.
/// Builds the boot step into `stack`, below `target_group` ("Create on"): where the VM will
/// live is chosen first, since it decides whose files the kernel and image paths name.
pub(super) fn boot_page(
    stack: &gtk::Stack,
    target_group: &adw::PreferencesGroup,
    sender: &ComponentSender<Wizard>,
) -> BootWidgets {
    let boot_group = adw::PreferencesGroup::builder()
        .title(gettext("How should the virtual machine start?"))
        .build();
    let boot_kernel = radio_row(
        &boot_group,
        &gettext("Linux kernel and initrd"),
        &gettext("Boot a kernel directly, with an optional initial ramdisk"),
        None,
    );
    let boot_disk = radio_row(
        &boot_group,
        &gettext("Existing disk image"),
        &gettext("Boot an installed system from a raw or qcow2 image, or an ISO image"),
        Some(&boot_kernel),
    );
    boot_kernel.set_active(true);
    let kernel_group = adw::PreferencesGroup::builder()
        .title(gettext("Kernel"))
        .build();
    let kernel = entry_row(
        &kernel_group,
        &gettext("Kernel"),
        Some(&gettext("kernel")),
        sender,
    );
    let initrd = entry_row(
        &kernel_group,
        &gettext("Initrd (optional)"),
        Some(&gettext("initrd")),
        sender,
    );
    let cmdline = entry_row(&kernel_group, &gettext("Kernel command line"), None, sender);
    cmdline.set_text("console=ttyS0");
    let disk_group = adw::PreferencesGroup::builder()
        .title(gettext("Disk Image"))
        .description(gettext("Vireo starts guests by direct kernel boot; booting from a disk needs firmware, which Vireo's engine does not have yet. The VM is saved in libvirt's format, so virsh can run it, and opens in its details instead of starting."))
        .visible(false)
        .build();
    let boot_image = entry_row(
        &disk_group,
        &gettext("Disk image"),
        Some(&gettext("disk image")),
        sender,
    );
    let boot_note = note(&disk_group, "dim-label");
    for (check, kind) in [
        (&boot_kernel, BootKind::Kernel),
        (&boot_disk, BootKind::DiskImage),
    ] {
        let sender = sender.clone();
        check.connect_toggled(move |c| {
            if c.is_active() {
                sender.input(WizardMsg::SetBoot(kind));
            }
        });
    }
    page(
        stack,
        "boot",
        &[target_group, &boot_group, &kernel_group, &disk_group],
    );
    BootWidgets {
        boot_kernel,
        boot_disk,
        kernel,
        initrd,
        cmdline,
        boot_image,
        kernel_group,
        disk_group,
        boot_note,
    }
}
