//! Where the wizard defines the new VM: "This computer" (the built-in engine) or one of the
//! connected libvirt hosts. For a host, the CPU and hypervisor type come from that host
//! ([`HostPlan`]: its capabilities and domain capabilities, asked once in a worker), the
//! summary says what it will get there, and Create defines it with `virDomainDefineXML`.

use std::sync::Arc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Wizard, WizardCmd, WizardMsg, WizardOutput};
use crate::domain::Domain;
use crate::launch::connections::Connection;
use crate::launch::connections::new_vm::HostPlan;
use crate::launch::new_vm_form::StorageKind;
use crate::ui::worker::run_blocking;

/// A connected libvirt host the wizard can define on.
pub type Host = (String, Arc<Connection>);

/// The "Create on" group: a combo of this computer and `hosts`.
pub(super) fn target_group(
    hosts: &[Host],
    sender: &ComponentSender<Wizard>,
) -> (adw::PreferencesGroup, adw::ComboRow) {
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Create on"))
        .build();
    let mut names = vec![gettext("This computer")];
    names.extend(hosts.iter().map(|(uri, _)| uri.clone()));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let row = adw::ComboRow::builder()
        .title(gettext("Connection"))
        .model(&gtk::StringList::new(&names))
        .build();
    group.add(&row);
    // Only worth showing when there is a choice.
    group.set_visible(!hosts.is_empty());
    let sender = sender.clone();
    row.connect_selected_notify(move |row| sender.input(WizardMsg::SetTarget(row.selected())));
    (group, row)
}

impl Wizard {
    /// The chosen libvirt host, `None` for this computer.
    pub(super) fn chosen_host(&self) -> Option<&Host> {
        self.target.checked_sub(1).and_then(|i| self.hosts.get(i))
    }

    /// The connection the VM will be defined on (tests): `None` for this computer.
    pub fn target_uri(&self) -> Option<&str> {
        self.chosen_host().map(|(uri, _)| uri.as_str())
    }

    /// Chooses where to define; asks a host what it offers the first time.
    pub(super) fn set_target(&mut self, index: u32, sender: &ComponentSender<Self>) {
        self.target = index as usize;
        self.error = None;
        // A host's VM names that host's files: this computer cannot check them.
        self.form.files_elsewhere = self.chosen_host().is_some();
        let Some((uri, conn)) = self.chosen_host().cloned() else {
            return;
        };
        if self.plans.contains_key(&uri) {
            return;
        }
        self.plans.insert(uri.clone(), None);
        sender.oneshot_command(async move {
            let plan = ask_host_plan(&uri, conn).await;
            WizardCmd::Plan(uri, plan)
        });
    }

    /// What keeps Create from defining on the chosen host, if anything.
    pub(super) fn target_problem(&self) -> Option<String> {
        let (uri, _) = self.chosen_host()?;
        if self.form.storage == StorageKind::NewImage {
            return Some(
                gettext(
                    "A new disk image is made on this computer only. For {host}, choose an existing image on that host, or no storage.",
                )
                .replace("{host}", uri),
            );
        }
        match self.plans.get(uri) {
            Some(Some(Err(why))) => Some(why.clone()),
            Some(Some(Ok(_))) => None,
            _ => Some(gettext("Asking {host} what it offers…").replace("{host}", uri)),
        }
    }

    /// The domain for the chosen host: built as for this computer, then fitted to the host.
    fn domain_for_host(&self, plan: &HostPlan) -> Result<String, String> {
        let prefs = crate::prefs::live::current();
        let domain = self
            .form
            .build(&prefs, &self.facts, None)
            .map_err(|e| e.to_string())?;
        plan.adapt(&domain.to_xml()).map_err(|e| e.to_string())
    }

    /// The summary's CPU line for the chosen host, `None` for this computer.
    pub(super) fn host_cpu_summary(&self) -> Option<String> {
        let (uri, _) = self.chosen_host()?;
        let Some(Some(Ok(plan))) = self.plans.get(uri) else {
            return Some(gettext("Asking {host}…").replace("{host}", uri));
        };
        let cpu = self
            .domain_for_host(plan)
            .ok()
            .and_then(|xml| Domain::parse(&xml).ok())
            .and_then(|d| {
                let cpu = d.document().at(&["cpu"])?;
                Some(match cpu.attr("mode") {
                    Some(mode @ ("host-model" | "host-passthrough")) => mode.to_owned(),
                    _ => cpu.child("model")?.text().trim().to_owned(),
                })
            });
        let (usable, listed) = plan.usable_count();
        let cpu = cpu.unwrap_or_else(|| gettext("the hypervisor's default CPU"));
        Some(if listed == 0 {
            gettext("{cpu} on {host} ({type}; that host does not list its CPU models)")
                .replace("{cpu}", &cpu)
                .replace("{host}", uri)
                .replace("{type}", &plan.virt_type)
        } else {
            gettext("{cpu} on {host} ({type}; {usable} of {listed} CPU models usable there)")
                .replace("{cpu}", &cpu)
                .replace("{host}", uri)
                .replace("{type}", &plan.virt_type)
                .replace("{usable}", &usable.to_string())
                .replace("{listed}", &listed.to_string())
        })
    }

    /// Create on a libvirt host: defines the fitted domain there in a worker.
    pub(super) fn create_on_host(&mut self, sender: &ComponentSender<Self>) {
        let Some((uri, conn)) = self.chosen_host().cloned() else {
            return;
        };
        let Some(Some(Ok(plan))) = self.plans.get(&uri) else {
            return;
        };
        let xml = match self.domain_for_host(plan) {
            Ok(xml) => xml,
            Err(why) => {
                self.error = Some(why);
                return;
            }
        };
        self.progress = Some(0.0);
        let what = gettext("defining the VM on {host}").replace("{host}", &uri);
        sender.oneshot_command(async move {
            let defined = run_blocking(&what, move || conn.define(&xml).map_err(|e| e.to_string()))
                .await
                .and_then(|r| r);
            WizardCmd::DefinedOn(uri, defined)
        });
    }

    /// The host answered Create.
    pub(super) fn defined_on_host(
        &mut self,
        uri: String,
        defined: Result<String, String>,
        sender: &ComponentSender<Self>,
    ) {
        self.progress = None;
        match defined {
            Ok(name) => {
                self.created = true;
                let customize = self.form.customize;
                let _ = sender.output(WizardOutput::CreatedOn {
                    uri,
                    name,
                    customize,
                });
            }
            Err(why) => self.error = Some(why),
        }
    }
}

/// Asks the host at `uri` what it offers a VM (its type and CPU models) in a worker; shared by
/// the wizard and a libvirt VM's details.
pub(crate) async fn ask_host_plan(uri: &str, conn: Arc<Connection>) -> Result<HostPlan, String> {
    let what = gettext("asking {host} what it offers a new VM").replace("{host}", uri);
    run_blocking(&what, move || match &*conn {
        Connection::Libvirt(conn) => HostPlan::of(conn).map_err(|e| e.to_string()),
        Connection::Builtin(_) => Err(gettext("not a libvirt connection")),
    })
    .await
    .and_then(|r| r)
}
