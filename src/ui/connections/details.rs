//! The details window of a VM on a libvirt connection: its CPU (vCPU count and CPU mode) and
//! its XML, saved with `virDomainDefineXML` on that connection. A definition changed on the
//! host after it was opened here (another client redefined it) is not overwritten: Save says
//! so and offers Reload ([`crate::launch::connections::edit`]).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{Component, ComponentParts, ComponentSender, adw, gtk};

use crate::launch::connections::Connection;
use crate::launch::connections::edit::{self, CpuEdit, CpuMode, Loaded};
use crate::launch::connections::new_vm::HostPlan;
use crate::ui::rows;
use crate::ui::worker::run_blocking;

/// What opens the window: the VM's connection (the group's open one) and name.
#[derive(Debug, Clone)]
pub struct RemoteDetailsInit {
    pub uri: String,
    pub name: String,
    pub conn: Arc<Connection>,
}

/// The window's widgets (public for the GUI tests).
#[derive(Clone)]
pub struct RemoteDetailsWidgets {
    pub window: adw::Window,
    pub stack: adw::ViewStack,
    pub vcpus: gtk::SpinButton,
    /// Hypervisor default, host-passthrough, host-model, a named model.
    pub mode: adw::ComboRow,
    pub model: gtk::Entry,
    /// Whether the host can run the named model, and which it can (from its domcapabilities).
    pub model_note: gtk::Label,
    pub xml: gtk::TextView,
    pub save: gtk::Button,
    pub reload: gtk::Button,
    /// Why the last load or save failed, or what it did.
    pub message: gtk::Label,
}

pub struct RemoteDetails {
    pub widgets: RemoteDetailsWidgets,
    uri: String,
    name: String,
    conn: Arc<Connection>,
    /// The definition as loaded (the base a save compares with the host's).
    loaded: Option<Loaded>,
    /// What the host offers a VM (its CPU models and which are usable), once asked.
    plan: Option<HostPlan>,
    xml_edited: bool,
    cpu_edited: bool,
    /// The last save found the host's definition changed: Reload is the way on.
    changed_on_host: bool,
    busy: bool,
    /// Set while the window fills its widgets, so their signals are not taken as edits.
    syncing: Rc<Cell<bool>>,
}

#[derive(Debug)]
pub enum RemoteDetailsMsg {
    XmlEdited,
    CpuEdited,
    Save,
    /// Load the host's definition again (unsaved edits are dropped).
    Reload,
}

#[derive(Debug)]
pub enum RemoteDetailsCmd {
    Loaded(Result<Loaded, String>),
    /// Saved (the host's definition now), or why not and whether it changed on the host.
    Saved(Result<Loaded, (String, bool)>),
    /// What the host offers (asked once, beside the first load).
    Plan(Result<HostPlan, String>),
}

/// The mode list's order.
const MODES: usize = 4;

fn mode_index(mode: &Option<CpuMode>) -> u32 {
    match mode {
        None => 0,
        Some(CpuMode::HostPassthrough) => 1,
        Some(CpuMode::HostModel) => 2,
        Some(CpuMode::Custom(_)) => 3,
    }
}

impl Component for RemoteDetails {
    type Init = RemoteDetailsInit;
    type Input = RemoteDetailsMsg;
    type Output = ();
    type CommandOutput = RemoteDetailsCmd;
    type Root = adw::Window;
    type Widgets = ();

    fn init_root() -> adw::Window {
        adw::Window::builder()
            .default_width(760)
            .default_height(640)
            .build()
    }

