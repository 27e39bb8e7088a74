//! Step 3 of the wizard, storage (virt-manager's "Create a disk image for the virtual machine"
//! / "Select or create custom storage"): a new qcow2 or raw image made with progress, an
//! existing image (inspected in a worker: its format, or the error, in place; an `.iso` is a
//! read-only CD-ROM), or no disk.

use std::path::{Path, PathBuf};

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, WizardCmd, WizardMsg, WizardWidgets, entry_row, note, page, spin_row};
use crate::engine::block;
use crate::engine::config::DiskFormat;
use crate::launch::new_vm_form::{BootKind, NewVmForm, StorageKind, is_iso};
use crate::ui::new_vm_text::cdrom_note;
use crate::ui::rows::radio_row;

/// The storage step's widgets.
pub(super) struct StorageWidgets {
    pub storage_group: adw::PreferencesGroup,
    pub storage_none: gtk::CheckButton,
    pub storage_new: gtk::CheckButton,
    pub storage_existing: gtk::CheckButton,
    pub new_size: gtk::SpinButton,
    pub new_format: adw::ComboRow,
    pub existing_image: gtk::Entry,
    pub existing_note: gtk::Label,
    pub progress: gtk::ProgressBar,
}

/// Builds the storage step as the page named "storage" of `stack`.
pub(super) fn storage_page(
    stack: &gtk::Stack,
    form: &NewVmForm,
    sender: &ComponentSender<Wizard>,
) -> StorageWidgets {
    let storage_group = adw::PreferencesGroup::builder()
        .title(gettext("Storage"))
        .build();
    let storage_new = radio_row(
        &storage_group,
        &gettext("Create a disk image for the virtual machine"),
        &gettext("In Vireo's images folder; space is used as the guest writes"),
        None,
    );
    let storage_existing = radio_row(
        &storage_group,
        &gettext("Select existing storage"),
        &gettext("A raw or qcow2 image you already have, or an ISO image"),
        Some(&storage_new),
    );
    let storage_none = radio_row(
        &storage_group,
        &gettext("No disk"),
        &gettext("The guest runs from its kernel and initrd only"),
        Some(&storage_new),
    );
    storage_none.set_active(true);
    let new_group = adw::PreferencesGroup::builder()
        .description(gettext(
            "qcow2 grows as the guest writes and supports snapshots; raw is a plain file",
        ))
        .build();
    let new_size = spin_row(
        &new_group,
        &gettext("Size (GiB)"),
        &gettext("Of the new disk image"),
        (1.0, 4096.0, 1.0),
        form.new_image_gib as f64,
        sender,
    );
    let new_format = adw::ComboRow::builder()
        .title(gettext("Format"))
        .model(&gtk::StringList::new(&["qcow2", "raw"]))
        .build();
    new_group.add(&new_format);
    {
        let sender = sender.clone();
        new_format.connect_selected_notify(move |row| {
            let format = if row.selected() == 1 {
                DiskFormat::Raw
            } else {
                DiskFormat::Qcow2
            };
            sender.input(WizardMsg::SetFormat(format));
        });
    }
    let existing_group = adw::PreferencesGroup::new();
    let existing_image = entry_row(
        &existing_group,
        &gettext("Existing image"),
        Some(&gettext("disk image")),
        sender,
    );
    let existing_note = note(&existing_group, "dim-label");
    for (check, kind) in [
        (&storage_none, StorageKind::None),
        (&storage_new, StorageKind::NewImage),
        (&storage_existing, StorageKind::ExistingImage),
    ] {
        let sender = sender.clone();
        check.connect_toggled(move |c| {
            if c.is_active() {
                sender.input(WizardMsg::SetStorage(kind));
            }
        });
    }
    let progress = gtk::ProgressBar::builder()
        .show_text(true)
        .visible(false)
        .build();
    let progress_group = adw::PreferencesGroup::new();
    progress_group.add(&progress);
    page(
        stack,
        "storage",
        &[&storage_group, &new_group, &existing_group, &progress_group],
    );
    StorageWidgets {
        storage_group,
        storage_none,
        storage_new,
        storage_existing,
        new_size,
        new_format,
        existing_image,
        existing_note,
        progress,
    }
}

