//! Details → Devices → Disks: each disk with its target, kind, format, sizes (from
//! `block::inspect`, in a worker), bus, read-only and cache mode; Add disk (a new image or an
//! existing file), Remove (the image file is kept unless the user asks) and Resize (only while
//! the VM is off). The dialogs only ask; [`super::Details`] does the work in workers and saves
//! the definition through the store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{ComponentSender, adw, gtk};

use super::{Details, DetailsMsg};
use crate::domain::devices::Disk;
use crate::engine::block::ImageInfo;
use crate::engine::config::DiskFormat;
use crate::ui::keyboard::message_dialog_keys;
use crate::ui::new_vm_text::{cdrom_note, size_text};

/// What Add disk asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskRequest {
    /// A new image of `gib` GiB in Vireo's images folder.
    New { gib: u64, format: DiskFormat },
    /// An image file that exists (an `.iso` becomes a read-only CD-ROM).
    Existing(PathBuf),
}

/// What inspecting one disk's image found, keyed by its path.
pub type DiskInfos = BTreeMap<String, Result<ImageInfo, String>>;

/// The Disks group and its rows.
pub struct DiskSection {
    pub group: adw::PreferencesGroup,
    /// One row per disk, in document order, with the target as the row's name.
    pub rows: Vec<adw::ActionRow>,
    /// Each row's Resize button (insensitive while the VM runs), in the same order.
    pub resize_buttons: Vec<gtk::Button>,
    pub add: gtk::Button,
    /// Shown while a disk image is being created or resized.
    pub progress: gtk::ProgressBar,
}

impl DiskSection {
    /// The empty group with its Add disk button.
    pub fn new(sender: &ComponentSender<Details>) -> DiskSection {
        let group = adw::PreferencesGroup::builder()
            .title(gettext("Disks"))
            .build();
        let add = crate::ui::rows::icon_button("list-add-symbolic", &gettext("Add disk"));
        group.set_header_suffix(Some(&add));
        {
            let sender = sender.clone();
            add.connect_clicked(move |_| sender.input(DetailsMsg::AskAddDisk));
        }
        let progress = gtk::ProgressBar::builder()
            .show_text(true)
            .visible(false)
            .margin_top(6)
            .build();
        group.add(&progress);
        DiskSection {
            group,
            rows: Vec::new(),
            resize_buttons: Vec::new(),
            add,
            progress,
        }
    }

    /// Lists `disks` with what inspection found; `running` makes Resize insensitive.
    pub fn show(
        &mut self,
        disks: &[Disk],
        infos: &DiskInfos,
        running: bool,
        sender: &ComponentSender<Details>,
    ) {
        for row in self.rows.drain(..) {
            self.group.remove(&row);
        }
        self.resize_buttons.clear();
        self.group.set_description(Some(&if disks.is_empty() {
            gettext("No disks")
        } else {
            gettext("virtio disks: the guest sees them as /dev/vda, /dev/vdb, … in this order")
        }));
        for disk in disks {
            let (row, resize) = disk_row(disk, infos, running, sender);
            self.group.add(&row);
            self.rows.push(row);
            self.resize_buttons.push(resize);
        }
    }
}

fn is_cdrom(disk: &Disk) -> bool {
    disk.device.as_deref() == Some("cdrom")
}

