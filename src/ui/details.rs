//! The VM details window: Overview, CPU, Memory, Boot, Devices and the raw XML. Edits collect
//! in the widgets and are written on Apply (validated first; a failed save changes nothing on
//! disk); closing with unapplied changes asks first.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{Component, ComponentParts, ComponentSender, adw, gtk};

mod add_hardware;
mod apply;
mod boot;
mod boot_disks;
mod cpu;
mod cpu_models;
mod devices;
mod disk_edits;
mod disks;
mod memory;
mod nics;
mod other_devices;
mod overview;
mod xml;

pub use cpu::host_cpus;
pub use disks::{DiskInfos, DiskRequest, DiskSection};
pub use nics::{NicCard, NicMsg, NicSection};

use super::rows;
use crate::cpu::{CpuMap, Policy};
use crate::domain::Domain;
use crate::domain::store::{DomainStore, StoredDomain};
use crate::launch::cpu_edit::{CpuChoice, CpuSettings};
use crate::launch::machines::RunState;

pub struct Details {
    store: DomainStore,
    stored: StoredDomain,
    /// The VM's run state as the main window's last listing saw it (kept current by
    /// [`DetailsMsg::RunState`]), so this window never asks a runner on the UI thread.
    run_state: RunState,
    /// The CPU settings as the widgets hold them.
    cpu: CpuSettings,
    dirty: bool,
    /// The XML page's text was edited: Apply takes the document from there.
    xml_edited: bool,
    error: Option<String>,
    /// The CPU map and this host's CPU facts, to say while editing whether the CPU can start
    /// here (`None` when unreadable: then nothing is claimed either way).
    map: Option<&'static CpuMap>,
    /// The same facts as start resolves against (KVM's CPUID and whether KVM enforces it).
    host_cpu: Option<crate::cpu::guest::HostCpuFacts>,
    /// Set while the view rewrites widgets, so their change signals are not taken as edits.
    syncing: std::rc::Rc<std::cell::Cell<bool>>,
    /// What `block::inspect` found for each disk image (by path), filled by a worker.
    disk_infos: DiskInfos,
    /// Set while a disk is being added, resized or removed (one at a time).
    disk_busy: bool,
}

/// What the details window's workers report.
#[derive(Debug)]
pub enum DetailsCmd {
    /// This host's CPU facts (KVM ioctls, maybe a probe guest).
    HostCpu(Result<Option<crate::cpu::guest::HostCpuFacts>, String>),
    /// The disks' images as inspected.
    DiskInfo(Vec<(String, Result<crate::engine::block::ImageInfo, String>)>),
    /// A disk was added or removed: the definition as stored now, and what to say.
    DiskEdited(Result<(StoredDomain, String), String>),
    /// A resize or file deletion finished: what to say.
    DiskDone(Result<String, String>),
    /// Apply's checks of the edited definition (its kernel and initrd loaded as start would):
    /// the definition and every problem found, or why checking failed.
    Checked(Box<Domain>, Result<Vec<String>, String>),
}

/// What the details window asks of the main window.
#[derive(Debug)]
pub enum DetailsOutput {
    /// Start this VM (the "Begin Installation" of a VM customized before its first start).
    Start(String),
}

#[derive(Debug)]
pub enum DetailsMsg {
    /// Start the VM (only with nothing left to apply).
    Start,
    Edited,
    XmlEdited,
    CpuChoice(CpuChoice),
    Model(String),
    Vcpus(u32),
    Topology(u32, u32, u32),
    FeaturePolicy(usize, Policy),
    RemoveFeature(usize),
    AddFeature(String),
    Apply,
    /// Close, discarding unapplied changes.
    Discard,
    /// The main window's listing saw the VM in this state.
    RunState(RunState),
    /// Open the Add disk dialog.
    AskAddDisk,
    /// Ask before removing the disk with this target.
    AskRemoveDisk(String),
    /// Ask for the new size of the disk with this target.
    AskResizeDisk(String),
    /// Add a disk (a new image is created in a worker, with progress).
    AddDisk(DiskRequest),
    /// Remove the disk with this target from the definition, and its file when asked.
    RemoveDisk {
        target: String,
        delete_file: bool,
    },
    /// Resize the disk with this target (offline only).
    ResizeDisk {
        target: String,
        bytes: u64,
        allow_shrink: bool,
    },
    /// Progress of the disk image being created (0..=1).
    DiskProgress(f64),
    /// The network cards section (see [`nics`]).
    Nic(NicMsg),
    /// Open Add Hardware.
    AskAddHardware,
}

