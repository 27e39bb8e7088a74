//! What the Disks section's requests do: Add disk (a new image made by `block::create` with
//! progress, or an existing file inspected first), Remove (the file is deleted only when asked)
//! and Resize (`block::resize`, only while the VM is off). The work runs in workers; adding and
//! removing go through `launch::disk_edit` like `vireoctl attach-disk` / `detach-disk` (start's
//! checks, the image's real format, an atomic save through the store), at once, not on Apply.

use std::path::{Path, PathBuf};

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw};

use super::disks::{self, DiskRequest, inspect_all};
use super::{Details, DetailsCmd, DetailsMsg, DetailsWidgets};
use crate::domain::devices::Disk;
use crate::domain::store::{DomainStore, StoredDomain};
use crate::engine::block;
use crate::engine::config::DiskFormat;
use crate::launch::disk_edit::{DiskToAttach, attach_disk, detach_disk};
use crate::launch::machines::RunState;
use crate::launch::new_vm_form::{free_target, images_dir, is_iso};
use crate::ui::new_vm_text::size_text;
use crate::ui::worker::run_blocking;

impl Details {
    pub(super) fn running(&self) -> bool {
        matches!(self.run_state, RunState::Running | RunState::Paused)
    }

    /// Handles the Disks section's messages; gives back every other message.
    pub(super) fn handle_disk_msg(
        &mut self,
        msg: DetailsMsg,
        w: &mut DetailsWidgets,
        sender: &ComponentSender<Self>,
        _root: &adw::Window,
    ) -> Option<DetailsMsg> {
        match msg {
            DetailsMsg::AskAddDisk => {
                if self.disk_edit_refused() {
                    return None;
                }
                disks::ask_add(&w.window, sender);
            }
            DetailsMsg::AskRemoveDisk(target) => {
                if self.disk_edit_refused() {
                    return None;
                }
                if let Some(disk) = self.disk(&target) {
                    disks::ask_remove(&w.window, &disk, sender);
                }
            }
            DetailsMsg::AskResizeDisk(target) => {
                if self.disk_edit_refused() || self.resize_refused(&target) {
                    return None;
                }
                let current = self.virtual_size(&target).unwrap_or(0);
                disks::ask_resize(&w.window, &target, current, sender);
            }
            DetailsMsg::AddDisk(request) => {
                if !self.disk_edit_refused() {
                    self.add_disk(request, w, sender);
                }
            }
            DetailsMsg::RemoveDisk {
                target,
                delete_file,
            } => {
                if !self.disk_edit_refused() {
                    self.remove_disk(&target, delete_file, w, sender);
                }
            }
            DetailsMsg::ResizeDisk {
                target,
                bytes,
                allow_shrink,
            } => {
                if !self.disk_edit_refused() && !self.resize_refused(&target) {
                    self.resize_disk(&target, bytes, allow_shrink, w, sender);
                }
            }
            DetailsMsg::DiskProgress(share) => {
                if self.disk_busy {
                    w.disks.progress.set_visible(true);
                    w.disks.progress.set_fraction(share);
                }
            }
            other => return Some(other),
        }
        self.show_disks(w, sender);
        None
    }

    /// Disk edits wait for another to finish, and for edits on the XML page (which would
    /// otherwise be overwritten or overwrite them).
    fn disk_edit_refused(&mut self) -> bool {
        self.error = if self.disk_busy {
            Some(gettext(
                "Another disk change is still running; wait for it to finish",
            ))
        } else if self.xml_edited {
            Some(gettext(
                "Apply or discard the edits on the XML page before changing disks",
            ))
        } else {
            None
        };
        self.error.is_some()
    }

    fn resize_refused(&mut self, target: &str) -> bool {
        if self.running() {
            self.error = Some(
                gettext("Shut the virtual machine down to resize {target}")
                    .replace("{target}", target),
            );
        }
        self.error.is_some()
    }

    fn disk(&self, target: &str) -> Option<Disk> {
        self.stored
            .domain
            .disks()
            .into_iter()
            .find(|d| d.target_dev.as_deref() == Some(target))
    }

