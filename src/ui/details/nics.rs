//! Details → Devices → Network cards: each card with its MAC, model, backend and port forwards,
//! and while the VM runs the addresses passt gives the guest (what `vireoctl domifaddr`
//! reports). Cards are added (Add Hardware's network form) and removed, forwards added and
//! removed in place; every edit goes through `launch::nic_edit` (the checks start makes, an
//! atomic save through the store) at once, not on Apply. A running VM keeps its cards until
//! its next start, and the page says so.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{ComponentSender, adw, gtk};

use super::{Details, DetailsMsg, DetailsWidgets};
use crate::domain::Domain;
use crate::domain::devices::Interface;
use crate::launch::nic_edit::{
    ListedForward, NicInputProblem, NicToAttach, PortField, add_port_forward, attach_interface,
    check_forward, check_new_mac, detach_interface, list_forwards, remove_port_forward,
    suggested_port,
};
use crate::launch::passt::{GuestAddress, guest_addresses, unprivileged_port_start};
use crate::ui::rows::icon_button;

/// What the network cards section asks of the details window.
#[derive(Debug)]
pub enum NicMsg {
    /// Open Add Hardware on its network form.
    AskAdd,
    /// Add a user-mode virtio card with this MAC as typed (empty: one is generated).
    Add { mac: String },
    /// Ask before removing the card of this type with this MAC.
    AskRemove {
        if_type: String,
        mac: Option<String>,
    },
    /// Remove the card of this type with this MAC.
    Remove {
        if_type: String,
        mac: Option<String>,
    },
    /// Add a forward to the card with this MAC, the ports as typed.
    AddForward {
        mac: String,
        udp: bool,
        host: String,
        guest: String,
    },
    /// Remove this forward of the card with this MAC.
    RemoveForward { mac: String, forward: ListedForward },
}

/// One card's row and its forward controls.
pub struct NicCard {
    /// The card's MAC as written (`None`: chosen at start).
    pub mac: Option<String>,
    pub row: adw::ExpanderRow,
    /// One row per `<portForward>`, in document order.
    pub forwards: Vec<adw::ActionRow>,
    /// TCP (0) or UDP (1) for a new forward; `None` on cards that take no forwards here.
    pub proto: Option<gtk::DropDown>,
    pub host_port: Option<gtk::Entry>,
    pub guest_port: Option<gtk::Entry>,
    pub add_forward: Option<gtk::Button>,
    /// Says in place why a typed forward was refused.
    pub error: gtk::Label,
    error_row: gtk::ListBoxRow,
    pub remove: gtk::Button,
}

impl NicCard {
    /// Shows `text` under the forward controls (or hides the line when `None`).
    pub fn show_error(&self, text: Option<&str>) {
        self.error.set_text(text.unwrap_or(""));
        self.error_row.set_visible(text.is_some());
    }
}

/// The Network cards group and its rows.
pub struct NicSection {
    pub group: adw::PreferencesGroup,
    pub add: gtk::Button,
    pub cards: Vec<NicCard>,
}

impl NicSection {
    /// The empty group with its Add button.
    pub fn new(sender: &ComponentSender<Details>) -> NicSection {
        let group = adw::PreferencesGroup::builder()
            .title(gettext("Network Interfaces"))
            .build();
        let add = icon_button("list-add-symbolic", &gettext("Add network card"));
        group.set_header_suffix(Some(&add));
        let sender = sender.clone();
        add.connect_clicked(move |_| sender.input(DetailsMsg::Nic(NicMsg::AskAdd)));
        NicSection {
            group,
            add,
            cards: Vec::new(),
        }
    }

    /// Lists the cards of `domain`; `running` adds the guest's addresses and the note that
    /// edits wait for the next start.
    pub fn show(&mut self, domain: &Domain, running: bool, sender: &ComponentSender<Details>) {
        for card in self.cards.drain(..) {
            self.group.remove(&card.row);
        }
        let nics = domain.interfaces();
        let mut description = if nics.is_empty() {
            gettext("No network interfaces")
        } else {
            gettext(
                "User-mode cards (type user, virtio) are attached with passt behind each; other kinds are kept for libvirt, which runs the VM with them.",
            )
        };
        if running {
            description = format!(
                "{description}\n{}",
                gettext(
                    "The virtual machine is running: changes to its network cards apply at its next start"
                )
            );
        }
        self.group.set_description(Some(&description));
        // Cheap (two /proc files and getifaddrs), so read here rather than in a worker.
        let addresses = if running {
            guest_addresses()
        } else {
            Vec::new()
        };
        for nic in &nics {
            let card = card(nic, running.then_some(addresses.as_slice()), sender);
            self.group.add(&card.row);
            self.cards.push(card);
        }
    }
}