/// "vda · Disk" and the facts below it.
fn disk_row(
    disk: &Disk,
    infos: &DiskInfos,
    running: bool,
    sender: &ComponentSender<Details>,
) -> (adw::ActionRow, gtk::Button) {
    let target = disk.target_dev.clone().unwrap_or_else(|| "?".into());
    let kind = if is_cdrom(disk) {
        gettext("CD-ROM")
    } else {
        gettext("Disk")
    };
    let path = disk.source.clone().unwrap_or_default();
    let sizes = match infos.get(&path) {
        None => gettext("checking…"),
        Some(Err(error)) => error.clone(),
        Some(Ok(info)) => gettext("{used} of {size}")
            .replace("{used}", &size_text(info.allocated))
            .replace("{size}", &size_text(info.virtual_size)),
    };
    let format = match infos.get(&path) {
        Some(Ok(info)) => info.format.as_str().to_string(),
        _ => disk.driver_type.clone().unwrap_or_else(|| "raw".into()),
    };
    let mut facts = vec![
        format,
        sizes,
        disk.target_bus.clone().unwrap_or_else(|| "?".into()),
        gettext("cache {mode}").replace(
            "{mode}",
            disk.cache.as_deref().unwrap_or(gettext("default").as_str()),
        ),
    ];
    if disk.readonly || is_cdrom(disk) {
        facts.push(gettext("read-only"));
    }
    let mut subtitle = format!("{path}\n{}", facts.join(" · "));
    if is_cdrom(disk) {
        subtitle = format!("{subtitle}\n{}", cdrom_note(&target));
    }
    let row = adw::ActionRow::builder()
        .title(format!("{target} · {kind}"))
        .subtitle(glib::markup_escape_text(&subtitle).as_str())
        .subtitle_lines(4)
        .name(target.as_str())
        .build();
    let resize = gtk::Button::builder()
        .icon_name("view-fullscreen-symbolic")
        .valign(gtk::Align::Center)
        .css_classes(["flat"])
        .build();
    let (resizable, tip) = if is_cdrom(disk) || disk.readonly {
        (false, gettext("A read-only image cannot be resized"))
    } else if running {
        (
            false,
            gettext("Shut the virtual machine down to resize its disks"),
        )
    } else {
        (true, gettext("Resize"))
    };
    resize.set_sensitive(resizable);
    resize.set_tooltip_text(Some(&tip));
    // An insensitive button shows no tooltip: the row carries it too.
    if !resizable {
        row.set_tooltip_text(Some(&tip));
    }
    let remove = crate::ui::rows::icon_button("user-trash-symbolic", &gettext("Remove"));
    {
        let sender = sender.clone();
        let target = target.clone();
        resize.connect_clicked(move |_| sender.input(DetailsMsg::AskResizeDisk(target.clone())));
    }
    {
        let sender = sender.clone();
        remove.connect_clicked(move |_| sender.input(DetailsMsg::AskRemoveDisk(target.clone())));
    }
    row.add_suffix(&resize);
    row.add_suffix(&remove);
    (row, resize)
}

/// Inspects each image (off the UI thread): path → what it is, or the block layer's error.
pub fn inspect_all(paths: Vec<String>) -> Vec<(String, Result<ImageInfo, String>)> {
    paths
        .into_iter()
        .map(|path| {
            let info = crate::engine::block::inspect(std::path::Path::new(&path))
                .map_err(|e| e.to_string());
            (path, info)
        })
        .collect()
}

fn dialog(window: &adw::Window, heading: &str, body: &str) -> adw::MessageDialog {
    let dialog = adw::MessageDialog::builder()
        .transient_for(window)
        .modal(true)
        .heading(heading)
        .body(body)
        .build();
    dialog.add_response("cancel", &gettext("_Cancel"));
    dialog.set_close_response("cancel");
    dialog
}

/// The Add disk form (a new image of a size and format, or an existing file), shared by the
/// Add Disk dialog and Add Hardware.
pub struct DiskForm {
    pub group: adw::PreferencesGroup,
    pub new: gtk::CheckButton,
    pub existing: gtk::CheckButton,
    pub size: gtk::SpinButton,
    pub format: adw::ComboRow,
    pub path: gtk::Entry,
}

impl DiskForm {
    /// The form, a new 10 GiB qcow2 image chosen.
    pub fn new() -> DiskForm {
        let group = adw::PreferencesGroup::new();
        let new = crate::ui::rows::radio_row(
            &group,
            &gettext("Create a disk image"),
            &gettext("In Vireo's images folder"),
            None,
        );
        let existing = crate::ui::rows::radio_row(
            &group,
            &gettext("Use an existing image"),
            &gettext("A raw or qcow2 image, or an ISO image (read-only)"),
            Some(&new),
        );
        new.set_active(true);
        let size = crate::ui::rows::spin_row(
            &group,
            &gettext("Size (GiB)"),
            None,
            (1.0, 4096.0, 1.0),
            10.0,
        );
        let format = adw::ComboRow::builder()
            .title(gettext("Format"))
            .model(&gtk::StringList::new(&["qcow2", "raw"]))
            .build();
        group.add(&format);
        let (path, _) = crate::ui::file_chooser::path_row(
            &group,
            &gettext("Image"),
            "",
            &gettext("disk image"),
        );
        path.set_sensitive(false);
        {
            let (size, format, path) = (size.clone(), format.clone(), path.clone());
            new.connect_toggled(move |new| {
                size.set_sensitive(new.is_active());
                format.set_sensitive(new.is_active());
                path.set_sensitive(!new.is_active());
            });
        }
        DiskForm {
            group,
            new,
            existing,
            size,
            format,
            path,
        }
    }

