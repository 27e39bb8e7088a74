//! Migrate… for a running VM on a libvirt host, as virt-manager offers it: the destination
//! chosen among the other connected libvirt hosts, the pre-flight's verdict (what would break,
//! each missing CPU feature by name) before the Migrate button can be pressed, then a progress
//! bar and Cancel while libvirt moves it. The libvirt calls run in workers; the migration's
//! progress arrives as messages from its polling thread.

use std::cell::RefCell;
use std::rc::Rc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Connections, ConnectionsMsg};
use crate::launch::connections::cross_host::HostAnswer;
use crate::launch::connections::migrate::{
    Blocker, Canceller, MigrateOptions, MigrationEvent, Preflight, Progress,
};
mod work;

/// What a running migration tells the dialog.
#[derive(Debug)]
pub enum MigrationUpdate {
    /// The job began; this stops it.
    Started(Canceller),
    Event(MigrationEvent),
}

/// The dialog's widgets (public for the GUI tests).
#[derive(Clone)]
pub struct MigrateDialog {
    pub window: adw::Window,
    /// The VM's connection and name.
    pub uri: String,
    pub vm: String,
    /// The other connected libvirt hosts, in the order of [`MigrateDialog::destination`].
    pub destinations: Vec<String>,
    pub destination: adw::ComboRow,
    /// The destination's answer for the VM's CPU.
    pub cpu: gtk::Label,
    /// What stops the migration, one line each (hidden when nothing does).
    pub problems: gtk::Label,
    /// The disks that are not copied.
    pub disks: gtk::Label,
    /// Where the source sends the memory, when the destination's own host name does not
    /// resolve from the source (virt-manager's "Address"); empty: that name.
    pub address: adw::EntryRow,
    /// Run it there without moving its definition.
    pub temporary: gtk::CheckButton,
    pub progress: gtk::ProgressBar,
    pub migrate: gtk::Button,
    pub cancel: gtk::Button,
    /// Checking, the outcome, or an error.
    pub status: gtk::Label,
    verdict: Rc<RefCell<Option<Preflight>>>,
    canceller: Rc<RefCell<Option<Canceller>>>,
    migrating: Rc<RefCell<bool>>,
}

/// The destination's answer for the CPU, in words.
pub fn cpu_text(answer: Option<&HostAnswer>) -> String {
    match answer {
        None => gettext("CPU: not compared (the destination was not reached)"),
        Some(HostAnswer::CanRun(_)) => gettext("CPU: the destination can give it"),
        Some(HostAnswer::FollowsHost(mode)) => gettext(
            "CPU: follows each host ({mode}), so the guest may see a different CPU after the move",
        )
        .replace("{mode}", mode),
        Some(HostAnswer::Cannot { missing, .. }) if !missing.is_empty() => {
            gettext("CPU: the destination lacks {features}")
                .replace("{features}", &missing.join(", "))
        }
        Some(HostAnswer::Cannot { why, .. }) => {
            gettext("CPU: the destination cannot give it: {why}").replace("{why}", why)
        }
        Some(HostAnswer::Unreachable(why)) => gettext(
            "CPU: could not be compared ({why}); libvirt checks it again when the VM starts there",
        )
        .replace("{why}", why),
    }
}

/// What stops the migration, in words with the fix (the GUI's counterpart of
/// [`Preflight::blocker_lines`]).
pub fn blocker_text(verdict: &Preflight, blocker: &Blocker) -> String {
    let fill = |text: String| {
        text.replace("{vm}", &verdict.name)
            .replace("{dest}", &verdict.destination)
            .replace("{source}", &verdict.source)
    };
    match blocker {
        // libvirt's reason, which starts with the URI.
        Blocker::Unreachable(why) => {
            gettext("The destination is unreachable: {why}").replace("{why}", why)
        }
        Blocker::SameHost { .. } => fill(gettext(
            "{dest} is the same host as {source}. Choose another host.",
        )),
        Blocker::NotRunning(_) => fill(gettext(
            "“{vm}” is not running. Only a running VM migrates: start it first, or copy its definition instead.",
        )),
        Blocker::NameTaken { running: true } => {
            fill(gettext("“{vm}” already runs on {dest}."))
        }
        Blocker::NameTaken { running: false } => fill(gettext(
            "{dest} already has another VM named “{vm}”. Rename or delete one of them.",
        )),
        Blocker::UuidTaken { other } => fill(gettext(
            "{dest} already has this VM under the name “{other}”. Delete that one there first.",
        ))
        .replace("{other}", other),
        Blocker::Cpu { missing, why } if missing.is_empty() => {
            fill(gettext("{dest} cannot give the CPU of “{vm}”: {why}")).replace("{why}", why)
        }
        Blocker::Cpu { missing, .. } => fill(gettext(
            "{dest} cannot give the CPU of “{vm}”: it lacks {features}. Give the VM a CPU all hosts can run (CPU Across Hosts…) or choose another host.",
        ))
        .replace("{features}", &missing.join(", ")),
    }
}

