//! The create-VM wizard: four steps (how to boot → memory and vCPUs → storage → name and
//! summary). Every step says in place what is missing, and Forward/Create stay disabled until
//! the step is complete. Create defines the VM (after making its disk image, with progress)
//! and hands it to the main window, which starts it and opens its console.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{Component, ComponentParts, ComponentSender, adw, gtk};

mod boot;
mod boot_files;
mod name;
mod network;
mod size;
mod storage;
mod target;
mod widget_rows;

use widget_rows::{note, read_form, spin_row};

pub use target::Host;
pub(crate) use target::ask_host_plan;

use super::new_vm_text::{cdrom_note, problem_text};
use super::rows;
use crate::domain::store::DomainStore;
use crate::domain::validate::HostFacts;
use crate::engine::config::DiskFormat;
use crate::launch::connections::new_vm::HostPlan;
use crate::launch::new_vm_form::{
    BootKind, HostLimits, ImageCheck, NetworkChoice, NewVmForm, STEPS, StorageKind, is_iso,
};

pub struct Wizard {
    form: NewVmForm,
    step: usize,
    host: HostLimits,
    /// This host's facts, detected once when the wizard opens: the summary's CPU line and the
    /// VM that Create builds come from the same facts.
    facts: HostFacts,
    store: Option<DomainStore>,
    /// Disk-image progress while creating (0.0 ..= 1.0), `None` when idle.
    progress: Option<f64>,
    /// The VM was defined: the window is about to close, and the form is no longer judged
    /// (its name is now taken by the VM it made).
    created: bool,
    /// Every progress report the last disk creation sent (for tests and the log).
    progress_seen: Vec<f64>,
    /// Image files being inspected by a worker now (paths as typed, trimmed).
    checking: BTreeSet<String>,
    /// Kernel and initrd loads a worker is trying now.
    loading: BTreeSet<crate::launch::new_vm_form::BootFiles>,
    error: Option<String>,
    /// The name the wizard last proposed; replaced when the boot file changes, kept once the
    /// user types their own.
    suggested_name: Option<String>,
    /// The connected libvirt hosts offered besides this computer.
    hosts: Vec<Host>,
    /// Where to define: 0 this computer, else `hosts[target - 1]`.
    target: usize,
    /// What each host offers a new VM, by URI (`None` while asking).
    plans: std::collections::HashMap<String, Option<Result<HostPlan, String>>>,
}

#[derive(Debug)]
pub enum WizardMsg {
    /// An entry, spin button or switch changed: re-read the form from the widgets.
    Edited,
    SetBoot(BootKind),
    SetStorage(StorageKind),
    SetFormat(DiskFormat),
    SetNetwork(NetworkChoice),
    /// Define on this computer (0) or a connected host.
    SetTarget(u32),
    Back,
    Forward,
    Progress(f64),
}

/// What the wizard's workers report.
#[derive(Debug)]
pub enum WizardCmd {
    /// `block::inspect` of an image path (as typed) answered.
    Inspected(String, ImageCheck),
    /// Loading a kernel and initrd as start would answered.
    BootChecked(crate::launch::new_vm_form::BootFiles, Result<(), String>),
    /// The new disk image (if any) is ready, or failed.
    DiskReady(Result<Option<PathBuf>, String>),
    /// What a host offers a new VM.
    Plan(String, Result<HostPlan, String>),
    /// The VM was defined on a host (its name), or why not.
    DefinedOn(String, Result<String, String>),
}

/// What the wizard tells the main window.
#[derive(Debug)]
pub enum WizardOutput {
    /// `name` was defined; start it unless `customize` (then open its details first).
    Created { name: String, customize: bool },
    /// `name` was defined on the libvirt connection `uri`; open its details if `customize`.
    CreatedOn {
        uri: String,
        name: String,
        customize: bool,
    },
}

