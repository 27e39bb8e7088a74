//! The main window: header bar with the primary menu, and the VM list or the empty state.

use std::time::Duration;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{
    Component, ComponentController, ComponentParts, ComponentSender, Controller, adw, gtk,
};

use std::collections::HashMap;

use super::console::Console;
use super::details::Details;
use super::preferences::Preferences;
use super::vm_list::{RowRequest, VmList};
use super::wizard::{Wizard, WizardOutput};
use crate::domain::store::DomainStore;
use crate::launch::machines::{self, RunState, VmAction, VmSummary};
use crate::prefs::Prefs;

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
    consoles: HashMap<String, Controller<Console>>,
    /// Open details windows by VM name.
    details: HashMap<String, Controller<Details>>,
    /// Error or notice to show as a toast at the next view update.
    toast: Option<String>,
    /// A background re-read of the store and the runners is under way.
    refreshing: bool,
}

/// Messages the main window reacts to (from its actions, buttons and timer).
#[derive(Debug)]
pub enum AppMsg {
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
}

/// Results of work done off the UI thread.
#[derive(Debug)]
pub enum AppCmd {
    Started(String, Result<(), String>),
    Acted(String, VmAction, Result<(), String>),
    /// The store's generation and the VMs, as re-read by the once-a-second poll.
    Listed((u64, Vec<VmSummary>)),
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

                                #[local_ref]
                                vm_list_widget -> gtk::ListBox {},
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
            toast: None,
            refreshing: false,
        };
        let row_sender = sender.clone();
        let vm_list = VmList::new(move |request| row_sender.input(AppMsg::Row(request)));
        let vm_list_widget = vm_list.list.clone();
        let mut widgets = view_output!();
        super::startup_mark("main window: widgets built");
        install_window_actions(&widgets.main_window, &sender);
        model.refresh();
        super::startup_mark("main window: VMs listed");
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
        let confirmed = std::rc::Rc::new(std::cell::Cell::new(false));
        root.connect_close_request(move |window| confirm_close(window, &confirmed));
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
                let wizard = Wizard::builder().transient_for(root).launch(()).forward(
                    sender.input_sender(),
                    |output| match output {
                        WizardOutput::Created { name, customize } => {
                            AppMsg::Created { name, customize }
                        }
                    },
                );
                wizard.widget().present();
                self.wizard = Some(wizard);
            }
            AppMsg::Created { name, customize } => {
                if let Some(wizard) = self.wizard.take() {
                    wizard.widget().close();
                }
                self.refresh();
                if customize {
                    self.open_details(&name, root);
                } else {
                    start(&sender, name.clone());
                    self.open_console(&name, root);
                }
            }
            AppMsg::ShowPreferences => {
                let controller = Preferences::builder().launch(load_prefs()).detach();
                controller.widget().set_transient_for(Some(root));
                controller.widget().present();
                self.preferences = Some(controller);
            }
            AppMsg::ShowAbout => super::about::about_window(root).present(),
            AppMsg::Refresh => {
                // Off the UI thread: it reads every definition and asks every runner.
                if let Some(store) = self.store.clone().filter(|_| !self.refreshing) {
                    self.refreshing = true;
                    sender.oneshot_command(async move {
                        let listed =
                            run_blocking(move || (store.generation(), machines::list(&store)))
                                .await;
                        AppCmd::Listed(listed)
                    });
                }
                return;
            }
            AppMsg::Tick => {
                widgets.vm_list.sample_cpu();
                return;
            }
            AppMsg::Row(request) => self.on_row(request, &sender, root),
            AppMsg::ForceOffConfirmed(name) => act(&sender, name, VmAction::ForceOff),
            AppMsg::DeleteConfirmed(name, with_disks) => self.delete(&name, with_disks),
            AppMsg::Notify(text) => self.toast = Some(text),
            AppMsg::UseHostModel(name) => {
                let switched = self
                    .store
                    .as_ref()
                    .ok_or_else(|| gettext("The VM store cannot be opened"))
                    .and_then(|store| machines::use_host_model(store, &name));
                match switched {
                    Ok(()) => start(&sender, name),
                    Err(error) => self.toast = Some(error),
                }
            }
            AppMsg::EditCpu(name) => {
                self.open_details(&name, root);
                if let Some(details) = self.details.get(&name) {
                    details.widgets().stack.set_visible_child_name("cpu");
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
            AppCmd::Listed(listed) => {
                self.refreshing = false;
                if self.take_listing(listed) {
                    show(self, widgets);
                }
                return;
            }
            AppCmd::Acted(name, _, Err(error)) => {
                self.toast = Some(format!("{name}: {error}"));
            }
            AppCmd::Started(..) | AppCmd::Acted(..) => {}
        }
        self.refresh();
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
    pub fn preferences(&self) -> Option<&Controller<Preferences>> {
        self.preferences.as_ref()
    }

    /// Re-reads the store and run states; returns whether anything changed.
    fn refresh(&mut self) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        let listed = (store.generation(), machines::list(store));
        self.take_listing(listed)
    }

    /// Keeps a fresh reading of the store and the runners; returns whether anything changed.
    fn take_listing(&mut self, (generation, vms): (u64, Vec<VmSummary>)) -> bool {
        let changed = generation != self.generation || vms != self.vms;
        self.generation = generation;
        self.vms = vms;
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
            RowRequest::Act(name, VmAction::ForceOff) if load_prefs().confirm_force_off => {
                confirm_force_off(root, name, sender);
            }
            RowRequest::Act(name, action) => act(sender, name, action),
            RowRequest::Open(name) => self.open_details(&name, root),
            RowRequest::Console(name) => self.open_console(&name, root),
            RowRequest::Delete(name) => confirm_delete(root, name, sender),
        }
    }

    /// The console window of `name`, while open.
    pub fn console(&self, name: &str) -> Option<&Controller<Console>> {
        self.consoles.get(name)
    }

    /// The wizard, while open.
    pub fn wizard(&self) -> Option<&Controller<Wizard>> {
        self.wizard.as_ref()
    }

    /// Shows the console window of `name`, opening it if needed.
    fn open_console(&mut self, name: &str, root: &adw::ApplicationWindow) {
        self.consoles.retain(|_, c| c.widget().is_visible());
        let console = self.consoles.entry(name.to_string()).or_insert_with(|| {
            let console = Console::builder().launch(name.to_string()).detach();
            console.widget().set_transient_for(Some(root));
            console
        });
        console.widget().present();
    }

    /// The details window of `name`, while open.
    pub fn details(&self, name: &str) -> Option<&Controller<Details>> {
        self.details.get(name)
    }

    /// Shows the details window of `name`, opening it if needed.
    fn open_details(&mut self, name: &str, root: &adw::ApplicationWindow) {
        self.details.retain(|_, d| d.widget().is_visible());
        if let Some(details) = self.details.get(name) {
            details.widget().present();
            return;
        }
        let Some(store) = &self.store else { return };
        match store.get(name) {
            Ok(stored) => {
                let details = Details::builder().launch(stored).detach();
                details.widget().set_transient_for(Some(root));
                details.widget().present();
                self.details.insert(name.to_string(), details);
            }
            Err(err) => self.toast = Some(err.to_string()),
        }
    }

    fn delete(&mut self, name: &str, with_disks: bool) {
        let Some(store) = &self.store else { return };
        match store.undefine(name, with_disks) {
            Ok(removed) => {
                let text = if removed.is_empty() {
                    gettext("Deleted {name}").replace("{name}", name)
                } else {
                    gettext("Deleted {name} and {count} disk images")
                        .replace("{name}", name)
                        .replace("{count}", &removed.len().to_string())
                };
                self.toast = Some(text);
            }
            Err(err) => self.toast = Some(err.to_string()),
        }
        self.refresh();
    }
}