    fn init(
        init: RemoteDetailsInit,
        window: adw::Window,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let RemoteDetailsInit { uri, name, conn } = init;
        let heading = gettext("{name} on {host}")
            .replace("{name}", &name)
            .replace("{host}", &uri);
        window.set_title(Some(&heading));
        let header = adw::HeaderBar::new();
        let save = gtk::Button::builder()
            .label(gettext("Save"))
            .css_classes(["suggested-action"])
            .sensitive(false)
            .build();
        let reload = gtk::Button::builder()
            .label(gettext("Reload"))
            .tooltip_text(gettext("Load the definition from the host again"))
            .build();
        header.pack_end(&save);
        header.pack_start(&reload);
        let message = gtk::Label::builder()
            .wrap(true)
            .xalign(0.0)
            .selectable(true)
            .margin_start(12)
            .margin_end(12)
            .margin_top(6)
            .visible(false)
            .build();

        let syncing = Rc::new(Cell::new(true));
        let edited = {
            let (sender, syncing) = (sender.clone(), syncing.clone());
            move || {
                if !syncing.get() {
                    sender.input(RemoteDetailsMsg::CpuEdited);
                }
            }
        };
        let cpu_page = adw::PreferencesPage::new();
        let group = adw::PreferencesGroup::builder()
            .title(gettext("Processor"))
            .description(gettext(
                "Changes take effect when the virtual machine next starts on this host.",
            ))
            .build();
        cpu_page.add(&group);
        let vcpus = rows::spin_row(&group, &gettext("vCPUs"), None, (1.0, 4096.0, 1.0), 1.0);
        let modes = gtk::StringList::new(&[
            &gettext("Hypervisor default"),
            &gettext("Host CPU (host-passthrough)"),
            &gettext("Host model (host-model)"),
            &gettext("Named model"),
        ]);
        let mode = adw::ComboRow::builder()
            .title(gettext("CPU"))
            .model(&modes)
            .build();
        group.add(&mode);
        let (model, _) = rows::entry_row(&group, &gettext("Model"), "");
        let model_note = gtk::Label::builder()
            .wrap(true)
            .xalign(0.0)
            .margin_top(6)
            .css_classes(["dim-label"])
            .visible(false)
            .build();
        group.add(&model_note);
        {
            let edited = edited.clone();
            vcpus.connect_value_changed(move |_| edited());
        }
        {
            let (edited, model) = (edited.clone(), model.clone());
            mode.connect_selected_notify(move |row| {
                model.set_sensitive(row.selected() == MODES as u32 - 1);
                edited();
            });
        }
        model.connect_changed(move |_| edited());

        let xml = rows::xml_editor();
        {
            let (sender, syncing) = (sender.clone(), syncing.clone());
            xml.buffer().connect_changed(move |_| {
                if !syncing.get() {
                    sender.input(RemoteDetailsMsg::XmlEdited);
                }
            });
        }
        let stack = adw::ViewStack::new();
        stack
            .add_titled(&cpu_page, Some("cpu"), &gettext("CPU"))
            .set_icon_name(Some("computer-symbolic"));
        stack
            .add_titled(
                &gtk::ScrolledWindow::builder()
                    .child(&xml)
                    .vexpand(true)
                    .build(),
                Some("xml"),
                &gettext("XML"),
            )
            .set_icon_name(Some("text-x-generic-symbolic"));
        // Which VM on which host, always in sight; the pages below it.
        header.set_title_widget(Some(&adw::WindowTitle::new(&name, &uri)));
        let switcher = adw::ViewSwitcher::builder()
            .stack(&stack)
            .policy(adw::ViewSwitcherPolicy::Wide)
            .halign(gtk::Align::Center)
            .margin_top(6)
            .build();
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&header);
        content.append(&switcher);
        content.append(&message);
        content.append(&stack);
        window.set_content(Some(&content));
        for (button, msg) in [(&save, true), (&reload, false)] {
            let sender = sender.clone();
            button.connect_clicked(move |_| {
                sender.input(if msg {
                    RemoteDetailsMsg::Save
                } else {
                    RemoteDetailsMsg::Reload
                })
            });
        }
        let widgets = RemoteDetailsWidgets {
            window,
            stack,
            vcpus,
            mode,
            model,
            model_note,
            xml,
            save,
            reload,
            message,
        };
        let mut model = RemoteDetails {
            widgets,
            uri,
            name,
            conn,
            loaded: None,
            plan: None,
            xml_edited: false,
            cpu_edited: false,
            changed_on_host: false,
            busy: false,
            syncing,
        };
        model.load(&sender);
        model.ask_plan(&sender);
        ComponentParts { model, widgets: () }
    }

    fn update(&mut self, msg: RemoteDetailsMsg, sender: ComponentSender<Self>, _: &adw::Window) {
        match msg {
            RemoteDetailsMsg::XmlEdited => self.xml_edited = true,
            RemoteDetailsMsg::CpuEdited => self.cpu_edited = true,
            RemoteDetailsMsg::Reload => self.load(&sender),
            RemoteDetailsMsg::Save => self.save(&sender),
        }
        self.show_state();
    }

    fn update_cmd(&mut self, cmd: RemoteDetailsCmd, _: ComponentSender<Self>, _: &adw::Window) {
        if !matches!(cmd, RemoteDetailsCmd::Plan(_)) {
            self.busy = false;
        }
        match cmd {
            RemoteDetailsCmd::Plan(Ok(plan)) => self.plan = Some(plan),
            // Only the note is missing; the window works without it.
            RemoteDetailsCmd::Plan(Err(why)) => tracing::info!(%why, "no CPU models from the host"),
            RemoteDetailsCmd::Loaded(Ok(loaded)) => {
                self.fill(loaded);
                self.say(None, false);
            }
            RemoteDetailsCmd::Loaded(Err(why)) => self.say(Some(&why), true),
            RemoteDetailsCmd::Saved(Ok(loaded)) => {
                self.fill(loaded);
                let saved =
                    gettext("Saved on the host; changes take effect when the VM next starts");
                self.say(Some(&saved), false);
            }
            RemoteDetailsCmd::Saved(Err((why, changed))) => {
                self.changed_on_host = changed;
                let why = if changed {
                    gettext(
                        "This VM was changed on the host since it was opened here (by virsh, virt-manager or another window), so nothing was saved. Reload shows the host's version; your edits here are then replaced.",
                    )
                } else {
                    why
                };
                self.say(Some(&why), true);
            }
        }
        self.show_state();
    }
}

