//! The Preferences window: the CPU default for new VMs (the headline setting) and the console.
//!
//! Every change takes effect at once in the app's preferences in memory (`prefs::live`), so the
//! create-VM wizard uses the new value immediately, and is written to `prefs.toml` in the
//! background; a failed write shows a toast. The login entry is written in a worker too.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentParts, ComponentSender, SimpleComponent, adw, gtk};

use super::rows::{radio_row, spin_row};
use crate::launch::autostart;
use crate::prefs::{CpuModePref, Prefs};

/// The Preferences window's state: the preferences as last changed.
pub struct Preferences {
    prefs: Prefs,
    /// A save that failed, to be shown as a toast by the next view update.
    save_error: Option<String>,
    /// The switch's state after a failed write of the login entry: whether the entry exists.
    /// Only a failure moves the switch; otherwise it shows what the user chose (setting it on
    /// every update raced with the user's next click and toggled it forever).
    login_correction: Cell<Option<bool>>,
    /// The number of the latest switch change: a worker whose change has been overtaken writes
    /// nothing and reports nothing, so quick toggles end as the switch was left.
    login_latest: Arc<AtomicU64>,
}

#[derive(Debug)]
pub enum PreferencesMsg {
    CpuMode(CpuModePref),
    FontSize(u32),
    ConfirmForceOff(bool),
    /// Write (true) or remove the login entry that starts the VMs marked autostart.
    LoginAutostart(bool),
    /// The worker for change number `.0` wrote (or failed to write) the login entry; whether
    /// it exists now.
    LoginAutostartDone(u64, bool, Option<String>),
    /// Writing `prefs.toml` failed (in the background).
    SaveFailed(String),
}

/// The row title and the performance-versus-migration trade-off of each CPU choice.
pub fn cpu_mode_texts(mode: CpuModePref) -> (String, String) {
    match mode {
        CpuModePref::AppDefault => (
            gettext("Application default"),
            gettext(
                "Vireo picks for this host: host passthrough with hardware KVM, otherwise a copy of the host CPU",
            ),
        ),
        CpuModePref::HvDefault => (
            gettext("Hypervisor default"),
            gettext(
                "A basic 64-bit CPU: runs and migrates anywhere, but hides most modern instructions",
            ),
        ),
        CpuModePref::HostModelOnly => (
            gettext("Nearest CPU model"),
            gettext(
                "The named model closest to this host, nothing added: fast, and migrates to any host with that model",
            ),
        ),
        CpuModePref::HostModel => (
            gettext("Copy host CPU configuration"),
            gettext(
                "The nearest model plus every extra feature KVM offers: faster, migrates only to similar hosts",
            ),
        ),
        CpuModePref::HostPassthrough => (
            gettext("Host passthrough"),
            gettext(
                "Exactly this host's CPU: fastest, but the VM may not start on a different CPU",
            ),
        ),
    }
}

/// What a choice means on this very host, where that is not obvious from its name: which mode
/// the application default picks here and why, and which model "Nearest CPU model" gives.
pub fn on_this_host(
    mode: CpuModePref,
    host: &crate::domain::validate::HostFacts,
) -> Option<String> {
    match mode {
        CpuModePref::AppDefault if host.hardware_kvm => Some(gettext(
            "On this host: host passthrough (hardware virtualization found)",
        )),
        CpuModePref::AppDefault => Some(gettext(
            "On this host: a copy of the host CPU (no hardware virtualization found)",
        )),
        CpuModePref::HostModelOnly => Some(match &host.nearest_usable_model {
            Some(model) => gettext("On this host: {model}").replace("{model}", model),
            None => gettext("On this host: no named model is usable"),
        }),
        _ => None,
    }
}

pub struct PreferencesWidgets {
    pub window: adw::PreferencesWindow,
    /// One check button per CPU choice, in [`CpuModePref::ALL`] order.
    pub cpu_mode_buttons: Vec<gtk::CheckButton>,
    pub font_size: gtk::SpinButton,
    pub confirm_force_off: gtk::Switch,
    /// "Start VMs marked autostart when I log in": whether the XDG login entry exists.
    pub login_autostart: gtk::Switch,
}

impl SimpleComponent for Preferences {
    type Init = Prefs;
    type Input = PreferencesMsg;
    type Output = ();
    type Root = adw::PreferencesWindow;
    type Widgets = PreferencesWidgets;

