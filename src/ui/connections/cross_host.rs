//! CPU across hosts, for one VM: can each connected host run its CPU (naming what a host
//! lacks), and "Use a CPU all my hosts can run", which gives the VM the migratable baseline of
//! every host's host-model CPU in one click, after showing what each host then gives up
//! against its own host-model. Answers come from a worker ([`CrossHostFacts`]).

use std::cell::RefCell;
use std::rc::Rc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{ComponentSender, adw, gtk};

use super::group::Link;
use super::{Connections, ConnectionsCmd, ConnectionsMsg};
use crate::launch::connections::Target;
use crate::launch::connections::cross_host as hosts;
use crate::launch::connections::cross_host::{CommonCpu, HostAnswer, HostLoss, HostVerdict};
use crate::ui::worker::run_blocking;

/// What the dialog shows, gathered off the UI thread.
#[derive(Debug, Clone)]
pub struct CrossHostFacts {
    /// Each host's answer for the VM's current CPU.
    pub verdicts: Result<Vec<HostVerdict>, String>,
    /// The CPU all hosts can run and each host's loss with it.
    pub plan: Result<CommonCpu, String>,
}

/// The dialog's widgets (public for the GUI tests).
#[derive(Clone)]
pub struct CrossHostDialog {
    pub window: adw::Window,
    /// The VM's connection and name.
    pub uri: String,
    pub vm: String,
    /// One row per host: its name and answer.
    pub hosts: gtk::ListBox,
    /// The common CPU's model.
    pub common: gtk::Label,
    /// One row per host: what it loses with the common CPU.
    pub losses: gtk::ListBox,
    pub apply: gtk::Button,
    /// Progress, the outcome of applying, or an error.
    pub status: gtk::Label,
    cpu_xml: Rc<RefCell<Option<String>>>,
}

/// One host's answer in words.
pub fn answer_text(answer: &HostAnswer) -> String {
    match answer {
        HostAnswer::CanRun(_) => gettext("Can run it"),
        HostAnswer::FollowsHost(mode) => gettext(
            "Can start it, but its CPU follows each host ({mode}): the guest sees a different CPU on each host, so a move between hosts may fail",
        )
        .replace("{mode}", mode),
        HostAnswer::Cannot { missing, .. } if !missing.is_empty() => {
            gettext("Cannot run it: lacks {features}").replace("{features}", &missing.join(", "))
        }
        HostAnswer::Cannot { why, .. } => gettext("Cannot run it: {why}").replace("{why}", why),
        HostAnswer::Unreachable(why) => gettext("Not asked: {why}").replace("{why}", why),
    }
}

/// What a host gives up with the common CPU, in words.
pub fn loss_text(loss: &HostLoss) -> String {
    match &loss.loses {
        Ok(lost) if lost.is_empty() => gettext("Loses nothing against its host-model CPU"),
        Ok(lost) => gettext("Loses against its host-model CPU: {features}")
            .replace("{features}", &lost.join(", ")),
        Err(why) => gettext("Not asked: {why}").replace("{why}", why),
    }
}

fn icon_for(answer: &HostAnswer) -> &'static str {
    match answer {
        HostAnswer::CanRun(_) => "emblem-ok-symbolic",
        HostAnswer::FollowsHost(_) => "dialog-information-symbolic",
        HostAnswer::Cannot { .. } => "dialog-warning-symbolic",
        HostAnswer::Unreachable(_) => "network-offline-symbolic",
    }
}

impl CrossHostDialog {
    /// Shows the answers; the Use button applies the common CPU.
    pub fn show(&self, facts: &CrossHostFacts) {
        clear(&self.hosts);
        clear(&self.losses);
        match &facts.verdicts {
            Ok(verdicts) => {
                for verdict in verdicts {
                    let row = host_row(&verdict.host, &answer_text(&verdict.answer));
                    row.add_prefix(&gtk::Image::from_icon_name(icon_for(&verdict.answer)));
                    self.hosts.append(&row);
                }
                self.status.set_text("");
            }
            Err(why) => self.status.set_text(why),
        }
        match &facts.plan {
            Ok(plan) => {
                let model = crate::cpu::CpuDef::first_from_xml(&plan.cpu_xml)
                    .ok()
                    .and_then(|c| c.model)
                    .unwrap_or_else(|| "?".into());
                self.common
                    .set_text(&gettext("Common CPU: {model}").replace("{model}", &model));
                self.common.set_tooltip_text(Some(&plan.cpu_xml));
                for loss in &plan.hosts {
                    self.losses.append(&host_row(&loss.host, &loss_text(loss)));
                }
                *self.cpu_xml.borrow_mut() = Some(plan.cpu_xml.clone());
                self.apply.set_sensitive(true);
            }
            Err(why) => {
                self.common
                    .set_text(&gettext("No common CPU: {why}").replace("{why}", why));
                *self.cpu_xml.borrow_mut() = None;
                self.apply.set_sensitive(false);
            }
        }
    }

    /// Says how applying the common CPU went.
    pub fn applied(&self, result: &Result<(), String>) {
        self.status.set_text(&match result {
            Ok(()) => {
                gettext("“{vm}” now uses the common CPU. It takes effect the next time it starts.")
                    .replace("{vm}", &self.vm)
            }
            Err(why) => why.clone(),
        });
    }
}

fn clear(list: &gtk::ListBox) {
    while let Some(row) = list.row_at_index(0) {
        list.remove(&row);
    }
}

