//! The main window: header bar with the primary menu, and the VM list or the empty state.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gettextrs::{gettext, ngettext};
use relm4::adw::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{
    Component, ComponentController, ComponentParts, ComponentSender, Controller, adw, gtk,
};

use std::collections::HashMap;

use super::connections::group::GroupRequest;
use super::connections::{Connections, ConnectionsMsg, ConnectionsOutput};
use super::console::{Console, ConsoleTarget};
use super::details::Details;
use super::preferences::Preferences;
use super::vm_list::{RowRequest, VmList};
use super::wizard::{Wizard, WizardOutput};
use super::worker::run_blocking;
use crate::domain::store::{DomainStore, StoredDomain};
use crate::launch::disk_usage::{DiskUsage, disk_usage};
use crate::launch::machines::{self, RunState, VmAction, VmSummary};

/// What the main window shows and owns.
pub struct App {
    store: Option<DomainStore>,
    /// The store's generation at the last refresh (a change means files were added/edited).
    generation: u64,
    vms: Vec<VmSummary>,
    /// The Preferences window while it is open.
    preferences: Option<Controller<Preferences>>,
    /// The create-VM wizard while it is open.
    wizard: Option<Controller<Wizard>>,
    /// Open console windows by VM name.
    consoles: HashMap<ConsoleTarget, Controller<Console>>,
    /// Open details windows by VM name.
    details: HashMap<String, Controller<Details>>,
    /// Error or notice to show as a toast at the next view update.
    toast: Option<String>,
    /// A background re-read of the store and the runners is under way.
    refreshing: bool,
    /// Another re-read was asked for while one was under way: run it when that one ends.
    refresh_again: bool,
    /// Set once closing is settled (nothing runs, or the user chose): the next close proceeds.
    close_confirmed: Rc<Cell<bool>>,
    /// "Shut Down All" was chosen on closing: waiting for the VMs to stop.
    quitting: Option<Quitting>,
    /// Each VM's disk usage as last measured (in a worker, see [`App::measure_disks`]).
    disk_usage: HashMap<String, DiskUsage>,
    /// A disk-usage measurement is under way.
    measuring_disks: bool,
    /// Listings since the last disk-usage measurement (running guests fill their disks).
    listings_since_measure: u32,
    /// The libvirt connections listed below this computer's VMs, and how many there are.
    connections: Controller<Connections>,
    connection_count: usize,
}

/// How long "Shut Down All" waits for guests to power off before offering Force Off.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// [`SHUTDOWN_TIMEOUT`], or `VIREO_SHUTDOWN_TIMEOUT_S` seconds when that is set (the tests).
pub fn shutdown_timeout() -> Duration {
    std::env::var("VIREO_SHUTDOWN_TIMEOUT_S")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(SHUTDOWN_TIMEOUT, Duration::from_secs)
}

/// The wait for VMs to shut down before the window closes.
struct Quitting {
    /// VMs still running (as of the last listing).
    waiting: Vec<String>,
    /// When the shutdown (or the force-off) was sent.
    since: Instant,
    /// Force Off and Keep Running are offered (the wait passed [`shutdown_timeout`]).
    timed_out: bool,
    /// Force Off was sent: waiting for the runners to end.
    forced: bool,
    /// The progress dialog.
    dialog: adw::MessageDialog,
}

/// Messages the main window reacts to (from its actions, buttons and timer).
#[derive(Debug)]
pub enum AppMsg {
    /// A details window's Start button: start `name`.
    StartFromDetails(String),
    /// Open the create-VM wizard.
    NewVm,
    /// Open the Preferences window.
    ShowPreferences,
    /// Open the About window.
    ShowAbout,
    /// Re-read the store and the VMs' states.
    Refresh,
    /// Sample CPU use for the sparklines.
    Tick,
    /// Something asked of one VM, from its row.
    Row(RowRequest),
    /// The user confirmed forcing `name` off.
    ForceOffConfirmed(String),
    /// The user chose to delete `name` (and its disk images when true).
    DeleteConfirmed(String, bool),
    /// Show a message as a toast.
    Notify(String),
    /// The wizard defined `name`; start it and show its console unless `customize`.
    Created { name: String, customize: bool },
    /// `name` could not start for want of its CPU: switch it to host-model and start again.
    UseHostModel(String),
    /// Open `name`'s details on the CPU page.
    EditCpu(String),
    /// The window was asked to close (its close button, Ctrl+Q, the menu's Quit).
    CloseRequested,
    /// Close now, leaving any VMs running.
    CloseNow,
    /// Shut down these VMs, then close once they have stopped.
    ShutDownAll(Vec<String>),
    /// Force off the VMs that did not shut down, then close.
    ForceOffRemaining,
    /// Stop waiting for the VMs: the window stays open.
    CancelQuit,
    /// File → Add Connection.
    AddConnection,
    /// The number of libvirt connections listed changed.
    ConnectionCount(usize),
    /// The wizard defined `name` on the libvirt connection `uri` (open its details if
    /// `customize`).
    CreatedOn {
        uri: String,
        name: String,
        customize: bool,
    },
    /// Show a console window (a libvirt VM's, from its connection's list).
    OpenConsole(ConsoleTarget),
}

