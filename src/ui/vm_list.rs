//! The VM list of the main window: one boxed-list row per VM with its state, size, a live
//! CPU-use sparkline and its controls. Rows are updated in place, so a refresh never steals
//! focus or resets a hover.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{adw, gtk};

use crate::launch::disk_usage::DiskUsage;
use crate::launch::machines::{CpuHistory, RunState, VmAction, VmSummary};

/// What a row asks the window to do.
#[derive(Debug, Clone)]
pub enum RowRequest {
    Start(String),
    Act(String, VmAction),
    Open(String),
    Console(String),
    Delete(String),
    /// CPU Across Hosts (the libvirt connections' list opens it).
    CrossHost(String),
    /// Copy the definition to a libvirt host.
    Copy(String),
}

/// The widgets of one row.
struct Row {
    row: adw::ActionRow,
    state_label: gtk::Label,
    sparkline: gtk::DrawingArea,
    history: Rc<RefCell<CpuHistory>>,
    actions: gio::SimpleActionGroup,
    summary: VmSummary,
    /// Its disks' space, once a worker has measured it.
    usage: Option<DiskUsage>,
}

/// The list and its rows by VM name.
pub struct VmList {
    pub list: gtk::ListBox,
    rows: HashMap<String, Row>,
    on_request: Rc<dyn Fn(RowRequest)>,
}

/// The state as the list says it.
pub fn state_text(state: &RunState) -> String {
    match state {
        RunState::ShutOff => gettext("Shut off"),
        RunState::Running => gettext("Running"),
        RunState::Paused => gettext("Paused"),
        RunState::Crashed(_) => gettext("Crashed"),
        RunState::Broken(_) => gettext("Unreadable definition"),
    }
}

fn state_css(state: &RunState) -> &'static str {
    match state {
        RunState::Running => "vm-state-running",
        RunState::Paused => "vm-state-paused",
        RunState::Broken(_) | RunState::Crashed(_) => "vm-state-crashed",
        RunState::ShutOff => "dim-label",
    }
}

/// "Disks: 3.1 GB of 20 GB" (allocated of virtual size).
pub fn usage_text(usage: &DiskUsage) -> String {
    let mut text = gettext("Disks: {used} of {size}")
        .replace("{used}", &super::new_vm_text::size_text(usage.allocated))
        .replace("{size}", &super::new_vm_text::size_text(usage.virtual_size));
    if usage.unreadable > 0 {
        text = gettext("{usage}, {n} unreadable")
            .replace("{usage}", &text)
            .replace("{n}", &usage.unreadable.to_string());
    }
    text
}

fn subtitle(summary: &VmSummary, usage: Option<&DiskUsage>) -> String {
    if let RunState::Broken(error) = &summary.state {
        return error.clone();
    }
    let mut parts = Vec::new();
    if let Some(title) = &summary.title {
        parts.push(title.clone());
    }
    parts.push(
        gettext("{n} vCPUs · {mib} MiB")
            .replace("{n}", &summary.vcpus.to_string())
            .replace("{mib}", &summary.memory_mib.to_string()),
    );
    if let Some(usage) = usage {
        parts.push(usage_text(usage));
    }
    if summary.transient {
        parts.push(gettext("Transient: not defined, gone when it stops"));
    }
    parts.join(" — ")
}