/// The summary's Storage line: every disk the VM gets, as Create records them.
pub(super) fn summary(form: &NewVmForm, new_image: Option<&Path>) -> String {
    let disks = form.planned_disks(new_image);
    if disks.is_empty() {
        gettext("No disk")
    } else {
        disks
            .iter()
            .map(|disk| {
                let path = disk.path.display().to_string();
                let text = if disk.new {
                    gettext("new {gib} GiB {format} image {path}")
                        .replace("{gib}", &form.new_image_gib.to_string())
                } else if disk.cdrom {
                    gettext("{path} (CD-ROM, read-only)")
                } else {
                    gettext("{path} ({format})")
                };
                format!(
                    "{}: {}",
                    disk.target,
                    text.replace("{format}", disk.format.as_str())
                        .replace("{path}", &path)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Wizard {
    /// Starts a worker inspecting each image path the form has not seen yet (its format and
    /// whether the block layer can use it); the step waits for the answer.
    pub(super) fn inspect_new_images(&mut self, sender: &ComponentSender<Self>) {
        for path in self.form.images_to_check() {
            if !self.checking.insert(path.clone()) {
                continue;
            }
            let what = gettext("checking the disk image");
            sender.oneshot_command(async move {
                let file = PathBuf::from(&path);
                let check = crate::ui::worker::run_blocking(&what, move || {
                    block::inspect(&file)
                        .map(|info| info.format)
                        .map_err(|e| e.to_string())
                })
                .await
                .and_then(|r| r);
                WizardCmd::Inspected(path, check)
            });
        }
    }

    /// The storage step as the form has it: which fields are live, what the boot image is,
    /// what the existing image was found to be.
    pub(super) fn show_storage(&self, w: &WizardWidgets) {
        let form = &self.form;
        let none_row = w
            .storage_none
            .ancestor(adw::ActionRow::static_type())
            .and_downcast::<adw::ActionRow>();
        if form.boot == BootKind::DiskImage {
            w.storage_group.set_description(Some(
                &gettext("The boot image {path} is the first disk (vda); a disk chosen here is added as vdb.")
                    .replace("{path}", form.boot_image.trim()),
            ));
            if let Some(row) = &none_row {
                row.set_title(&gettext("No other disk"));
                row.set_subtitle(&gettext("Only the boot image"));
            }
        } else {
            w.storage_group.set_description(Some(&gettext(
                "Disks are virtio disks: the guest sees them as /dev/vda, /dev/vdb, …",
            )));
            if let Some(row) = &none_row {
                row.set_title(&gettext("No disk"));
                row.set_subtitle(&gettext("The guest runs from its kernel and initrd only"));
            }
        }
        let new = form.storage == StorageKind::NewImage;
        w.new_size.set_sensitive(new);
        w.new_format.set_sensitive(new);
        w.new_format.set_selected(match form.new_image_format {
            DiskFormat::Qcow2 => 0,
            DiskFormat::Raw => 1,
        });
        let existing = form.storage == StorageKind::ExistingImage;
        w.existing_image.set_sensitive(existing);
        let path = form.existing_image.trim();
        let note = match form.images.get(path) {
            Some(Ok(format)) if existing => {
                let target = form
                    .planned_disks(None)
                    .last()
                    .map(|d| d.target.clone())
                    .unwrap_or_else(|| "vda".into());
                Some(if is_iso(path) {
                    cdrom_note(&target)
                } else {
                    gettext("A {format} image").replace("{format}", format.as_str())
                })
            }
            _ => None,
        };
        w.existing_note.set_visible(note.is_some());
        w.existing_note.set_text(&note.unwrap_or_default());
    }

    /// Makes the new disk image (if asked) in a worker, with progress; [`Self::finish`] defines
    /// the VM.
    pub(super) fn create(&mut self, sender: &ComponentSender<Self>) {
        self.error = None;
        let Some(store) = &self.store else {
            self.error = Some(gettext("Vireo's data folder cannot be opened; see the log"));
            return;
        };
        if self.form.storage != StorageKind::NewImage {
            sender.oneshot_command(async { WizardCmd::DiskReady(Ok(None)) });
            return;
        }
        let path = self.form.new_image_path(store);
        let format = self.form.new_image_format;
        let bytes = self.form.new_image_gib << 30;
        let input = sender.input_sender().clone();
        let what = gettext("creating the disk image");
        self.progress = Some(0.0);
        self.progress_seen.clear();
        sender.oneshot_command(async move {
            let target = path.clone();
            let made = crate::ui::worker::run_blocking(&what, move || {
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        gettext("Cannot create the folder {path}: {error}")
                            .replace("{path}", &dir.display().to_string())
                            .replace("{error}", &e.to_string())
                    })?;
                }
                let mut progress = |share: f64| {
                    let _ = input.send(WizardMsg::Progress(share));
                };
                block::create(&target, format, bytes, &mut progress).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            WizardCmd::DiskReady(made.map(|()| Some(path)))
        });
    }
}