/// "virtio network card" with "MAC … · user-mode networking (passt) · …" and, expanded, the
/// guest's addresses, the forwards and a line to add one.
fn card(
    nic: &Interface,
    addresses: Option<&[GuestAddress]>,
    sender: &ComponentSender<Details>,
) -> NicCard {
    let title = match nic.model.as_deref() {
        Some(model) => gettext("{model} network card").replace("{model}", model),
        None => gettext("Network card"),
    };
    let user = nic.if_type.as_deref() == Some("user");
    let connection = match (nic.if_type.as_deref(), nic.source.as_deref()) {
        (Some("user"), _) => match nic.backend.as_deref() {
            None | Some("passt") => gettext("user-mode networking (passt)"),
            Some(other) => gettext("user-mode networking ({backend})").replace("{backend}", other),
        },
        (Some(kind), Some(source)) => format!("{kind} {source}"),
        (Some(kind), None) => kind.to_string(),
        (None, _) => gettext("no connection type"),
    };
    let mac_text = match nic.mac.as_deref() {
        Some(mac) => gettext("MAC {mac}").replace("{mac}", mac),
        None => gettext("MAC chosen at start"),
    };
    let row = adw::ExpanderRow::builder()
        .title(glib::markup_escape_text(&title).as_str())
        .subtitle(glib::markup_escape_text(&format!("{mac_text} · {connection}")).as_str())
        .expanded(true)
        .build();
    if let Some(mac) = &nic.mac {
        row.set_widget_name(mac);
    }
    row.add_prefix(&gtk::Image::from_icon_name("network-wired-symbolic"));
    let remove = icon_button("user-trash-symbolic", &gettext("Remove"));
    {
        let sender = sender.clone();
        let (if_type, mac) = (nic.if_type.clone().unwrap_or_default(), nic.mac.clone());
        remove.connect_clicked(move |_| {
            sender.input(DetailsMsg::Nic(NicMsg::AskRemove {
                if_type: if_type.clone(),
                mac: mac.clone(),
            }))
        });
    }
    row.add_action(&remove);
    if let (Some(addresses), true) = (addresses, user) {
        row.add_row(&addresses_row(addresses));
    }
    let mut forwards = Vec::new();
    for forward in list_forwards(nic) {
        let forward_row = forward_row(&forward, nic.mac.as_deref(), sender);
        row.add_row(&forward_row);
        forwards.push(forward_row);
    }
    let error = gtk::Label::builder()
        .css_classes(["error"])
        .wrap(true)
        .xalign(0.0)
        .margin_start(12)
        .margin_end(12)
        .margin_top(6)
        .margin_bottom(6)
        .build();
    let error_row = gtk::ListBoxRow::builder()
        .child(&error)
        .activatable(false)
        .selectable(false)
        .visible(false)
        .build();
    let mut card = NicCard {
        mac: nic.mac.clone(),
        row,
        forwards,
        proto: None,
        host_port: None,
        guest_port: None,
        add_forward: None,
        error,
        error_row,
        remove,
    };
    // Forwards are passt's: only user-mode cards take them, and the edit names the card by MAC.
    if let (true, Some(mac)) = (user, nic.mac.clone()) {
        add_forward_row(&mut card, mac, sender);
    }
    card.row.add_row(&card.error_row);
    card
}