    fn init_root() -> Self::Root {
        adw::PreferencesWindow::builder()
            .title(gettext("Preferences"))
            .modal(true)
            .default_width(620)
            .default_height(640)
            .search_enabled(false)
            .build()
    }

    fn init(
        prefs: Self::Init,
        window: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let page = adw::PreferencesPage::builder()
            .title(gettext("New VM"))
            .icon_name("computer-symbolic")
            .build();

        let cpu_group = adw::PreferencesGroup::builder()
            .title(gettext("Guest CPU"))
            .description(gettext(
                "The CPU new virtual machines get. It decides how fast the guest runs and which hosts it can later move to.",
            ))
            .build();
        if super::worker::cpuid_enforced() == Some(false) {
            let note = gtk::Label::builder()
                .label(super::new_vm_text::cpuid_not_enforced_text())
                .wrap(true)
                .xalign(0.0)
                .margin_bottom(6)
                .css_classes(["warning"])
                .build();
            cpu_group.add(&note);
        }
        let mut cpu_mode_buttons: Vec<gtk::CheckButton> = Vec::new();
        let host = super::worker::host_facts();
        for mode in CpuModePref::ALL {
            let (title, mut subtitle) = cpu_mode_texts(mode);
            if let Some(here) = on_this_host(mode, &host) {
                subtitle = format!("{subtitle}\n{here}");
            }
            let check = radio_row(&cpu_group, &title, &subtitle, cpu_mode_buttons.first());
            check.set_active(prefs.new_vm_cpu_mode == mode);
            let sender = sender.clone();
            check.connect_toggled(move |check| {
                if check.is_active() {
                    sender.input(PreferencesMsg::CpuMode(mode));
                }
            });
            cpu_mode_buttons.push(check);
        }
        page.add(&cpu_group);

        let console_group = adw::PreferencesGroup::builder()
            .title(gettext("Console"))
            .build();
        let font_size = spin_row(
            &console_group,
            &gettext("Font size"),
            Some(&gettext("Text size of the serial console, in points")),
            (6.0, 72.0, 1.0),
            f64::from(prefs.console_font_size),
        );
        {
            let sender = sender.clone();
            font_size.connect_value_changed(move |spin| {
                sender.input(PreferencesMsg::FontSize(spin.value_as_int() as u32));
            });
        }

        let confirm_force_off = gtk::Switch::builder()
            .valign(gtk::Align::Center)
            .active(prefs.confirm_force_off)
            .build();
        let confirm_row = adw::ActionRow::builder()
            .title(gettext("Confirm force off"))
            .subtitle(gettext("Ask before cutting a virtual machine's power"))
            .activatable_widget(&confirm_force_off)
            .build();
        confirm_row.add_suffix(&confirm_force_off);
        {
            let sender = sender.clone();
            confirm_force_off.connect_active_notify(move |switch| {
                sender.input(PreferencesMsg::ConfirmForceOff(switch.is_active()));
            });
        }
        console_group.add(&confirm_row);
        page.add(&console_group);
        let login_enabled = autostart::login_entry_enabled();
        let login_autostart = login_group(&page, login_enabled, &sender);
        window.add(&page);

        let widgets = PreferencesWidgets {
            window,
            cpu_mode_buttons,
            font_size,
            confirm_force_off,
            login_autostart,
        };
        ComponentParts {
            model: Preferences {
                prefs,
                save_error: None,
                login_correction: Cell::new(None),
                login_latest: Arc::default(),
            },
            widgets,
        }
    }