impl RemoteDetails {
    /// The definition as loaded (tests).
    pub fn loaded_xml(&self) -> Option<&str> {
        self.loaded.as_ref().map(|l| l.xml.as_str())
    }

    /// Whether the last save was refused because the host's definition changed (tests).
    pub fn changed_on_host(&self) -> bool {
        self.changed_on_host
    }

    /// The message shown above the pages (tests).
    pub fn message(&self) -> Option<String> {
        let label = &self.widgets.message;
        label.is_visible().then(|| label.text().to_string())
    }

    /// Whether a load or save is under way (tests).
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    fn load(&mut self, sender: &ComponentSender<Self>) {
        self.busy = true;
        let (conn, name) = (self.conn.clone(), self.name.clone());
        let what = gettext("reading the definition of {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let loaded = run_blocking(&what, move || {
                edit::load(&conn, &name).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            RemoteDetailsCmd::Loaded(loaded)
        });
    }

    /// Asks the host what it offers a VM (its CPU models, usable or not), for the model note.
    fn ask_plan(&self, sender: &ComponentSender<Self>) {
        let (uri, conn) = (self.uri.clone(), self.conn.clone());
        sender.oneshot_command(async move {
            RemoteDetailsCmd::Plan(crate::ui::wizard::ask_host_plan(&uri, conn).await)
        });
    }

    /// Says under a named model whether this host can run it, naming the models it can; a
    /// host that lists no models (the test driver, an old libvirt) gets no note.
    fn show_model_note(&self) {
        let w = &self.widgets;
        let named = w.mode.selected() == MODES as u32 - 1;
        let model = w.model.text().trim().to_owned();
        let text = self
            .plan
            .as_ref()
            .filter(|p| named && !model.is_empty() && !p.models.is_empty())
            .map(|plan| model_note(plan, &model, &self.uri));
        w.model_note.set_visible(text.is_some());
        if let Some((text, fits)) = text {
            w.model_note.set_text(&text);
            if fits {
                w.model_note.remove_css_class("error");
            } else {
                w.model_note.add_css_class("error");
            }
        }
    }

    /// The edited definition: the XML page's text if edited, else the loaded one, with the
    /// CPU page's choices on top when they were edited.
    fn edited_xml(&self, loaded: &Loaded) -> Result<String, String> {
        let w = &self.widgets;
        let base = if self.xml_edited {
            let buffer = w.xml.buffer();
            buffer
                .text(&buffer.start_iter(), &buffer.end_iter(), false)
                .to_string()
        } else {
            loaded.xml.clone()
        };
        if !self.cpu_edited {
            return Ok(base);
        }
        let mode = match w.mode.selected() {
            0 => None,
            1 => Some(CpuMode::HostPassthrough),
            2 => Some(CpuMode::HostModel),
            _ => Some(CpuMode::Custom(w.model.text().trim().to_owned())),
        };
        if matches!(&mode, Some(CpuMode::Custom(m)) if m.is_empty()) {
            return Err(gettext(
                "Name the CPU model, or choose another kind of CPU.",
            ));
        }
        let cpu = CpuEdit {
            vcpus: w.vcpus.value() as u32,
            mode,
        };
        cpu.apply(&base).map_err(|e| e.to_string())
    }

    fn save(&mut self, sender: &ComponentSender<Self>) {
        let Some(loaded) = self.loaded.clone() else {
            return;
        };
        if self.busy || !(self.xml_edited || self.cpu_edited) {
            return;
        }
        let xml = match self.edited_xml(&loaded) {
            Ok(xml) => xml,
            Err(why) => return self.say(Some(&why), true),
        };
        self.busy = true;
        let conn = self.conn.clone();
        let what = gettext("saving {name} on {host}")
            .replace("{name}", &self.name)
            .replace("{host}", &self.uri);
        sender.oneshot_command(async move {
            let saved = run_blocking(&what, move || {
                edit::save(&conn, &loaded, &xml).map_err(|e| (e.to_string(), e.changed_on_host()))
            })
            .await
            .unwrap_or_else(|why| Err((why, false)));
            RemoteDetailsCmd::Saved(saved)
        });
    }

    /// Shows `loaded` in the widgets and takes it as the new base.
    fn fill(&mut self, loaded: Loaded) {
        let w = &self.widgets;
        self.syncing.set(true);
        w.xml.buffer().set_text(&loaded.xml);
        match CpuEdit::read(&loaded.xml) {
            Ok(cpu) => {
                w.vcpus.set_value(cpu.vcpus as f64);
                w.mode.set_selected(mode_index(&cpu.mode));
                let model = match &cpu.mode {
                    Some(CpuMode::Custom(model)) => model.as_str(),
                    _ => "",
                };
                w.model.set_text(model);
                w.model
                    .set_sensitive(matches!(cpu.mode, Some(CpuMode::Custom(_))));
            }
            Err(err) => tracing::warn!(%err, "reading the CPU of a libvirt domain"),
        }
        self.syncing.set(false);
        self.loaded = Some(loaded);
        self.xml_edited = false;
        self.cpu_edited = false;
        self.changed_on_host = false;
    }

    /// Shows `text` above the pages (red when it is an `error`); `None` hides it.
    fn say(&self, text: Option<&str>, error: bool) {
        let label = &self.widgets.message;
        label.set_visible(text.is_some());
        label.set_text(text.unwrap_or_default());
        if error {
            label.add_css_class("error");
        } else {
            label.remove_css_class("error");
        }
    }

    fn show_state(&self) {
        self.show_model_note();
        let w = &self.widgets;
        let edited = self.xml_edited || self.cpu_edited;
        w.save
            .set_sensitive(!self.busy && self.loaded.is_some() && edited && !self.changed_on_host);
        w.reload.set_sensitive(!self.busy);
        if self.changed_on_host {
            w.reload.add_css_class("suggested-action");
        } else {
            w.reload.remove_css_class("suggested-action");
        }
    }
}