/// Runs blocking work on a plain thread and awaits its result without blocking the UI.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = relm4::tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await.expect("the worker thread sends its result")
}

/// Starts `name` in its runner off the UI thread; the result comes back as [`AppCmd::Started`].
fn start(sender: &ComponentSender<App>, name: String) {
    sender.oneshot_command(async move {
        let target = name.clone();
        let result = run_blocking(move || machines::start(&target)).await;
        AppCmd::Started(name, result)
    });
}

fn act(sender: &ComponentSender<App>, name: String, action: VmAction) {
    sender.oneshot_command(async move {
        let target = name.clone();
        let result = run_blocking(move || machines::control(&target, action)).await;
        AppCmd::Acted(name, action, result)
    });
}

fn load_prefs() -> Prefs {
    Prefs::load().unwrap_or_else(|err| {
        tracing::warn!(%err, "preferences unreadable; using the defaults");
        Prefs::default()
    })
}

/// Puts the model on screen: empty state or list, rows, and the pending toast (shown once).
fn show(model: &mut App, widgets: &mut AppWidgets) {
    widgets
        .content
        .set_visible_child_name(if model.vms.is_empty() {
            "empty"
        } else {
            "list"
        });
    widgets.vm_list.update(&model.vms);
    if let Some(text) = model.toast.take() {
        let toast = adw::Toast::new(&glib::markup_escape_text(&text));
        toast.set_timeout(6);
        widgets.toasts.add_toast(toast);
    }
}

fn confirm_force_off(root: &adw::ApplicationWindow, name: String, sender: &ComponentSender<App>) {
    let dialog = adw::MessageDialog::builder()
        .transient_for(root)
        .modal(true)
        .heading(gettext("Force Off {name}?").replace("{name}", &name))
        .body(gettext(
            "This cuts the power like pulling the plug: unsaved data in the guest is lost.",
        ))
        .build();
    dialog.add_responses(&[
        ("cancel", &gettext("_Cancel")),
        ("force-off", &gettext("_Force Off")),
    ]);
    dialog.set_response_appearance("force-off", adw::ResponseAppearance::Destructive);
    dialog.set_default_response(Some("cancel"));
    dialog.set_close_response("cancel");
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| {
        if response == "force-off" {
            sender.input(AppMsg::ForceOffConfirmed(name.clone()));
        }
    });
    dialog.present();
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
/// runner processes, so keeping them running is safe: reopening Vireo finds them again.
fn confirm_close(
    window: &adw::ApplicationWindow,
    confirmed: &std::rc::Rc<std::cell::Cell<bool>>,
) -> glib::Propagation {
    let running: Vec<String> = DomainStore::open_default()
        .map(|store| machines::list(&store))
        .unwrap_or_default()
        .into_iter()
        .filter(|vm| matches!(vm.state, RunState::Running | RunState::Paused))
        .map(|vm| vm.name)
        .collect();
    if running.is_empty() || confirmed.get() {
        return glib::Propagation::Proceed;
    }
    let dialog = adw::MessageDialog::builder()
        .transient_for(window)
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
    let window = window.clone();
    let confirmed = confirmed.clone();
    dialog.connect_response(None, move |_, response| {
        if response == "cancel" {
            return;
        }
        if response == "shutdown" {
            for name in &running {
                if let Err(err) = machines::control(name, VmAction::Shutdown) {
                    tracing::warn!(%name, %err, "shutdown on close failed");
                }
            }
        }
        confirmed.set(true);
        window.close();
    });
    dialog.present();
    glib::Propagation::Stop
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
    let entries: [(&str, MessageFactory); 3] = [
        ("new-vm", || AppMsg::NewVm),
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