pub struct DetailsWidgets {
    pub window: adw::Window,
    /// The pages: overview, cpu, memory, boot, devices, xml.
    pub stack: adw::ViewStack,
    pub apply: gtk::Button,
    /// Starts the VM; shown while it is off.
    pub start: gtk::Button,
    pub error: gtk::Label,
    /// Says, while the CPU page is edited, what this host's KVM cannot give the chosen CPU.
    pub host_warning: gtk::Label,
    pub toasts: adw::ToastOverlay,
    pub title: gtk::Entry,
    pub description: gtk::Entry,
    pub state: gtk::Label,
    pub cpu_mode: adw::ComboRow,
    /// Says, on a host whose KVM does not enforce guest CPUID, that the guest sees the host
    /// CPU whatever is chosen.
    pub cpuid_note: gtk::Label,
    pub model_row: adw::ExpanderRow,
    /// Filters the model list.
    pub model_search: gtk::SearchEntry,
    pub model_buttons: Vec<(String, gtk::CheckButton)>,
    pub features: gtk::ListBox,
    pub feature_entry: gtk::Entry,
    pub vcpus: gtk::SpinButton,
    pub sockets: gtk::SpinButton,
    pub cores: gtk::SpinButton,
    pub threads: gtk::SpinButton,
    /// Says when the vCPU count exceeds this host's online CPUs (saving is still allowed).
    pub vcpu_warning: gtk::Label,
    pub memory: gtk::SpinButton,
    pub kernel: gtk::Entry,
    pub initrd: gtk::Entry,
    pub cmdline: gtk::Entry,
    /// Devices → Disks.
    pub disks: DiskSection,
    /// Devices → Network cards.
    pub nics: NicSection,
    pub xml: gtk::TextView,
}

fn entry(
    group: &adw::PreferencesGroup,
    title: &str,
    value: &str,
    edited: impl Fn() + 'static,
) -> gtk::Entry {
    let (entry, _) = rows::entry_row(group, title, value);
    entry.connect_changed(move |_| edited());
    entry
}

fn spin(
    group: &adw::PreferencesGroup,
    title: &str,
    (min, max): (f64, f64),
    value: f64,
) -> gtk::SpinButton {
    rows::spin_row(group, title, None, (min, max, 1.0), value)
}

fn add_page(
    stack: &adw::ViewStack,
    name: &str,
    title: &str,
    icon: &str,
    child: &impl IsA<gtk::Widget>,
) {
    let page = stack.add_titled(child, Some(name), title);
    page.set_icon_name(Some(icon));
}

impl Component for Details {
    /// The store the VM is saved to, the VM as read from it, and its run state as the main
    /// window last listed it.
    type Init = (DomainStore, StoredDomain, RunState);
    type Input = DetailsMsg;
    type Output = DetailsOutput;
    /// This host's CPU facts, measured off the UI thread (KVM ioctls, maybe a probe guest).
    type CommandOutput = DetailsCmd;
    type Root = adw::Window;
    type Widgets = DetailsWidgets;

    fn init_root() -> adw::Window {
        adw::Window::builder()
            .default_width(760)
            .default_height(700)
            .build()
    }