impl std::fmt::Debug for VmList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmList")
            .field("rows", &self.rows.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl VmList {
    pub fn new(on_request: impl Fn(RowRequest) + 'static) -> VmList {
        let list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .valign(gtk::Align::Start)
            .build();
        VmList {
            list,
            rows: HashMap::new(),
            on_request: Rc::new(on_request),
        }
    }

    /// Makes the rows match `vms`: adds, removes and updates rows in place.
    pub fn update(&mut self, vms: &[VmSummary]) {
        let names: Vec<&str> = vms.iter().map(|v| v.name.as_str()).collect();
        let gone: Vec<String> = self
            .rows
            .keys()
            .filter(|n| !names.contains(&n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(row) = self.rows.remove(&name) {
                self.list.remove(&row.row);
            }
        }
        for (index, vm) in vms.iter().enumerate() {
            if !self.rows.contains_key(&vm.name) {
                let row = self.build_row(vm);
                self.list.insert(&row.row, index as i32);
                self.rows.insert(vm.name.clone(), row);
            }
            let row = self.rows.get_mut(&vm.name).expect("row just ensured");
            if row.summary != *vm {
                apply(row, vm);
            }
        }
    }

    /// Shows each VM's disk usage (VMs without disks show none).
    pub fn set_disk_usage(&mut self, usage: &HashMap<String, DiskUsage>) {
        for (name, row) in &mut self.rows {
            let now = usage.get(name).copied();
            if row.usage != now {
                row.usage = now;
                row.row.set_subtitle(&glib::markup_escape_text(&subtitle(
                    &row.summary,
                    row.usage.as_ref(),
                )));
            }
        }
    }

    /// The subtitle of `name`'s row, for tests.
    pub fn subtitle(&self, name: &str) -> Option<String> {
        self.rows
            .get(name)
            .and_then(|r| r.row.subtitle())
            .map(|s| s.to_string())
    }

    /// Records a CPU reading per running VM and redraws the sparklines.
    pub fn sample_cpu(&mut self) {
        let now = std::time::Instant::now();
        for row in self.rows.values() {
            let mut history = row.history.borrow_mut();
            match row
                .summary
                .runner_pid
                .and_then(crate::launch::machines::cpu_ticks)
            {
                Some(ticks) => history.record(now, ticks, row.summary.vcpus),
                None => history.record_idle(),
            }
            row.sparkline
                .set_tooltip_text(Some(&cpu_use_text(history.latest())));
            row.sparkline.queue_draw();
        }
    }

    /// The row of `name`, for tests and for focusing after creation.
    pub fn row(&self, name: &str) -> Option<&adw::ActionRow> {
        self.rows.get(name).map(|r| &r.row)
    }

    /// The state label of `name`'s row.
    pub fn state_label(&self, name: &str) -> Option<String> {
        self.rows
            .get(name)
            .map(|r| r.state_label.text().to_string())
    }

    /// The tooltip of `name`'s state label (a crash's reason).
    pub fn state_tooltip(&self, name: &str) -> Option<String> {
        self.rows
            .get(name)
            .and_then(|r| r.state_label.tooltip_text())
            .map(|t| t.to_string())
    }

    /// Activates the row action `action` (e.g. "start", "force-off") of `name`, as its button
    /// or menu item would.
    pub fn activate(&self, name: &str, action: &str) -> bool {
        self.rows
            .get(name)
            .and_then(|r| r.actions.lookup_action(action))
            .filter(|a| a.is_enabled())
            .map(|a| a.activate(None))
            .is_some()
    }

    fn build_row(&self, vm: &VmSummary) -> Row {
        let row = adw::ActionRow::builder()
            .title(glib::markup_escape_text(&vm.name).as_str())
            .activatable(true)
            .build();
        let icon = gtk::Image::from_icon_name("computer-symbolic");
        icon.set_pixel_size(32);
        row.add_prefix(&icon);

        let state_label = gtk::Label::builder().width_chars(10).xalign(1.0).build();
        let history = Rc::new(RefCell::new(CpuHistory::default()));
        let sparkline = sparkline(history.clone());
        let actions = gio::SimpleActionGroup::new();
        let request = self.on_request.clone();
        let name = vm.name.clone();
        let entries: [(&str, RequestFactory); 11] = [
            ("start", RowRequest::Start),
            ("pause", |n| RowRequest::Act(n, VmAction::Pause)),
            ("resume", |n| RowRequest::Act(n, VmAction::Resume)),
            ("shutdown", |n| RowRequest::Act(n, VmAction::Shutdown)),
            ("reboot", |n| RowRequest::Act(n, VmAction::Reboot)),
            ("force-off", |n| RowRequest::Act(n, VmAction::ForceOff)),
            ("open", RowRequest::Open),
            ("console", RowRequest::Console),
            ("delete", RowRequest::Delete),
            ("cross-host", RowRequest::CrossHost),
            ("copy", RowRequest::Copy),
        ];
        for (action_name, make) in entries {
            let action = gio::SimpleAction::new(action_name, None);
            let request = request.clone();
            let name = name.clone();
            action.connect_activate(move |_, _| request(make(name.clone())));
            actions.add_action(&action);
        }
        row.insert_action_group("vm", Some(&actions));
        {
            let actions = actions.clone();
            row.connect_activated(move |_| {
                if let Some(open) = actions.lookup_action("open") {
                    open.activate(None);
                }
            });
        }

        let run = icon_button("media-playback-start-symbolic", &gettext("Run"), "vm.start");
        let pause = icon_button(
            "media-playback-pause-symbolic",
            &gettext("Pause"),
            "vm.pause",
        );
        let resume = icon_button(
            "media-playback-start-symbolic",
            &gettext("Resume"),
            "vm.resume",
        );
        let shutdown = icon_button(
            "system-shutdown-symbolic",
            &gettext("Shut Down"),
            "vm.shutdown",
        );
        let more = more_actions(&[
            &[
                (gettext("Reboot"), "vm.reboot"),
                (gettext("Force Off"), "vm.force-off"),
            ],
            &[
                (gettext("Open Console"), "vm.console"),
                (gettext("Details"), "vm.open"),
            ],
            &[
                (gettext("CPU Across Hosts…"), "vm.cross-host"),
                (gettext("Copy to Another Host…"), "vm.copy"),
            ],
            &[(gettext("Delete…"), "vm.delete")],
        ]);
        for widget in [
            state_label.upcast_ref::<gtk::Widget>(),
            sparkline.upcast_ref(),
            run.upcast_ref(),
            resume.upcast_ref(),
            pause.upcast_ref(),
            shutdown.upcast_ref(),
            more.upcast_ref(),
        ] {
            row.add_suffix(widget);
        }
        // Run and Resume share a place: only the one that applies is shown.
        let run_visible = run.clone();
        let resume_visible = resume.clone();
        let pause_visible = pause.clone();
        let actions_for_visibility = actions.clone();
        actions.connect_action_enabled_changed(None, move |_, _, _| {
            let enabled = |a: &str| {
                actions_for_visibility
                    .lookup_action(a)
                    .is_some_and(|a| a.is_enabled())
            };
            run_visible.set_visible(enabled("start"));
            resume_visible.set_visible(enabled("resume"));
            pause_visible.set_visible(enabled("pause"));
        });

        let mut built = Row {
            row,
            state_label,
            sparkline,
            history,
            actions,
            summary: vm.clone(),
            usage: None,
        };
        apply(&mut built, vm);
        built
    }
}

/// Turns a VM name into the request one of its row's actions makes.
type RequestFactory = fn(String) -> RowRequest;

/// A row's "More Actions" menu button: `sections` of (label, action), separated by lines.
pub fn more_actions(sections: &[&[(String, &str)]]) -> gtk::MenuButton {
    let menu = gio::Menu::new();
    for items in sections {
        let section = gio::Menu::new();
        for (label, action) in *items {
            section.append(Some(label), Some(action));
        }
        menu.append_section(None, &section);
    }
    gtk::MenuButton::builder()
        .icon_name("view-more-symbolic")
        .tooltip_text(gettext("More Actions"))
        .menu_model(&menu)
        .valign(gtk::Align::Center)
        .css_classes(["flat"])
        .build()
}

/// A flat icon button in a row that activates `action`.
pub fn icon_button(icon: &str, tooltip: &str, action: &str) -> gtk::Button {
    gtk::Button::builder()
        .icon_name(icon)
        .tooltip_text(tooltip)
        .action_name(action)
        .valign(gtk::Align::Center)
        .css_classes(["flat"])
        .build()
}

/// Shows `vm` in `row`: texts, state colour and which actions apply.
fn apply(row: &mut Row, vm: &VmSummary) {
    row.row
        .set_subtitle(&glib::markup_escape_text(&subtitle(vm, row.usage.as_ref())));
    row.state_label.set_text(&state_text(&vm.state));
    for class in [
        "vm-state-running",
        "vm-state-paused",
        "vm-state-crashed",
        "dim-label",
    ] {
        row.state_label.remove_css_class(class);
    }
    row.state_label.add_css_class(state_css(&vm.state));
    row.state_label.set_tooltip_text(match &vm.state {
        RunState::Crashed(reason) => Some(reason.as_str()),
        _ => None,
    });
    let runs = matches!(vm.state, RunState::Running | RunState::Paused);
    let enable = |name: &str, on: bool| {
        if let Some(action) = row
            .actions
            .lookup_action(name)
            .and_then(|a| a.downcast::<gio::SimpleAction>().ok())
        {
            action.set_enabled(on);
        }
    };
    let broken = matches!(vm.state, RunState::Broken(_));
    enable(
        "start",
        matches!(vm.state, RunState::ShutOff | RunState::Crashed(_)),
    );
    enable("pause", vm.state == RunState::Running);
    enable("resume", vm.state == RunState::Paused);
    enable("shutdown", vm.state == RunState::Running);
    enable("reboot", vm.state == RunState::Running);
    enable("force-off", runs);
    enable("console", !broken);
    // A broken definition opens its repair editor instead of the details.
    enable("open", true);
    enable("delete", !runs);
    enable("cross-host", !broken);
    enable("copy", !broken);
    row.summary = vm.clone();
}

/// The sparkline's tooltip for a share of the VM's CPUs (0.0 ..= 1.0).
pub fn cpu_use_text(share: f64) -> String {
    gettext("CPU use: {percent}%").replace("{percent}", &format!("{:.0}", share * 100.0))
}

/// A small line chart of recent CPU use, in the accent colour.
pub fn sparkline(history: Rc<RefCell<CpuHistory>>) -> gtk::DrawingArea {
    let area = gtk::DrawingArea::builder()
        .content_width(80)
        .content_height(24)
        .valign(gtk::Align::Center)
        .build();
    area.set_draw_func(move |area, cr, width, height| {
        let history = history.borrow();
        // GTK 4.8 (Debian 12) has no Widget::color yet; the style context is how to ask there.
        #[allow(deprecated)]
        let color = area.style_context().color();
        let (w, h) = (f64::from(width), f64::from(height));
        let step = w / (CpuHistory::LEN - 1) as f64;
        let count = history.samples().count();
        let start = CpuHistory::LEN.saturating_sub(count);
        cr.set_source_rgba(
            f64::from(color.red()),
            f64::from(color.green()),
            f64::from(color.blue()),
            0.15,
        );
        cr.rectangle(0.0, h - 1.0, w, 1.0);
        let _ = cr.fill();
        cr.set_source_rgba(0.21, 0.52, 0.89, 1.0);
        cr.set_line_width(1.5);
        for (i, value) in history.samples().enumerate() {
            let x = (start + i) as f64 * step;
            let y = h - 1.0 - value * (h - 2.0);
            if i == 0 {
                cr.move_to(x, y);
            } else {
                cr.line_to(x, y);
            }
        }
        let _ = cr.stroke();
    });
    area
}

/// Asks before forcing `name` off (like pulling the plug); `on_confirm` runs on Force Off.
/// Shared by this computer's list and the libvirt connections' lists.
pub fn ask_force_off(parent: Option<&gtk::Window>, name: &str, on_confirm: impl Fn() + 'static) {
    let dialog = question(
        parent,
        &gettext("Force Off {name}?").replace("{name}", name),
        &gettext("This cuts the power like pulling the plug: unsaved data in the guest is lost."),
        (
            "force-off",
            &gettext("_Force Off"),
            adw::ResponseAppearance::Destructive,
        ),
        "cancel",
    );
    dialog.connect_response(Some("force-off"), move |_, _| on_confirm());
    dialog.present();
}

/// The one action a [`question`] offers besides Cancel: its id, label and look.
pub type Answer<'a> = (&'a str, &'a str, adw::ResponseAppearance);

/// A modal question over `parent` with Cancel and `answer`; Enter gives `default`, Escape
/// Cancel. The caller connects the answer's response.
pub fn question(
    parent: Option<&gtk::Window>,
    heading: &str,
    body: &str,
    answer: Answer<'_>,
    default: &str,
) -> adw::MessageDialog {
    let dialog = adw::MessageDialog::builder()
        .modal(true)
        .heading(heading)
        .body(body)
        .build();
    dialog.set_transient_for(parent);
    let (id, label, appearance) = answer;
    dialog.add_responses(&[("cancel", &gettext("_Cancel")), (id, label)]);
    dialog.set_response_appearance(id, appearance);
    dialog.set_default_response(Some(default));
    dialog.set_close_response("cancel");
    dialog
}