/// Results of work done off the UI thread.
#[derive(Debug)]
pub enum AppCmd {
    Started(String, Result<(), String>),
    Acted(String, VmAction, Result<(), String>),
    /// The store's generation and the VMs, as re-read by the once-a-second poll.
    Listed(Result<(u64, Vec<VmSummary>), String>),
    /// The VMs running when the window was asked to close.
    RunningOnClose(Result<Vec<String>, String>),
    /// A definition read for its details window, and the page to show first.
    DetailsLoaded(String, Option<&'static str>, Result<StoredDomain, String>),
    /// Each VM's disk usage, measured in a worker.
    DiskUsage(Result<HashMap<String, DiskUsage>, String>),
    /// A VM deleted in a worker, and how many of its disk images went with it.
    Deleted(String, Result<usize, String>),
}

#[relm4::component(pub)]
impl Component for App {
    type Init = ();
    type Input = AppMsg;
    type Output = ();
    type CommandOutput = AppCmd;

    additional_fields! {
        /// The VM list's rows (updated in place by [`show`]).
        pub vm_list: VmList,
    }

    view! {
        #[root]
        main_window = adw::ApplicationWindow {
            set_title: Some(&gettext("Vireo")),
            set_default_size: (960, 640),
            set_width_request: 360,
            set_height_request: 294,

            #[name = "toasts"]
            adw::ToastOverlay {
                gtk::Box {
                    set_orientation: gtk::Orientation::Vertical,

                    adw::HeaderBar {
                        pack_start = &gtk::Button {
                            set_icon_name: "list-add-symbolic",
                            set_tooltip_text: Some(&gettext("Create a Virtual Machine")),
                            set_action_name: Some("win.new-vm"),
                        },
                        pack_end = &gtk::MenuButton {
                            set_icon_name: "open-menu-symbolic",
                            set_tooltip_text: Some(&gettext("Main Menu")),
                            set_primary: true,
                            set_menu_model: Some(&primary_menu()),
                        },
                    },

                    #[name = "content"]
                    gtk::Stack {
                        set_vexpand: true,
                        set_transition_type: gtk::StackTransitionType::Crossfade,

                        #[name = "empty_state"]
                        add_named[Some("empty")] = &adw::StatusPage {
                            set_icon_name: Some(crate::APP_ID),
                            set_title: &gettext("No Virtual Machines"),
                            set_description: Some(&gettext(
                                "Create a virtual machine to run another operating system on this computer.",
                            )),

                            #[name = "create_button"]
                            gtk::Button {
                                set_label: &gettext("Create a Virtual Machine…"),
                                set_halign: gtk::Align::Center,
                                add_css_class: "pill",
                                add_css_class: "suggested-action",
                                set_action_name: Some("win.new-vm"),
                            },
                        },

                        add_named[Some("list")] = &gtk::ScrolledWindow {
                            set_hscrollbar_policy: gtk::PolicyType::Never,

                            adw::Clamp {
                                set_maximum_size: 900,
                                set_margin_top: 24,
                                set_margin_bottom: 24,
                                set_margin_start: 12,
                                set_margin_end: 12,

                                gtk::Box {
                                    set_orientation: gtk::Orientation::Vertical,
                                    set_spacing: 6,

                                    #[name = "this_computer"]
                                    gtk::Label {
                                        set_label: &gettext("This computer"),
                                        set_xalign: 0.0,
                                        add_css_class: "heading",
                                        set_visible: false,
                                    },
                                    #[local_ref]
                                    vm_list_widget -> gtk::ListBox {},
                                    #[local_ref]
                                    connections_widget -> gtk::Box {},
                                },
                            },
                        },
                    },
                },
            },
        }
    }