    fn init(
        (store, stored, run_state): (DomainStore, StoredDomain, RunState),
        window: adw::Window,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let syncing = std::rc::Rc::new(std::cell::Cell::new(true));
        let edited = {
            let sender = sender.clone();
            let syncing = syncing.clone();
            move || {
                if !syncing.get() {
                    sender.input(DetailsMsg::Edited);
                }
            }
        };
        let domain = &stored.domain;
        window.set_title(Some(
            &gettext("{name} — Details").replace("{name}", &stored.name),
        ));
        let stack = adw::ViewStack::new();
        let switcher = adw::ViewSwitcherTitle::builder()
            .stack(&stack)
            .title(stored.name.as_str())
            .build();
        let header = adw::HeaderBar::builder().title_widget(&switcher).build();
        let apply = gtk::Button::builder()
            .label(gettext("_Apply"))
            .use_underline(true)
            .css_classes(["suggested-action"])
            .sensitive(false)
            .build();
        header.pack_end(&apply);
        let start = gtk::Button::builder()
            .label(start_label(stored.domain.awaits_first_start()))
            .use_underline(true)
            .tooltip_text(gettext("Start the virtual machine with this configuration"))
            .visible(!matches!(run_state, RunState::Running | RunState::Paused))
            .build();
        header.pack_start(&start);
        {
            let sender = sender.clone();
            start.connect_clicked(move |_| sender.input(DetailsMsg::Start));
        }
        {
            let sender = sender.clone();
            apply.connect_clicked(move |_| sender.input(DetailsMsg::Apply));
        }

        // Overview.
        let overview::OverviewWidgets {
            title,
            description,
            state,
        } = overview::overview_page(&stack, &stored, &run_state, edited.clone());

        // CPU.
        let cpu::CpuPage {
            cpu,
            map,
            cpu_mode,
            cpuid_note,
            model_row,
            model_search,
            model_buttons,
            features,
            feature_entry,
            vcpus,
            sockets,
            cores,
            threads,
            vcpu_warning,
        } = cpu::cpu_page(&stack, domain, &syncing, &sender);

        // Memory.
        let memory = memory::memory_page(&stack, domain, edited.clone());

        // Boot.
        let boot::BootWidgets {
            kernel,
            initrd,
            cmdline,
        } = boot::boot_page(&stack, domain, edited.clone());

        // Devices, as read from the XML.
        let (disk_section, nic_section) =
            devices::devices_page(&stack, domain, &run_state, &sender);

        // XML.
        let xml = xml::xml_page(&stack, domain, &syncing, &sender);

        let error = gtk::Label::builder()
            .css_classes(["error"])
            .wrap(true)
            .selectable(true)
            .visible(false)
            .margin_start(12)
            .margin_end(12)
            .margin_top(6)
            .margin_bottom(6)
            .build();
        let host_warning = gtk::Label::builder()
            .css_classes(["warning"])
            .wrap(true)
            .selectable(true)
            .visible(false)
            .xalign(0.0)
            .margin_start(12)
            .margin_end(12)
            .margin_top(6)
            .margin_bottom(6)
            .build();
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&header);
        content.append(&error);
        content.append(&host_warning);
        content.append(&stack);
        // Six pages do not fit the header on a narrow window: the switcher then moves to a
        // bar at the bottom (the libadwaita adaptive pattern), so every page stays reachable.
        let switcher_bar = adw::ViewSwitcherBar::builder().stack(&stack).build();
        switcher
            .bind_property("title-visible", &switcher_bar, "reveal")
            .sync_create()
            .build();
        content.append(&switcher_bar);
        let toasts = adw::ToastOverlay::new();
        toasts.set_child(Some(&content));
        window.set_content(Some(&toasts));

        {
            let sender = sender.clone();
            let dirty_probe = apply.clone();
            window.connect_close_request(move |window| {
                if !dirty_probe.is_sensitive() {
                    return glib::Propagation::Proceed;
                }
                confirm_discard(window, &sender);
                glib::Propagation::Stop
            });
        }

