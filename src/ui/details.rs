//! The VM details window: Overview, CPU, Memory, Boot, Devices and the raw XML. Edits collect
//! in the widgets and are written on Apply (validated first; a failed save changes nothing on
//! disk); closing with unapplied changes asks first.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{Component, ComponentParts, ComponentSender, adw, gtk};

mod add_hardware;
mod apply;
mod boot_disks;
mod cpu_models;
mod disk_edits;
mod disks;
mod nics;
mod other_devices;

pub use disks::{DiskInfos, DiskRequest, DiskSection};
pub use nics::{NicCard, NicMsg, NicSection};

use super::rows;
use crate::cpu::{CpuMap, Policy};
use crate::domain::Domain;
use crate::domain::model::OsText;
use crate::domain::store::{DomainStore, StoredDomain};
use crate::domain::units::Memory;
use crate::launch::cpu_edit::{CpuChoice, CpuSettings, host_verdict, model_usability};
use crate::launch::machines::RunState;

const POLICIES: [Policy; 5] = [
    Policy::Force,
    Policy::Require,
    Policy::Optional,
    Policy::Disable,
    Policy::Forbid,
];

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

fn mode_label(choice: CpuChoice) -> String {
    match choice {
        CpuChoice::HvDefault => gettext("Hypervisor default"),
        CpuChoice::Custom => gettext("Named CPU model"),
        CpuChoice::HostModel => gettext("Copy host CPU configuration (host-model)"),
        CpuChoice::HostPassthrough => gettext("Host passthrough"),
    }
}

fn memory_mib(domain: &Domain) -> u64 {
    domain
        .memory()
        .ok()
        .flatten()
        .and_then(|m| m.bytes())
        .map_or(0, |b| b >> 20)
}

