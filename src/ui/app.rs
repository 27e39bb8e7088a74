//! The main window: header bar with the primary menu, and either the VM list or the empty state.

use gettextrs::gettext;
use relm4::gtk::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{
    Component, ComponentController, ComponentParts, ComponentSender, Controller, SimpleComponent,
    adw, gtk,
};

use super::preferences::Preferences;
use crate::prefs::Prefs;

/// What the main window shows and owns.
pub struct App {
    /// Number of VMs defined; the empty-state page is shown while it is zero.
    vm_count: usize,
    /// The Preferences window while it is open.
    preferences: Option<Controller<Preferences>>,
}

/// Messages the main window reacts to (from its actions and buttons).
#[derive(Debug)]
pub enum AppMsg {
    /// Open the create-VM wizard.
    NewVm,
    /// Open the Preferences window.
    ShowPreferences,
    /// Open the About window.
    ShowAbout,
}

#[relm4::component(pub)]
impl SimpleComponent for App {
    type Init = ();
    type Input = AppMsg;
    type Output = ();

    view! {
        #[root]
        main_window = adw::ApplicationWindow {
            set_title: Some(&gettext("Vireo")),
            set_default_size: (960, 640),
            set_width_request: 360,
            set_height_request: 294,

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
                },
            },
        }
    }

    fn init(
        _init: Self::Init,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let model = App {
            vm_count: 0,
            preferences: None,
        };
        let widgets = view_output!();
        install_window_actions(&widgets.main_window, &sender);
        widgets
            .content
            .set_visible_child_name(if model.vm_count == 0 { "empty" } else { "list" });
        ComponentParts { model, widgets }
    }

    fn update(&mut self, msg: Self::Input, _sender: ComponentSender<Self>) {
        match msg {
            AppMsg::NewVm => tracing::info!("create-VM wizard requested"),
            AppMsg::ShowPreferences => {
                let prefs = Prefs::load().unwrap_or_else(|err| {
                    tracing::warn!(%err, "preferences unreadable; showing the defaults");
                    Prefs::default()
                });
                let controller = Preferences::builder().launch(prefs).detach();
                if let Some(parent) = main_window() {
                    controller.widget().set_transient_for(Some(&parent));
                }
                controller.widget().present();
                self.preferences = Some(controller);
            }
            AppMsg::ShowAbout => {
                if let Some(window) = main_window() {
                    super::about::about_window(&window).present();
                }
            }
        }
    }
}

impl App {
    /// How many VMs the window currently lists.
    pub fn vm_count(&self) -> usize {
        self.vm_count
    }

    /// The Preferences window's component, while it is open.
    pub fn preferences(&self) -> Option<&Controller<Preferences>> {
        self.preferences.as_ref()
    }
}

/// The application's main window (the first one, if several exist).
fn main_window() -> Option<adw::ApplicationWindow> {
    gtk::Window::list_toplevels()
        .into_iter()
        .find_map(|w| w.downcast::<adw::ApplicationWindow>().ok())
}

/// The primary menu, from `ui/menus.ui` in the GResource bundle.
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
