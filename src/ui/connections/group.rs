//! One libvirt connection in the main window's list: a header with the host, its state
//! (connecting, connected, disconnected with the error and Reconnect) and a boxed list of its
//! VMs with their state and controls. Rows are updated in place, so an event never steals the
//! focus from a row's button.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{adw, gtk};

use crate::launch::connections::libvirt::CpuTime;
use crate::launch::connections::{DomainRow, DomainState};
use crate::launch::machines::CpuHistory;
use crate::ui::vm_list::{cpu_use_text, icon_button, more_actions, sparkline};

/// What a group's widgets ask of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRequest {
    Reconnect,
    Remove,
    /// A VM's action (`console`, `details`, `start`, `shutdown`, `reboot`, `force-off`, `pause`,
    /// `resume`, `delete`, `cross-host`, `migrate`, `copy`) by name.
    Vm(String, &'static str),
}

/// The VM actions a row offers, in menu order after its buttons.
pub const VM_ACTIONS: [&str; 12] = [
    "console",
    "details",
    "start",
    "shutdown",
    "reboot",
    "force-off",
    "pause",
    "resume",
    "delete",
    "cross-host",
    "migrate",
    "copy",
];

/// Where a connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected,
    /// Not connected; why (empty when it was simply never connected).
    Disconnected(String),
}

struct VmRow {
    row: adw::ActionRow,
    state: gtk::Label,
    actions: gio::SimpleActionGroup,
    /// Recent CPU use, as this computer's rows show it.
    sparkline: gtk::DrawingArea,
    history: Rc<RefCell<CpuHistory>>,
}

/// The widgets of one connection.
pub struct GroupView {
    pub root: gtk::Box,
    pub status: gtk::Label,
    pub error: gtk::Label,
    pub reconnect: gtk::Button,
    spinner: gtk::Spinner,
    pub list: gtk::ListBox,
    /// "No virtual machines" on a connected host without any.
    empty: gtk::Label,
    rows: HashMap<String, VmRow>,
    on_request: Rc<dyn Fn(GroupRequest)>,
}

impl GroupView {
    pub fn new(uri: &str, on_request: impl Fn(GroupRequest) + 'static) -> GroupView {
        let on_request: Rc<dyn Fn(GroupRequest)> = Rc::new(on_request);
        let root = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(6)
            .margin_top(18)
            .name(uri)
            .build();
        let header = gtk::Box::builder().spacing(8).build();
        let title = gtk::Label::builder()
            .label(uri)
            .xalign(0.0)
            .css_classes(["heading"])
            .ellipsize(gtk::pango::EllipsizeMode::Middle)
            .build();
        let status = gtk::Label::builder()
            .xalign(0.0)
            .hexpand(true)
            .css_classes(["dim-label"])
            .build();
        let spinner = gtk::Spinner::new();
        let reconnect = gtk::Button::builder()
            .label(gettext("Reconnect"))
            .valign(gtk::Align::Center)
            .build();
        let remove =
            crate::ui::rows::icon_button("user-trash-symbolic", &gettext("Remove Connection"));
        for (button, request) in [
            (&reconnect, GroupRequest::Reconnect),
            (&remove, GroupRequest::Remove),
        ] {
            let on_request = on_request.clone();
            button.connect_clicked(move |_| on_request(request.clone()));
        }
        header.append(&title);
        header.append(&spinner);
        header.append(&status);
        header.append(&reconnect);
        header.append(&remove);
        let error = gtk::Label::builder()
            .xalign(0.0)
            .wrap(true)
            .selectable(true)
            .css_classes(["error"])
            .visible(false)
            .build();
        let list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .visible(false)
            .build();
        let empty = gtk::Label::builder()
            .label(gettext("No virtual machines on this host"))
            .xalign(0.0)
            .css_classes(["dim-label"])
            .visible(false)
            .build();
        root.append(&header);
        root.append(&error);
        root.append(&list);
        root.append(&empty);
        GroupView {
            root,
            status,
            error,
            reconnect,
            spinner,
            list,
            empty,
            rows: HashMap::new(),
            on_request,
        }
    }

    /// Shows where the connection stands.
    pub fn set_link(&mut self, link: &Link) {
        let connected = *link == Link::Connected;
        self.spinner.set_spinning(*link == Link::Connecting);
        self.spinner.set_visible(*link == Link::Connecting);
        self.status.set_text(&match link {
            Link::Connecting => gettext("Connecting…"),
            Link::Connected => gettext("Connected"),
            Link::Disconnected(_) => gettext("Not connected"),
        });
        self.reconnect
            .set_visible(matches!(link, Link::Disconnected(_)));
        self.reconnect.set_label(&match link {
            Link::Disconnected(why) if why.is_empty() => gettext("Connect"),
            _ => gettext("Reconnect"),
        });
        match link {
            Link::Disconnected(why) if !why.is_empty() => {
                self.error.set_text(why);
                self.error.set_visible(true);
            }
            _ => self.error.set_visible(false),
        }
        if !connected {
            self.set_domains(&[]);
        }
        self.list.set_visible(connected && !self.rows.is_empty());
        self.empty.set_visible(connected && self.rows.is_empty());
    }

    /// Makes the rows match `domains`: adds, removes and updates rows in place.
    pub fn set_domains(&mut self, domains: &[DomainRow]) {
        self.rows.retain(|name, row| {
            let keep = domains.iter().any(|d| &d.name == name);
            if !keep {
                self.list.remove(&row.row);
            }
            keep
        });
        for (index, domain) in domains.iter().enumerate() {
            if !self.rows.contains_key(&domain.name) {
                let row = self.build_row(&domain.name);
                self.list.insert(&row.row, index as i32);
                self.rows.insert(domain.name.clone(), row);
            }
            if let Some(row) = self.rows.get(&domain.name) {
                apply(row, domain);
            }
        }
        self.list.set_visible(!self.rows.is_empty());
        self.empty
            .set_visible(self.rows.is_empty() && self.status.text() == gettext("Connected"));
    }