    fn init(
        _init: Self::Init,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        super::startup_mark("main window: init");
        super::worker::detect_host_facts_early();
        // The one read of prefs.toml on this thread, before the window shows; from here on the
        // preferences come from memory (prefs::live).
        let prefs_error = crate::prefs::live::load_at_start().err();
        if let Some(err) = &prefs_error {
            tracing::warn!(%err, "preferences unreadable; using the defaults");
        }
        let store = match DomainStore::open_default() {
            Ok(store) => Some(store),
            Err(err) => {
                tracing::error!(%err, "cannot open the domain store");
                None
            }
        };
        let mut model = App {
            store,
            generation: u64::MAX,
            vms: Vec::new(),
            preferences: None,
            wizard: None,
            consoles: HashMap::new(),
            details: HashMap::new(),
            toast: prefs_error.map(|err| {
                gettext("The preferences cannot be read, so the defaults are used: {error}")
                    .replace("{error}", &err.to_string())
            }),
            refreshing: false,
            refresh_again: false,
            close_confirmed: Rc::new(Cell::new(false)),
            quitting: None,
            disk_usage: HashMap::new(),
            measuring_disks: false,
            listings_since_measure: 0,
            connections: Connections::builder().launch(()).forward(
                sender.input_sender(),
                |output| match output {
                    ConnectionsOutput::Notify(text) => AppMsg::Notify(text),
                    ConnectionsOutput::Count(n) => AppMsg::ConnectionCount(n),
                    ConnectionsOutput::OpenConsole { uri, name } => {
                        AppMsg::OpenConsole(ConsoleTarget::libvirt(&uri, &name))
                    }
                },
            ),
            connection_count: 0,
        };
        let connections_widget = model.connections.widget().clone();
        let row_sender = sender.clone();
        let vm_list = VmList::new(move |request| row_sender.input(AppMsg::Row(request)));
        // With libvirt connections listed below, this computer's empty list says so in place.
        vm_list.list.set_placeholder(Some(
            &gtk::Label::builder()
                .label(gettext("No virtual machines on this computer"))
                .css_classes(["dim-label"])
                .margin_top(12)
                .margin_bottom(12)
                .build(),
        ));
        let vm_list_widget = vm_list.list.clone();
        let mut widgets = view_output!();
        super::startup_mark("main window: widgets built");
        install_window_actions(&widgets.main_window, &sender);
        // The first listing too comes from a worker; the list fills in when it arrives.
        model.request_refresh(&sender);
        show(&mut model, &mut widgets);
        if tracing::enabled!(target: "vireo::startup", tracing::Level::DEBUG) {
            mark_first_frame(&root);
        }

        // The store and the runners are polled: a VM defined or started with vireoctl shows up
        // within a second, without a restart.
        let timer_sender = sender.input_sender().clone();
        glib::timeout_add_local(Duration::from_secs(1), move || {
            // The window's component is gone once it is closed: stop polling then.
            if timer_sender.send(AppMsg::Refresh).is_err()
                || timer_sender.send(AppMsg::Tick).is_err()
            {
                return glib::ControlFlow::Break;
            }
            glib::ControlFlow::Continue
        });
        let confirmed = model.close_confirmed.clone();
        let close_sender = sender.input_sender().clone();
        root.connect_close_request(move |_| {
            if confirmed.get() {
                return glib::Propagation::Proceed;
            }
            // Whether VMs run is asked off the UI thread; the answer decides (see CloseRequested).
            let _ = close_sender.send(AppMsg::CloseRequested);
            glib::Propagation::Stop
        });
        // Like libvirt's session daemon on its start: the VMs marked autostart start now.
        super::autostart::start_marked_vms(sender.input_sender().clone());
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut Self::Widgets,
        msg: Self::Input,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        match msg {
            AppMsg::NewVm => {
                let hosts = self.connections.model().connected();
                let wizard = Wizard::builder().transient_for(root).launch(hosts).forward(
                    sender.input_sender(),
                    |output| match output {
                        WizardOutput::Created { name, customize } => {
                            AppMsg::Created { name, customize }
                        }
                        WizardOutput::CreatedOn {
                            uri,
                            name,
                            customize,
                        } => AppMsg::CreatedOn {
                            uri,
                            name,
                            customize,
                        },
                    },
                );
                wizard.widget().present();
                self.wizard = Some(wizard);
            }
            AppMsg::CreatedOn {
                uri,
                name,
                customize,
            } => {
                if let Some(wizard) = self.wizard.take() {
                    wizard.widget().close();
                }
                if customize {
                    self.connections.emit(ConnectionsMsg::Group(
                        uri.clone(),
                        GroupRequest::Vm(name.clone(), "details"),
                    ));
                }
                let text = gettext("{name} defined on {host}")
                    .replace("{name}", &name)
                    .replace("{host}", &uri);
                self.toast = Some(text);
            }
            AppMsg::Created { name, customize } => {
                if let Some(wizard) = self.wizard.take() {
                    wizard.widget().close();
                }
                self.request_refresh(&sender);
                if customize {
                    self.open_details(&name, None, &sender);
                } else {
                    start(&sender, name.clone());
                    self.open_console(ConsoleTarget::builtin(&name), root);
                }
            }
            AppMsg::ShowPreferences => {
                let controller = Preferences::builder()
                    .launch(crate::prefs::live::current())
                    .detach();
                controller.widget().set_transient_for(Some(root));
                controller.widget().present();
                self.preferences = Some(controller);
            }
            AppMsg::ShowAbout => super::about::about_window(root).present(),
            AppMsg::Refresh => {
                self.request_refresh(&sender);
                return;
            }
            AppMsg::Tick => {
                widgets.vm_list.sample_cpu();
                self.connections.emit(ConnectionsMsg::SampleCpu);
                return;
            }
            AppMsg::Row(request) => self.on_row(request, &sender, root),
            AppMsg::ForceOffConfirmed(name) => act(&sender, name, VmAction::ForceOff),
            AppMsg::DeleteConfirmed(name, with_disks) => self.delete(&name, with_disks, &sender),
            AppMsg::Notify(text) => self.toast = Some(text),
            AppMsg::UseHostModel(name) => match self.store.clone() {
                Some(store) => use_host_model_and_start(&sender, store, name),
                None => self.toast = Some(gettext("The VM store cannot be opened")),
            },
            AppMsg::EditCpu(name) => self.open_details(&name, Some("cpu"), &sender),
            AppMsg::StartFromDetails(name) => start(&sender, name),
            AppMsg::CloseRequested => self.close_requested(&sender, root),
            AppMsg::CloseNow => self.close_now(root),
            AppMsg::ShutDownAll(names) => {
                for name in &names {
                    act(&sender, name.clone(), VmAction::Shutdown);
                }
                self.wait_for_stop(names, false, &sender, root);
            }
            AppMsg::ForceOffRemaining => {
                let names = self
                    .quitting
                    .take()
                    .map(|q| {
                        q.dialog.destroy();
                        q.waiting
                    })
                    .unwrap_or_default();
                for name in &names {
                    act(&sender, name.clone(), VmAction::ForceOff);
                }
                self.wait_for_stop(names, true, &sender, root);
            }
            AppMsg::AddConnection => self.connections.emit(ConnectionsMsg::ShowAdd),
            AppMsg::ConnectionCount(n) => self.connection_count = n,
            AppMsg::OpenConsole(target) => self.open_console(target, root),
            AppMsg::CancelQuit => {
                if let Some(quitting) = self.quitting.take() {
                    quitting.dialog.destroy();
                }
            }
        }
        show(self, widgets);
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut Self::Widgets,
        message: Self::CommandOutput,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        match message {
            AppCmd::Started(name, Err(error)) => start_failed(root, name, &error, &sender),
            AppCmd::DetailsLoaded(name, page, loaded) => match loaded {
                Ok(stored) => self.show_details(&name, stored, page, root, &sender),
                Err(error) => self.toast = Some(error),
            },
            AppCmd::Listed(listed) => {
                self.refreshing = false;
                if std::mem::take(&mut self.refresh_again) {
                    self.request_refresh(&sender);
                }
                match listed {
                    Ok(listed) => {
                        let changed = self.take_listing(listed);
                        self.measure_disks(changed, &sender);
                        self.follow_quit(root);
                        if !changed {
                            return;
                        }
                    }
                    Err(error) => self.toast = Some(error),
                }
                show(self, widgets);
                return;
            }
            AppCmd::DiskUsage(measured) => {
                self.measuring_disks = false;
                if let Ok(usage) = measured {
                    self.disk_usage = usage;
                }
                show(self, widgets);
                return;
            }
            AppCmd::RunningOnClose(Ok(running)) if running.is_empty() => self.close_now(root),
            AppCmd::RunningOnClose(Ok(running)) => confirm_close(root, running, &sender),
            AppCmd::RunningOnClose(Err(error)) => self.toast = Some(error),
            AppCmd::Deleted(name, deleted) => {
                self.toast = Some(match deleted {
                    Ok(0) => gettext("Deleted {name}").replace("{name}", &name),
                    Ok(count) => gettext("Deleted {name} and {count} disk images")
                        .replace("{name}", &name)
                        .replace("{count}", &count.to_string()),
                    Err(error) => error,
                });
            }
            AppCmd::Acted(name, _, Err(error)) => {
                self.toast = Some(format!("{name}: {error}"));
            }
            AppCmd::Started(..) | AppCmd::Acted(..) => {}
        }
        self.request_refresh(&sender);
        show(self, widgets);
    }
}

impl App {
    /// How many VMs the window currently lists.
    pub fn vm_count(&self) -> usize {
        self.vms.len()
    }