        let model = Details {
            store,
            stored,
            run_state,
            cpu,
            dirty: false,
            xml_edited: false,
            error: None,
            map,
            host_cpu: None,
            syncing: syncing.clone(),
            disk_infos: DiskInfos::new(),
            disk_busy: false,
        };
        let mut widgets = DetailsWidgets {
            window,
            stack,
            apply,
            start,
            error,
            host_warning,
            toasts,
            title,
            description,
            state,
            cpu_mode,
            cpuid_note,
            model_row,
            model_search,
            model_buttons,
            features,
            feature_entry,
            vcpus,
            sockets,
            cores,
            threads,
            vcpu_warning,
            memory,
            kernel,
            initrd,
            cmdline,
            disks: disk_section,
            nics: nic_section,
            xml,
        };
        model.inspect_disks(&sender);
        model.show_cpu(&mut widgets, &sender);
        model.show_host_warning(&widgets);
        model.show_vcpu_warning(&widgets);
        syncing.set(false);
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut DetailsWidgets,
        msg: DetailsMsg,
        sender: ComponentSender<Self>,
        root: &adw::Window,
    ) {
        // Not an edit: it must leave the page, its error and the user's edits as they are.
        if let DetailsMsg::RunState(state) = msg {
            widgets.state.set_text(&super::vm_list::state_text(&state));
            widgets
                .start
                .set_visible(!matches!(state, RunState::Running | RunState::Paused));
            let changed = self.run_state != state;
            self.run_state = state;
            if matches!(self.run_state, RunState::Running | RunState::Paused) {
                self.started(widgets);
            }
            if changed {
                self.show_disks(widgets, &sender);
                self.show_nics(widgets, &sender);
            }
            return;
        }
        let msg = match self
            .handle_disk_msg(msg, widgets, &sender, root)
            .and_then(|msg| self.handle_nic_msg(msg, widgets, &sender))
        {
            Some(msg) => msg,
            None => {
                widgets.error.set_visible(self.error.is_some());
                widgets.error.set_text(self.error.as_deref().unwrap_or(""));
                return;
            }
        };
        self.error = None;
        match msg {
            DetailsMsg::Start => {
                if self.dirty {
                    self.error = Some(gettext(
                        "Apply or discard the changes before starting the virtual machine",
                    ));
                } else {
                    let _ = sender.output(DetailsOutput::Start(self.stored.name.clone()));
                }
            }
            DetailsMsg::RunState(_)
            | DetailsMsg::AskAddDisk
            | DetailsMsg::AskRemoveDisk(_)
            | DetailsMsg::AskResizeDisk(_)
            | DetailsMsg::AddDisk(_)
            | DetailsMsg::RemoveDisk { .. }
            | DetailsMsg::ResizeDisk { .. }
            | DetailsMsg::DiskProgress(_)
            | DetailsMsg::Nic(_) => unreachable!("handled above"),
            DetailsMsg::AskAddHardware => {
                let kind = add_hardware::HardwareKind::Storage;
                add_hardware::present(&widgets.window, &self.stored.domain, kind, &sender);
            }
            DetailsMsg::Edited => self.dirty = true,
            DetailsMsg::XmlEdited => {
                self.dirty = true;
                self.xml_edited = true;
            }
            DetailsMsg::CpuChoice(choice) => {
                self.cpu.choice = choice;
                if choice == CpuChoice::Custom && self.cpu.model.is_none() {
                    self.cpu.model = widgets.model_buttons.first().map(|(n, _)| n.clone());
                }
                self.dirty = true;
            }
            DetailsMsg::Model(name) => {
                self.cpu.model = Some(name);
                self.cpu.choice = CpuChoice::Custom;
                self.dirty = true;
            }
            DetailsMsg::Vcpus(n) => {
                self.cpu.set_vcpus(n);
                self.dirty = true;
            }
            DetailsMsg::Topology(s, c, t) => {
                self.cpu.set_topology(s, c, t);
                self.dirty = true;
            }
            DetailsMsg::FeaturePolicy(index, policy) => {
                if let Some(feature) = self.cpu.features.get_mut(index) {
                    feature.1 = policy;
                    self.dirty = true;
                }
            }
            DetailsMsg::RemoveFeature(index) => {
                if index < self.cpu.features.len() {
                    self.cpu.features.remove(index);
                    self.dirty = true;
                }
            }
            DetailsMsg::AddFeature(name) => self.add_feature(name),
            DetailsMsg::Apply => self.apply(widgets, &sender),
            DetailsMsg::Discard => {
                self.dirty = false;
                widgets.apply.set_sensitive(false);
                root.close();
                return;
            }
        }
        self.show_cpu(widgets, &sender);
        self.show_host_warning(widgets);
        self.show_vcpu_warning(widgets);
        widgets.apply.set_sensitive(self.dirty);
        widgets.error.set_visible(self.error.is_some());
        widgets.error.set_text(self.error.as_deref().unwrap_or(""));
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut DetailsWidgets,
        msg: Self::CommandOutput,
        sender: ComponentSender<Self>,
        _root: &adw::Window,
    ) {
        match msg {
            DetailsCmd::HostCpu(facts) => self.host_cpu_arrived(widgets, facts),
            DetailsCmd::DiskInfo(infos) => {
                self.disk_infos.extend(infos);
                self.show_disks(widgets, &sender);
            }
            DetailsCmd::DiskEdited(result) => self.disk_edited(result, widgets, &sender),
            DetailsCmd::Checked(domain, problems) => {
                self.checked(*domain, problems, widgets);
                self.show_nics(widgets, &sender);
                self.show_cpu(widgets, &sender);
                self.show_host_warning(widgets);
            }
            DetailsCmd::DiskDone(result) => {
                self.disk_busy = false;
                widgets.disks.progress.set_visible(false);
                match result {
                    Ok(text) => widgets.toasts.add_toast(adw::Toast::new(&text)),
                    Err(error) => self.error = Some(error),
                }
                self.disk_infos.clear();
                self.inspect_disks(&sender);
                self.show_disks(widgets, &sender);
            }
        }
        widgets.error.set_visible(self.error.is_some());
        widgets.error.set_text(self.error.as_deref().unwrap_or(""));
    }
}