fn labelled(group: &adw::PreferencesGroup, title: &str, value: &str) -> gtk::Label {
    let label = gtk::Label::builder()
        .label(value)
        .selectable(true)
        // One line: a wrapped state or UUID in a row's suffix breaks after every word.
        .wrap(false)
        .xalign(1.0)
        .css_classes(["dim-label"])
        .build();
    let row = adw::ActionRow::builder().title(title).build();
    row.add_suffix(&label);
    group.add(&row);
    label
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

/// An entry with a browse button, for a file path.
fn path_entry(
    group: &adw::PreferencesGroup,
    title: &str,
    value: &str,
    what: &str,
    edited: impl Fn() + 'static,
) -> gtk::Entry {
    let (entry, _) = super::file_chooser::path_row(group, title, value, what);
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
            .label(gettext("_Start"))
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
        let overview = adw::PreferencesPage::new();
        let about = adw::PreferencesGroup::new();
        labelled(&about, &gettext("Name"), &stored.name);
        let title = entry(
            &about,
            &gettext("Title"),
            &domain.title().unwrap_or_default(),
            edited.clone(),
        );
        let description = entry(
            &about,
            &gettext("Description"),
            &domain.description().unwrap_or_default(),
            edited.clone(),
        );
        let state = labelled(
            &about,
            &gettext("State"),
            &super::vm_list::state_text(&run_state),
        );
        labelled(&about, &gettext("UUID"), &domain.uuid().unwrap_or_default());
        overview.add(&about);
        add_page(
            &stack,
            "overview",
            &gettext("Overview"),
            "computer-symbolic",
            &overview,
        );

        // CPU.
        let cpu = CpuSettings::read(domain);
        // Loaded once per process, by the host-facts worker started with the main window.
        let map = crate::domain::cpu::cpu_map();
        // Detected once, off the UI thread, when the main window opened.
        let kvm = super::worker::host_facts().kvm_cpuid;
        // Whether KVM enforces CPUID may take a probe guest to find out (then it is cached per
        // host boot): measured off the UI thread; the host warning appears when it arrives.
        let what = gettext("the host CPU check");
        sender.oneshot_command(async move {
            DetailsCmd::HostCpu(
                super::worker::run_blocking(&what, || {
                    crate::host::kvm::supported_cpuid().ok().map(|kvm| {
                        let enforced = crate::launch::cpuid_enforcement().unwrap_or(true);
                        crate::launch::host_cpu_facts(&kvm, enforced)
                    })
                })
                .await,
            )
        });
        let cpu_page = adw::PreferencesPage::new();
        let mode_group = adw::PreferencesGroup::builder()
            .title(gettext("CPU"))
            .build();
        let labels: Vec<String> = CpuChoice::ALL.iter().map(|c| mode_label(*c)).collect();
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let cpu_mode = adw::ComboRow::builder()
            .title(gettext("Mode"))
            .model(&gtk::StringList::new(&label_refs))
            .build();
        mode_group.add(&cpu_mode);
        {
            let sender = sender.clone();
            let syncing = syncing.clone();
            cpu_mode.connect_selected_notify(move |row| {
                if !syncing.get() {
                    sender.input(DetailsMsg::CpuChoice(
                        CpuChoice::ALL[row.selected() as usize],
                    ));
                }
            });
        }
        let cpuid_note = gtk::Label::builder()
            .label(super::new_vm_text::cpuid_not_enforced_text())
            .wrap(true)
            .xalign(0.0)
            .visible(false)
            .margin_top(6)
            .css_classes(["warning"])
            .build();
        let model_row = adw::ExpanderRow::builder().title(gettext("Model")).build();
        let usability = map
            .map(|m| model_usability(m, kvm.as_ref()))
            .unwrap_or_default();
        let cpu_models::ModelList {
            search: model_search,
            buttons: model_buttons,
        } = cpu_models::model_list(&model_row, usability, &syncing, &sender);
        mode_group.add(&model_row);
        mode_group.add(&cpuid_note);
        cpu_page.add(&mode_group);

        let feature_group = adw::PreferencesGroup::builder()
            .title(gettext("Features"))
            .description(gettext("Require, add (force), take if available (optional), hide (disable) or refuse (forbid) single CPU features"))
            .build();
        let features = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .build();
        feature_group.add(&features);
        let feature_entry = gtk::Entry::builder()
            .placeholder_text(gettext("Feature name, e.g. avx2"))
            .hexpand(true)
            .build();
        let add_feature = gtk::Button::with_label(&gettext("Add"));
        let add_box = gtk::Box::builder().spacing(6).margin_top(6).build();
        add_box.append(&feature_entry);
        add_box.append(&add_feature);
        feature_group.add(&add_box);
        {
            let sender = sender.clone();
            let entry = feature_entry.clone();
            let add = move || {
                let name = entry.text().trim().to_string();
                if !name.is_empty() {
                    sender.input(DetailsMsg::AddFeature(name));
                    entry.set_text("");
                }
            };
            let add_again = add.clone();
            add_feature.connect_clicked(move |_| add());
            feature_entry.connect_activate(move |_| add_again());
        }
        cpu_page.add(&feature_group);

        let topology_group = adw::PreferencesGroup::builder()
            .title(gettext("Topology"))
            .description(gettext(
                "The vCPU count is always sockets × cores × threads",
            ))
            .build();
        let vcpus = spin(
            &topology_group,
            &gettext("vCPUs"),
            (1.0, 1024.0),
            f64::from(cpu.vcpus),
        );
        let sockets = spin(
            &topology_group,
            &gettext("Sockets"),
            (1.0, 1024.0),
            f64::from(cpu.sockets),
        );
        let cores = spin(
            &topology_group,
            &gettext("Cores per socket"),
            (1.0, 1024.0),
            f64::from(cpu.cores),
        );
        let threads = spin(
            &topology_group,
            &gettext("Threads per core"),
            (1.0, 8.0),
            f64::from(cpu.threads),
        );
        {
            let sender = sender.clone();
            let syncing = syncing.clone();
            vcpus.connect_value_changed(move |s| {
                if !syncing.get() {
                    sender.input(DetailsMsg::Vcpus(s.value_as_int() as u32));
                }
            });
        }
        for spin in [&sockets, &cores, &threads] {
            let sender = sender.clone();
            let syncing = syncing.clone();
            let (s, c, t) = (sockets.clone(), cores.clone(), threads.clone());
            spin.connect_value_changed(move |_| {
                if !syncing.get() {
                    sender.input(DetailsMsg::Topology(
                        s.value_as_int() as u32,
                        c.value_as_int() as u32,
                        t.value_as_int() as u32,
                    ));
                }
            });
        }
        let vcpu_warning = gtk::Label::builder()
            .css_classes(["warning"])
            .wrap(true)
            .xalign(0.0)
            .visible(false)
            .margin_top(6)
            .build();
        topology_group.add(&vcpu_warning);
        cpu_page.add(&topology_group);
        add_page(
            &stack,
            "cpu",
            &gettext("CPU"),
            "vireo-cpu-symbolic",
            &cpu_page,
        );

        // Memory.
        let memory_page = adw::PreferencesPage::new();
        let memory_group = adw::PreferencesGroup::builder()
            .title(gettext("Memory"))
            .build();
        let memory = spin(
            &memory_group,
            &gettext("Memory (MiB)"),
            (16.0, 4.0 * 1024.0 * 1024.0),
            memory_mib(domain) as f64,
        );
        {
            let edited = edited.clone();
            memory.connect_value_changed(move |_| edited());
        }
        memory_page.add(&memory_group);
        add_page(
            &stack,
            "memory",
            &gettext("Memory"),
            "vireo-memory-symbolic",
            &memory_page,
        );

        // Boot.
        let os = domain.os();
        let boot_page = adw::PreferencesPage::new();
        let boot_group = adw::PreferencesGroup::builder()
            .title(gettext("Direct Kernel Boot"))
            .build();
        let kernel = path_entry(
            &boot_group,
            &gettext("Kernel"),
            os.kernel.as_deref().unwrap_or(""),
            &gettext("kernel"),
            edited.clone(),
        );
        let initrd = path_entry(
            &boot_group,
            &gettext("Initrd"),
            os.initrd.as_deref().unwrap_or(""),
            &gettext("initrd"),
            edited.clone(),
        );
        let cmdline = entry(
            &boot_group,
            &gettext("Kernel command line"),
            os.cmdline.as_deref().unwrap_or(""),
            edited.clone(),
        );
        if let Some(disk_boot) = boot_disks::disk_boot_group(domain) {
            // A disk-booted VM: its disks and their order, not empty kernel fields.
            boot_page.add(&disk_boot);
            boot_group.set_visible(false);
        }
        boot_page.add(&boot_group);
        add_page(
            &stack,
            "boot",
            &gettext("Boot"),
            "system-run-symbolic",
            &boot_page,
        );

        // Devices, as read from the XML.
        let devices_page = adw::PreferencesPage::new();
        let mut disk_section = DiskSection::new(&sender);
        let running = matches!(run_state, RunState::Running | RunState::Paused);
        disk_section.show(&domain.disks(), &DiskInfos::new(), running, &sender);
        devices_page.add(&disk_section.group);

        let mut nic_section = NicSection::new(&sender);
        nic_section.show(domain, running, &sender);
        devices_page.add(&nic_section.group);
        devices_page.add(&other_devices::display_group(domain));
        devices_page.add(&add_hardware::button_group(&sender));
        add_page(
            &stack,
            "devices",
            &gettext("Devices"),
            "drive-harddisk-symbolic",
            &devices_page,
        );

        // XML.
        let xml = gtk::TextView::builder()
            .monospace(true)
            .top_margin(12)
            .bottom_margin(12)
            .left_margin(12)
            .right_margin(12)
            .build();
        xml.buffer().set_text(&domain.to_xml());
        {
            let sender = sender.clone();
            let syncing = syncing.clone();
            xml.buffer().connect_changed(move |_| {
                if !syncing.get() {
                    sender.input(DetailsMsg::XmlEdited);
                }
            });
        }
        let xml_scroller = gtk::ScrolledWindow::builder()
            .child(&xml)
            .vexpand(true)
            .build();
        add_page(
            &stack,
            "xml",
            &gettext("XML"),
            "text-x-generic-symbolic",
            &xml_scroller,
        );

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

/// This host's online CPUs (0 when unknown), read once.
pub fn host_cpus() -> u32 {
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| u32::try_from(crate::host::facts::online_cpus()).unwrap_or(u32::MAX))
}

impl Details {
    /// Takes this host's CPU facts from the worker and re-judges the CPU as edited.
    fn host_cpu_arrived(
        &mut self,
        widgets: &mut DetailsWidgets,
        facts: Result<Option<crate::cpu::guest::HostCpuFacts>, String>,
    ) {
        match facts {
            Ok(facts) => {
                widgets
                    .cpuid_note
                    .set_visible(facts.as_ref().is_some_and(|f| !f.cpuid_enforced));
                self.host_cpu = facts;
                self.show_host_warning(widgets);
            }
            Err(error) => {
                let toast = adw::Toast::new(&glib::markup_escape_text(&error));
                toast.set_timeout(6);
                widgets.toasts.add_toast(toast);
            }
        }
    }

    /// Shows or hides the note that more vCPUs than this host has CPUs make the guest slower.
    fn show_vcpu_warning(&self, w: &DetailsWidgets) {
        let host = host_cpus();
        let vcpus = self.cpu.vcpus;
        let text = (host > 0 && vcpus > host).then(|| {
            gettext("More vCPUs ({vcpus}) than this host has CPUs ({host}): the guest will run slower, not faster")
                .replace("{vcpus}", &vcpus.to_string())
                .replace("{host}", &host.to_string())
        });
        w.vcpu_warning.set_visible(text.is_some());
        w.vcpu_warning.set_text(&text.unwrap_or_default());
    }

    /// The CPU settings as edited so far.
    pub fn cpu(&self) -> &CpuSettings {
        &self.cpu
    }

    /// Whether there are unapplied changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The last error (from Apply or from adding a feature).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn add_feature(&mut self, name: String) {
        let known = self
            .map
            .and_then(|m| m.feature(&name).map(|f| f.name().to_string()));
        match known {
            Some(canonical) if self.cpu.features.iter().any(|(n, _)| *n == canonical) => {
                self.error =
                    Some(gettext("{feature} is already listed").replace("{feature}", &canonical));
            }
            Some(canonical) => {
                self.cpu.features.push((canonical, Policy::Require));
                if self.cpu.choice == CpuChoice::HvDefault {
                    self.cpu.choice = CpuChoice::HostModel;
                }
                self.dirty = true;
            }
            None => {
                self.error = Some(
                    gettext("Unknown CPU feature “{feature}”; `vireoctl cpu-features` lists the known ones")
                        .replace("{feature}", &name),
                );
            }
        }
    }

    /// Shows or hides the warning that this host cannot run the CPU as edited, naming what
    /// KVM lacks and the fix, so a CPU that will not start here is never saved unknowingly.
    /// Start's own resolution decides (`check=` and feature policies included), so this
    /// warns exactly when starting would fail.
    fn show_host_warning(&self, w: &DetailsWidgets) {
        use crate::launch::{missing_features, refusal};
        let verdict = match (self.map, &self.host_cpu) {
            (Some(map), Some(host)) => host_verdict(&self.cpu, &self.stored.domain, map, host),
            _ => None,
        };
        let text = match &verdict {
            None => None,
            Some(verdict) => {
                let missing = missing_features(verdict);
                if !missing.is_empty() {
                    Some(gettext("This host's KVM cannot provide {features}, so the VM will not start here. Choose “Copy host CPU configuration” as the mode or pick a model marked usable.")
                        .replace("{features}", &missing.join(", ")))
                } else {
                    refusal(verdict).map(|reason| {
                        gettext("The VM will not start on this host with this CPU: {reason}")
                            .replace("{reason}", &reason)
                    })
                }
            }
        };
        w.host_warning.set_visible(text.is_some());
        w.host_warning.set_text(&text.unwrap_or_default());
    }

    fn edited_domain(&self, w: &DetailsWidgets) -> Result<Domain, String> {
        let mut domain = self.stored.domain.clone();
        let text = |e: &gtk::Entry| e.text().trim().to_string();
        if text(&w.title) != domain.title().unwrap_or_default() {
            domain.set_title(&text(&w.title));
        }
        if text(&w.description) != domain.description().unwrap_or_default() {
            domain.set_description(&text(&w.description));
        }
        let mib = w.memory.value_as_int().max(16) as u64;
        if mib != memory_mib(&domain) {
            domain.set_memory(Memory::mib(mib));
            domain.set_current_memory(Memory::mib(mib));
        }
        let os = domain.os();
        for (field, entry, current) in [
            (OsText::Kernel, &w.kernel, os.kernel),
            (OsText::Initrd, &w.initrd, os.initrd),
            (OsText::Cmdline, &w.cmdline, os.cmdline),
        ] {
            let value = text(entry);
            if value != current.unwrap_or_default() {
                domain.set_os_text(field, Some(value.as_str()).filter(|v| !v.is_empty()));
            }
        }
        self.cpu.write(&mut domain).map_err(|e| e.to_string())?;
        Ok(domain)
    }

    /// Puts the CPU settings on the CPU page (without taking the changes as edits).
    fn show_cpu(&self, w: &mut DetailsWidgets, sender: &ComponentSender<Self>) {
        self.syncing.set(true);
        let index = CpuChoice::ALL
            .iter()
            .position(|c| *c == self.cpu.choice)
            .unwrap_or(0);
        w.cpu_mode.set_selected(index as u32);
        w.model_row
            .set_sensitive(self.cpu.choice == CpuChoice::Custom);
        w.model_row
            .set_subtitle(self.cpu.model.as_deref().unwrap_or(""));
        for (name, check) in &w.model_buttons {
            if Some(name) == self.cpu.model.as_ref() {
                check.set_active(true);
            }
        }
        w.vcpus.set_value(f64::from(self.cpu.vcpus));
        w.sockets.set_value(f64::from(self.cpu.sockets));
        w.cores.set_value(f64::from(self.cpu.cores));
        w.threads.set_value(f64::from(self.cpu.threads));
        while let Some(child) = w.features.first_child() {
            w.features.remove(&child);
        }
        for (index, (name, policy)) in self.cpu.features.iter().enumerate() {
            let names: Vec<&str> = POLICIES.iter().map(|p| p.as_str()).collect();
            let dropdown = gtk::DropDown::from_strings(&names);
            dropdown.set_valign(gtk::Align::Center);
            dropdown.set_selected(POLICIES.iter().position(|p| p == policy).unwrap_or(1) as u32);
            let sender_policy = sender.clone();
            dropdown.connect_selected_notify(move |d| {
                sender_policy.input(DetailsMsg::FeaturePolicy(
                    index,
                    POLICIES[d.selected() as usize],
                ));
            });
            let remove = rows::icon_button("user-trash-symbolic", &gettext("Remove"));
            let sender_remove = sender.clone();
            remove.connect_clicked(move |_| sender_remove.input(DetailsMsg::RemoveFeature(index)));
            let row = adw::ActionRow::builder().title(name.as_str()).build();
            row.add_suffix(&dropdown);
            row.add_suffix(&remove);
            w.features.append(&row);
        }
        self.syncing.set(false);
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
