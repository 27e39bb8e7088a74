//! GUI tests of disks: the file choosers, the wizard's storage step and the details window's
//! Disks section. Run from `tests/gui.rs`'s harness, on its main thread and in its sandbox.

use relm4::adw::prelude::*;
use relm4::gtk::gio;
use relm4::{Component, ComponentController, adw, gtk};

use vireo::ui::app::App;

use super::{snap, toplevels, wait_for};

/// `text` with GLib's no-break spaces (between a size and its unit) as plain spaces.
fn plain(text: &str) -> String {
    text.replace('\u{a0}', " ")
}

/// The first button under `widget` (depth first) whose icon is `icon`.
fn find_button(widget: &gtk::Widget, icon: &str) -> Option<gtk::Button> {
    if let Some(button) = widget.downcast_ref::<gtk::Button>()
        && button.icon_name().as_deref() == Some(icon)
    {
        return Some(button.clone());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        if let Some(found) = find_button(&c, icon) {
            return Some(found);
        }
        child = c.next_sibling();
    }
    None
}

/// The visible file-chooser dialog (what a native chooser shows without a portal), if any.
fn visible_file_chooser() -> Option<gtk::FileChooserDialog> {
    toplevels::<gtk::FileChooserDialog>()
        .into_iter()
        .find(|d| d.is_visible())
}

/// Opens the wizard and returns the app with it.
pub fn open_wizard() -> relm4::component::Connector<App> {
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    WidgetExt::activate_action(&window, "win.new-vm", None).unwrap();
    wait_for("the wizard", || {
        app.model()
            .wizard()
            .is_some_and(|w| w.widget().is_visible())
    });
    app
}

/// Lets a component process what was typed (its messages travel through the main loop).
fn settle() {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(150);
    wait_for("the window to settle", || std::time::Instant::now() > until);
}

/// The wizard's browse button opens a file chooser that stays open until answered, and the
/// chosen file lands in the entry; the details window's Boot page has one too.
pub fn file_chooser_opens() {
    let app = open_wizard();
    let (kernel, wizard_window) = {
        let model = app.model();
        let wizard = model.wizard().unwrap();
        (wizard.widgets().kernel.clone(), wizard.widget().clone())
    };
    let row = kernel
        .ancestor(adw::ActionRow::static_type())
        .expect("the kernel entry sits in a row");
    let browse = find_button(&row, "document-open-symbolic").expect("a browse button");
    assert!(visible_file_chooser().is_none());
    browse.emit_clicked();
    wait_for("the file chooser", || visible_file_chooser().is_some());
    let chooser = visible_file_chooser().unwrap();
    assert_eq!(
        chooser.transient_for().as_ref(),
        Some(wizard_window.upcast_ref::<gtk::Window>())
    );
    // Still there after the main loop ran for a while: nothing dropped it.
    settle();
    assert!(chooser.is_visible(), "the chooser stays open");
    let file = std::env::temp_dir().join(format!("vireo-chooser-{}.elf", std::process::id()));
    std::fs::write(&file, b"kernel").unwrap();
    chooser.set_file(&gio::File::for_path(&file)).unwrap();
    wait_for("the chooser to select the file", || {
        chooser.file().and_then(|f| f.path()).as_deref() == Some(file.as_path())
    });
    chooser.response(gtk::ResponseType::Accept);
    wait_for("the path in the entry", || {
        kernel.text().as_str() == file.to_string_lossy()
    });
    wait_for("the chooser to close", || visible_file_chooser().is_none());
    let _ = std::fs::remove_file(&file);
    wizard_window.close();
    app.widget().set_visible(false);
}

