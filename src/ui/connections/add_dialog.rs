//! File → Add Connection, as virt-manager has it: the hypervisor (QEMU/KVM system or user
//! session, or a custom URI), "Connect to remote host over SSH" with user and host, and
//! Autoconnect; the URI these make is shown as it changes. Keyboard: focus starts on the first
//! choice, Enter adds, Escape cancels. The dialog only asks; [`super::Connections`] stores and
//! connects.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::{gdk, glib};
use relm4::{ComponentSender, adw, gtk};

use super::{Connections, ConnectionsMsg};
use crate::launch::connections::uri::{Hypervisor, connection_uri};
use crate::ui::keyboard::{dialog_keys, enter_presses_default, focus_when_shown};
use crate::ui::rows::{entry_row, radio_row};

/// The dialog's widgets (public for the GUI tests).
#[derive(Clone)]
pub struct AddDialog {
    pub window: adw::Window,
    pub system: gtk::CheckButton,
    pub session: gtk::CheckButton,
    pub custom: gtk::CheckButton,
    pub custom_uri: gtk::Entry,
    /// The custom URI's row, shown only when Custom URI is chosen.
    custom_row: adw::ActionRow,
    /// SSH, user and host: not for a custom URI (it says all itself).
    remote: adw::PreferencesGroup,
    pub ssh: gtk::Switch,
    pub user: gtk::Entry,
    pub host: gtk::Entry,
    pub autoconnect: gtk::Switch,
    /// The URI the choices make.
    pub uri: gtk::Label,
    /// A URI that cannot be right, said in place.
    pub error: gtk::Label,
    pub add: gtk::Button,
}

impl AddDialog {
    /// The URI as chosen.
    pub fn chosen_uri(&self) -> String {
        if self.custom.is_active() {
            return self.custom_uri.text().trim().to_owned();
        }
        let hypervisor = if self.session.is_active() {
            Hypervisor::QemuSession
        } else {
            Hypervisor::QemuSystem
        };
        let host = self.host.text();
        connection_uri(
            hypervisor,
            &self.user.text(),
            self.ssh.is_active().then_some(host.as_str()),
        )
    }

    fn refresh(&self) {
        let custom = self.custom.is_active();
        self.custom_row.set_visible(custom);
        self.remote.set_visible(!custom);
        let remote = self.ssh.is_active() && !custom;
        self.user.set_sensitive(remote);
        self.host.set_sensitive(remote);
        self.uri.set_text(&self.chosen_uri());
        self.error.set_visible(false);
    }

    /// Checks the URI; stores and connects it, or says what is wrong in the dialog.
    pub fn submit(&self, sender: &ComponentSender<Connections>) {
        let uri = self.chosen_uri();
        let problem = if uri.is_empty() {
            Some(gettext(
                "Enter a libvirt URI, such as qemu:///system or qemu+ssh://user@host/system",
            ))
        } else if self.ssh.is_active()
            && !self.custom.is_active()
            && self.host.text().trim().is_empty()
        {
            Some(gettext("Enter the host name of the remote computer"))
        } else {
            crate::prefs::check_connection_uri(&uri).err().map(|_| {
                gettext("“{uri}” is not a libvirt URI; give one such as qemu:///system or qemu+ssh://user@host/system")
                    .replace("{uri}", &uri)
            })
        };
        if let Some(problem) = problem {
            self.error.set_text(&problem);
            self.error.set_visible(true);
            return;
        }
        sender.input(ConnectionsMsg::Add {
            uri,
            autoconnect: self.autoconnect.is_active(),
        });
        self.window.close();
    }
}