pub struct WizardWidgets {
    pub window: adw::Window,
    pub title: adw::WindowTitle,
    pub stack: gtk::Stack,
    pub back: gtk::Button,
    pub forward: gtk::Button,
    pub problem: gtk::Label,
    pub boot_kernel: gtk::CheckButton,
    pub boot_disk: gtk::CheckButton,
    pub kernel: gtk::Entry,
    pub initrd: gtk::Entry,
    pub cmdline: gtk::Entry,
    pub boot_image: gtk::Entry,
    pub kernel_group: adw::PreferencesGroup,
    pub disk_group: adw::PreferencesGroup,
    pub memory: gtk::SpinButton,
    pub vcpus: gtk::SpinButton,
    pub storage_none: gtk::CheckButton,
    pub storage_new: gtk::CheckButton,
    pub storage_existing: gtk::CheckButton,
    /// Says, on step 1, that an `.iso` boot image is seen as a read-only disk.
    pub boot_note: gtk::Label,
    pub storage_group: adw::PreferencesGroup,
    pub new_size: gtk::SpinButton,
    /// qcow2 (index 0) or raw (index 1).
    pub new_format: adw::ComboRow,
    pub existing_image: gtk::Entry,
    /// What the existing image is (format, CD-ROM note) once inspected.
    pub existing_note: gtk::Label,
    pub progress: gtk::ProgressBar,
    pub name: gtk::Entry,
    /// User-mode networking (passt) or none, and the note where passt is missing.
    pub network_user: gtk::CheckButton,
    pub network_none: gtk::CheckButton,
    pub network_note: gtk::Label,
    /// The summary's rows (CPU, Memory, Boot, Storage, Network, Display), each value as its
    /// subtitle.
    pub summary: [adw::ActionRow; 6],
    pub customize: gtk::Switch,
    /// This computer or a connected libvirt host.
    pub target: adw::ComboRow,
}

/// An entry in an action row, with a browse button when `choose` names what to pick.
fn entry_row(
    group: &adw::PreferencesGroup,
    title: &str,
    choose: Option<&str>,
    sender: &ComponentSender<Wizard>,
) -> gtk::Entry {
    let (entry, _) = match choose {
        Some(what) => super::file_chooser::path_row(group, title, "", what),
        None => rows::entry_row(group, title, ""),
    };
    entry.set_width_chars(28);
    super::keyboard::enter_presses_default(&entry);
    let sender = sender.clone();
    entry.connect_changed(move |_| sender.input(WizardMsg::Edited));
    entry
}

fn page(stack: &gtk::Stack, name: &str, groups: &[&adw::PreferencesGroup]) {
    let page = adw::PreferencesPage::new();
    for group in groups {
        page.add(*group);
    }
    stack.add_named(&page, Some(name));
}

impl Component for Wizard {
    /// The connected libvirt hosts it may define on besides this computer.
    type Init = Vec<Host>;
    type Input = WizardMsg;
    type Output = WizardOutput;
    type CommandOutput = WizardCmd;
    type Root = adw::Window;
    type Widgets = WizardWidgets;

    fn init_root() -> Self::Root {
        adw::Window::builder()
            .modal(true)
            .default_width(640)
            .default_height(620)
            .title(gettext("New Virtual Machine"))
            .build()
    }

    fn init(
        hosts: Vec<Host>,
        window: adw::Window,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let facts = super::worker::host_facts();
        let host = HostLimits::of(&facts);
        let passt_installed = crate::launch::passt::passt_installed();
        let form = NewVmForm {
            network: NetworkChoice::default_for(passt_installed),
            ..NewVmForm::with_defaults(host)
        };
        let title = adw::WindowTitle::new(&gettext("New Virtual Machine"), "");
        let header = adw::HeaderBar::builder()
            .title_widget(&title)
            .show_end_title_buttons(false)
            .show_start_title_buttons(false)
            .build();
        let back = gtk::Button::with_mnemonic(&gettext("_Back"));
        let forward = gtk::Button::builder()
            .label(gettext("_Forward"))
            .use_underline(true)
            .css_classes(["suggested-action"])
            .build();
        let cancel = gtk::Button::with_mnemonic(&gettext("_Cancel"));
        header.pack_start(&cancel);
        header.pack_start(&back);
        header.pack_end(&forward);
        {
            let window = window.clone();
            cancel.connect_clicked(move |_| window.close());
        }
        {
            let sender = sender.clone();
            back.connect_clicked(move |_| sender.input(WizardMsg::Back));
        }
        {
            let sender = sender.clone();
            forward.connect_clicked(move |_| sender.input(WizardMsg::Forward));
        }

        let stack = gtk::Stack::builder()
            .transition_type(gtk::StackTransitionType::SlideLeftRight)
            .vexpand(true)
            .build();

        // Step 1: where (this computer or a connected host), then how to boot.
        let (target_group, target) = target::target_group(&hosts, &sender);
        let boot::BootWidgets {
            boot_kernel,
            boot_disk,
            kernel,
            initrd,
            cmdline,
            boot_image,
            kernel_group,
            disk_group,
            boot_note,
        } = boot::boot_page(&stack, &target_group, &sender);

        // Step 2: memory and vCPUs.
        let (memory, vcpus) = size::size_page(&stack, host, &form, &sender);

        // Step 3: storage.
        let storage::StorageWidgets {
            storage_group,
            storage_none,
            storage_new,
            storage_existing,
            new_size,
            new_format,
            existing_image,
            existing_note,
            progress,
        } = storage::storage_page(&stack, &form, &sender);

        // Step 4: name and summary.
        let name::NameWidgets {
            name,
            network_user,
            network_none,
            network_note,
            summary,
            customize,
        } = name::name_page(&stack, form.network, passt_installed, &sender);

        let problem = gtk::Label::builder()
            .css_classes(["error"])
            .wrap(true)
            .margin_start(18)
            .margin_end(18)
            .margin_bottom(12)
            .build();
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&header);
        content.append(&stack);
        content.append(&problem);
        window.set_content(Some(&content));
        // Keyboard: Enter presses Forward/Create, Escape cancels, typing starts in the kernel.
        super::keyboard::dialog_keys(&window, &forward);
        super::keyboard::focus_when_shown(&window, &kernel);

