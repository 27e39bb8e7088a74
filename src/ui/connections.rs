//! The libvirt connections of the main window, below "This computer": one group per stored
//! connection with its state and VMs, File → Add Connection, CPU across hosts, and Migrate….
//!
//! libvirt calls run in workers ([`run_blocking`]), never on the UI thread. The list follows
//! libvirt's events rather than polling: each connection is opened with
//! [`crate::launch::connections::events::watch`]; a domain event re-lists that connection, a
//! lost connection marks its group disconnected with the reason and a Reconnect button.

pub mod add_dialog;
pub mod copy;
pub mod cross_host;
pub mod details;
pub mod group;
pub mod migrate;

use std::sync::Arc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{Component, ComponentParts, ComponentSender, gtk};

use std::collections::HashMap;

use relm4::{ComponentController, Controller};

use self::add_dialog::AddDialog;
use self::cross_host::{CrossHostDialog, CrossHostFacts};
use self::details::{RemoteDetails, RemoteDetailsInit};
use self::group::{GroupRequest, GroupView, Link};
use super::worker::run_blocking;
use crate::launch::connections::events::{ConnectionEvent, EventWatch, watch};
use crate::launch::connections::libvirt::CpuTime;
use crate::launch::connections::{BUILTIN_URI, Connection, DomainRow, Lifecycle, Target};

/// One stored connection.
pub struct Group {
    pub uri: String,
    pub link: Link,
    pub view: GroupView,
    conn: Option<Arc<Connection>>,
    watch: Option<EventWatch>,
    /// A listing is under way; `relist` asks for another when it ends (events came meanwhile).
    listing: bool,
    relist: bool,
    /// A CPU-time reading is under way (a slow host never piles readings up).
    sampling: bool,
}

/// The connections below this computer's VMs.
pub struct Connections {
    pub groups: Vec<Group>,
    root: gtk::Box,
    /// File → Add Connection while it is open.
    pub add_dialog: Option<AddDialog>,
    /// CPU across hosts while it is open.
    pub cross_host: Option<CrossHostDialog>,
    /// What the last copy said (also shown as a toast).
    pub last_copy: Option<String>,
    /// Migrate… while it is open.
    pub migrate: Option<migrate::MigrateDialog>,
    /// The open details windows of libvirt VMs, by URI and name.
    pub details: HashMap<(String, String), Controller<RemoteDetails>>,
}

#[derive(Debug)]
pub enum ConnectionsMsg {
    /// Open File → Add Connection.
    ShowAdd,
    /// Read every connected host's CPU time for the rows' sparklines (once a second).
    SampleCpu,
    /// Store `uri` and connect to it.
    Add { uri: String, autoconnect: bool },
    /// Something asked from a group's widgets, or of one of this computer's VMs (with
    /// `vireo:///session`: CPU Across Hosts and Copy).
    Group(String, GroupRequest),
    /// An event from libvirt's event-loop thread.
    Event(String, ConnectionEvent),
    /// Copy `name`'s definition from `from` to `to` (either may be this computer).
    Copy {
        from: String,
        to: String,
        name: String,
    },
    /// Give `name` on `uri` the CPU all hosts can run.
    UseCommonCpu {
        uri: String,
        name: String,
        cpu_xml: String,
    },
    /// Run the migration pre-flight of `name` on `uri` to `dest`.
    CheckMigration {
        uri: String,
        name: String,
        dest: String,
    },
    /// Migrate `name` from `uri` to `dest`.
    Migrate {
        uri: String,
        name: String,
        dest: String,
        options: crate::launch::connections::migrate::MigrateOptions,
    },
    /// A running migration's news, from its worker.
    Migrating {
        uri: String,
        name: String,
        update: migrate::MigrationUpdate,
    },
}

/// An open, watched connection and its first listing.
type Opened = (Arc<Connection>, EventWatch, Vec<DomainRow>);

#[derive(Debug)]
pub enum ConnectionsCmd {
    Connected(String, Result<Opened, String>),
    Listed(String, Result<Vec<DomainRow>, String>),
    CpuSampled(String, Result<Vec<CpuTime>, String>),
    Acted(String, String, Result<(), String>),
    CrossHost(String, String, CrossHostFacts),
    CommonCpuUsed(String, String, Result<(), String>),
    Copied(String, String, Result<(), String>),
    MigrationChecked(
        String,
        String,
        String,
        Result<crate::launch::connections::migrate::Preflight, String>,
    ),
    Migrated(String, String, String, Result<(), String>),
}