impl Details {
    /// The CPU settings as edited so far.
    pub fn cpu(&self) -> &CpuSettings {
        &self.cpu
    }

    /// Whether there are unapplied changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The VM runs: once it has, its Start button says "Start". Starting cleared the "never
    /// started" marker on disk, so the definition is read again (a later Apply would otherwise
    /// meet a changed file); the widgets' edits stay, as Apply writes only what differs.
    fn started(&mut self, widgets: &DetailsWidgets) {
        if !self.stored.domain.awaits_first_start() {
            return;
        }
        match self.store.get(&self.stored.name) {
            Ok(fresh) if !fresh.domain.awaits_first_start() => self.stored = fresh,
            // Not cleared (yet) on disk: keep what Apply compares against, relabel only.
            _ => self.stored.domain.set_awaits_first_start(false),
        }
        widgets.start.set_label(&start_label(false));
    }

    /// The last error (from Apply or from adding a feature).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// The Start button's label: virt-manager's "Begin Installation" for a VM the wizard made that
/// has never run (customized before its first start), "Start" otherwise.
fn start_label(awaits_first_start: bool) -> String {
    if awaits_first_start {
        gettext("_Begin Installation")
    } else {
        gettext("_Start")
    }
}

fn confirm_discard(window: &adw::Window, sender: &ComponentSender<Details>) {
    let dialog = adw::MessageDialog::builder()
        .transient_for(window)
        .modal(true)
        .heading(gettext("Apply Changes?"))
        .body(gettext("Some changes have not been applied yet."))
        .build();
    dialog.add_responses(&[
        ("cancel", &gettext("_Cancel")),
        ("discard", &gettext("_Discard")),
        ("apply", &gettext("_Apply")),
    ]);
    dialog.set_response_appearance("discard", adw::ResponseAppearance::Destructive);
    dialog.set_response_appearance("apply", adw::ResponseAppearance::Suggested);
    dialog.set_default_response(Some("apply"));
    dialog.set_close_response("cancel");
    let sender = sender.clone();
    dialog.connect_response(None, move |_, response| match response {
        "discard" => sender.input(DetailsMsg::Discard),
        "apply" => sender.input(DetailsMsg::Apply),
        _ => {}
    });
    dialog.present();
}
