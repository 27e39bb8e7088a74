//! GUI tests of the CPU choice: one mode control and a searchable model list on the details
//! window's CPU page, missing features named in the rows, and honest wording on a host whose
//! KVM does not enforce guest CPUID (Preferences, the wizard's summary, the CPU page). Run from
//! `tests/gui.rs`'s harness, on its main thread and in its sandbox.

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController, adw, gtk};

use vireo::ui::app::App;

use super::{tiny_kernel, wait_for};

/// Every widget of type `T` under `widget`, depth first.
fn descendants<T: IsA<gtk::Widget>>(widget: &gtk::Widget, found: &mut Vec<T>) {
    if let Some(w) = widget.downcast_ref::<T>() {
        found.push(w.clone());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        descendants(&c, found);
        child = c.next_sibling();
    }
}

/// The visible labels' texts under `widget`.
fn visible_texts(widget: &impl IsA<gtk::Widget>) -> Vec<String> {
    let mut labels: Vec<gtk::Label> = Vec::new();
    descendants(widget.upcast_ref(), &mut labels);
    labels
        .into_iter()
        .filter(|l| l.is_visible() && l.parent().is_some_and(|p| p.is_visible()))
        .map(|l| l.text().to_string())
        .collect()
}

const NOT_ENFORCED: &str = "does not enforce guest CPUID";

fn settle() {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
    wait_for("the window to settle", || std::time::Instant::now() > until);
}

/// The CPU page: the mode is one drop-down (no second switch for host-model), the model list
/// filters as one types, an unusable model names what KVM lacks in its row, and on a host
/// that does not enforce CPUID the page says the guest sees the host CPU.
pub fn cpu_page_has_one_mode_control_and_a_searchable_model_list() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>cpu-page</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n  <cpu mode='custom' match='exact'>\n    <model fallback='forbid'>qemu64</model>\n  </cpu>\n</domain>\n",
            tiny_kernel().display()
        ))
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("cpu-page").is_some()
    });
    assert!(app.widgets().vm_list.activate("cpu-page", "open"));
    wait_for("the details window", || {
        app.model().details("cpu-page").is_some()
    });
    let (details_window, stack, search, buttons, note) = {
        let model = app.model();
        let details = model.details("cpu-page").unwrap();
        let w = details.widgets();
        (
            details.widget().clone(),
            w.stack.clone(),
            w.model_search.clone(),
            w.model_buttons.clone(),
            w.cpuid_note.clone(),
        )
    };
    let page = stack.child_by_name("cpu").expect("a CPU page");
    let mut switches: Vec<gtk::Switch> = Vec::new();
    descendants(&page, &mut switches);
    // (An expander row holds a hidden switch of its own.)
    switches.retain(|s| s.is_visible());
    assert!(
        switches.is_empty(),
        "the mode has one control, not a drop-down and a switch"
    );
    let mut combos: Vec<adw::ComboRow> = Vec::new();
    descendants(&page, &mut combos);
    assert_eq!(combos.len(), 1, "one Mode drop-down");

    assert!(buttons.len() > 100, "the whole model list");
    let row_of = |check: &gtk::CheckButton| {
        check
            .ancestor(adw::ActionRow::static_type())
            .and_downcast::<adw::ActionRow>()
            .unwrap()
    };
    search.set_text("Pentium3");
    wait_for("the list to filter", || {
        buttons
            .iter()
            .filter(|(_, c)| row_of(c).is_visible())
            .count()
            < 5
    });
    let shown: Vec<&str> = buttons
        .iter()
        .filter(|(_, c)| row_of(c).is_visible())
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(shown.contains(&"pentium3"), "{shown:?}");
    assert!(shown.iter().all(|n| n.contains("pentium3")), "{shown:?}");
    search.set_text("");
    settle();

    // A model this host's KVM lacks features for names them in its row.
    let kvm = vireo::host::kvm::supported_cpuid().ok();
    let map = vireo::cpu::CpuMap::load().unwrap();
    if let Some((model, missing)) = vireo::launch::cpu_edit::model_usability(&map, kvm.as_ref())
        .into_iter()
        .find(|(_, missing)| !missing.is_empty())
    {
        let check = &buttons.iter().find(|(n, _)| *n == model).unwrap().1;
        let subtitle = row_of(check).subtitle().unwrap_or_default();
        assert!(
            subtitle.contains(missing[0].as_str()),
            "{model}: {subtitle}"
        );
    }

    // Honest wording: on a host whose KVM ignores the CPUID table the page says so.
    let enforced = vireo::ui::worker::cpuid_enforced();
    if enforced == Some(false) {
        wait_for("the CPUID note", || note.is_visible());
        assert!(note.text().contains(NOT_ENFORCED), "{}", note.text());
    } else {
        settle();
        assert!(!note.is_visible(), "KVM enforces CPUID here: {enforced:?}");
    }
    details_window.set_visible(false);
    window.set_visible(false);
}

/// Preferences and the wizard's summary say, in one line with the reason, that the guest sees
/// the host CPU on a host whose KVM does not enforce guest CPUID, and say nothing of it where
/// KVM does.
pub fn cpu_wording_is_honest_on_this_host() {
    let enforced = vireo::ui::worker::cpuid_enforced();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    WidgetExt::activate_action(&window, "win.preferences", None).unwrap();
    wait_for("the Preferences window", || {
        app.model()
            .preferences()
            .is_some_and(|p| p.widget().is_visible())
    });
    let prefs_window = app.model().preferences().unwrap().widget().clone();
    settle();
    let said = visible_texts(&prefs_window)
        .iter()
        .any(|t| t.contains(NOT_ENFORCED));
    assert_eq!(
        said,
        enforced == Some(false),
        "Preferences, enforced={enforced:?}"
    );
    let usable_claim = visible_texts(&prefs_window)
        .iter()
        .any(|t| t.contains("Usable on this host"));
    assert!(!usable_claim);
    prefs_window.set_visible(false);

    WidgetExt::activate_action(&window, "win.new-vm", None).unwrap();
    wait_for("the wizard", || {
        app.model()
            .wizard()
            .is_some_and(|w| w.widget().is_visible())
    });
    let (wizard_window, kernel, forward, title, summary) = {
        let model = app.model();
        let wizard = model.wizard().unwrap();
        let w = wizard.widgets();
        (
            wizard.widget().clone(),
            w.kernel.clone(),
            w.forward.clone(),
            w.title.clone(),
            w.summary.clone(),
        )
    };
    kernel.set_text(&tiny_kernel().to_string_lossy());
    for step in 2..=4 {
        wait_for("Forward", || forward.is_sensitive());
        forward.emit_clicked();
        let want = format!("Step {step} of 4");
        wait_for(&want, || title.subtitle() == want);
    }
    let cpu_line = summary[0].subtitle().unwrap_or_default();
    assert_eq!(
        cpu_line.contains(NOT_ENFORCED),
        enforced == Some(false),
        "wizard summary: {cpu_line}"
    );
    wizard_window.close();
    window.set_visible(false);
}