impl MigrateDialog {
    fn destination_uri(&self) -> Option<String> {
        self.destinations
            .get(self.destination.selected() as usize)
            .cloned()
    }

    fn options(&self) -> MigrateOptions {
        let temporary = self.temporary.is_active();
        let address = self.address.text().trim().to_owned();
        MigrateOptions {
            live: true,
            persistent: !temporary,
            undefine_source: !temporary,
            migrate_uri: match address.as_str() {
                "" => None,
                a if a.contains("://") => Some(address),
                a => Some(format!("tcp://{a}")),
            },
            ..MigrateOptions::default()
        }
    }

    /// Whether Cancel Migration can reach the running migration (tests).
    pub fn can_cancel(&self) -> bool {
        self.canceller.borrow().is_some()
    }

    /// The pre-flight is under way for the chosen destination.
    pub fn checking(&self) {
        *self.verdict.borrow_mut() = None;
        self.cpu.set_text(&gettext("Checking the destination…"));
        self.problems.set_visible(false);
        self.disks.set_visible(false);
        self.migrate.set_sensitive(false);
        self.status.set_text("");
    }

    /// Shows the pre-flight's verdict; Migrate is offered only when nothing stops it.
    pub fn show_verdict(&self, verdict: &Preflight) {
        self.cpu.set_text(&cpu_text(verdict.cpu.as_ref()));
        let lines: Vec<String> = verdict
            .blockers
            .iter()
            .map(|b| blocker_text(verdict, b))
            .collect();
        self.problems.set_text(
            &lines
                .iter()
                .map(|l| format!("• {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        self.problems.set_visible(!lines.is_empty());
        self.disks.set_text(
            &gettext("Disks are not copied; the destination must reach the same paths: {disks}")
                .replace("{disks}", &verdict.disks.join(", ")),
        );
        self.disks.set_visible(!verdict.disks.is_empty());
        *self.verdict.borrow_mut() = Some(verdict.clone());
        self.migrate
            .set_sensitive(verdict.can_migrate() && !*self.migrating.borrow());
    }

    /// The pre-flight itself failed (the VM could not be read).
    pub fn check_failed(&self, why: &str) {
        self.cpu.set_text("");
        self.status.set_text(why);
        self.migrate.set_sensitive(false);
    }

    /// How far the migration is.
    pub fn show_progress(&self, progress: &Progress) {
        self.progress.set_visible(true);
        if progress.total == 0 {
            self.progress.pulse();
            return;
        }
        self.progress.set_fraction(progress.fraction());
        let mib = |b: u64| format!("{:.1}", b as f64 / (1024.0 * 1024.0));
        self.progress.set_text(Some(
            &gettext("{done} of {total} MiB")
                .replace(
                    "{done}",
                    &mib(progress.total.saturating_sub(progress.remaining)),
                )
                .replace("{total}", &mib(progress.total)),
        ));
    }

    fn set_migrating(&self, on: bool) {
        *self.migrating.borrow_mut() = on;
        self.destination.set_sensitive(!on);
        self.address.set_sensitive(!on);
        self.temporary.set_sensitive(!on);
        self.migrate.set_sensitive(
            !on && self
                .verdict
                .borrow()
                .as_ref()
                .is_some_and(Preflight::can_migrate),
        );
        self.cancel.set_sensitive(true);
        self.cancel.set_label(&if on {
            gettext("Cancel Migration")
        } else {
            gettext("Close")
        });
        if on {
            self.progress.set_fraction(0.0);
            self.progress.set_text(Some(&gettext("Starting…")));
            self.progress.set_visible(true);
        } else {
            *self.canceller.borrow_mut() = None;
        }
    }

    /// The migration ended: `result` is the error to show, if any.
    pub fn finished(&self, result: &Result<(), String>) {
        self.set_migrating(false);
        match result {
            Ok(()) => {
                self.progress.set_fraction(1.0);
                self.progress.set_text(Some(&gettext("Done")));
                self.status.set_text(
                    &gettext("“{vm}” now runs on {uri}.")
                        .replace("{vm}", &self.vm)
                        .replace("{uri}", &self.destination_uri().unwrap_or_default()),
                );
                self.migrate.set_sensitive(false);
            }
            Err(why) => {
                self.progress.set_visible(false);
                self.status.set_text(why);
            }
        }
    }

    /// Whether a migration is running (tests).
    pub fn is_migrating(&self) -> bool {
        *self.migrating.borrow()
    }
}

/// Builds and shows the dialog for `vm` on `uri` with the given destinations; the first
/// destination's pre-flight starts at once.
pub fn present(
    parent: Option<&gtk::Window>,
    uri: &str,
    vm: &str,
    destinations: Vec<String>,
    sender: &ComponentSender<Connections>,
) -> MigrateDialog {
    let window = adw::Window::builder()
        .modal(true)
        .title(gettext("Migrate “{vm}”").replace("{vm}", vm))
        .default_width(600)
        .default_height(560)
        .build();
    window.set_transient_for(parent);
    let header = adw::HeaderBar::new();
    let page = adw::PreferencesPage::new();
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Move the running VM to another host"))
        .description(
            gettext("From {uri}. The VM keeps running while its memory is copied.")
                .replace("{uri}", uri),
        )
        .build();
    let labels: Vec<&str> = destinations.iter().map(String::as_str).collect();
    // The chosen URI as the row's subtitle, where a long one wraps instead of squeezing the
    // title.
    let destination = adw::ComboRow::builder()
        .title(gettext("_Destination"))
        .use_underline(true)
        .use_subtitle(true)
        .model(&gtk::StringList::new(&labels))
        .name("migrate-destination")
        .build();
    let row = destination.clone();
    let address = adw::EntryRow::builder()
        .title(gettext("Destination _address for the memory copy (optional)"))
        .use_underline(true)
        .tooltip_text(gettext(
            "A host name or IP address the source host reaches the destination by, when the destination's own host name does not resolve there",
        ))
        .build();
    let temporary = gtk::CheckButton::builder()
        .label(gettext(
            "_Temporary move: run it there, keep its definition here",
        ))
        .use_underline(true)
        .margin_top(12)
        .build();
    let list = gtk::ListBox::builder()
        .selection_mode(gtk::SelectionMode::None)
        .css_classes(["boxed-list"])
        .build();
    list.append(&row);
    list.append(&address);
    group.add(&list);
    group.add(&temporary);
    let check = adw::PreferencesGroup::builder()
        .title(gettext("Pre-flight"))
        .build();
    let label = |classes: &[&str]| {
        gtk::Label::builder()
            .xalign(0.0)
            .wrap(true)
            .selectable(true)
            .css_classes(classes.to_vec())
            .build()
    };
    let cpu = label(&[]);
    let problems = label(&["error"]);
    problems.set_margin_top(6);
    let disks = label(&["dim-label"]);
    disks.set_margin_top(6);
    let progress = gtk::ProgressBar::builder()
        .show_text(true)
        .visible(false)
        .margin_top(12)
        .build();
    let status = label(&[]);
    status.set_margin_top(6);
    for widget in [
        cpu.upcast_ref::<gtk::Widget>(),
        problems.upcast_ref(),
        disks.upcast_ref(),
        progress.upcast_ref(),
        status.upcast_ref(),
    ] {
        check.add(widget);
    }
    // In the header bar, as GNOME's dialogs have them: always in view, however long the
    // verdict.
    let cancel = gtk::Button::with_mnemonic(&gettext("Close"));
    let migrate = gtk::Button::builder()
        .label(gettext("_Migrate"))
        .use_underline(true)
        .css_classes(["suggested-action"])
        .sensitive(false)
        .build();
    header.set_show_end_title_buttons(false);
    header.pack_start(&cancel);
    header.pack_end(&migrate);
    page.add(&group);
    page.add(&check);
    let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
    content.append(&header);
    content.append(&page);
    window.set_content(Some(&content));
    let dialog = MigrateDialog {
        window: window.clone(),
        uri: uri.to_owned(),
        vm: vm.to_owned(),
        destinations,
        destination: destination.clone(),
        cpu,
        problems,
        disks,
        address,
        temporary,
        progress,
        migrate: migrate.clone(),
        cancel: cancel.clone(),
        status,
        verdict: Rc::new(RefCell::new(None)),
        canceller: Rc::new(RefCell::new(None)),
        migrating: Rc::new(RefCell::new(false)),
    };
    let check_chosen = {
        let (d, sender) = (dialog.clone(), sender.clone());
        move || {
            if let Some(dest) = d.destination_uri() {
                d.checking();
                sender.input(ConnectionsMsg::CheckMigration {
                    uri: d.uri.clone(),
                    name: d.vm.clone(),
                    dest,
                });
            }
        }
    };
    {
        let check_chosen = check_chosen.clone();
        destination.connect_selected_notify(move |_| check_chosen());
    }
    {
        let (d, sender) = (dialog.clone(), sender.clone());
        migrate.connect_clicked(move |_| {
            let Some(dest) = d.destination_uri() else {
                return;
            };
            d.status.set_text("");
            d.set_migrating(true);
            sender.input(ConnectionsMsg::Migrate {
                uri: d.uri.clone(),
                name: d.vm.clone(),
                dest,
                options: d.options(),
            });
        });
    }
    {
        let d = dialog.clone();
        cancel.connect_clicked(move |button| {
            if !d.is_migrating() {
                d.window.close();
                return;
            }
            let Some(canceller) = d.canceller.borrow().clone() else {
                return;
            };
            button.set_sensitive(false);
            d.status.set_text(&gettext("Cancelling…"));
            // virDomainAbortJob is a call to the host: not on the UI thread. Its failure
            // shows as the migration's own outcome.
            std::thread::spawn(move || {
                if let Err(err) = canceller.cancel() {
                    tracing::warn!(%err, "cancelling a migration");
                }
            });
        });
    }
    crate::ui::keyboard::escape_closes(&window);
    window.present();
    check_chosen();
    dialog
}
