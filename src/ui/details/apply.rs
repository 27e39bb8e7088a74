//! Apply: the edited definition is checked as a whole before it is saved. Every problem is
//! shown at once (the document's own and a kernel or initrd that start could not load, found
//! by loading them on a worker), and a definition with problems is not saved.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::{ComponentSender, adw, gtk};

use super::{Details, DetailsCmd, DetailsWidgets};
use crate::domain::Domain;
use crate::domain::model::OsText;
use crate::domain::units::Memory;
use crate::domain::validate::document_problems;
use crate::launch::machines::RunState;

impl Details {
    /// Takes the widgets' values (or the edited XML) and checks them on a worker; saving
    /// follows in [`Self::checked`].
    pub(super) fn apply(&mut self, w: &DetailsWidgets, sender: &ComponentSender<Self>) {
        let result = if self.xml_edited {
            let buffer = w.xml.buffer();
            let text = buffer.text(&buffer.start_iter(), &buffer.end_iter(), false);
            Domain::parse(&text).map_err(|e| e.to_string())
        } else {
            self.edited_domain(w)
        };
        let domain = match result {
            Ok(domain) => domain,
            Err(error) => {
                self.error = Some(error);
                return;
            }
        };
        let what = gettext("checking the kernel");
        w.apply.set_sensitive(false);
        sender.oneshot_command(async move {
            let checked = domain.clone();
            let problems = crate::ui::worker::run_blocking(&what, move || {
                let mut problems: Vec<String> = document_problems(&checked)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                problems.extend(crate::launch::problems::boot_file_problem(&checked));
                problems
            })
            .await;
            DetailsCmd::Checked(Box::new(domain), problems)
        });
    }

    /// Saves `domain` when its checks found nothing; otherwise shows every problem.
    pub(super) fn checked(
        &mut self,
        domain: Domain,
        problems: Result<Vec<String>, String>,
        w: &DetailsWidgets,
    ) {
        let result = problems.and_then(|problems| {
            if !problems.is_empty() {
                return Err(problems.join("\n"));
            }
            if domain.name().as_deref() != Some(self.stored.name.as_str()) {
                return Err(gettext(
                    "Renaming is not done here; keep the <name> as it is",
                ));
            }
            let mut next = self.stored.clone();
            next.domain = domain;
            self.store.save(&mut next).map_err(|e| e.to_string())?;
            Ok(next)
        });
        match result {
            Ok(saved) => {
                self.stored = saved;
                self.cpu = crate::launch::cpu_edit::CpuSettings::read(&self.stored.domain);
                self.dirty = false;
                self.xml_edited = false;
                self.syncing.set(true);
                w.xml.buffer().set_text(&self.stored.domain.to_xml());
                self.syncing.set(false);
                let text = if matches!(self.run_state, RunState::Running | RunState::Paused) {
                    gettext("Changes saved; they take effect when the VM next starts")
                } else {
                    gettext("Changes saved")
                };
                w.toasts.add_toast(adw::Toast::new(&text));
            }
            Err(error) => self.error = Some(error),
        }
        w.apply.set_sensitive(self.dirty);
    }

    /// The definition with the widgets' values written into it.
    pub(super) fn edited_domain(&self, w: &DetailsWidgets) -> Result<Domain, String> {
        let mut domain = self.stored.domain.clone();
        let text = |e: &gtk::Entry| e.text().trim().to_string();
        if text(&w.title) != domain.title().unwrap_or_default() {
            domain.set_title(&text(&w.title));
        }
        if text(&w.description) != domain.description().unwrap_or_default() {
            domain.set_description(&text(&w.description));
        }
        let mib = w.memory.value_as_int().max(16) as u64;
        if mib != super::memory::memory_mib(&domain) {
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
}