/// The note under a named model: whether `host` can run `model`, and which models it can
/// (`true` when it can).
fn model_note(plan: &HostPlan, model: &str, host: &str) -> (String, bool) {
    let usable: Vec<&str> = plan
        .models
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(m, _)| m.as_str())
        .collect();
    let list = usable.join(", ");
    match plan.usable(model) {
        Some(true) => (
            gettext("{model} is usable on {host}.")
                .replace("{model}", model)
                .replace("{host}", host),
            true,
        ),
        Some(false) => (
            gettext(
                "{model} is not usable on {host}: its CPU lacks features of that model, so the VM would not start there. Usable there: {list}",
            )
            .replace("{model}", model)
            .replace("{host}", host)
            .replace("{list}", &list),
            false,
        ),
        None => (
            gettext("{host} does not know the CPU model {model}. Usable there: {list}")
                .replace("{model}", model)
                .replace("{host}", host)
                .replace("{list}", &list),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> HostPlan {
        HostPlan {
            virt_type: "kvm".into(),
            host_model: true,
            host_passthrough: true,
            models: vec![
                ("qemu64".into(), true),
                ("Opteron_G1".into(), true),
                ("Skylake-Server".into(), false),
            ],
            host_model_name: None,
        }
    }

    #[test]
    fn the_model_note_says_whether_the_host_can_run_it_and_what_it_can() {
        let (text, fits) = model_note(&plan(), "qemu64", "qemu+ssh://far/system");
        assert!(
            fits && text.contains("usable on qemu+ssh://far/system"),
            "{text}"
        );
        let (text, fits) = model_note(&plan(), "Skylake-Server", "far");
        assert!(!fits, "{text}");
        assert!(
            text.contains("Skylake-Server is not usable on far")
                && text.contains("qemu64, Opteron_G1")
                && !text.contains("Usable there: qemu64, Opteron_G1, Skylake"),
            "{text}"
        );
        let (text, fits) = model_note(&plan(), "NoSuchCPU", "far");
        assert!(
            !fits && text.contains("does not know the CPU model NoSuchCPU"),
            "{text}"
        );
    }
}
