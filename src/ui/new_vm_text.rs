//! The wizard's words for what `launch::new_vm_form` decides: its problems and the CPU line of
//! the summary, in the user's language.

use gettextrs::gettext;

use crate::domain::validate::HostFacts;
use crate::launch::new_vm_form::{CpuSummary, FileRole, FormProblem, cpu_summary};
use crate::prefs::Prefs;

/// The message shown in place for a step that cannot be left yet.
pub fn problem_text(problem: &FormProblem) -> String {
    match problem {
        FormProblem::MissingFile(role) => {
            let what = match role {
                FileRole::Kernel => gettext("kernel"),
                FileRole::Initrd => gettext("initrd"),
                FileRole::DiskImage => gettext("disk image"),
            };
            gettext("Choose the {what}").replace("{what}", &what)
        }
        FormProblem::NotAFile(path) => gettext("{path} is not a file").replace("{path}", path),
        FormProblem::Unreadable { path, error } => gettext("Cannot read {path}: {error}")
            .replace("{path}", path)
            .replace("{error}", error),
        FormProblem::MemoryBelowMinimum => {
            gettext("A virtual machine needs at least 16 MiB of memory")
        }
        FormProblem::MemoryOverHost { host_mib } => {
            gettext("This host has only {mib} MiB of memory")
                .replace("{mib}", &host_mib.to_string())
        }
        FormProblem::VcpusOutOfRange { max } => {
            gettext("Choose between 1 and {n} vCPUs").replace("{n}", &max.to_string())
        }
        FormProblem::DiskImageTooSmall => gettext("A new disk image needs at least 1 GiB"),
        FormProblem::Checking(path) => gettext("Checking {path}…").replace("{path}", path),
        FormProblem::ImageUnusable(error) => error.clone(),
        FormProblem::BootFilesUnusable(error) => error.clone(),
        FormProblem::SameImage(path) => gettext(
            "{path} is already the boot image; choose another image or no disk",
        )
        .replace("{path}", path),
        FormProblem::FormatMismatch { path, named, found } => gettext(
            "{path} holds a {found} image, but its name says {named}: rename the file or choose another image",
        )
        .replace("{path}", path)
        .replace("{found}", found.as_str())
        .replace("{named}", named.as_str()),
        FormProblem::NameEmpty => gettext("Give the virtual machine a name"),
        FormProblem::NameInvalid => {
            gettext("A name cannot contain “/”, start with “.” or begin or end with spaces")
        }
        FormProblem::NameTaken(name) => {
            gettext("A virtual machine named “{name}” already exists").replace("{name}", name)
        }
    }
}

/// A disk's size for people: "20 GB", "3.1 GB", "512 MB" (decimal units, as GNOME's Files
/// and Disks show them).
pub fn size_text(bytes: u64) -> String {
    relm4::gtk::glib::format_size(bytes).to_string()
}

/// The one line under a CD-ROM: what the guest really sees today.
pub fn cdrom_note(target: &str) -> String {
    gettext("The guest sees this image as a read-only disk /dev/{target}, not as a bootable CD drive yet")
        .replace("{target}", target)
}

/// The one line said wherever a guest CPU is chosen on a host whose KVM does not enforce
/// guest CPUID: the choice is recorded, but this guest sees the host CPU.
pub fn cpuid_not_enforced_text() -> String {
    gettext(
        "On this host the guest sees the host CPU whatever is chosen: its KVM does not enforce guest CPUID (paravirtualized KVM); the choice applies on other hosts",
    )
}

/// One line saying which CPU a new VM gets under `prefs` on this host, e.g.
/// "Nearest model — pentium3 (what this host's KVM can run)".
pub fn cpu_summary_text(prefs: &Prefs, host: &HostFacts) -> String {
    let (summary, app_default) = cpu_summary(prefs, host);
    let text = match summary {
        CpuSummary::HypervisorDefault => gettext("Hypervisor default — a basic 64-bit CPU"),
        CpuSummary::NearestModel(Some(model)) => {
            gettext("Nearest model — {model} (what this host's KVM can run)")
                .replace("{model}", &model)
        }
        CpuSummary::NearestModel(None) => {
            gettext("Nearest model — none is usable on this host's KVM")
        }
        CpuSummary::HostModel => gettext(
            "Copy of the host CPU — the nearest model plus every feature this host's KVM offers",
        ),
        CpuSummary::HostPassthrough => gettext("Host passthrough — exactly this host's CPU"),
    };
    let text = if app_default {
        gettext("{choice} (application default)").replace("{choice}", &text)
    } else {
        text
    };
    if crate::ui::worker::cpuid_enforced() == Some(false) {
        gettext("{choice}; but the guest sees the host CPU here: this host's KVM does not enforce guest CPUID")
            .replace("{choice}", &text)
    } else {
        text
    }
}