/// Where a VM lives, for work done in a worker: this computer's store is opened there (it
/// reads files), a libvirt connection is the group's open one.
#[derive(Clone)]
enum Host {
    Builtin,
    Open(Arc<Connection>),
}

impl Host {
    fn get(&self) -> Result<Arc<Connection>, String> {
        match self {
            Host::Builtin => Connection::open(&Target::Builtin)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            Host::Open(conn) => Ok(conn.clone()),
        }
    }
}

/// What the main window hears.
#[derive(Debug)]
pub enum ConnectionsOutput {
    /// Show this as a toast.
    Notify(String),
    /// How many connections are listed now.
    Count(usize),
    /// Open the console window of `name` on `uri`.
    OpenConsole { uri: String, name: String },
}

impl Component for Connections {
    type Init = ();
    type Input = ConnectionsMsg;
    type Output = ConnectionsOutput;
    type CommandOutput = ConnectionsCmd;
    type Root = gtk::Box;
    type Widgets = ();

    fn init_root() -> gtk::Box {
        gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .name("connections")
            .build()
    }

    fn init(_: (), root: gtk::Box, sender: ComponentSender<Self>) -> ComponentParts<Self> {
        let mut model = Connections {
            groups: Vec::new(),
            root,
            add_dialog: None,
            cross_host: None,
            last_copy: None,
            migrate: None,
            details: HashMap::new(),
        };
        let stored = crate::prefs::live::current().connections;
        for stored in stored {
            model.add_group(&stored.uri, &sender);
            if stored.autoconnect {
                model.connect(&stored.uri, &sender);
            }
        }
        let _ = sender.output(ConnectionsOutput::Count(model.groups.len()));
        ComponentParts { model, widgets: () }
    }

    fn update(&mut self, msg: ConnectionsMsg, sender: ComponentSender<Self>, root: &gtk::Box) {
        let window = root.root().and_downcast::<gtk::Window>();
        match msg {
            ConnectionsMsg::ShowAdd => {
                self.add_dialog = Some(add_dialog::present(window.as_ref(), &sender));
            }
            ConnectionsMsg::SampleCpu => self.sample_cpu(&sender),
            ConnectionsMsg::Add { uri, autoconnect } => self.add(&uri, autoconnect, &sender),
            ConnectionsMsg::Group(uri, request) => self.on_request(&uri, request, window, &sender),
            ConnectionsMsg::Event(uri, event) => self.on_event(&uri, event, &sender),
            ConnectionsMsg::Copy { from, to, name } => self.copy(from, to, name, &sender),
            ConnectionsMsg::UseCommonCpu { uri, name, cpu_xml } => {
                self.use_common_cpu(uri, name, cpu_xml, &sender);
            }
            ConnectionsMsg::CheckMigration { uri, name, dest } => {
                self.check_migration(uri, name, dest, &sender);
            }
            ConnectionsMsg::Migrate {
                uri,
                name,
                dest,
                options,
            } => self.migrate(uri, name, dest, options, &sender),
            ConnectionsMsg::Migrating { uri, name, update } => {
                self.migrating(&uri, &name, update);
            }
        }
    }