    /// The VMs as last read.
    pub fn vms(&self) -> &[VmSummary] {
        &self.vms
    }

    /// The Preferences window's component, while it is open.
    /// The libvirt connections below this computer's VMs.
    pub fn connections(&self) -> &Controller<Connections> {
        &self.connections
    }

    pub fn preferences(&self) -> Option<&Controller<Preferences>> {
        self.preferences.as_ref()
    }

    /// Re-reads the store and the VMs' states off the UI thread (it reads every definition
    /// and asks every runner); the result arrives as [`AppCmd::Listed`].
    fn request_refresh(&mut self, sender: &ComponentSender<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if self.refreshing {
            self.refresh_again = true;
            return;
        }
        self.refreshing = true;
        let what = gettext("the VM list");
        sender.oneshot_command(async move {
            let listed =
                run_blocking(&what, move || (store.generation(), machines::list(&store))).await;
            AppCmd::Listed(listed)
        });
    }

    /// Measures every VM's disk usage in a worker when the listing changed, and every ten
    /// listings otherwise (a running guest fills its disks); one measurement at a time.
    fn measure_disks(&mut self, changed: bool, sender: &ComponentSender<Self>) {
        self.listings_since_measure += 1;
        if self.measuring_disks || !(changed || self.listings_since_measure >= 10) {
            return;
        }
        let Some(store) = self.store.clone() else {
            return;
        };
        self.measuring_disks = true;
        self.listings_since_measure = 0;
        let what = gettext("the disk usage");
        sender.oneshot_command(async move {
            AppCmd::DiskUsage(run_blocking(&what, move || disk_usage(&store)).await)
        });
    }

    /// The window was asked to close: closes at once when no VM runs, else asks first.
    fn close_requested(&mut self, sender: &ComponentSender<Self>, root: &adw::ApplicationWindow) {
        if let Some(quitting) = &self.quitting {
            quitting.dialog.present();
            return;
        }
        let Some(store) = self.store.clone() else {
            self.close_now(root);
            return;
        };
        let what = gettext("the list of running VMs");
        sender.oneshot_command(async move {
            let running = run_blocking(&what, move || {
                machines::list(&store)
                    .into_iter()
                    .filter(|vm| is_running(&vm.state))
                    .map(|vm| vm.name)
                    .collect()
            })
            .await;
            AppCmd::RunningOnClose(running)
        });
    }