/// "Guest addresses": what passt gives the guest (the host's, on the default route's
/// interface), as `vireoctl domifaddr` lists them.
fn addresses_row(addresses: &[GuestAddress]) -> adw::ActionRow {
    let text = if addresses.is_empty() {
        gettext("None: this host has no default route, so passt has no addresses to give")
    } else {
        addresses
            .iter()
            .map(|a| {
                let family = if a.address.is_ipv4() { "IPv4" } else { "IPv6" };
                format!("{family} {}/{}", a.address, a.prefix)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    adw::ActionRow::builder()
        .title(gettext("Guest addresses"))
        .subtitle(glib::markup_escape_text(&text).as_str())
        .subtitle_lines(4)
        .build()
}

/// "TCP 2222 → 22" with a Remove button.
fn forward_row(
    forward: &ListedForward,
    mac: Option<&str>,
    sender: &ComponentSender<Details>,
) -> adw::ActionRow {
    let proto = if forward.udp { "UDP" } else { "TCP" };
    let row = adw::ActionRow::builder()
        .title(glib::markup_escape_text(&format!("{proto} {}", forward.text)).as_str())
        .subtitle(gettext("Port forward: host port → guest port"))
        .name(format!("forward-{}", forward.index))
        .build();
    if let Some(mac) = mac {
        let remove = icon_button("user-trash-symbolic", &gettext("Remove port forward"));
        let sender = sender.clone();
        let (mac, forward) = (mac.to_owned(), forward.clone());
        remove.connect_clicked(move |_| {
            sender.input(DetailsMsg::Nic(NicMsg::RemoveForward {
                mac: mac.clone(),
                forward: forward.clone(),
            }))
        });
        row.add_suffix(&remove);
    }
    row
}

/// "Add port forward: [TCP] [host port] → [guest port] [+]"; Enter in a port adds too.
fn add_forward_row(card: &mut NicCard, mac: String, sender: &ComponentSender<Details>) {
    let proto = gtk::DropDown::from_strings(&["TCP", "UDP"]);
    proto.set_valign(gtk::Align::Center);
    let port_entry = |placeholder: &str| {
        gtk::Entry::builder()
            .placeholder_text(placeholder)
            .width_chars(9)
            .max_width_chars(9)
            .input_purpose(gtk::InputPurpose::Digits)
            .valign(gtk::Align::Center)
            .build()
    };
    let host_port = port_entry(&gettext("Host port"));
    let guest_port = port_entry(&gettext("Guest port"));
    let add = icon_button("list-add-symbolic", &gettext("Add port forward"));
    let row = adw::ActionRow::builder()
        .title(gettext("Add port forward"))
        .focusable(false)
        .build();
    row.add_suffix(&proto);
    row.add_suffix(&host_port);
    row.add_suffix(&gtk::Label::new(Some("→")));
    row.add_suffix(&guest_port);
    row.add_suffix(&add);
    let send = {
        let (sender, proto, host, guest) = (
            sender.clone(),
            proto.clone(),
            host_port.clone(),
            guest_port.clone(),
        );
        move || {
            sender.input(DetailsMsg::Nic(NicMsg::AddForward {
                mac: mac.clone(),
                udp: proto.selected() == 1,
                host: host.text().to_string(),
                guest: guest.text().to_string(),
            }))
        }
    };
    let send_again = send.clone();
    add.connect_clicked(move |_| send());
    for entry in [&host_port, &guest_port] {
        let send = send_again.clone();
        entry.connect_activate(move |_| send());
    }
    card.row.add_row(&row);
    card.proto = Some(proto);
    card.host_port = Some(host_port);
    card.guest_port = Some(guest_port);
    card.add_forward = Some(add);
}

/// A problem with typed card or forward input, in the user's language.
pub fn input_problem_text(problem: &NicInputProblem) -> String {
    match problem {
        NicInputProblem::MacMalformed(mac) => gettext(
            "“{mac}” is not a MAC address: write six hex pairs like 52:54:00:12:34:56, or leave the field empty to have one generated",
        )
        .replace("{mac}", mac),
        NicInputProblem::MacNotUnicast(mac) => gettext(
            "{mac} is a multicast or zero address, which no card may have; use one such as 52:54:00:12:34:56",
        )
        .replace("{mac}", mac),
        NicInputProblem::MacTaken(mac) => gettext(
            "Another network card of this virtual machine has MAC address {mac}; choose another or leave the field empty",
        )
        .replace("{mac}", mac),
        NicInputProblem::PortNotANumber { field, text } => {
            let template = match field {
                PortField::Host => gettext("Host port “{port}” is not a port: use a number from 1 to 65535"),
                PortField::Guest => gettext("Guest port “{port}” is not a port: use a number from 1 to 65535"),
            };
            template.replace("{port}", text)
        }
        NicInputProblem::PortDuplicate { port, udp } => gettext(
            "Host port {port}/{proto} is forwarded already; each host port can be forwarded once",
        )
        .replace("{port}", &port.to_string())
        .replace("{proto}", if *udp { "UDP" } else { "TCP" }),
        NicInputProblem::PortPrivileged { port, lowest } => gettext(
            "Host port {port} is below {lowest}: only root may listen there, and passt never runs as root. Forward from a port from {lowest} up, e.g. {suggestion}; the guest port can stay {port}.",
        )
        .replace("{port}", &port.to_string())
        .replace("{lowest}", &lowest.to_string())
        .replace("{suggestion}", &suggested_port(*port, *lowest).to_string()),
    }
}

impl Details {
    /// Lists the network cards as the stored definition has them.
    pub(super) fn show_nics(&self, w: &mut DetailsWidgets, sender: &ComponentSender<Self>) {
        w.nics.show(&self.stored.domain, self.running(), sender);
    }

    /// Handles the network cards' messages; gives back every other message. The edits are
    /// small locked file writes, so they run here rather than in a worker.
    pub(super) fn handle_nic_msg(
        &mut self,
        msg: DetailsMsg,
        w: &mut DetailsWidgets,
        sender: &ComponentSender<Self>,
    ) -> Option<DetailsMsg> {
        let DetailsMsg::Nic(msg) = msg else {
            return Some(msg);
        };
        if self.nic_edit_refused() {
            return None;
        }
        let name = self.stored.name.clone();
        let done = match msg {
            NicMsg::AskAdd => {
                super::add_hardware::present(
                    &w.window,
                    &self.stored.domain,
                    super::add_hardware::HardwareKind::Network,
                    sender,
                );
                return None;
            }
            NicMsg::AskRemove { if_type, mac } => {
                ask_remove(&w.window, if_type, mac, sender);
                return None;
            }
            NicMsg::Add { mac } => match check_new_mac(&self.stored.domain, &mac) {
                Err(problem) => Err(input_problem_text(&problem)),
                Ok(mac) => {
                    let nic = NicToAttach {
                        if_type: "user".into(),
                        mac,
                        model: None,
                    };
                    attach_interface(&self.store, &name, &nic)
                        .map(|mac| gettext("Added network card {mac}").replace("{mac}", &mac))
                        .map_err(|e| e.to_string())
                }
            },
            NicMsg::Remove { if_type, mac } => {
                detach_interface(&self.store, &name, &if_type, mac.as_deref())
                    .map(|mac| gettext("Removed network card {mac}").replace("{mac}", &mac))
                    .map_err(|e| e.to_string())
            }
            NicMsg::AddForward {
                mac,
                udp,
                host,
                guest,
            } => {
                let checked = check_forward(
                    &self.stored.domain,
                    udp,
                    &host,
                    &guest,
                    unprivileged_port_start(),
                );
                match checked {
                    Err(problem) => {
                        // In place, under the fields, which keep what was typed.
                        if let Some(card) =
                            w.nics.cards.iter().find(|c| c.mac.as_ref() == Some(&mac))
                        {
                            card.show_error(Some(&input_problem_text(&problem)));
                        }
                        return None;
                    }
                    Ok(forward) => add_port_forward(&self.store, &name, &mac, &forward)
                        .map(|()| {
                            gettext("Forwarding host port {host} to guest port {guest}")
                                .replace("{host}", &forward.host_port.to_string())
                                .replace("{guest}", &forward.guest_port.to_string())
                        })
                        .map_err(|e| e.to_string()),
                }
            }
            NicMsg::RemoveForward { mac, forward } => {
                remove_port_forward(&self.store, &name, &mac, &forward)
                    .map(|()| gettext("Removed the port forward"))
                    .map_err(|e| e.to_string())
            }
        };
        let reread = done.and_then(|text| {
            let stored = self.store.get(&name).map_err(|e| e.to_string())?;
            Ok((stored, text))
        });
        match reread {
            Ok((stored, text)) => {
                self.stored = stored;
                self.syncing.set(true);
                w.xml.buffer().set_text(&self.stored.domain.to_xml());
                self.syncing.set(false);
                let text = if self.running() {
                    gettext("{change}; it applies at the next start").replace("{change}", &text)
                } else {
                    text
                };
                w.toasts.add_toast(adw::Toast::new(&text));
            }
            Err(error) => self.error = Some(error),
        }
        self.show_nics(w, sender);
        None
    }

    /// Card edits wait for the XML page's edits, which would otherwise overwrite them.
    fn nic_edit_refused(&mut self) -> bool {
        self.error = self.xml_edited.then(|| {
            gettext("Apply or discard the edits on the XML page before changing network cards")
        });
        self.error.is_some()
    }
}

/// Asks before removing a card.
fn ask_remove(
    window: &adw::Window,
    if_type: String,
    mac: Option<String>,
    sender: &ComponentSender<Details>,
) {
    let dialog = adw::MessageDialog::builder()
        .transient_for(window)
        .modal(true)
        .heading(
            gettext("Remove Network Card {mac}?")
                .replace("{mac}", mac.as_deref().unwrap_or(&if_type)),
        )
        .body(gettext(
            "The card and its port forwards are removed from the virtual machine's definition.",
        ))
        .build();
    dialog.add_response("cancel", &gettext("_Cancel"));
    dialog.add_response("remove", &gettext("_Remove"));
    dialog.set_response_appearance("remove", adw::ResponseAppearance::Destructive);
    dialog.set_close_response("cancel");
    // Removing is destructive: Enter keeps the card.
    crate::ui::keyboard::message_dialog_keys(&dialog, "cancel", &[]);
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| {
        if response == "remove" {
            sender.input(DetailsMsg::Nic(NicMsg::Remove {
                if_type: if_type.clone(),
                mac: mac.clone(),
            }));
        }
    });
    dialog.present();
}