/// Step 3 creates a qcow2 image (the default format) in the images folder with progress, and
/// the defined XML records it as qcow2; the existing-image entry is insensitive meanwhile.
pub fn wizard_creates_a_qcow2_disk_with_progress() {
    use vireo::domain::store::DomainStore;
    use vireo::engine::block;
    use vireo::engine::config::DiskFormat;
    let kernel_file = std::env::temp_dir().join(format!("vireo-kernel-{}", std::process::id()));
    std::fs::write(&kernel_file, super::tiny_kernel_bytes()).unwrap();
    let app = open_wizard();
    let w = {
        let model = app.model();
        let w = model.wizard().unwrap().widgets();
        (
            w.kernel.clone(),
            w.forward.clone(),
            w.title.clone(),
            w.storage_new.clone(),
            w.new_size.clone(),
            w.existing_image.clone(),
            w.name.clone(),
            w.customize.clone(),
            w.summary.clone(),
            w.problem.clone(),
        )
    };
    let (
        kernel,
        forward,
        title,
        storage_new,
        new_size,
        existing,
        name,
        customize,
        summary,
        problem,
    ) = w;
    kernel.set_text(&kernel_file.to_string_lossy());
    wait_for("Forward", || forward.is_sensitive());
    forward.emit_clicked();
    wait_for("step 2", || title.subtitle() == "Step 2 of 4");
    forward.emit_clicked();
    wait_for("step 3", || title.subtitle() == "Step 3 of 4");
    storage_new.emit_by_name::<()>("activate", &[]);
    wait_for("the new-image fields", || new_size.is_sensitive());
    assert!(!existing.is_sensitive(), "the existing-image entry waits");
    new_size.set_value(2.0);
    settle();
    let wizard_window = app.model().wizard().map(|w| w.widget().clone()).unwrap();
    snap(&wizard_window, "wizard-storage");
    forward.emit_clicked();
    wait_for("step 4", || title.subtitle() == "Step 4 of 4");
    name.set_text("disk-vm");
    customize.set_active(true);
    wait_for("Create", || forward.is_sensitive());
    let storage = summary[3].subtitle().unwrap_or_default();
    assert!(
        storage.contains("vda") && storage.contains("qcow2") && storage.contains("2 GiB"),
        "{storage}"
    );
    forward.emit_clicked();
    let store = DomainStore::open_default().unwrap();
    wait_for("the VM to be defined", || {
        store.get("disk-vm").is_ok() || !problem.text().is_empty()
    });
    assert!(store.get("disk-vm").is_ok(), "{}", problem.text());
    let progress = app
        .model()
        .wizard()
        .map(|w| w.model().progress_seen().to_vec());
    let xml = store.get("disk-vm").unwrap().domain.to_xml();
    let image = store.dir().parent().unwrap().join("images/disk-vm.qcow2");
    assert!(
        xml.contains("<driver name='qemu' type='qcow2'/>")
            && xml.contains(&format!("<source file='{}'/>", image.display()))
            && xml.contains("<target dev='vda' bus='virtio'/>"),
        "{xml}"
    );
    let info = block::inspect(&image).unwrap();
    assert_eq!(info.format, DiskFormat::Qcow2);
    assert_eq!(info.virtual_size, 2 << 30);
    if let Some(progress) = progress {
        assert_eq!(
            progress.last().copied(),
            Some(1.0),
            "progress reached the end"
        );
    }
    store.undefine("disk-vm", true).unwrap();
    let _ = std::fs::remove_file(&kernel_file);
    for details in toplevels::<adw::Window>() {
        details.set_visible(false);
    }
    app.widget().set_visible(false);
}