    /// Closes the window without asking again.
    fn close_now(&mut self, root: &adw::ApplicationWindow) {
        if let Some(quitting) = self.quitting.take() {
            quitting.dialog.destroy();
        }
        self.close_confirmed.set(true);
        root.close();
    }

    /// Shows the progress of the shutdown (or force-off) of `names`; [`Self::follow_quit`]
    /// updates it at each listing and closes the window once all have stopped.
    fn wait_for_stop(
        &mut self,
        names: Vec<String>,
        forced: bool,
        sender: &ComponentSender<Self>,
        root: &adw::ApplicationWindow,
    ) {
        if let Some(old) = self.quitting.take() {
            old.dialog.destroy();
        }
        let dialog = shutdown_progress_dialog(root, sender);
        self.quitting = Some(Quitting {
            waiting: names,
            since: Instant::now(),
            timed_out: false,
            forced,
            dialog,
        });
        self.show_quit_progress();
        self.request_refresh(sender);
    }

    /// Takes a fresh listing into the wait for shutdown: fewer to wait for, Force Off after
    /// the timeout, the window closed when none is left.
    fn follow_quit(&mut self, root: &adw::ApplicationWindow) {
        let vms = &self.vms;
        let Some(quitting) = &mut self.quitting else {
            return;
        };
        quitting.waiting.retain(|name| {
            vms.iter()
                .any(|vm| vm.name == *name && is_running(&vm.state))
        });
        if quitting.waiting.is_empty() {
            tracing::info!("every VM stopped; closing");
            self.close_now(root);
            return;
        }
        if !quitting.timed_out && quitting.since.elapsed() >= shutdown_timeout() {
            quitting.timed_out = true;
            tracing::info!(waiting = ?quitting.waiting, "VMs did not shut down in time");
            quitting.dialog.add_responses(&[
                ("keep", &gettext("_Keep Running")),
                ("force-off", &gettext("_Force Off")),
            ]);
            quitting
                .dialog
                .set_response_appearance("force-off", adw::ResponseAppearance::Destructive);
        }
        self.show_quit_progress();
    }

    /// Writes how many VMs are still awaited (and, after the timeout, what can be done).
    fn show_quit_progress(&self) {
        let Some(quitting) = &self.quitting else {
            return;
        };
        let count = quitting.waiting.len();
        let mut body = if quitting.forced {
            ngettext(
                "Waiting for {count} virtual machine to power off…",
                "Waiting for {count} virtual machines to power off…",
                count as u32,
            )
        } else {
            ngettext(
                "Waiting for {count} virtual machine to shut down…",
                "Waiting for {count} virtual machines to shut down…",
                count as u32,
            )
        }
        .replace("{count}", &count.to_string());
        body.push('\n');
        body.push_str(&quitting.waiting.join(", "));
        if quitting.timed_out {
            body.push_str("\n\n");
            body.push_str(
                &gettext("Still running after {seconds} seconds: a guest may ignore the shutdown request. Force Off cuts the power; unsaved data in the guest is lost.")
                    .replace("{seconds}", &shutdown_timeout().as_secs().to_string()),
            );
        }
        quitting.dialog.set_body(&body);
    }

    /// The state of `name` in the last listing (shut off when it was not listed).
    fn listed_state(&self, name: &str) -> RunState {
        self.vms
            .iter()
            .find(|vm| vm.name == name)
            .map_or(RunState::ShutOff, |vm| vm.state.clone())
    }

    /// Keeps a fresh reading of the store and the runners; returns whether anything changed.
    fn take_listing(&mut self, (generation, vms): (u64, Vec<VmSummary>)) -> bool {
        let changed = generation != self.generation || vms != self.vms;
        self.generation = generation;
        self.vms = vms;
        if changed {
            for (name, details) in &self.details {
                details.emit(super::details::DetailsMsg::RunState(
                    self.listed_state(name),
                ));
            }
        }
        changed
    }

    fn on_row(
        &mut self,
        request: RowRequest,
        sender: &ComponentSender<Self>,
        root: &adw::ApplicationWindow,
    ) {
        match request {
            RowRequest::Start(name) => start(sender, name),
            RowRequest::Act(name, VmAction::ForceOff)
                if crate::prefs::live::current().confirm_force_off =>
            {
                confirm_force_off(root, name, sender);
            }
            RowRequest::Act(name, action) => act(sender, name, action),
            RowRequest::Open(name)
                if self
                    .vms
                    .iter()
                    .any(|vm| vm.name == name && matches!(vm.state, RunState::Broken(_))) =>
            {
                if let Some(store) = self.store.clone() {
                    let sender = sender.clone();
                    super::repair::ask_repair(root.upcast_ref(), store, &name, move |name| {
                        sender.input(AppMsg::Notify(
                            gettext("{name} repaired").replace("{name}", &name),
                        ));
                    });
                }
            }
            RowRequest::Open(name) => self.open_details(&name, None, sender),
            RowRequest::Console(name) => self.open_console(ConsoleTarget::builtin(&name), root),
            RowRequest::Delete(name) => confirm_delete(root, name, sender),
            RowRequest::CrossHost(name) => self.connections.emit(ConnectionsMsg::Group(
                crate::launch::connections::BUILTIN_URI.into(),
                GroupRequest::Vm(name, "cross-host"),
            )),
            RowRequest::Copy(name) => self.connections.emit(ConnectionsMsg::Group(
                crate::launch::connections::BUILTIN_URI.into(),
                GroupRequest::Vm(name, "copy"),
            )),
        }
    }

