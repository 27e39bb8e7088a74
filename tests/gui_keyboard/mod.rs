//! GUI tests of the keyboard flow and of checks where values are entered: the wizard driven by
//! real key presses (xdotool through the X server, as a user types), a kernel refused when it
//! is chosen, details refusing a missing kernel before saving. Run from `tests/gui.rs`'s
//! harness, on its main thread and in its sandbox.

use relm4::adw::prelude::*;
use relm4::{Component, ComponentController, gtk};

use vireo::ui::app::App;

use super::require_env::skip_or_fail;
use super::{tiny_kernel, wait_for};

/// Runs xdotool with `args`; `None` (after the skip-or-fail rule) when it is not installed.
pub fn xdotool(args: &[&str]) -> Option<String> {
    let output = match std::process::Command::new("xdotool").args(args).output() {
        Ok(output) => output,
        Err(e) => {
            skip_or_fail(format!(
                "keyboard tests: cannot run xdotool ({e}); install it"
            ));
            return None;
        }
    };
    assert!(
        output.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Presses `keys` (xdotool names) in the focused X window and lets GTK handle them.
pub fn press(keys: &str) {
    xdotool(&["key", "--delay", "30", keys]);
    settle();
}

/// Types `text` into the focused X window and lets GTK handle it.
pub fn type_text(text: &str) {
    xdotool(&["type", "--delay", "5", text]);
    settle();
}

/// Gives the X input focus to the visible window whose title matches `title` (a regular
/// expression, as xdotool takes it): the X server sends key presses there.
pub fn focus_window(title: &str) {
    // Polled while GTK's main loop runs (not `search --sync`, which would block the loop that
    // maps the window or sends its new title to the X server, and so wait forever).
    let mut id = None;
    wait_for(&format!("a visible X window titled {title}"), || {
        id = std::process::Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", title])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .last()
                    .map(str::to_owned)
            });
        id.is_some()
    });
    let id = id.expect("found above");
    xdotool(&["windowfocus", "--sync", &id]);
    settle();
}

fn settle() {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
    wait_for("the window to settle", || std::time::Instant::now() > until);
}

/// Whether the keyboard focus of `window` is in `widget` (an entry's focus is its inner text).
pub fn focus_in(window: &impl IsA<gtk::Window>, widget: &impl IsA<gtk::Widget>) -> bool {
    gtk::prelude::GtkWindowExt::focus(window.as_ref())
        .is_some_and(|f| &f == widget.as_ref() || f.is_ancestor(widget))
}

/// The wizard by keyboard alone: it opens with the cursor in the kernel entry, typed text
/// lands there, a text file is refused as a kernel in place, Tab moves entry to entry, Enter
/// presses Forward on every step, and Escape cancels.
pub fn wizard_works_with_the_keyboard_alone() {
    if xdotool(&["version"]).is_none() {
        return;
    }
    let app = App::builder().launch(());
    let main_window = app.widget().clone();
    main_window.present();
    WidgetExt::activate_action(&main_window, "win.new-vm", None).unwrap();
    wait_for("the wizard", || {
        app.model().wizard().is_some_and(|w| w.widget().is_mapped())
    });
    let (window, kernel, initrd, forward, problem, title, memory, name) = {
        let model = app.model();
        let wizard = model.wizard().unwrap();
        let w = wizard.widgets();
        (
            wizard.widget().clone(),
            w.kernel.clone(),
            w.initrd.clone(),
            w.forward.clone(),
            w.problem.clone(),
            w.title.clone(),
            w.memory.clone(),
            w.name.clone(),
        )
    };
    wait_for("the focus in the kernel entry", || {
        focus_in(&window, &kernel)
    });
    // The X server sends keys to the window with the input focus: the wizard's.
    focus_window("^New Virtual Machine$");

    type_text("/etc/passwd");
    wait_for("the typed kernel", || kernel.text() == "/etc/passwd");
    wait_for("the kernel to be refused", || {
        problem.text().contains("neither an ELF nor a bzImage")
    });
    assert!(problem.text().contains("/etc/passwd"), "{}", problem.text());
    assert!(!forward.is_sensitive());
    press("Return");
    assert_eq!(
        title.subtitle(),
        "Step 1 of 4",
        "Enter does not pass a bad kernel"
    );

    let good = tiny_kernel();
    press("ctrl+a");
    type_text(&good.to_string_lossy());
    wait_for("the kernel to be accepted", || forward.is_sensitive());
    // Tab: past the browse button to the initrd entry, never stopping on a row.
    let mut tabs = 0;
    while !focus_in(&window, &initrd) {
        tabs += 1;
        assert!(tabs <= 2, "Tab did not reach the initrd entry");
        press("Tab");
        let focus = gtk::prelude::GtkWindowExt::focus(&window).expect("something has the focus");
        assert!(
            !focus.is::<gtk::ListBoxRow>(),
            "Tab stopped on a row: {focus:?}"
        );
    }
    press("Return");
    wait_for("step 2", || title.subtitle() == "Step 2 of 4");
    wait_for("the focus in the memory", || focus_in(&window, &memory));
    press("Return");
    wait_for("step 3", || title.subtitle() == "Step 3 of 4");
    press("Return");
    wait_for("step 4", || title.subtitle() == "Step 4 of 4");
    wait_for("the focus in the name", || focus_in(&window, &name));
    assert!(!name.text().is_empty(), "a name is proposed");
    press("Escape");
    wait_for("Escape to cancel the wizard", || !window.is_visible());
    main_window.set_visible(false);
}