/// An existing image whose content is not the format its name says is refused in place,
/// naming both formats, and Forward stays off.
pub fn wizard_existing_image_format_mismatch_is_shown_inline() {
    let kernel_file = std::env::temp_dir().join(format!("vireo-kernel2-{}", std::process::id()));
    std::fs::write(&kernel_file, super::tiny_kernel_bytes()).unwrap();
    let image = std::env::temp_dir().join(format!("vireo-raw-{}.qcow2", std::process::id()));
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let app = open_wizard();
    let w = {
        let model = app.model();
        let w = model.wizard().unwrap().widgets();
        (
            w.kernel.clone(),
            w.forward.clone(),
            w.title.clone(),
            w.storage_existing.clone(),
            w.existing_image.clone(),
            w.new_size.clone(),
            w.problem.clone(),
        )
    };
    let (kernel, forward, title, storage_existing, existing, new_size, problem) = w;
    kernel.set_text(&kernel_file.to_string_lossy());
    wait_for("Forward", || forward.is_sensitive());
    forward.emit_clicked();
    wait_for("step 2", || title.subtitle() == "Step 2 of 4");
    forward.emit_clicked();
    wait_for("step 3", || title.subtitle() == "Step 3 of 4");
    assert!(!existing.is_sensitive(), "insensitive until chosen");
    storage_existing.emit_by_name::<()>("activate", &[]);
    wait_for("the entry", || existing.is_sensitive());
    assert!(!new_size.is_sensitive());
    existing.set_text(&image.to_string_lossy());
    wait_for("the mismatch", || problem.text().contains("raw"));
    let text = problem.text();
    assert!(
        text.contains("qcow2") && text.contains(&*image.to_string_lossy()),
        "{text}"
    );
    assert!(problem.is_visible());
    assert!(!forward.is_sensitive());
    let _ = std::fs::remove_file(&image);
    let _ = std::fs::remove_file(&kernel_file);
    app.model().wizard().unwrap().widget().close();
    app.widget().set_visible(false);
}