    /// The console window of `name`, while open.
    pub fn console(&self, name: &str) -> Option<&Controller<Console>> {
        self.consoles.get(&ConsoleTarget::builtin(name))
    }

    /// The console window of `name` on the libvirt connection `uri`, while open.
    pub fn remote_console(&self, uri: &str, name: &str) -> Option<&Controller<Console>> {
        self.consoles.get(&ConsoleTarget::libvirt(uri, name))
    }

    /// The wizard, while open.
    pub fn wizard(&self) -> Option<&Controller<Wizard>> {
        self.wizard.as_ref()
    }

    /// Shows the console window of `target`, opening it if needed.
    fn open_console(&mut self, target: ConsoleTarget, root: &adw::ApplicationWindow) {
        self.consoles.retain(|_, c| c.widget().is_visible());
        let console = self.consoles.entry(target.clone()).or_insert_with(|| {
            let console = Console::builder().launch(target).detach();
            console.widget().set_transient_for(Some(root));
            console
        });
        console.widget().present();
    }

    /// The details window of `name`, while open.
    pub fn details(&self, name: &str) -> Option<&Controller<Details>> {
        self.details.get(name)
    }

    /// Shows the details window of `name` (on `page` when given), opening it if needed: the
    /// definition is read off the UI thread, and the window opens when it arrives.
    fn open_details(
        &mut self,
        name: &str,
        page: Option<&'static str>,
        sender: &ComponentSender<Self>,
    ) {
        self.details.retain(|_, d| d.widget().is_visible());
        if let Some(details) = self.details.get(name) {
            if let Some(page) = page {
                details.widgets().stack.set_visible_child_name(page);
            }
            details.widget().present();
            return;
        }
        let Some(store) = self.store.clone() else {
            return;
        };
        let name = name.to_string();
        let what = gettext("reading the definition of {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let read = {
                let name = name.clone();
                move || store.get(&name).map_err(|e| e.to_string())
            };
            let loaded = super::worker::run_blocking(&what, read)
                .await
                .and_then(|r| r);
            AppCmd::DetailsLoaded(name, page, loaded)
        });
    }

    /// Opens the details window of a definition just read (unless one opened meanwhile).
    fn show_details(
        &mut self,
        name: &str,
        stored: StoredDomain,
        page: Option<&'static str>,
        root: &adw::ApplicationWindow,
        sender: &ComponentSender<Self>,
    ) {
        self.details.retain(|_, d| d.widget().is_visible());
        if !self.details.contains_key(name)
            && let Some(store) = &self.store
        {
            let details = Details::builder()
                .launch((store.clone(), stored, self.listed_state(name)))
                .forward(sender.input_sender(), |output| match output {
                    crate::ui::details::DetailsOutput::Start(name) => {
                        AppMsg::StartFromDetails(name)
                    }
                });
            details.widget().set_transient_for(Some(root));
            self.details.insert(name.to_string(), details);
        }
        if let Some(details) = self.details.get(name) {
            if let Some(page) = page {
                details.widgets().stack.set_visible_child_name(page);
            }
            details.widget().present();
        }
    }

    /// Undefines `name` (and its disks) in a worker: deleting images may take a while on a
    /// slow disk; the result comes back as [`AppCmd::Deleted`].
    fn delete(&mut self, name: &str, with_disks: bool, sender: &ComponentSender<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let name = name.to_string();
        sender.oneshot_command(async move {
            let target = name.clone();
            let what = gettext("deleting {name}").replace("{name}", &name);
            let result = run_blocking(&what, move || {
                store
                    .undefine(&target, with_disks)
                    .map(|removed| removed.len())
                    .map_err(|err| err.to_string())
            })
            .await;
            AppCmd::Deleted(name, result.and_then(|r| r))
        });
    }
}

/// Whether closing the window should ask about this VM (its runner is alive).
fn is_running(state: &RunState) -> bool {
    matches!(state, RunState::Running | RunState::Paused)
}

/// Starts `name` in its runner off the UI thread; the result comes back as [`AppCmd::Started`].
fn start(sender: &ComponentSender<App>, name: String) {
    sender.oneshot_command(async move {
        let target = name.clone();
        let what = gettext("starting {name}").replace("{name}", &name);
        let result = run_blocking(&what, move || {
            machines::start(&target).map_err(|error| every_problem(&target, error))
        })
        .await;
        AppCmd::Started(name, result.and_then(|r| r))
    });
}