fn host_row(host: &str, text: &str) -> adw::ActionRow {
    let host = if host == "This computer" {
        gettext("This computer")
    } else {
        host.to_owned()
    };
    adw::ActionRow::builder()
        .title(glib::markup_escape_text(&host).as_str())
        .subtitle(glib::markup_escape_text(text).as_str())
        .build()
}

/// Builds and shows the dialog for `vm` on `uri` (answers follow through [`CrossHostDialog::show`]).
pub fn present(
    parent: Option<&gtk::Window>,
    uri: &str,
    vm: &str,
    sender: &ComponentSender<Connections>,
) -> CrossHostDialog {
    let window = adw::Window::builder()
        .modal(true)
        .title(gettext("CPU Across Hosts"))
        .default_width(640)
        .default_height(560)
        .build();
    window.set_transient_for(parent);
    let header = adw::HeaderBar::new();
    let page = adw::PreferencesPage::new();
    let hosts_group = adw::PreferencesGroup::builder()
        .title(gettext("Can each host run the CPU of “{vm}”?").replace("{vm}", vm))
        .description(gettext(
            "Every connected host is asked: its own CPU, QEMU and KVM.",
        ))
        .build();
    let hosts = gtk::ListBox::builder()
        .selection_mode(gtk::SelectionMode::None)
        .css_classes(["boxed-list"])
        .build();
    hosts_group.add(&hosts);
    let common_group = adw::PreferencesGroup::builder()
        .title(gettext("A CPU all my hosts can run"))
        .description(gettext(
            "The features every host has, without those that block migration. A VM with this CPU can start on and move between all of them; each host then gives up what its own CPU has beyond it:",
        ))
        .build();
    let common = gtk::Label::builder()
        .label(gettext("Asking every host…"))
        .xalign(0.0)
        .css_classes(["heading"])
        .margin_bottom(6)
        .build();
    common_group.add(&common);
    let losses = gtk::ListBox::builder()
        .selection_mode(gtk::SelectionMode::None)
        .css_classes(["boxed-list"])
        .build();
    common_group.add(&losses);
    let apply = gtk::Button::builder()
        .label(gettext("_Use a CPU All My Hosts Can Run"))
        .use_underline(true)
        .css_classes(["suggested-action", "pill"])
        .halign(gtk::Align::Center)
        .margin_top(12)
        .sensitive(false)
        .build();
    common_group.add(&apply);
    let status = gtk::Label::builder()
        .xalign(0.0)
        .wrap(true)
        .selectable(true)
        .margin_top(6)
        .build();
    common_group.add(&status);
    page.add(&hosts_group);
    page.add(&common_group);
    let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
    content.append(&header);
    content.append(&page);
    window.set_content(Some(&content));
    let dialog = CrossHostDialog {
        window: window.clone(),
        uri: uri.to_owned(),
        vm: vm.to_owned(),
        hosts,
        common,
        losses,
        apply: apply.clone(),
        status,
        cpu_xml: Rc::new(RefCell::new(None)),
    };
    {
        let (d, sender) = (dialog.clone(), sender.clone());
        apply.connect_clicked(move |button| {
            if let Some(cpu_xml) = d.cpu_xml.borrow().clone() {
                button.set_sensitive(false);
                d.status.set_text(&gettext("Applying…"));
                sender.input(ConnectionsMsg::UseCommonCpu {
                    uri: d.uri.clone(),
                    name: d.vm.clone(),
                    cpu_xml,
                });
            }
        });
    }
    crate::ui::keyboard::escape_closes(&window);
    window.present();
    dialog
}

impl Connections {
    /// Asks every connected host (and this computer) about `name`'s CPU, in a worker.
    pub(super) fn ask_hosts(&self, uri: &str, name: &str, sender: &ComponentSender<Self>) {
        let Some(host) = self.host(uri) else {
            return;
        };
        let mut targets = vec![Target::Builtin];
        targets.extend(
            self.groups
                .iter()
                .filter(|g| g.link == Link::Connected)
                .map(|g| Target::Libvirt(g.uri.clone())),
        );
        let (uri, name) = (uri.to_owned(), name.to_owned());
        let what = gettext("asking the hosts about {name}'s CPU").replace("{name}", &name);
        sender.oneshot_command(async move {
            let vm = name.clone();
            let facts = run_blocking(&what, move || {
                let verdicts = host
                    .get()
                    .and_then(|conn| conn.dumpxml(&vm, true).map_err(|e| e.to_string()))
                    .and_then(|xml| {
                        hosts::compare_on_hosts(&xml, &targets).map_err(|e| e.to_string())
                    });
                let plan = hosts::plan_common_cpu(&targets).map_err(|e| e.to_string());
                CrossHostFacts { verdicts, plan }
            })
            .await
            .unwrap_or_else(|why| CrossHostFacts {
                verdicts: Err(why.clone()),
                plan: Err(why),
            });
            ConnectionsCmd::CrossHost(uri, name, facts)
        });
    }

    /// Gives `name` on `uri` the common CPU (redefines it) in a worker.
    pub(super) fn use_common_cpu(
        &self,
        uri: String,
        name: String,
        cpu_xml: String,
        sender: &ComponentSender<Connections>,
    ) {
        let Some(host) = self.host(&uri) else {
            return;
        };
        let what = gettext("changing the CPU of {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let vm = name.clone();
            let result = run_blocking(&what, move || {
                let conn = host.get()?;
                let xml = conn.dumpxml(&vm, true).map_err(|e| e.to_string())?;
                let xml = hosts::with_cpu(&xml, &cpu_xml).map_err(|e| e.to_string())?;
                conn.define(&xml).map(drop).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::CommonCpuUsed(uri, name, result)
        });
    }
}