    fn update_cmd(&mut self, cmd: ConnectionsCmd, sender: ComponentSender<Self>, _: &gtk::Box) {
        match cmd {
            ConnectionsCmd::Connected(uri, result) => {
                let Some(group) = self.group_mut(&uri) else {
                    // Removed while connecting: let go of it off the UI thread.
                    if let Ok(opened) = result {
                        std::thread::spawn(move || drop(opened));
                    }
                    return;
                };
                match result {
                    Ok((conn, watch, domains)) => {
                        group.conn = Some(conn);
                        group.watch = Some(watch);
                        group.link = Link::Connected;
                        group.view.set_link(&group.link);
                        group.view.set_domains(&domains);
                        if std::mem::take(&mut group.relist) {
                            self.list(&uri, &sender);
                        }
                    }
                    Err(why) => {
                        group.link = Link::Disconnected(why);
                        group.view.set_link(&group.link);
                    }
                }
            }
            ConnectionsCmd::Listed(uri, result) => {
                let Some(group) = self.group_mut(&uri) else {
                    return;
                };
                group.listing = false;
                match result {
                    Ok(domains) if group.link == Link::Connected => {
                        group.view.set_domains(&domains)
                    }
                    Ok(_) => {}
                    Err(why) => {
                        let _ = sender.output(ConnectionsOutput::Notify(why));
                    }
                }
                if std::mem::take(&mut group.relist) {
                    self.list(&uri, &sender);
                }
            }
            ConnectionsCmd::CpuSampled(uri, sampled) => {
                let Some(group) = self.group_mut(&uri) else {
                    return;
                };
                group.sampling = false;
                match sampled {
                    Ok(times) if group.link == Link::Connected => group.view.record_cpu(&times),
                    Ok(_) => {}
                    // The list says when a host is gone; a missed reading is only a gap.
                    Err(why) => tracing::debug!(%uri, %why, "no CPU reading"),
                }
            }
            ConnectionsCmd::Acted(uri, _name, result) => {
                if let Err(why) = result {
                    let _ = sender.output(ConnectionsOutput::Notify(why));
                }
                // The event re-lists; a failed action changed nothing, but say the truth anyway.
                self.list(&uri, &sender);
            }
            ConnectionsCmd::CrossHost(uri, name, facts) => {
                if let Some(dialog) = &self.cross_host
                    && dialog.uri == uri
                    && dialog.vm == name
                {
                    dialog.show(&facts);
                }
            }
            ConnectionsCmd::Copied(to, name, result) => {
                let text = match result {
                    Ok(()) => {
                        let place = if to == BUILTIN_URI {
                            gettext("This computer")
                        } else {
                            to.clone()
                        };
                        gettext("{name} copied to {host}")
                            .replace("{name}", &name)
                            .replace("{host}", &place)
                    }
                    Err(why) => why,
                };
                self.last_copy = Some(text.clone());
                let _ = sender.output(ConnectionsOutput::Notify(text));
                if to != BUILTIN_URI {
                    self.list(&to, &sender);
                }
            }
            ConnectionsCmd::MigrationChecked(uri, name, dest, verdict) => {
                self.migration_checked(&uri, &name, &dest, verdict);
            }
            ConnectionsCmd::Migrated(uri, name, dest, result) => {
                self.migrated(&uri, &name, &dest, result, &sender);
            }
            ConnectionsCmd::CommonCpuUsed(uri, name, result) => {
                if let Some(dialog) = &self.cross_host
                    && dialog.uri == uri
                    && dialog.vm == name
                {
                    dialog.applied(&result);
                    if result.is_ok() {
                        self.ask_hosts(&uri, &name, &sender);
                    }
                }
            }
        }
    }
}

impl Connections {
    /// The connected libvirt hosts with their open connections (the wizard's choices).
    pub fn connected(&self) -> Vec<(String, Arc<Connection>)> {
        self.groups
            .iter()
            .filter(|g| g.link == Link::Connected)
            .filter_map(|g| Some((g.uri.clone(), g.conn.clone()?)))
            .collect()
    }

    /// Shows the details window of `name` on `uri`, opening it if needed.
    fn open_details(&mut self, uri: &str, name: String, window: Option<gtk::Window>) {
        let Some(conn) = self.group(uri).and_then(|g| g.conn.clone()) else {
            return;
        };
        self.details.retain(|_, d| d.widget().is_visible());
        let details = self
            .details
            .entry((uri.to_owned(), name.clone()))
            .or_insert_with(|| {
                let init = RemoteDetailsInit {
                    uri: uri.to_owned(),
                    name,
                    conn,
                };
                let details = RemoteDetails::builder().launch(init).detach();
                details.widget().set_transient_for(window.as_ref());
                details
            });
        details.widget().present();
    }