/// Switches `name` to the host's CPU model and starts it, both in one worker (the switch
/// writes the definition; the start waits for the runner).
fn use_host_model_and_start(sender: &ComponentSender<App>, store: DomainStore, name: String) {
    sender.oneshot_command(async move {
        let target = name.clone();
        let what = gettext("starting {name}").replace("{name}", &name);
        let result = run_blocking(&what, move || {
            machines::use_host_model(&store, &target)?;
            machines::start(&target).map_err(|error| every_problem(&target, error))
        })
        .await;
        AppCmd::Started(name, result.and_then(|r| r))
    });
}

/// A failed start's message with every other problem of the definition beside it, so they are
/// fixed in one go rather than one start at a time. A CPU error stays first (its dialog offers
/// the CPU fixes); otherwise the collected list replaces start's first error.
fn every_problem(name: &str, error: String) -> String {
    let Some(domain) = crate::domain::store::DomainStore::open_default()
        .ok()
        .and_then(|store| store.get(name).ok())
    else {
        return error;
    };
    let host = crate::launch::HostFacts::probe().unwrap_or_default();
    let problems = crate::launch::problems::definition_problems(&domain.domain, &host);
    if machines::is_cpu_error(&error) {
        let others = problems.into_iter().filter(|p| !machines::is_cpu_error(p));
        std::iter::once(error)
            .chain(others)
            .collect::<Vec<_>>()
            .join("\n")
    } else if problems.is_empty() {
        error
    } else {
        problems.join("\n")
    }
}

fn act(sender: &ComponentSender<App>, name: String, action: VmAction) {
    sender.oneshot_command(async move {
        let target = name.clone();
        let what = gettext("controlling {name}").replace("{name}", &name);
        let result = run_blocking(&what, move || machines::control(&target, action)).await;
        AppCmd::Acted(name, action, result.and_then(|r| r))
    });
}

/// Puts the model on screen: empty state or list, rows, and the pending toast (shown once).
fn show(model: &mut App, widgets: &mut AppWidgets) {
    widgets.content.set_visible_child_name(
        if model.vms.is_empty() && model.connection_count == 0 {
            "empty"
        } else {
            "list"
        },
    );
    widgets
        .this_computer
        .set_visible(model.connection_count > 0);
    widgets.vm_list.update(&model.vms);
    widgets.vm_list.set_disk_usage(&model.disk_usage);
    if let Some(text) = model.toast.take() {
        let toast = adw::Toast::new(&glib::markup_escape_text(&text));
        toast.set_timeout(6);
        widgets.toasts.add_toast(toast);
    }
}

fn confirm_force_off(root: &adw::ApplicationWindow, name: String, sender: &ComponentSender<App>) {
    let sender = sender.clone();
    let label = name.clone();
    super::vm_list::ask_force_off(Some(root.upcast_ref()), &label, move || {
        sender.input(AppMsg::ForceOffConfirmed(name.clone()));
    });
}

/// Says why `name` did not start. When the reason is its CPU (this host's KVM cannot give
/// the model or features it asks for), the dialog offers the fixes: switch to host-model and
/// start again, or open the CPU settings.
fn start_failed(
    root: &adw::ApplicationWindow,
    name: String,
    error: &str,
    sender: &ComponentSender<App>,
) {
    let dialog = adw::MessageDialog::builder()
        .transient_for(root)
        .modal(true)
        .heading(gettext("Could Not Start {name}").replace("{name}", &name))
        .body(error)
        .build();
    dialog.add_response("close", &gettext("_Close"));
    if machines::is_cpu_error(error) {
        // Say which of the user's features the host-model answer removes, rather than
        // dropping them silently.
        let dropped = host_model_drops(&name);
        if !dropped.is_empty() {
            dialog.set_body(&format!(
                "{error}\n\n{}",
                gettext("“Use Host CPU Model” removes the features this VM requires or forces: {features}")
                    .replace("{features}", &dropped.join(", "))
            ));
        }
        dialog.add_responses(&[
            ("edit-cpu", &gettext("_Edit CPU…")),
            ("host-model", &gettext("Use _Host CPU Model")),
        ]);
        dialog.set_response_appearance("host-model", adw::ResponseAppearance::Suggested);
        dialog.set_default_response(Some("host-model"));
    } else {
        dialog.set_default_response(Some("close"));
    }
    dialog.set_close_response("close");
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| match response {
        "host-model" => sender.input(AppMsg::UseHostModel(name.clone())),
        "edit-cpu" => sender.input(AppMsg::EditCpu(name.clone())),
        _ => {}
    });
    dialog.present();
}

/// The features `name`'s definition requires or forces, which switching it to host-model
/// removes ([`machines::use_host_model`] keeps only disable, forbid and optional ones).
fn host_model_drops(name: &str) -> Vec<String> {
    use crate::cpu::Policy;
    crate::domain::store::DomainStore::open_default()
        .ok()
        .and_then(|store| store.get(name).ok())
        .map(|stored| {
            crate::launch::cpu_edit::CpuSettings::read(&stored.domain)
                .features
                .into_iter()
                .filter(|(_, policy)| matches!(policy, Policy::Require | Policy::Force))
                .map(|(feature, _)| feature)
                .collect()
        })
        .unwrap_or_default()
}