/// The details window's Boot page refuses a kernel that does not exist before saving, and
/// says every problem of the definition at once.
pub fn details_refuses_a_missing_kernel_before_saving() {
    use vireo::domain::store::DomainStore;
    let store = DomainStore::open_default().unwrap();
    let xml = format!(
        "<domain type='kvm'>\n  <name>kernel-check</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n</domain>\n",
        tiny_kernel().display()
    );
    let before = store.define(&xml).unwrap().domain.to_xml();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || {
        app.widgets().vm_list.row("kernel-check").is_some()
    });
    assert!(app.widgets().vm_list.activate("kernel-check", "open"));
    wait_for("the details window", || {
        app.model().details("kernel-check").is_some()
    });
    let (kernel, initrd, apply, error) = {
        let model = app.model();
        let w = model.details("kernel-check").unwrap().widgets();
        (
            w.kernel.clone(),
            w.initrd.clone(),
            w.apply.clone(),
            w.error.clone(),
        )
    };
    kernel.set_text("/nonexistent/bzImage");
    initrd.set_text("/nonexistent/initrd.img");
    wait_for("Apply to be offered", || apply.is_sensitive());
    apply.emit_clicked();
    wait_for("the refusal", || error.is_visible());
    let text = error.text();
    assert!(text.contains("/nonexistent/bzImage"), "{text}");
    assert_eq!(
        store.get("kernel-check").unwrap().domain.to_xml(),
        before,
        "nothing was saved"
    );
    kernel.set_text(&tiny_kernel().to_string_lossy());
    initrd.set_text("");
    settle();
    apply.emit_clicked();
    wait_for("the fixed definition to be saved", || !apply.is_sensitive());
    assert!(!error.is_visible(), "{}", error.text());
    if let Some(details) = app.model().details("kernel-check") {
        details.widget().set_visible(false);
    }
    window.set_visible(false);
}

/// The first `T` under `widget` (depth first).
fn first_descendant<T: IsA<gtk::Widget>>(widget: &gtk::Widget) -> Option<T> {
    let mut child = widget.first_child();
    while let Some(c) = child {
        if let Ok(found) = c.clone().downcast::<T>() {
            return Some(found);
        }
        if let Some(found) = first_descendant::<T>(&c) {
            return Some(found);
        }
        child = c.next_sibling();
    }
    None
}

/// The smaller dialogs by keyboard (xdotool key presses): Resize opens with the cursor in the
/// size and Enter resizes; Remove Disk opens on its safe default, so Enter and Escape both keep
/// the disk; Add Disk opens in its size field and Enter adds the disk.
pub fn small_dialogs_work_with_the_keyboard() {
    use vireo::domain::store::DomainStore;
    use vireo::engine::block;
    use vireo::engine::config::DiskFormat;
    use vireo::ui::details::DetailsMsg;
    if xdotool(&["version"]).is_none() {
        return;
    }
    let store = DomainStore::open_default().unwrap();
    let images = store.dir().parent().unwrap().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let image = images.join("keys-first.raw");
    let _ = std::fs::remove_file(&image);
    block::create(&image, DiskFormat::Raw, 1 << 30, &mut |_| {}).unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>keys</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>/boot/vmlinuz</kernel>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
            image.display()
        ))
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || app.widgets().vm_list.row("keys").is_some());
    assert!(app.widgets().vm_list.activate("keys", "open"));
    wait_for("the details window", || {
        app.model().details("keys").is_some()
    });
    let (sender, details_window) = {
        let model = app.model();
        let details = model.details("keys").unwrap();
        (details.sender().clone(), details.widget().clone())
    };
    let disks = || store.get("keys").unwrap().domain.disks().len();
    let open = |msg: DetailsMsg, heading: &str| {
        sender.emit(msg);
        wait_for(heading, || {
            super::message_dialog(heading).is_some_and(|d| d.is_active())
        });
        super::message_dialog(heading).unwrap()
    };

    // Resize: the size field has the focus; typing a size and Enter resizes.
    let dialog = open(DetailsMsg::AskResizeDisk("vda".into()), "Resize Disk vda");
    let size = first_descendant::<gtk::SpinButton>(dialog.upcast_ref()).unwrap();
    wait_for("the focus in the size", || focus_in(&dialog, &size));
    press("ctrl+a");
    type_text("3");
    press("Return");
    wait_for("the image resized", || {
        std::fs::metadata(&image).unwrap().len() == 3 << 30
    });
    assert!(!dialog.is_visible(), "Enter closed the dialog");

    // Remove Disk: destructive, so Enter (the default, Cancel) and Escape both keep it.
    for key in ["Return", "Escape"] {
        let dialog = open(DetailsMsg::AskRemoveDisk("vda".into()), "Remove Disk vda?");
        press(key);
        wait_for("the dialog to close", || !dialog.is_visible());
        assert_eq!(disks(), 1, "{key} kept the disk");
    }

    // Add Disk: the size field has the focus; Enter adds a new image as vdb.
    let dialog = open(DetailsMsg::AskAddDisk, "Add Disk");
    let size = first_descendant::<gtk::SpinButton>(dialog.upcast_ref()).unwrap();
    wait_for("the focus in the size", || focus_in(&dialog, &size));
    press("ctrl+a");
    type_text("1");
    press("Return");
    wait_for("vdb in the definition", || disks() == 2);

    details_window.set_visible(false);
    window.set_visible(false);
    let added = store.get("keys").unwrap().domain.disks()[1].source.clone();
    store.undefine("keys", false).unwrap();
    let _ = std::fs::remove_file(&image);
    if let Some(added) = added {
        let _ = std::fs::remove_file(added);
    }
}