    fn virtual_size(&self, target: &str) -> Option<u64> {
        let path = self.disk(target)?.source?;
        self.disk_infos
            .get(&path)
            .and_then(|i| i.as_ref().ok())
            .map(|i| i.virtual_size)
    }

    /// Lists the disks as the stored definition has them.
    pub(super) fn show_disks(&self, w: &mut DetailsWidgets, sender: &ComponentSender<Self>) {
        let running = self.running();
        w.disks.show(
            &self.stored.domain.disks(),
            &self.disk_infos,
            running,
            sender,
        );
        w.disks.add.set_sensitive(!self.disk_busy);
    }

    /// Inspects, in a worker, every disk image not inspected yet.
    pub(super) fn inspect_disks(&self, sender: &ComponentSender<Self>) {
        let paths: Vec<String> = self
            .stored
            .domain
            .disks()
            .into_iter()
            .filter_map(|d| d.source)
            .filter(|p| !self.disk_infos.contains_key(p))
            .collect();
        if paths.is_empty() {
            return;
        }
        let what = gettext("checking the disk images");
        sender.oneshot_command(async move {
            let all = paths.clone();
            let infos = run_blocking(&what, move || inspect_all(all))
                .await
                .unwrap_or_else(|error| {
                    paths.into_iter().map(|p| (p, Err(error.clone()))).collect()
                });
            DetailsCmd::DiskInfo(infos)
        });
    }

    fn add_disk(
        &mut self,
        request: DiskRequest,
        w: &DetailsWidgets,
        sender: &ComponentSender<Self>,
    ) {
        self.disk_busy = true;
        let store = self.store.clone();
        let name = self.stored.name.clone();
        let target = free_target(&self.stored.domain);
        let attach = |source: PathBuf, format: Option<DiskFormat>| {
            let cdrom = is_iso(&source.to_string_lossy());
            DiskToAttach {
                source,
                target: target.clone(),
                format,
                bus: "virtio".into(),
                cdrom,
                readonly: cdrom,
                cache: None,
                serial: None,
            }
        };
        match request {
            DiskRequest::New { gib, format } => {
                let path = free_image_path(
                    &images_dir(&self.store),
                    &format!("{name}-{target}"),
                    format,
                );
                let disk = attach(path.clone(), Some(format));
                let input = sender.input_sender().clone();
                let what = gettext("creating the disk image");
                w.disks.progress.set_fraction(0.0);
                w.disks
                    .progress
                    .set_text(Some(&gettext("Creating the disk image…")));
                w.disks.progress.set_visible(true);
                sender.oneshot_command(async move {
                    let edited = run_blocking(&what, move || {
                        if let Some(dir) = path.parent() {
                            std::fs::create_dir_all(dir).map_err(|e| {
                                gettext("Cannot create the folder {path}: {error}")
                                    .replace("{path}", &dir.display().to_string())
                                    .replace("{error}", &e.to_string())
                            })?;
                        }
                        let mut progress = |share: f64| {
                            let _ = input.send(DetailsMsg::DiskProgress(share));
                        };
                        block::create(&path, format, gib << 30, &mut progress)
                            .map_err(|e| e.to_string())?;
                        // A new image the definition cannot take is removed again.
                        attached(&store, &name, &disk).inspect_err(|_| {
                            let _ = std::fs::remove_file(&path);
                        })
                    })
                    .await
                    .and_then(|r| r);
                    DetailsCmd::DiskEdited(edited)
                });
            }
            DiskRequest::Existing(path) => {
                let disk = attach(path, None);
                let what = gettext("checking the disk image");
                sender.oneshot_command(async move {
                    let edited = run_blocking(&what, move || attached(&store, &name, &disk))
                        .await
                        .and_then(|r| r);
                    DetailsCmd::DiskEdited(edited)
                });
            }
        }
    }

    /// A disk was added or removed: shows the definition as stored now.
    pub(super) fn disk_edited(
        &mut self,
        result: Result<(StoredDomain, String), String>,
        w: &mut DetailsWidgets,
        sender: &ComponentSender<Self>,
    ) {
        self.disk_busy = false;
        w.disks.progress.set_visible(false);
        match result {
            Ok((stored, text)) => {
                self.stored = stored;
                self.syncing.set(true);
                w.xml.buffer().set_text(&self.stored.domain.to_xml());
                self.syncing.set(false);
                w.toasts.add_toast(adw::Toast::new(&text));
            }
            Err(error) => self.error = Some(error),
        }
        self.inspect_disks(sender);
        self.show_disks(w, sender);
    }