/// Builds and shows the dialog over `parent`.
pub fn present(parent: Option<&gtk::Window>, sender: &ComponentSender<Connections>) -> AddDialog {
    let window = adw::Window::builder()
        .modal(true)
        .title(gettext("Add Connection"))
        .default_width(520)
        .build();
    window.set_transient_for(parent);
    let header = adw::HeaderBar::builder()
        .show_end_title_buttons(false)
        .show_start_title_buttons(false)
        .build();
    let cancel = gtk::Button::with_mnemonic(&gettext("_Cancel"));
    let add = gtk::Button::builder()
        .label(gettext("_Connect"))
        .use_underline(true)
        .css_classes(["suggested-action"])
        .build();
    header.pack_start(&cancel);
    header.pack_end(&add);

    let hypervisor = adw::PreferencesGroup::builder()
        .title(gettext("Hypervisor"))
        .build();
    let system = radio_row(
        &hypervisor,
        &gettext("QEMU/KVM"),
        &gettext("The system's libvirt: virtual machines shared by all users"),
        None,
    );
    let session = radio_row(
        &hypervisor,
        &gettext("QEMU/KVM user session"),
        &gettext("Your own libvirt session: virtual machines only you see"),
        Some(&system),
    );
    let custom = radio_row(
        &hypervisor,
        &gettext("Custom URI"),
        &gettext("Any libvirt URI, such as test:///default"),
        Some(&system),
    );
    system.set_active(true);
    let (custom_uri, custom_row) = entry_row(&hypervisor, &gettext("URI"), "");
    custom_uri.set_widget_name("custom-uri");

    let remote = adw::PreferencesGroup::new();
    let ssh = switch_row(&remote, &gettext("Connect to remote host over SSH"), false);
    let (user, _) = entry_row(
        &remote,
        &gettext("Username"),
        &glib::user_name().to_string_lossy(),
    );
    let (host, _) = entry_row(&remote, &gettext("Hostname"), "");
    let options = adw::PreferencesGroup::new();
    let autoconnect = switch_row(&options, &gettext("Autoconnect"), true);
    let uri = gtk::Label::builder()
        .xalign(0.0)
        .selectable(true)
        .css_classes(["monospace"])
        .build();
    let uri_row = adw::ActionRow::builder()
        .title(gettext("Generated URI"))
        .focusable(false)
        .build();
    uri_row.add_suffix(&uri);
    options.add(&uri_row);
    let error = gtk::Label::builder()
        .css_classes(["error"])
        .wrap(true)
        .xalign(0.0)
        .visible(false)
        .build();

    let dialog = AddDialog {
        window: window.clone(),
        system: system.clone(),
        session,
        custom,
        custom_uri,
        custom_row,
        remote: remote.clone(),
        ssh,
        user,
        host,
        autoconnect,
        uri,
        error: error.clone(),
        add: add.clone(),
    };
    for check in [&dialog.system, &dialog.session, &dialog.custom] {
        let d = dialog.clone();
        check.connect_toggled(move |_| d.refresh());
    }
    {
        let d = dialog.clone();
        dialog.ssh.connect_active_notify(move |_| d.refresh());
    }
    for entry in [&dialog.custom_uri, &dialog.user, &dialog.host] {
        let d = dialog.clone();
        entry.connect_changed(move |_| d.refresh());
        enter_presses_default(entry);
    }
    {
        // Choosing Custom URI puts the cursor where the URI is typed.
        let d = dialog.clone();
        dialog.custom.connect_toggled(move |check| {
            if check.is_active() {
                d.custom_uri.grab_focus();
            }
        });
    }
    dialog.refresh();
    {
        let window = window.clone();
        cancel.connect_clicked(move |_| window.close());
    }
    {
        let (d, sender) = (dialog.clone(), sender.clone());
        add.connect_clicked(move |_| d.submit(&sender));
    }
    // Enter adds wherever the focus is (a choice's row would otherwise take it); Space still
    // picks a choice.
    let keys = gtk::EventControllerKey::new();
    keys.set_propagation_phase(gtk::PropagationPhase::Capture);
    {
        let add = add.clone();
        keys.connect_key_pressed(move |_, key, _, _| {
            if matches!(
                key,
                gdk::Key::Return | gdk::Key::KP_Enter | gdk::Key::ISO_Enter
            ) {
                add.emit_clicked();
                return glib::Propagation::Stop;
            }
            glib::Propagation::Proceed
        });
    }
    window.add_controller(keys);

    let page = adw::PreferencesPage::new();
    page.add(&hypervisor);
    page.add(&remote);
    page.add(&options);
    let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
    content.append(&header);
    content.append(&page);
    error.set_margin_start(18);
    error.set_margin_end(18);
    error.set_margin_bottom(12);
    content.append(&error);
    window.set_content(Some(&content));
    dialog_keys(&window, &add);
    focus_when_shown(&window, &system);
    window.present();
    dialog
}

fn switch_row(group: &adw::PreferencesGroup, title: &str, on: bool) -> gtk::Switch {
    let switch = gtk::Switch::builder()
        .active(on)
        .valign(gtk::Align::Center)
        .build();
    let row = adw::ActionRow::builder()
        .title(title)
        .activatable_widget(&switch)
        .build();
    row.add_suffix(&switch);
    group.add(&row);
    switch
}