    /// Records one CPU-time reading per running VM (the rest read as idle) and redraws the
    /// sparklines.
    pub fn record_cpu(&self, times: &[CpuTime]) {
        let now = std::time::Instant::now();
        for (name, row) in &self.rows {
            let mut history = row.history.borrow_mut();
            match times.iter().find(|t| &t.name == name) {
                Some(t) => history.record_ns(now, t.cpu_time_ns, t.vcpus),
                None => history.record_idle(),
            }
            row.sparkline
                .set_tooltip_text(Some(&cpu_use_text(history.latest())));
            row.sparkline.queue_draw();
        }
    }

    /// The CPU-use tooltip of `name`'s row (tests).
    pub fn cpu_use(&self, name: &str) -> Option<String> {
        self.rows
            .get(name)
            .and_then(|r| r.sparkline.tooltip_text())
            .map(|t| t.to_string())
    }

    /// The state label of `name`'s row (tests).
    pub fn state_label(&self, name: &str) -> Option<String> {
        self.rows.get(name).map(|r| r.state.text().to_string())
    }

    /// Activates row action `action` of `name` as its button or menu item would; false when
    /// it is not offered now.
    pub fn activate(&self, name: &str, action: &str) -> bool {
        self.rows
            .get(name)
            .and_then(|r| r.actions.lookup_action(action))
            .filter(|a| a.is_enabled())
            .map(|a| a.activate(None))
            .is_some()
    }

    fn build_row(&self, name: &str) -> VmRow {
        let row = adw::ActionRow::builder()
            .title(glib::markup_escape_text(name).as_str())
            .build();
        let icon = gtk::Image::from_icon_name("computer-symbolic");
        icon.set_pixel_size(32);
        row.add_prefix(&icon);
        let state = gtk::Label::builder().width_chars(10).xalign(1.0).build();
        let actions = gio::SimpleActionGroup::new();
        for action_name in VM_ACTIONS {
            let action = gio::SimpleAction::new(action_name, None);
            let (on_request, name) = (self.on_request.clone(), name.to_owned());
            action.connect_activate(move |_, _| {
                on_request(GroupRequest::Vm(name.clone(), action_name))
            });
            actions.add_action(&action);
        }
        row.insert_action_group("dom", Some(&actions));
        let run = icon_button(
            "media-playback-start-symbolic",
            &gettext("Run"),
            "dom.start",
        );
        let shutdown = icon_button(
            "system-shutdown-symbolic",
            &gettext("Shut Down"),
            "dom.shutdown",
        );
        let more = more_actions(&[
            &[
                (gettext("Open Console"), "dom.console"),
                (gettext("Details…"), "dom.details"),
            ],
            &[
                (gettext("Reboot"), "dom.reboot"),
                (gettext("Force Off"), "dom.force-off"),
                (gettext("Pause"), "dom.pause"),
                (gettext("Resume"), "dom.resume"),
            ],
            &[
                (gettext("CPU Across Hosts…"), "dom.cross-host"),
                (gettext("Migrate…"), "dom.migrate"),
                (gettext("Copy to Another Host…"), "dom.copy"),
            ],
            &[(gettext("Delete…"), "dom.delete")],
        ]);
        let history = Rc::new(RefCell::new(CpuHistory::default()));
        let sparkline = sparkline(history.clone());
        row.add_suffix(&sparkline);
        row.add_suffix(&state);
        row.add_suffix(&run);
        row.add_suffix(&shutdown);
        row.add_suffix(&more);
        VmRow {
            row,
            state,
            actions,
            sparkline,
            history,
        }
    }
}

/// The state as the list says it (the same words as this computer's VMs).
pub fn state_text(state: DomainState) -> String {
    match state {
        DomainState::Running | DomainState::Blocked => gettext("Running"),
        DomainState::Paused | DomainState::PmSuspended => gettext("Paused"),
        DomainState::ShuttingDown => gettext("Shutting down"),
        DomainState::ShutOff => gettext("Shut off"),
        DomainState::Crashed => gettext("Crashed"),
        DomainState::NoState => gettext("Unknown"),
    }
}

fn apply(row: &VmRow, domain: &DomainRow) {
    row.state.set_text(&state_text(domain.state));
    let runs = !matches!(domain.state, DomainState::ShutOff | DomainState::Crashed);
    let running = matches!(domain.state, DomainState::Running | DomainState::Blocked);
    let paused = matches!(domain.state, DomainState::Paused | DomainState::PmSuspended);
    let enabled = [
        ("console", true),
        ("details", domain.persistent),
        ("start", !runs && domain.persistent),
        ("shutdown", running),
        ("reboot", running),
        ("force-off", runs),
        ("pause", running),
        ("resume", paused),
        ("delete", domain.persistent),
        ("cross-host", true),
        ("migrate", runs),
        ("copy", true),
    ];
    for (name, on) in enabled {
        if let Some(action) = row
            .actions
            .lookup_action(name)
            .and_then(|a| a.downcast::<gio::SimpleAction>().ok())
        {
            action.set_enabled(on);
        }
    }
    let mut notes = Vec::new();
    if !domain.persistent {
        notes.push(gettext("Transient: not defined, gone when it stops"));
    }
    if domain.autostart {
        notes.push(gettext("Starts with the host"));
    }
    row.row
        .set_subtitle(&glib::markup_escape_text(&notes.join(" — ")));
}