    /// What the form asks for.
    pub fn request(&self) -> DiskRequest {
        if self.existing.is_active() {
            DiskRequest::Existing(PathBuf::from(self.path.text().trim()))
        } else {
            DiskRequest::New {
                gib: self.size.value_as_int().max(1) as u64,
                format: if self.format.selected() == 1 {
                    DiskFormat::Raw
                } else {
                    DiskFormat::Qcow2
                },
            }
        }
    }
}

/// Asks what to add: a new image (size, format) or an existing file (path, Browse).
pub fn ask_add(window: &adw::Window, sender: &ComponentSender<Details>) {
    let dialog = dialog(window, &gettext("Add Disk"), "");
    dialog.add_response("add", &gettext("_Add"));
    dialog.set_response_appearance("add", adw::ResponseAppearance::Suggested);
    let form = DiskForm::new();
    dialog.set_extra_child(Some(&form.group));
    message_dialog_keys(
        &dialog,
        "add",
        &[form.size.upcast_ref(), form.path.upcast_ref()],
    );
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| {
        if response == "add" {
            sender.input(DetailsMsg::AddDisk(form.request()));
        }
    });
    dialog.present();
}

/// Asks before removing `target`; the image file is deleted only when the box is ticked.
pub fn ask_remove(window: &adw::Window, disk: &Disk, sender: &ComponentSender<Details>) {
    let target = disk.target_dev.clone().unwrap_or_default();
    let dialog = dialog(
        window,
        &gettext("Remove Disk {target}?").replace("{target}", &target),
        &gettext("The disk is removed from the virtual machine's definition."),
    );
    dialog.add_response("remove", &gettext("_Remove"));
    dialog.set_response_appearance("remove", adw::ResponseAppearance::Destructive);
    let delete = gtk::CheckButton::with_label(
        &gettext("Delete the image file {path}")
            .replace("{path}", disk.source.as_deref().unwrap_or("")),
    );
    // CD-ROMs and read-only images are shared media: never offered for deletion.
    delete.set_sensitive(!is_cdrom(disk) && !disk.readonly && disk.source.is_some());
    dialog.set_extra_child(Some(&delete));
    // Removing is destructive: Enter keeps the disk, as the delete confirmation does.
    message_dialog_keys(&dialog, "cancel", &[]);
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| {
        if response == "remove" {
            sender.input(DetailsMsg::RemoveDisk {
                target: target.clone(),
                delete_file: delete.is_active() && delete.is_sensitive(),
            });
        }
    });
    dialog.present();
}

/// Asks for the new size of `target`; shrinking needs the box ticked (data past the new end
/// is lost).
pub fn ask_resize(
    window: &adw::Window,
    target: &str,
    current: u64,
    sender: &ComponentSender<Details>,
) {
    let dialog = dialog(
        window,
        &gettext("Resize Disk {target}").replace("{target}", target),
        &gettext("Now {size}. The guest's partitions and file systems are not changed: grow them inside the guest afterwards.")
            .replace("{size}", &size_text(current)),
    );
    dialog.add_response("resize", &gettext("_Resize"));
    dialog.set_response_appearance("resize", adw::ResponseAppearance::Suggested);
    let group = adw::PreferencesGroup::new();
    let gib = (current as f64 / f64::from(1u32 << 30)).ceil().max(1.0);
    let size = crate::ui::rows::spin_row(
        &group,
        &gettext("New size (GiB)"),
        None,
        (1.0, 65536.0, 1.0),
        gib,
    );
    let shrink =
        gtk::CheckButton::with_label(&gettext("Allow shrinking: data past the new end is lost"));
    group.add(&shrink);
    dialog.set_extra_child(Some(&group));
    message_dialog_keys(&dialog, "resize", &[size.upcast_ref()]);
    let sender = sender.clone();
    let target = target.to_string();
    dialog.connect_response(None, move |_, response| {
        if response == "resize" {
            sender.input(DetailsMsg::ResizeDisk {
                target: target.clone(),
                bytes: (size.value_as_int().max(1) as u64) << 30,
                allow_shrink: shrink.is_active(),
            });
        }
    });
    dialog.present();
}
