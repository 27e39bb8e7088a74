//! The Connections side of Migrate…: opening the dialog, and the pre-flight and the migration
//! in workers, their news routed to the open dialog.

use gettextrs::gettext;
use relm4::{ComponentSender, gtk};

use super::{MigrateDialog, MigrationUpdate, present};
use crate::launch::connections::Connection;
use crate::launch::connections::migrate::{
    MigrateError, MigrateOptions, Migration, MigrationEvent, Preflight, preflight,
};
use crate::ui::connections::group::Link;
use crate::ui::connections::{Connections, ConnectionsCmd, ConnectionsMsg, ConnectionsOutput};
use crate::ui::worker::run_blocking;

impl Connections {
    /// The other connected libvirt hosts `uri`'s VMs can migrate to.
    pub fn migrate_destinations(&self, uri: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.link == Link::Connected && g.uri != uri)
            .map(|g| g.uri.clone())
            .collect()
    }

    /// Opens Migrate… for `name` on `uri`, or says why there is nowhere to go.
    pub(in crate::ui::connections) fn show_migrate(
        &mut self,
        uri: &str,
        name: &str,
        window: Option<gtk::Window>,
        sender: &ComponentSender<Self>,
    ) {
        let destinations = self.migrate_destinations(uri);
        if destinations.is_empty() {
            let _ = sender.output(ConnectionsOutput::Notify(gettext(
                "There is no other connected libvirt host to migrate to. Add or connect one first.",
            )));
            return;
        }
        self.migrate = Some(present(window.as_ref(), uri, name, destinations, sender));
    }

    /// The open dialog if it is `name`'s on `uri`.
    fn migrate_dialog(&self, uri: &str, name: &str) -> Option<&MigrateDialog> {
        self.migrate
            .as_ref()
            .filter(|d| d.uri == uri && d.vm == name)
    }

    /// Runs the pre-flight for `name` on `uri` to `dest` in a worker.
    pub(in crate::ui::connections) fn check_migration(
        &self,
        uri: String,
        name: String,
        dest: String,
        sender: &ComponentSender<Self>,
    ) {
        let Some(conn) = self.group(&uri).and_then(|g| g.conn.clone()) else {
            return;
        };
        let what = gettext("checking the migration of {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let (vm, to) = (name.clone(), dest.clone());
            let verdict = run_blocking(&what, move || match &*conn {
                Connection::Libvirt(source) => {
                    preflight(source, &vm, &to).map_err(|e| e.to_string())
                }
                Connection::Builtin(_) => Err(gettext("This computer does not migrate VMs")),
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::MigrationChecked(uri, name, dest, verdict)
        });
    }

    pub(in crate::ui::connections) fn migration_checked(
        &self,
        uri: &str,
        name: &str,
        dest: &str,
        verdict: Result<Preflight, String>,
    ) {
        let Some(dialog) = self.migrate_dialog(uri, name) else {
            return;
        };
        // A verdict for a destination no longer chosen is stale.
        if dialog.destination_uri().as_deref() != Some(dest) || dialog.is_migrating() {
            return;
        }
        match verdict {
            Ok(verdict) => dialog.show_verdict(&verdict),
            Err(why) => dialog.check_failed(&why),
        }
    }

    /// Migrates `name` from `uri` to `dest` in a worker; updates come as
    /// [`ConnectionsMsg::Migrating`].
    pub(in crate::ui::connections) fn migrate(
        &self,
        uri: String,
        name: String,
        dest: String,
        options: MigrateOptions,
        sender: &ComponentSender<Self>,
    ) {
        let Some(conn) = self.group(&uri).and_then(|g| g.conn.clone()) else {
            return;
        };
        let input = sender.input_sender().clone();
        let what = gettext("migrating {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let (vm, to, from) = (name.clone(), dest.clone(), uri.clone());
            let result = run_blocking(&what, move || {
                let Connection::Libvirt(source) = &*conn else {
                    return Err(gettext("This computer does not migrate VMs"));
                };
                let migration = Migration::new(source, &vm).map_err(|e| e.to_string())?;
                let update = |u: MigrationUpdate| ConnectionsMsg::Migrating {
                    uri: from.clone(),
                    name: vm.clone(),
                    update: u,
                };
                input.emit(update(MigrationUpdate::Started(migration.canceller())));
                let events = input.clone();
                let (from2, vm2) = (from.clone(), vm.clone());
                migration
                    .run(source, &to, &options, move |event| {
                        events.emit(ConnectionsMsg::Migrating {
                            uri: from2.clone(),
                            name: vm2.clone(),
                            update: MigrationUpdate::Event(event),
                        });
                    })
                    .map_err(|e| match e {
                        MigrateError::Cancelled { .. } => {
                            gettext("Migration cancelled; “{vm}” runs on at {uri}.")
                                .replace("{vm}", &vm)
                                .replace("{uri}", &from)
                        }
                        other => other.to_string(),
                    })
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::Migrated(uri, name, dest, result)
        });
    }

    pub(in crate::ui::connections) fn migrating(
        &self,
        uri: &str,
        name: &str,
        update: MigrationUpdate,
    ) {
        let Some(dialog) = self.migrate_dialog(uri, name) else {
            return;
        };
        match update {
            MigrationUpdate::Started(canceller) => {
                *dialog.canceller.borrow_mut() = Some(canceller);
            }
            MigrationUpdate::Event(MigrationEvent::Checked(verdict)) => {
                dialog.show_verdict(&verdict)
            }
            MigrationUpdate::Event(MigrationEvent::Progress(progress)) => {
                dialog.show_progress(&progress)
            }
        }
    }

    pub(in crate::ui::connections) fn migrated(
        &mut self,
        uri: &str,
        name: &str,
        dest: &str,
        result: Result<(), String>,
        sender: &ComponentSender<Self>,
    ) {
        let text = match &result {
            Ok(()) => gettext("{name} migrated to {uri}")
                .replace("{name}", name)
                .replace("{uri}", dest),
            Err(why) => why.clone(),
        };
        let _ = sender.output(ConnectionsOutput::Notify(text));
        if let Some(dialog) = self.migrate_dialog(uri, name) {
            dialog.finished(&result);
        }
        self.list(uri, sender);
        self.list(dest, sender);
    }
}