    fn update(&mut self, msg: Self::Input, sender: ComponentSender<Self>) {
        self.save_error = None;
        let change: Box<dyn Fn(&mut Prefs) + Send> = match msg {
            PreferencesMsg::CpuMode(mode) => Box::new(move |p| p.new_vm_cpu_mode = mode),
            PreferencesMsg::FontSize(size) => Box::new(move |p| p.console_font_size = size),
            PreferencesMsg::ConfirmForceOff(on) => Box::new(move |p| p.confirm_force_off = on),
            PreferencesMsg::LoginAutostart(on) => {
                // Kept in the entry file itself (its presence is the setting), not in prefs.
                let input = sender.input_sender().clone();
                let latest = self.login_latest.clone();
                let number = latest.fetch_add(1, Ordering::SeqCst) + 1;
                std::thread::spawn(move || {
                    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
                    let _turn = ONE_AT_A_TIME.lock();
                    if latest.load(Ordering::SeqCst) != number {
                        return;
                    }
                    let error = set_login_autostart(on).err().map(|e| e.to_string());
                    let exists = autostart::login_entry_enabled();
                    input.emit(PreferencesMsg::LoginAutostartDone(number, exists, error));
                });
                return;
            }
            PreferencesMsg::LoginAutostartDone(number, exists, error) => {
                if number == self.login_latest.load(Ordering::SeqCst) && error.is_some() {
                    self.login_correction.set(Some(exists));
                    self.save_error = error;
                }
                return;
            }
            PreferencesMsg::SaveFailed(error) => {
                self.save_error = Some(error);
                return;
            }
        };
        let mut next = self.prefs.clone();
        change(&mut next);
        if next == self.prefs {
            return;
        }
        self.prefs = next;
        let input = sender.input_sender().clone();
        let changed = crate::prefs::live::change(
            move |p| {
                change(p);
                Ok(())
            },
            move |written| {
                if let Err(error) = written {
                    input.emit(PreferencesMsg::SaveFailed(error.to_string()));
                }
            },
        );
        if let Err(error) = changed {
            self.save_error = Some(error.to_string());
        }
    }

    fn update_view(&self, widgets: &mut Self::Widgets, _sender: ComponentSender<Self>) {
        if let Some(error) = &self.save_error {
            let text = gettext("Could not save the preferences: {error}").replace("{error}", error);
            widgets.window.add_toast(adw::Toast::new(&text));
        }
        // The entry file is the setting: a failed write shows the switch as the file is.
        if let Some(exists) = self.login_correction.take() {
            widgets.login_autostart.set_active(exists);
        }
        if let Some(index) = CpuModePref::ALL
            .iter()
            .position(|m| *m == self.prefs.new_vm_cpu_mode)
        {
            widgets.cpu_mode_buttons[index].set_active(true);
        }
    }
}

/// The "Autostart" group: one switch for the login entry that runs
/// `vireoctl start --autostart`; returns the switch.
fn login_group(
    page: &adw::PreferencesPage,
    enabled: bool,
    sender: &ComponentSender<Preferences>,
) -> gtk::Switch {
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Autostart"))
        .build();
    let switch = gtk::Switch::builder()
        .valign(gtk::Align::Center)
        .active(enabled)
        .build();
    let row = adw::ActionRow::builder()
        .title(gettext("Start VMs marked autostart when I log in"))
        .subtitle(gettext(
            "Vireo also starts them when it opens. Mark a VM with “vireoctl autostart NAME”.",
        ))
        .activatable_widget(&switch)
        .build();
    row.add_suffix(&switch);
    group.add(&row);
    let sender = sender.clone();
    switch.connect_active_notify(move |switch| {
        sender.input(PreferencesMsg::LoginAutostart(switch.is_active()));
    });
    page.add(&group);
    switch
}

/// Writes or removes the login entry, which runs this installation's `vireoctl`.
fn set_login_autostart(on: bool) -> Result<(), autostart::AutostartError> {
    let text = on.then(|| {
        autostart::login_entry_text(
            &crate::launch::machines::vireoctl_path(),
            &gettext("Vireo virtual machines"),
            &gettext("Starts the virtual machines marked autostart"),
        )
    });
    autostart::set_login_entry(text.as_deref())
}

impl Preferences {
    /// The preferences as last saved by this window.
    pub fn prefs(&self) -> &Prefs {
        &self.prefs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::HostFacts;

    fn host(hardware_kvm: bool, nearest: Option<&str>) -> HostFacts {
        HostFacts {
            mem_total_kib: None,
            hardware_kvm,
            nearest_usable_model: nearest.map(str::to_string),
            kvm_cpuid: None,
            ..HostFacts::default()
        }
    }

    #[test]
    fn says_what_the_default_and_nearest_model_mean_here() {
        let hardware = host(true, Some("Skylake-Client"));
        let pvm = host(false, Some("pentium3"));
        let default_here = |h| on_this_host(CpuModePref::AppDefault, h).unwrap();
        assert!(default_here(&hardware).contains("host passthrough"));
        assert!(default_here(&pvm).contains("copy of the host CPU"));
        assert!(
            on_this_host(CpuModePref::HostModelOnly, &pvm)
                .unwrap()
                .contains("pentium3")
        );
        assert!(
            on_this_host(CpuModePref::HostModelOnly, &host(false, None))
                .unwrap()
                .contains("no named model")
        );
        assert_eq!(on_this_host(CpuModePref::HostPassthrough, &pvm), None);
    }
}