fn confirm_delete(root: &adw::ApplicationWindow, name: String, sender: &ComponentSender<App>) {
    let dialog = adw::MessageDialog::builder()
        .transient_for(root)
        .modal(true)
        .heading(gettext("Delete {name}?").replace("{name}", &name))
        .body(gettext(
            "The virtual machine's definition is removed. Its disk images can be kept for later use or deleted too.",
        ))
        .build();
    dialog.add_responses(&[
        ("cancel", &gettext("_Cancel")),
        ("keep-disks", &gettext("_Keep Disk Images")),
        ("delete-disks", &gettext("_Delete Disk Images Too")),
    ]);
    dialog.set_response_appearance("keep-disks", adw::ResponseAppearance::Destructive);
    dialog.set_response_appearance("delete-disks", adw::ResponseAppearance::Destructive);
    dialog.set_default_response(Some("cancel"));
    dialog.set_close_response("cancel");
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| match response {
        "keep-disks" => sender.input(AppMsg::DeleteConfirmed(name.clone(), false)),
        "delete-disks" => sender.input(AppMsg::DeleteConfirmed(name.clone(), true)),
        _ => {}
    });
    dialog.present();
}

/// Closing the window while VMs run asks what should become of them. They live in their own
/// runner processes, so keeping them running is safe: reopening Vireo finds them again. "Shut
/// Down All" closes the window only once they have stopped (see [`App::follow_quit`]).
fn confirm_close(
    root: &adw::ApplicationWindow,
    running: Vec<String>,
    sender: &ComponentSender<App>,
) {
    let dialog = adw::MessageDialog::builder()
        .transient_for(root)
        .modal(true)
        .heading(gettext("Virtual Machines Are Running"))
        .body(
            gettext("{names} will keep running in the background unless you shut them down. Open Vireo again to get back to them.")
                .replace("{names}", &running.join(", ")),
        )
        .build();
    dialog.add_responses(&[
        ("cancel", &gettext("_Cancel")),
        ("shutdown", &gettext("_Shut Down All")),
        ("keep", &gettext("_Keep Running")),
    ]);
    dialog.set_default_response(Some("keep"));
    dialog.set_close_response("cancel");
    dialog.set_response_appearance("keep", adw::ResponseAppearance::Suggested);
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| match response {
        "shutdown" => sender.input(AppMsg::ShutDownAll(running.clone())),
        "keep" => sender.input(AppMsg::CloseNow),
        _ => {}
    });
    dialog.present();
}

/// The dialog shown while "Shut Down All" waits; its body is written by
/// [`App::show_quit_progress`], Force Off and Keep Running are added after the timeout.
fn shutdown_progress_dialog(
    root: &adw::ApplicationWindow,
    sender: &ComponentSender<App>,
) -> adw::MessageDialog {
    let spinner = gtk::Spinner::builder()
        .spinning(true)
        .width_request(32)
        .height_request(32)
        .halign(gtk::Align::Center)
        .build();
    let dialog = adw::MessageDialog::builder()
        .transient_for(root)
        .modal(true)
        .heading(gettext("Shutting Down Virtual Machines"))
        .extra_child(&spinner)
        .build();
    dialog.add_response("cancel", &gettext("_Cancel"));
    dialog.set_close_response("cancel");
    dialog.set_default_response(Some("cancel"));
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| match response {
        "force-off" => sender.input(AppMsg::ForceOffRemaining),
        "keep" => sender.input(AppMsg::CloseNow),
        _ => sender.input(AppMsg::CancelQuit),
    });
    dialog.present();
    dialog
}

/// The primary menu, from `ui/menus.ui` in the GResource bundle.
/// Logs the main window's realize, first frame-clock tick and first paint as start-up steps.
fn mark_first_frame(window: &adw::ApplicationWindow) {
    window.connect_realize(|_| super::startup_mark("main window: realized"));
    window.add_tick_callback(|_, clock| {
        super::startup_mark("main window: first frame clock tick");
        let painted = std::cell::Cell::new(false);
        clock.connect_after_paint(move |_| {
            if !painted.replace(true) {
                super::startup_mark("main window: painted");
            }
        });
        glib::ControlFlow::Break
    });
}

fn primary_menu() -> gio::MenuModel {
    gtk::Builder::from_resource("/dev/vireo/Vireo/menus.ui")
        .object::<gio::MenuModel>("primary_menu")
        .expect("menus.ui defines primary_menu")
}

/// Makes the message a window action sends (a fresh one per activation).
type MessageFactory = fn() -> AppMsg;

/// Window actions behind the menu and the buttons; they forward to component messages, so
/// the same code path runs for a click, a keyboard shortcut and a test.
fn install_window_actions(window: &adw::ApplicationWindow, sender: &ComponentSender<App>) {
    let entries: [(&str, MessageFactory); 4] = [
        ("new-vm", || AppMsg::NewVm),
        ("add-connection", || AppMsg::AddConnection),
        ("preferences", || AppMsg::ShowPreferences),
        ("about", || AppMsg::ShowAbout),
    ];
    for (name, message) in entries {
        let action = gio::SimpleAction::new(name, None);
        let sender = sender.clone();
        action.connect_activate(move |_, _: Option<&glib::Variant>| sender.input(message()));
        window.add_action(&action);
    }
}