/// Details → Devices lists each disk with its format and sizes; Add disk makes a new image
/// and records it, Remove keeps the file unless asked; Resize grows an image while the VM is
/// off and is refused (button insensitive, message) while it runs.
pub fn details_lists_adds_removes_and_resizes_disks() {
    use vireo::domain::store::DomainStore;
    use vireo::engine::block;
    use vireo::engine::config::DiskFormat;
    use vireo::launch::machines::RunState;
    use vireo::ui::details::{DetailsMsg, DiskRequest};
    let store = DomainStore::open_default().unwrap();
    let images = store.dir().parent().unwrap().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let first = images.join("disky-first.qcow2");
    let _ = std::fs::remove_file(&first);
    block::create(&first, DiskFormat::Qcow2, 2 << 30, &mut |_| {}).unwrap();
    store
        .define(&format!(
            "<domain type='kvm'>\n  <name>disky</name>\n  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>/boot/vmlinuz</kernel>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='none'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
            first.display()
        ))
        .unwrap();
    let app = App::builder().launch(());
    let window = app.widget().clone();
    window.present();
    wait_for("the row", || app.widgets().vm_list.row("disky").is_some());
    wait_for("the disk usage in the list", || {
        app.widgets()
            .vm_list
            .subtitle("disky")
            .is_some_and(|s| plain(&s).contains("of 2.1 GB"))
    });
    assert!(app.widgets().vm_list.activate("disky", "open"));
    wait_for("the details window", || {
        app.model().details("disky").is_some()
    });
    let (sender, details_window) = {
        let model = app.model();
        let details = model.details("disky").unwrap();
        (details.sender().clone(), details.widget().clone())
    };
    let rows = || {
        app.model()
            .details("disky")
            .unwrap()
            .widgets()
            .disks
            .rows
            .iter()
            .map(|r| {
                (
                    r.title().to_string(),
                    plain(&r.subtitle().unwrap_or_default()),
                )
            })
            .collect::<Vec<_>>()
    };
    wait_for("the disk's sizes", || {
        rows().first().is_some_and(|(_, s)| s.contains("of 2.1 GB"))
    });
    let listed = rows();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "vda · Disk");
    for fact in ["qcow2", "virtio", "cache none", &*first.to_string_lossy()] {
        assert!(listed[0].1.contains(fact), "{fact} in {}", listed[0].1);
    }
    let stack = app
        .model()
        .details("disky")
        .map(|d| d.widgets().stack.clone())
        .unwrap();
    stack.set_visible_child_name("devices");
    snap(&details_window, "details-disks");

    // Add a raw disk: created in the images folder, recorded as vdb with type raw.
    sender.emit(DetailsMsg::AddDisk(DiskRequest::New {
        gib: 1,
        format: DiskFormat::Raw,
    }));
    wait_for("vdb in the definition", || {
        store
            .get("disky")
            .unwrap()
            .domain
            .disks()
            .iter()
            .any(|d| d.target_dev.as_deref() == Some("vdb"))
    });
    let vdb = store.get("disky").unwrap().domain.disks()[1].clone();
    assert_eq!(vdb.driver_type.as_deref(), Some("raw"));
    let vdb_path = std::path::PathBuf::from(vdb.source.unwrap());
    assert_eq!(block::inspect(&vdb_path).unwrap().virtual_size, 1 << 30);
    wait_for("two rows", || rows().len() == 2);

    // Remove it, keeping the file.
    sender.emit(DetailsMsg::RemoveDisk {
        target: "vdb".into(),
        delete_file: false,
    });
    wait_for("vdb to go", || {
        store.get("disky").unwrap().domain.disks().len() == 1
    });
    assert!(vdb_path.exists(), "the image file is kept");
    wait_for("one row", || rows().len() == 1);

    // An existing ISO image becomes a read-only CD-ROM, and the row says what the guest sees.
    let iso = images.join("install.iso");
    std::fs::write(&iso, vec![0u8; 1 << 20]).unwrap();
    sender.emit(DetailsMsg::AddDisk(DiskRequest::Existing(iso.clone())));
    wait_for("the CD-ROM in the definition", || {
        store.get("disky").unwrap().domain.disks().len() == 2
    });
    let cdrom = store.get("disky").unwrap().domain.disks()[1].clone();
    assert_eq!(cdrom.device.as_deref(), Some("cdrom"));
    assert!(cdrom.readonly);
    assert_eq!(cdrom.target_dev.as_deref(), Some("vdb"));
    wait_for("the CD-ROM row", || {
        rows().get(1).is_some_and(|(title, subtitle)| {
            title == "vdb · CD-ROM" && subtitle.contains("read-only disk /dev/vdb")
        })
    });
    sender.emit(DetailsMsg::RemoveDisk {
        target: "vdb".into(),
        delete_file: false,
    });
    wait_for("the CD-ROM to go", || rows().len() == 1);
    assert!(iso.exists());
    let _ = std::fs::remove_file(&iso);

    // Resize while running: refused.
    sender.emit(DetailsMsg::RunState(RunState::Running));
    wait_for("Resize to turn off", || {
        app.model()
            .details("disky")
            .unwrap()
            .widgets()
            .disks
            .resize_buttons
            .first()
            .is_some_and(|b| !b.is_sensitive())
    });
    sender.emit(DetailsMsg::ResizeDisk {
        target: "vda".into(),
        bytes: 3 << 30,
        allow_shrink: false,
    });
    wait_for("the refusal", || {
        app.model()
            .details("disky")
            .unwrap()
            .model()
            .error()
            .is_some_and(|e| e.contains("Shut the virtual machine down"))
    });
    assert_eq!(block::inspect(&first).unwrap().virtual_size, 2 << 30);

    // Off again: shrinking is refused without the tick, growing works.
    sender.emit(DetailsMsg::RunState(RunState::ShutOff));
    sender.emit(DetailsMsg::ResizeDisk {
        target: "vda".into(),
        bytes: 1 << 30,
        allow_shrink: false,
    });
    wait_for("the shrink refusal", || {
        app.model()
            .details("disky")
            .unwrap()
            .model()
            .error()
            .is_some_and(|e| e.contains("Allow shrinking"))
    });
    sender.emit(DetailsMsg::ResizeDisk {
        target: "vda".into(),
        bytes: 3 << 30,
        allow_shrink: false,
    });
    wait_for("the new size", || {
        block::inspect(&first).is_ok_and(|i| i.virtual_size == 3 << 30)
    });
    wait_for("the row to show it", || {
        rows().first().is_some_and(|(_, s)| s.contains("of 3.2 GB"))
    });

    // Remove vda deleting its file.
    sender.emit(DetailsMsg::RemoveDisk {
        target: "vda".into(),
        delete_file: true,
    });
    wait_for("the file to go", || !first.exists());
    assert!(store.get("disky").unwrap().domain.disks().is_empty());
    details_window.close();
    store.undefine("disky", false).unwrap();
    let _ = std::fs::remove_file(&vdb_path);
    window.set_visible(false);
}
