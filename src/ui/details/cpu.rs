//! Details → CPU: the mode (hypervisor default, a named model, host-model, passthrough), the
//! model list marked usable or not on this host, single features with their policies, and the
//! topology; while editing it says whether this host can start the CPU as edited.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{ComponentSender, adw, gtk};

use super::{Details, DetailsCmd, DetailsMsg, DetailsWidgets, add_page, cpu_models, spin};
use crate::cpu::{CpuMap, Policy};
use crate::domain::Domain;
use crate::launch::cpu_edit::{CpuChoice, CpuSettings, host_verdict, model_usability};
use crate::ui::rows;

const POLICIES: [Policy; 5] = [
    Policy::Force,
    Policy::Require,
    Policy::Optional,
    Policy::Disable,
    Policy::Forbid,
];

/// The CPU page's settings as read and its widgets.
pub(super) struct CpuPage {
    pub cpu: CpuSettings,
    pub map: Option<&'static CpuMap>,
    pub cpu_mode: adw::ComboRow,
    pub cpuid_note: gtk::Label,
    pub model_row: adw::ExpanderRow,
    pub model_search: gtk::SearchEntry,
    pub model_buttons: Vec<(String, gtk::CheckButton)>,
    pub features: gtk::ListBox,
    pub feature_entry: gtk::Entry,
    pub vcpus: gtk::SpinButton,
    pub sockets: gtk::SpinButton,
    pub cores: gtk::SpinButton,
    pub threads: gtk::SpinButton,
    pub vcpu_warning: gtk::Label,
}

fn mode_label(choice: CpuChoice) -> String {
    match choice {
        CpuChoice::HvDefault => gettext("Hypervisor default"),
        CpuChoice::Custom => gettext("Named CPU model"),
        CpuChoice::HostModel => gettext("Copy host CPU configuration (host-model)"),
        CpuChoice::HostPassthrough => gettext("Host passthrough"),
    }
}

/// Builds the CPU page into `stack` and starts the worker that measures this host's CPU
/// facts (they arrive as [`DetailsCmd::HostCpu`]).
pub(super) fn cpu_page(
    stack: &adw::ViewStack,
    domain: &Domain,
    syncing: &std::rc::Rc<std::cell::Cell<bool>>,
    sender: &ComponentSender<Details>,
) -> CpuPage {
    let cpu = CpuSettings::read(domain);
    // Loaded once per process, by the host-facts worker started with the main window.
    let map = crate::domain::cpu::cpu_map();
    // Detected once, off the UI thread, when the main window opened.
    let kvm = crate::ui::worker::host_facts().kvm_cpuid;
    // Whether KVM enforces CPUID may take a probe guest to find out (then it is cached per
    // host boot): measured off the UI thread; the host warning appears when it arrives.
    let what = gettext("the host CPU check");
    sender.oneshot_command(async move {
        DetailsCmd::HostCpu(
            crate::ui::worker::run_blocking(&what, || {
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
        .label(crate::ui::new_vm_text::cpuid_not_enforced_text())
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
    } = cpu_models::model_list(&model_row, usability, syncing, sender);
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
        stack,
        "cpu",
        &gettext("CPU"),
        "vireo-cpu-symbolic",
        &cpu_page,
    );
    CpuPage {
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
    }
}

/// This host's online CPUs (0 when unknown), read once.
pub fn host_cpus() -> u32 {
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| u32::try_from(crate::host::facts::online_cpus()).unwrap_or(u32::MAX))
}

impl Details {
    /// Takes this host's CPU facts from the worker and re-judges the CPU as edited.
    pub(super) fn host_cpu_arrived(
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
    pub(super) fn show_vcpu_warning(&self, w: &DetailsWidgets) {
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

    pub(super) fn add_feature(&mut self, name: String) {
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
    pub(super) fn show_host_warning(&self, w: &DetailsWidgets) {
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

    /// Puts the CPU settings on the CPU page (without taking the changes as edits).
    pub(super) fn show_cpu(&self, w: &mut DetailsWidgets, sender: &ComponentSender<Self>) {
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
