//! Copy a VM's definition to another host. Only the definition travels: the disks it names
//! are referenced by path, not copied, so the dialog says so plainly before anything is done.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::group::Link;
use super::{Connections, ConnectionsCmd, ConnectionsMsg, ConnectionsOutput};
use crate::launch::connections::BUILTIN_URI;
use crate::ui::worker::run_blocking;

/// The name a host goes by in the list of targets.
fn host_label(uri: &str) -> String {
    if uri == BUILTIN_URI {
        gettext("This computer")
    } else {
        uri.to_owned()
    }
}

/// Asks where to copy `name` (from `uri`) among `targets`, with the warning about disks.
pub fn confirm_copy(
    parent: Option<&gtk::Window>,
    uri: &str,
    name: &str,
    targets: &[String],
    sender: &ComponentSender<Connections>,
) {
    if targets.is_empty() {
        let _ = sender.output(ConnectionsOutput::Notify(gettext(
            "There is no other connected host. Add or connect one first.",
        )));
        return;
    }
    let dialog = crate::ui::vm_list::question(
        parent,
        &gettext("Copy {name} to Another Host").replace("{name}", name),
        &gettext(
            "Only the definition is copied. Its disk images are not: the copy refers to the same paths, which must hold the same images on the other host before it can start there.",
        ),
        (
            "copy",
            &gettext("_Copy Definition"),
            adw::ResponseAppearance::Suggested,
        ),
        "copy",
    );
    let labels: Vec<String> = targets.iter().map(|t| host_label(t)).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let choice = gtk::DropDown::from_strings(&label_refs);
    choice.set_widget_name("copy-target");
    dialog.set_extra_child(Some(&choice));
    let (sender, from, name, targets) = (
        sender.clone(),
        uri.to_owned(),
        name.to_owned(),
        targets.to_vec(),
    );
    dialog.connect_response(Some("copy"), move |_, _| {
        if let Some(to) = targets.get(choice.selected() as usize) {
            sender.input(ConnectionsMsg::Copy {
                from: from.clone(),
                to: to.clone(),
                name: name.clone(),
            });
        }
    });
    dialog.present();
}

impl Connections {
    /// Where `uri`'s VMs can be copied: this computer and the other connected hosts.
    pub fn copy_targets(&self, uri: &str) -> Vec<String> {
        std::iter::once(BUILTIN_URI.to_owned())
            .chain(
                self.groups
                    .iter()
                    .filter(|g| g.link == Link::Connected)
                    .map(|g| g.uri.clone()),
            )
            .filter(|t| t != uri)
            .collect()
    }

    /// Copies a definition (not its disks) in a worker; refuses to replace a VM of that name.
    pub(super) fn copy(
        &mut self,
        from: String,
        to: String,
        name: String,
        sender: &ComponentSender<Self>,
    ) {
        let (Some(source), Some(target)) = (self.host(&from), self.host(&to)) else {
            return;
        };
        let what = gettext("copying {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            let vm = name.clone();
            let dest = to.clone();
            let result = run_blocking(&what, move || {
                let (source, target) = (source.get()?, target.get()?);
                let taken = target
                    .list_domains()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|d| d.name == vm);
                if taken {
                    return Err(gettext(
                        "{uri} already has a virtual machine named {name}; nothing was copied",
                    )
                    .replace("{uri}", &dest)
                    .replace("{name}", &vm));
                }
                let xml = source.dumpxml(&vm, true).map_err(|e| e.to_string())?;
                target.define(&xml).map(drop).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
            ConnectionsCmd::Copied(to, name, result)
        });
    }
}
