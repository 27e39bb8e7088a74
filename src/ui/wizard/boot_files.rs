//! The wizard's kernel and initrd checks: each is loaded as start would load it
//! ([`crate::launch::boot_check`]) on a worker, so "not a kernel" and "the initrd does not fit"
//! are said on the step where the file or the memory is chosen.

use gettextrs::gettext;
use relm4::ComponentSender;
use relm4::adw::prelude::*;

use super::{Wizard, WizardCmd, WizardWidgets};
use crate::launch::new_vm_form::{BootKind, StorageKind};

impl Wizard {
    /// Starts a worker for each kernel load the form has not tried yet.
    pub(super) fn check_boot_files(&mut self, sender: &ComponentSender<Self>) {
        for files in self.form.boot_files_to_check(self.host) {
            if !self.loading.insert(files.clone()) {
                continue;
            }
            let what = gettext("checking the kernel");
            sender.oneshot_command(async move {
                let (kernel, initrd, mib) = files.clone();
                let result = crate::ui::worker::run_blocking(&what, move || {
                    crate::launch::boot_check::check_boot_files(
                        std::path::Path::new(&kernel),
                        Some(initrd.as_str())
                            .filter(|i| !i.is_empty())
                            .map(std::path::Path::new),
                        mib << 20,
                    )
                    .map_err(|e| e.to_string())
                })
                .await
                .and_then(|r| r);
                WizardCmd::BootChecked(files, result)
            });
        }
    }

    /// Puts the keyboard focus in the first field of the step now shown.
    pub(super) fn focus_step(&self, w: &WizardWidgets) {
        match self.step {
            0 if self.form.boot == BootKind::DiskImage => w.boot_image.grab_focus(),
            0 => w.kernel.grab_focus(),
            1 => w.memory.grab_focus(),
            2 => match self.form.storage {
                StorageKind::NewImage => w.new_size.grab_focus(),
                StorageKind::ExistingImage => w.existing_image.grab_focus(),
                // Enter on the focused Forward goes on; Shift+Tab reaches the choices.
                StorageKind::None => w.forward.grab_focus(),
            },
            _ => w.name.grab_focus(),
        };
    }
}