        let model = Wizard {
            form,
            step: 0,
            host,
            facts,
            store: DomainStore::open_default().ok(),
            progress: None,
            created: false,
            progress_seen: Vec::new(),
            checking: BTreeSet::new(),
            loading: BTreeSet::new(),
            error: None,
            suggested_name: None,
            hosts,
            target: 0,
            plans: std::collections::HashMap::new(),
        };
        let widgets = WizardWidgets {
            window,
            title,
            stack,
            back,
            forward,
            problem,
            boot_kernel,
            boot_disk,
            kernel,
            initrd,
            cmdline,
            boot_image,
            kernel_group,
            disk_group,
            memory,
            vcpus,
            storage_none,
            storage_new,
            storage_existing,
            boot_note,
            storage_group,
            new_size,
            new_format,
            existing_image,
            existing_note,
            progress,
            name,
            network_user,
            network_none,
            network_note,
            summary,
            customize,
            target,
        };
        sender.input(WizardMsg::Edited);
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut WizardWidgets,
        msg: WizardMsg,
        sender: ComponentSender<Self>,
        _root: &adw::Window,
    ) {
        self.form = read_form(&self.form, widgets);
        let step = self.step;
        self.handle(msg, &sender);
        if self.step != step && self.step + 1 == STEPS {
            self.propose_name(widgets);
        }
        self.inspect_new_images(&sender);
        self.check_boot_files(&sender);
        let step_changed = self.step != step;
        self.update_view(widgets, sender);
        if step_changed {
            self.focus_step(widgets);
        }
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut WizardWidgets,
        msg: WizardCmd,
        sender: ComponentSender<Self>,
        _root: &adw::Window,
    ) {
        self.form = read_form(&self.form, widgets);
        match msg {
            WizardCmd::Inspected(path, check) => {
                self.checking.remove(&path);
                self.form.images.insert(path, check);
            }
            WizardCmd::BootChecked(files, result) => {
                self.loading.remove(&files);
                self.form.boot_checks.insert(files, result);
            }
            WizardCmd::DiskReady(result) => self.finish(result, &sender),
            WizardCmd::Plan(uri, plan) => {
                self.plans.insert(uri, Some(plan));
            }
            WizardCmd::DefinedOn(uri, defined) => self.defined_on_host(uri, defined, &sender),
        }
        self.check_boot_files(&sender);
        self.update_view(widgets, sender);
    }

    fn update_view(&self, widgets: &mut WizardWidgets, _sender: ComponentSender<Self>) {
        let form = &self.form;
        let step_names = ["boot", "size", "storage", "name"];
        widgets.stack.set_visible_child_name(step_names[self.step]);
        widgets.title.set_subtitle(
            &gettext("Step {n} of {total}")
                .replace("{n}", &(self.step + 1).to_string())
                .replace("{total}", &STEPS.to_string()),
        );
        widgets.back.set_visible(self.step > 0);
        widgets.forward.set_label(&if self.step + 1 == STEPS {
            gettext("C_reate")
        } else {
            gettext("_Forward")
        });
        widgets
            .kernel_group
            .set_visible(form.boot == BootKind::Kernel);
        widgets
            .disk_group
            .set_visible(form.boot == BootKind::DiskImage);
        let boot_iso = form.boot == BootKind::DiskImage && is_iso(&form.boot_image);
        widgets.boot_note.set_visible(boot_iso);
        widgets.boot_note.set_text(&cdrom_note("vda"));
        self.show_storage(widgets);
        let problem = self.error.clone().or_else(|| {
            form.problem(self.step, self.host, self.store.as_ref())
                .map(|p| problem_text(&p))
                .or_else(|| self.target_problem().filter(|_| self.step + 1 == STEPS))
                .filter(|_| !self.created)
        });
        widgets.problem.set_text(problem.as_deref().unwrap_or(""));
        widgets.problem.set_visible(problem.is_some());
        widgets
            .forward
            .set_sensitive(problem.is_none() && self.progress.is_none() && !self.created);
        widgets.progress.set_visible(self.progress.is_some());
        if let Some(share) = self.progress {
            widgets.progress.set_fraction(share);
            widgets
                .progress
                .set_text(Some(&gettext("Creating the disk image…")));
        }
        if self.step + 1 == STEPS {
            let new_image = self.store.as_ref().map(|s| form.new_image_path(s));
            for (row, value) in widgets.summary.iter().zip(name::summary_values(
                form,
                &self.facts,
                new_image.as_deref(),
            )) {
                row.set_subtitle(&glib::markup_escape_text(&value));
            }
            if let Some(cpu) = self.host_cpu_summary() {
                widgets.summary[0].set_subtitle(&glib::markup_escape_text(&cpu));
            }
        }
    }
}

