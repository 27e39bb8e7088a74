//! Add Hardware (virt-manager's button on the Devices page): one dialog with the kinds of
//! device on the left (Storage, Network) and the chosen kind's form on the right — the Add disk
//! form and the new network card form. Keyboard: the focus starts in the form's first field,
//! Enter adds, Escape cancels. The dialog only asks; the details window does the work.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::disks::DiskForm;
use super::nics::{NicMsg, input_problem_text};
use super::{Details, DetailsMsg};
use crate::domain::Domain;
use crate::launch::nic_edit::{check_new_mac, proposed_mac};
use crate::ui::keyboard::{dialog_keys, enter_presses_default, focus_when_shown};

/// The kinds of device Add Hardware offers, in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareKind {
    Storage,
    Network,
}

impl HardwareKind {
    const ALL: [HardwareKind; 2] = [HardwareKind::Storage, HardwareKind::Network];

    fn page(self) -> &'static str {
        match self {
            HardwareKind::Storage => "storage",
            HardwareKind::Network => "network",
        }
    }
}

/// The new network card form: user-mode networking through passt, virtio, and a MAC (a
/// proposed one filled in; empty means generated).
pub struct NicForm {
    pub group: adw::PreferencesGroup,
    pub mac: gtk::Entry,
}

impl NicForm {
    /// The form for a new card of `domain`.
    pub fn new(domain: &Domain) -> NicForm {
        let group = adw::PreferencesGroup::builder()
            .title(gettext("Network Card"))
            .description(gettext(
                "The guest reaches the network through the host (NAT); forward ports to reach the guest from outside",
            ))
            .build();
        for (title, value) in [
            (
                gettext("Network source"),
                gettext("User-mode networking (NAT, passt)"),
            ),
            (gettext("Device model"), "virtio".to_string()),
        ] {
            let row = adw::ActionRow::builder()
                .title(title)
                .subtitle(value)
                .css_classes(["property"])
                .build();
            group.add(&row);
        }
        let (mac, row) =
            crate::ui::rows::entry_row(&group, &gettext("MAC address"), &proposed_mac(domain));
        row.set_subtitle(&gettext("Leave empty to have one generated"));
        mac.set_widget_name("mac");
        mac.set_width_chars(17);
        NicForm { group, mac }
    }
}

/// Opens Add Hardware over `parent` with `kind` chosen; `domain` is the definition as shown
/// (the MAC is checked against its cards, and again when it is saved).
pub fn present(
    parent: &adw::Window,
    domain: &Domain,
    kind: HardwareKind,
    sender: &ComponentSender<Details>,
) {
    let window = adw::Window::builder()
        .transient_for(parent)
        .modal(true)
        .title(gettext("Add New Virtual Hardware"))
        .default_width(680)
        .default_height(460)
        .build();
    let header = adw::HeaderBar::builder()
        .show_end_title_buttons(false)
        .show_start_title_buttons(false)
        .build();
    let cancel = gtk::Button::with_mnemonic(&gettext("_Cancel"));
    let add = gtk::Button::builder()
        .label(gettext("_Add"))
        .use_underline(true)
        .css_classes(["suggested-action"])
        .build();
    header.pack_start(&cancel);
    header.pack_end(&add);
    {
        let window = window.clone();
        cancel.connect_clicked(move |_| window.close());
    }

    let kinds = gtk::ListBox::builder()
        .css_classes(["navigation-sidebar"])
        .width_request(160)
        .name("kinds")
        .build();
    for (icon, label) in [
        ("drive-harddisk-symbolic", gettext("Storage")),
        ("network-wired-symbolic", gettext("Network")),
    ] {
        let line = gtk::Box::builder()
            .spacing(8)
            .margin_top(6)
            .margin_bottom(6)
            .build();
        line.append(&gtk::Image::from_icon_name(icon));
        line.append(&gtk::Label::new(Some(&label)));
        kinds.append(&line);
    }
    let stack = gtk::Stack::builder().hexpand(true).vexpand(true).build();
    let disk = DiskForm::new();
    let nic = NicForm::new(domain);
    for (name, group) in [("storage", &disk.group), ("network", &nic.group)] {
        let page = adw::PreferencesPage::new();
        page.add(group);
        stack.add_named(&page, Some(name));
    }
    enter_presses_default(&nic.mac);
    enter_presses_default(&disk.path);
    enter_presses_default(&disk.size);
    let error = gtk::Label::builder()
        .css_classes(["error"])
        .wrap(true)
        .xalign(0.0)
        .visible(false)
        .margin_start(18)
        .margin_end(18)
        .margin_bottom(12)
        .build();

    let first_field = {
        let (disk_first, nic_first) = (disk.new.clone(), nic.mac.clone());
        move |kind: HardwareKind| -> gtk::Widget {
            match kind {
                HardwareKind::Storage => disk_first.clone().upcast(),
                HardwareKind::Network => nic_first.clone().upcast(),
            }
        }
    };
    {
        let (stack, error, first_field) = (stack.clone(), error.clone(), first_field.clone());
        kinds.connect_row_selected(move |_, row| {
            let Some(kind) = row.and_then(|r| HardwareKind::ALL.get(r.index() as usize)) else {
                return;
            };
            stack.set_visible_child_name(kind.page());
            error.set_visible(false);
            first_field(*kind).grab_focus();
        });
    }
    let index = HardwareKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    kinds.select_row(kinds.row_at_index(index as i32).as_ref());
    stack.set_visible_child_name(kind.page());

    {
        let (window, stack, error, sender) =
            (window.clone(), stack.clone(), error.clone(), sender.clone());
        let domain = domain.clone();
        add.connect_clicked(move |_| {
            let msg = if stack.visible_child_name().as_deref() == Some("network") {
                let typed = nic.mac.text().to_string();
                if let Err(problem) = check_new_mac(&domain, &typed) {
                    error.set_text(&input_problem_text(&problem));
                    error.set_visible(true);
                    return;
                }
                DetailsMsg::Nic(NicMsg::Add { mac: typed })
            } else {
                let request = disk.request();
                if matches!(&request, super::DiskRequest::Existing(p) if p.as_os_str().is_empty()) {
                    error.set_text(&gettext("Choose the disk image"));
                    error.set_visible(true);
                    return;
                }
                DetailsMsg::AddDisk(request)
            };
            sender.input(msg);
            window.close();
        });
    }

    let body = gtk::Box::new(gtk::Orientation::Horizontal, 0);
    body.append(&kinds);
    body.append(&gtk::Separator::new(gtk::Orientation::Vertical));
    body.append(&stack);
    let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
    content.append(&header);
    content.append(&body);
    content.append(&error);
    window.set_content(Some(&content));
    dialog_keys(&window, &add);
    focus_when_shown(&window, &first_field(kind));
    window.present();
}

/// The Devices page's last line: Add Hardware (virt-manager's button).
pub fn button_group(sender: &ComponentSender<Details>) -> adw::PreferencesGroup {
    let group = adw::PreferencesGroup::new();
    let button = gtk::Button::builder()
        .label(gettext("_Add Hardware…"))
        .use_underline(true)
        .halign(gtk::Align::Start)
        .name("add-hardware")
        .build();
    let sender = sender.clone();
    button.connect_clicked(move |_| sender.input(DetailsMsg::AskAddHardware));
    group.add(&button);
    group
}