    fn remove_disk(
        &mut self,
        target: &str,
        delete_file: bool,
        _w: &DetailsWidgets,
        sender: &ComponentSender<Self>,
    ) {
        self.disk_busy = true;
        let store = self.store.clone();
        let name = self.stored.name.clone();
        let target = target.to_string();
        let what = gettext("removing the disk");
        sender.oneshot_command(async move {
            let edited = run_blocking(&what, move || {
                let source = detach_disk(&store, &name, &target).map_err(|e| e.to_string())?;
                let text = match source.filter(|_| delete_file) {
                    None => gettext("Removed {target}; its image file is kept")
                        .replace("{target}", &target),
                    Some(path) => match std::fs::remove_file(&path) {
                        Ok(()) => gettext("Removed {target} and deleted {path}")
                            .replace("{target}", &target)
                            .replace("{path}", &path),
                        Err(e) => {
                            gettext("Removed {target}, but {path} could not be deleted: {error}")
                                .replace("{target}", &target)
                                .replace("{path}", &path)
                                .replace("{error}", &e.to_string())
                        }
                    },
                };
                let stored = store.get(&name).map_err(|e| e.to_string())?;
                Ok((stored, text))
            })
            .await
            .and_then(|r| r);
            DetailsCmd::DiskEdited(edited)
        });
    }

    fn resize_disk(
        &mut self,
        target: &str,
        bytes: u64,
        allow_shrink: bool,
        w: &DetailsWidgets,
        sender: &ComponentSender<Self>,
    ) {
        let Some(path) = self.disk(target).and_then(|d| d.source) else {
            self.error = Some(gettext("There is no disk {target}").replace("{target}", target));
            return;
        };
        if let Some(current) = self.virtual_size(target)
            && bytes < current
            && !allow_shrink
        {
            self.error = Some(
                gettext("{size} is smaller than {target} is now ({current}); tick “Allow shrinking” if data past the new end may be lost")
                    .replace("{size}", &size_text(bytes))
                    .replace("{target}", target)
                    .replace("{current}", &size_text(current)),
            );
            return;
        }
        self.disk_busy = true;
        w.disks.progress.set_visible(true);
        w.disks.progress.pulse();
        w.disks
            .progress
            .set_text(Some(&gettext("Resizing the disk image…")));
        let what = gettext("resizing the disk image");
        let target = target.to_string();
        sender.oneshot_command(async move {
            let resized = run_blocking(&what, move || {
                block::resize(Path::new(&path), bytes, allow_shrink).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            DetailsCmd::DiskDone(resized.map(|()| {
                gettext("Resized {target} to {size}")
                    .replace("{target}", &target)
                    .replace("{size}", &size_text(bytes))
            }))
        });
    }
}

/// Adds `disk` to `name`'s stored definition the way `vireoctl attach-disk` does (start's
/// checks, the image's real format, an atomic save) and reads the definition back.
fn attached(
    store: &DomainStore,
    name: &str,
    disk: &DiskToAttach,
) -> Result<(StoredDomain, String), String> {
    let added = attach_disk(store, name, disk).map_err(|e| e.to_string())?;
    let stored = store.get(name).map_err(|e| e.to_string())?;
    let text = gettext("Added {target}").replace("{target}", &added.target_dev);
    Ok((stored, text))
}

/// `dir/base.qcow2` (or `.img` for raw), or `base-2`, `base-3`, … when taken.
fn free_image_path(dir: &Path, base: &str, format: DiskFormat) -> PathBuf {
    let extension = match format {
        DiskFormat::Qcow2 => "qcow2",
        DiskFormat::Raw => "img",
    };
    std::iter::once(base.to_string())
        .chain((2..).map(|n| format!("{base}-{n}")))
        .map(|name| dir.join(format!("{name}.{extension}")))
        .find(|p| !p.exists())
        .expect("an unbounded sequence of names has a free one")
}