    fn group(&self, uri: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.uri == uri)
    }

    fn group_mut(&mut self, uri: &str) -> Option<&mut Group> {
        self.groups.iter_mut().find(|g| g.uri == uri)
    }

    /// The group of `uri` (tests).
    pub fn view(&self, uri: &str) -> Option<&GroupView> {
        self.group(uri).map(|g| &g.view)
    }

    fn add_group(&mut self, uri: &str, sender: &ComponentSender<Self>) {
        let input = sender.input_sender().clone();
        let owner = uri.to_owned();
        let mut view = GroupView::new(uri, move |request| {
            input.emit(ConnectionsMsg::Group(owner.clone(), request));
        });
        let link = Link::Disconnected(String::new());
        view.set_link(&link);
        self.root.append(&view.root);
        self.groups.push(Group {
            uri: uri.to_owned(),
            link,
            view,
            conn: None,
            watch: None,
            listing: false,
            relist: false,
            sampling: false,
        });
    }

    fn add(&mut self, uri: &str, autoconnect: bool, sender: &ComponentSender<Self>) {
        let output = sender.output_sender().clone();
        let owned = uri.to_owned();
        let stored = crate::prefs::live::change(
            move |prefs| prefs.add_connection(&owned, autoconnect).map(drop),
            move |written| {
                if let Err(err) = written {
                    let _ = output.send(ConnectionsOutput::Notify(err.to_string()));
                }
            },
        );
        if let Err(err) = stored {
            let _ = sender.output(ConnectionsOutput::Notify(err.to_string()));
        }
        if self.group(uri).is_none() {
            self.add_group(uri, sender);
            let _ = sender.output(ConnectionsOutput::Count(self.groups.len()));
        }
        if self.group(uri).is_some_and(|g| g.link != Link::Connected) {
            self.connect(uri, sender);
        }
    }

    fn connect(&mut self, uri: &str, sender: &ComponentSender<Self>) {
        let Some(group) = self.group_mut(uri) else {
            return;
        };
        group.link = Link::Connecting;
        group.view.set_link(&group.link);
        let input = sender.input_sender().clone();
        let uri = uri.to_owned();
        let what = gettext("connecting to {uri}").replace("{uri}", &uri);
        sender.oneshot_command(async move {
            let target = uri.clone();
            let opened = run_blocking(&what, move || {
                let events_uri = target.clone();
                let (conn, watch) = watch(&target, move |event| {
                    input.emit(ConnectionsMsg::Event(events_uri.clone(), event));
                })
                .map_err(|e| e.to_string())?;
                let domains = conn.list_domains().map_err(|e| e.to_string())?;
                Ok((Arc::new(Connection::Libvirt(conn)), watch, domains))
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::Connected(uri, opened)
        });
    }

    /// Reads each connected host's CPU time in a worker, one reading per host at a time.
    fn sample_cpu(&mut self, sender: &ComponentSender<Self>) {
        for group in &mut self.groups {
            let Some(conn) = group.conn.clone() else {
                continue;
            };
            if group.sampling || group.link != Link::Connected {
                continue;
            }
            group.sampling = true;
            let uri = group.uri.clone();
            let what = gettext("reading the CPU use of {uri}").replace("{uri}", &uri);
            sender.oneshot_command(async move {
                let sampled =
                    run_blocking(&what, move || conn.cpu_times().map_err(|e| e.to_string()))
                        .await
                        .and_then(|r| r);
                ConnectionsCmd::CpuSampled(uri, sampled)
            });
        }
    }

    /// Re-lists `uri`'s domains in a worker (one at a time; another follows if asked meanwhile).
    fn list(&mut self, uri: &str, sender: &ComponentSender<Self>) {
        let Some(group) = self.group_mut(uri) else {
            return;
        };
        let Some(conn) = group.conn.clone() else {
            group.relist = true;
            return;
        };
        if group.listing {
            group.relist = true;
            return;
        }
        group.listing = true;
        let uri = uri.to_owned();
        let what = gettext("listing the VMs of {uri}").replace("{uri}", &uri);
        sender.oneshot_command(async move {
            let listed = run_blocking(&what, move || {
                conn.list_domains().map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::Listed(uri, listed)
        });
    }

    fn on_event(&mut self, uri: &str, event: ConnectionEvent, sender: &ComponentSender<Self>) {
        match event {
            ConnectionEvent::Domain { .. } => self.list(uri, sender),
            ConnectionEvent::Closed(why) => {
                let Some(group) = self.group_mut(uri) else {
                    return;
                };
                tracing::info!(uri, why, "libvirt connection lost");
                let (conn, watch) = (group.conn.take(), group.watch.take());
                // Unregistering talks to the (gone) host: not on the UI thread.
                std::thread::spawn(move || drop((watch, conn)));
                group.link =
                    Link::Disconnected(gettext("Connection lost: {why}").replace("{why}", &why));
                group.view.set_link(&group.link);
            }
        }
    }

    fn on_request(
        &mut self,
        uri: &str,
        request: GroupRequest,
        window: Option<gtk::Window>,
        sender: &ComponentSender<Self>,
    ) {
        match request {
            GroupRequest::Reconnect => self.connect(uri, sender),
            GroupRequest::Remove => {
                let owned = uri.to_owned();
                let stored = crate::prefs::live::change(
                    move |prefs| prefs.remove_connection(&owned),
                    |written| {
                        if let Err(err) = written {
                            tracing::warn!(%err, "removing the stored connection");
                        }
                    },
                );
                if let Err(err) = stored {
                    tracing::warn!(%err, uri, "removing the stored connection");
                }
                if let Some(index) = self.groups.iter().position(|g| g.uri == uri) {
                    let group = self.groups.remove(index);
                    self.root.remove(&group.view.root);
                    let (conn, watch) = (group.conn, group.watch);
                    std::thread::spawn(move || drop((watch, conn)));
                }
                let _ = sender.output(ConnectionsOutput::Count(self.groups.len()));
            }
            GroupRequest::Vm(name, "cross-host") => {
                self.cross_host = Some(cross_host::present(window.as_ref(), uri, &name, sender));
                self.ask_hosts(uri, &name, sender);
            }
            GroupRequest::Vm(name, "migrate") => self.show_migrate(uri, &name, window, sender),
            GroupRequest::Vm(name, "copy") => {
                let targets = self.copy_targets(uri);
                copy::confirm_copy(window.as_ref(), uri, &name, &targets, sender);
            }
            GroupRequest::Vm(name, "details") => self.open_details(uri, name, window),
            GroupRequest::Vm(name, "console") => {
                let uri = uri.to_owned();
                let _ = sender.output(ConnectionsOutput::OpenConsole { uri, name });
            }
            GroupRequest::Vm(name, "delete") => confirm_delete(window.as_ref(), uri, &name, sender),
            GroupRequest::Vm(name, "force-off")
                if crate::prefs::live::current().confirm_force_off =>
            {
                let (sender, uri, vm) = (sender.clone(), uri.to_owned(), name.clone());
                super::vm_list::ask_force_off(window.as_ref(), &name, move || {
                    sender.input(ConnectionsMsg::Group(
                        uri.clone(),
                        GroupRequest::Vm(vm.clone(), "destroy"),
                    ));
                });
            }
            GroupRequest::Vm(name, action) => self.act(uri, name, action, sender),
        }
    }

    /// Runs a VM action (`start`, `shutdown`, …, or `undefine`) in a worker.
    fn act(&mut self, uri: &str, name: String, action: &str, sender: &ComponentSender<Self>) {
        let Some(conn) = self.group(uri).and_then(|g| g.conn.clone()) else {
            return;
        };
        let lifecycle = match action {
            "shutdown" => Some(Lifecycle::Shutdown),
            "reboot" => Some(Lifecycle::Reboot),
            "force-off" | "destroy" => Some(Lifecycle::Destroy),
            "pause" => Some(Lifecycle::Suspend),
            "resume" => Some(Lifecycle::Resume),
            "start" | "undefine" => None,
            _ => return,
        };
        let action = action.to_owned();
        let uri = uri.to_owned();
        let what = gettext("changing the state of {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let vm = name.clone();
            let result = run_blocking(&what, move || {
                match (action.as_str(), lifecycle) {
                    ("start", _) => conn.start(&vm),
                    (_, Some(lifecycle)) => conn.control(&vm, lifecycle),
                    _ => conn.undefine(&vm),
                }
                .map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::Acted(uri, name, result)
        });
    }

    /// This computer (`vireo:///session`) or a connected group's connection.
    fn host(&self, uri: &str) -> Option<Host> {
        if uri == BUILTIN_URI {
            return Some(Host::Builtin);
        }
        self.group(uri).and_then(|g| g.conn.clone()).map(Host::Open)
    }
}

/// Deleting a libvirt VM removes its definition only: its disks stay on that host.
fn confirm_delete(
    parent: Option<&gtk::Window>,
    uri: &str,
    name: &str,
    sender: &ComponentSender<Connections>,
) {
    let dialog = super::vm_list::question(
        parent,
        &gettext("Delete {name}?").replace("{name}", name),
        &gettext(
            "The definition of {name} is removed from {uri}. Its disk images stay on that host.",
        )
        .replace("{name}", name)
        .replace("{uri}", uri),
        (
            "delete",
            &gettext("_Delete"),
            relm4::adw::ResponseAppearance::Destructive,
        ),
        "cancel",
    );
    let (sender, uri, name) = (sender.clone(), uri.to_owned(), name.to_owned());
    dialog.connect_response(Some("delete"), move |_, _| {
        sender.input(ConnectionsMsg::Group(
            uri.clone(),
            GroupRequest::Vm(name.clone(), "undefine"),
        ));
    });
    dialog.present();
}