impl Wizard {
    /// The form as the user has it now.
    pub fn form(&self) -> &NewVmForm {
        &self.form
    }

    /// The progress reports of the last disk image creation, in order.
    pub fn progress_seen(&self) -> &[f64] {
        &self.progress_seen
    }

    /// The step shown (0-based).
    pub fn step(&self) -> usize {
        self.step
    }

    fn handle(&mut self, msg: WizardMsg, sender: &ComponentSender<Self>) {
        match msg {
            WizardMsg::Edited => {}
            WizardMsg::SetBoot(kind) => self.form.boot = kind,
            WizardMsg::SetStorage(kind) => self.form.storage = kind,
            WizardMsg::SetFormat(format) => self.form.new_image_format = format,
            WizardMsg::SetNetwork(choice) => self.form.network = choice,
            WizardMsg::SetTarget(index) => self.set_target(index, sender),
            WizardMsg::Back => self.step = self.step.saturating_sub(1),
            WizardMsg::Forward => {
                if self.current_problem().is_some() || self.progress.is_some() {
                    return;
                }
                if self.step + 1 < STEPS {
                    self.step += 1;
                } else if self.chosen_host().is_some() {
                    if self.target_problem().is_none() {
                        self.create_on_host(sender);
                    }
                } else {
                    self.create(sender);
                }
            }
            WizardMsg::Progress(share) => {
                // A report may arrive after the result (two channels): it is recorded, but
                // shows no bar once creation has ended.
                self.progress_seen.push(share);
                if self.progress.is_some() {
                    self.progress = Some(share);
                }
            }
        }
    }

    fn current_problem(&self) -> Option<String> {
        self.form
            .problem(self.step, self.host, self.store.as_ref())
            .map(|p| problem_text(&p))
    }

    fn finish(&mut self, disk: Result<Option<PathBuf>, String>, sender: &ComponentSender<Self>) {
        self.progress = None;
        let created_image = disk.clone().ok().flatten();
        let result = disk.and_then(|disk| {
            let prefs = crate::prefs::live::current();
            let domain = self
                .form
                .build(&prefs, &self.facts, disk.as_deref())
                .map_err(|e| e.to_string())?;
            let store = self
                .store
                .as_ref()
                .ok_or_else(|| gettext("no data folder"))?;
            store.define(&domain.to_xml()).map_err(|e| e.to_string())
        });
        match result {
            Ok(stored) => {
                self.created = true;
                // A disk-booted VM cannot start in Vireo's engine (see the step-1 note):
                // it opens in its details rather than failing to start.
                let _ = sender.output(WizardOutput::Created {
                    name: stored.name,
                    customize: self.form.customize || self.form.boot == BootKind::DiskImage,
                });
            }
            Err(error) => {
                // Leave nothing half-made behind: a disk image made for a VM that was not
                // defined is removed again.
                if let Some(image) = created_image {
                    std::thread::spawn(move || std::fs::remove_file(image));
                }
                self.error = Some(error);
            }
        }
    }
}
