//! Migrate… from a libvirt VM's row, against two instances of libvirt's test driver
//! (`test:///default` and one read from a node file, a host of its own): the destination
//! choice lists the other connected host; the pre-flight's verdict is shown before Migrate can
//! be pressed, and a destination where the name already runs keeps it disabled with the reason;
//! a clear verdict enables it, and the test driver's refusal to migrate comes back as the
//! dialog's status. The test driver cannot migrate or compare CPUs, so the words for a CPU the
//! destination lacks and the progress bar are checked on the dialog itself; the migration
//! proper is tested between two real daemons (tests/connections_migrate.rs).

use relm4::ComponentController;
use relm4::gtk::prelude::*;

use vireo::launch::connections::cross_host::HostAnswer;
use vireo::launch::connections::migrate::{Blocker, Preflight, Progress};
use vireo::launch::connections::{LibvirtConnection, Lifecycle};
use vireo::ui::connections::migrate::MigrateDialog;

use super::super::{snap, wait_for};
use super::{AppController, URI, act, add_test_connection, launch, open_add, remove_connection};

/// A second test-driver host, read from a node file: it runs a VM named `test` too.
fn other_host() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other-host.xml");
    std::fs::write(
        &file,
        "<node><domain type='test'><name>test</name>\
         <uuid>11111111-1111-4111-8111-111111111111</uuid><memory>65536</memory>\
         <os><type arch='x86_64'>hvm</type></os></domain></node>",
    )
    .unwrap();
    let uri = format!("test://{}", file.display());
    (dir, uri)
}

fn dialog(app: &AppController) -> MigrateDialog {
    app.model()
        .connections()
        .model()
        .migrate
        .clone()
        .expect("Migrate… is open")
}

/// Waits for the verdict of the chosen destination and returns the CPU line.
fn wait_for_verdict(app: &AppController) -> String {
    wait_for("the pre-flight's verdict", || {
        let d = dialog(app);
        !d.cpu.text().is_empty() && !d.cpu.text().starts_with("Checking")
    });
    dialog(app).cpu.text().to_string()
}

pub fn migrate_dialog_checks_the_destination_first() {
    let (app, window) = launch();
    add_test_connection(&app);
    // With no other host, there is nowhere to go.
    assert!(act(&app, "test", "migrate"));
    assert!(app.model().connections().model().migrate.is_none());

    let (_dir, far) = other_host();
    let add = open_add(&app);
    add.custom.set_active(true);
    add.custom_uri.set_text(&far);
    add.add.emit_clicked();
    wait_for("the other host's VM", || {
        app.model()
            .connections()
            .model()
            .view(&far)
            .and_then(|v| v.state_label("test"))
            .as_deref()
            == Some("Running")
    });

    // `test` runs on the other host already: Migrate stays disabled, saying why.
    assert!(act(&app, "test", "migrate"));
    wait_for("the dialog", || {
        app.model().connections().model().migrate.is_some()
    });
    assert_eq!(dialog(&app).destinations, std::slice::from_ref(&far));
    let cpu = wait_for_verdict(&app);
    // The test driver's VM has no <cpu>: it takes what each host gives, which is said.
    assert!(
        cpu.starts_with("CPU: follows each host (hypervisor default)"),
        "{cpu}"
    );
    let d = dialog(&app);
    assert!(d.problems.is_visible());
    assert!(
        d.problems
            .text()
            .contains(&format!("“test” already runs on {far}.")),
        "{}",
        d.problems.text()
    );
    assert!(!d.migrate.is_sensitive());
    snap(&d.window, "connections-migrate-refused");
    d.cancel.emit_clicked();
    wait_for("Close to close", || !d.window.is_visible());

    // A VM the other host lacks: the verdict is clear, Migrate is offered; the test driver
    // then refuses to migrate, which the dialog says.
    let local = LibvirtConnection::open(URI).unwrap();
    local
        .define(
            "<domain type='test'><name>mover</name><memory unit='MiB'>32</memory>\
             <os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
    local.start("mover", false).unwrap();
    wait_for("mover listed running", || {
        super::state_of(&app, "mover").as_deref() == Some("Running")
    });
    assert!(act(&app, "mover", "migrate"));
    wait_for("the dialog for mover", || {
        app.model()
            .connections()
            .model()
            .migrate
            .as_ref()
            .is_some_and(|d| d.vm == "mover" && d.window.is_visible())
    });
    wait_for_verdict(&app);
    let d = dialog(&app);
    assert!(!d.problems.is_visible(), "{}", d.problems.text());
    assert!(d.migrate.is_sensitive());
    snap(&d.window, "connections-migrate-ready");
    d.migrate.emit_clicked();
    wait_for("the migration's outcome", || {
        !dialog(&app).is_migrating() && !dialog(&app).status.text().is_empty()
    });
    let status = dialog(&app).status.text().to_string();
    assert!(
        status.starts_with(&format!("{URI}: migrating domain 'mover' to {far}: ")),
        "{status}"
    );
    assert!(dialog(&app).migrate.is_sensitive(), "offered again");
    assert_eq!(super::state_of(&app, "mover").as_deref(), Some("Running"));

    // The words for a CPU the destination lacks, and the progress bar.
    let verdict = Preflight {
        name: "mover".into(),
        source: URI.into(),
        destination: far.clone(),
        cpu: Some(HostAnswer::Cannot {
            missing: vec!["avx2".into(), "rdseed".into()],
            why: "Host CPU does not provide required features: avx2, rdseed".into(),
        }),
        blockers: vec![Blocker::Cpu {
            missing: vec!["avx2".into(), "rdseed".into()],
            why: String::new(),
        }],
        disks: vec!["/srv/mover.qcow2".into()],
    };
    d.show_verdict(&verdict);
    assert_eq!(d.cpu.text(), "CPU: the destination lacks avx2, rdseed");
    assert!(
        d.problems
            .text()
            .contains("it lacks avx2, rdseed. Give the VM a CPU"),
        "{}",
        d.problems.text()
    );
    assert!(d.disks.text().contains("/srv/mover.qcow2"));
    assert!(!d.migrate.is_sensitive());
    d.show_progress(&Progress {
        processed: 16 << 20,
        remaining: 48 << 20,
        total: 64 << 20,
        elapsed_ms: 300,
    });
    assert_eq!(d.progress.fraction(), 0.25);
    assert_eq!(d.progress.text().unwrap(), "16.0 of 64.0 MiB");
    snap(&d.window, "connections-migrate-cpu");
    d.window.close();

    local.control("mover", Lifecycle::Destroy).unwrap();
    local.undefine("mover").unwrap();
    remove_connection(&app, &far);
    remove_connection(&app, URI);
    window.set_visible(false);
}

/// Waits up to a minute (a migration between two real daemons on a busy machine).
fn wait_long(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ctx = relm4::gtk::glib::MainContext::default();
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        while ctx.iteration(false) {}
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn row_state(app: &AppController, uri: &str, vm: &str) -> Option<String> {
    app.model()
        .connections()
        .model()
        .view(uri)
        .and_then(|v| v.state_label(vm))
}

fn add_connection(app: &AppController, uri: &str) {
    let add = open_add(app);
    add.custom.set_active(true);
    add.custom_uri.set_text(uri);
    add.add.emit_clicked();
}

/// Opens Migrate… for `vm` on `uri` and waits for the pre-flight's verdict.
fn open_migrate(app: &AppController, uri: &str, vm: &str) -> MigrateDialog {
    let offered = app
        .model()
        .connections()
        .model()
        .view(uri)
        .unwrap()
        .activate(vm, "migrate");
    assert!(offered, "Migrate… not offered for {vm}");
    wait_long("the dialog", || {
        app.model()
            .connections()
            .model()
            .migrate
            .as_ref()
            .is_some_and(|d| d.uri == uri && d.vm == vm && d.window.is_visible())
    });
    wait_long("the verdict", || {
        let text = dialog(app).cpu.text();
        !text.is_empty() && !text.starts_with("Checking")
    });
    dialog(app)
}

/// Two private libvirtd instances (tests/connections_support/libvirtd.rs) as two hosts: a
/// running TCG guest moves from one to the other through the dialog, with the memory sent to
/// 127.0.0.1 (the daemons' own host names do not resolve); then a migration back is cancelled
/// from the dialog while the pre-flight waits on the held destination, and the VM stays.
pub fn migrate_dialog_moves_a_vm_between_real_hosts() {
    use super::super::connections_support::domain_xml;
    use super::super::connections_support::libvirtd::Libvirtd;
    if let Some(missing) = Libvirtd::missing() {
        return super::super::skip_or_fail(format!("the real migration: needs {missing}"));
    }
    let (source, dest) = (Libvirtd::start(), Libvirtd::start());
    let (a, b) = (source.uri(), dest.uri());
    let src = LibvirtConnection::open(&a).unwrap();
    src.define(&domain_xml("vireo-gui-mig", "qemu", ""))
        .unwrap();
    src.start("vireo-gui-mig", false).unwrap();

    let (app, window) = launch();
    add_connection(&app, &a);
    add_connection(&app, &b);
    wait_long("both hosts connected", || {
        row_state(&app, &a, "vireo-gui-mig").as_deref() == Some("Running")
            && app
                .model()
                .connections()
                .model()
                .migrate_destinations(&a)
                .contains(&b)
    });

    let d = open_migrate(&app, &a, "vireo-gui-mig");
    assert_eq!(d.cpu.text(), "CPU: the destination can give it");
    assert!(d.migrate.is_sensitive(), "{}", d.problems.text());
    d.address.set_text("127.0.0.1");
    d.migrate.emit_clicked();
    assert!(d.is_migrating());
    assert_eq!(d.cancel.label().unwrap(), "Cancel Migration");
    wait_long("the migration's end", || !d.is_migrating());
    assert_eq!(
        d.status.text(),
        format!("“vireo-gui-mig” now runs on {b}."),
        "{}",
        source.log()
    );
    assert_eq!(d.progress.fraction(), 1.0);
    snap(&d.window, "connections-migrate-done");
    wait_long("the list to follow", || {
        row_state(&app, &b, "vireo-gui-mig").as_deref() == Some("Running")
            && row_state(&app, &a, "vireo-gui-mig").is_none()
    });
    d.window.close();

    // Back, cancelled: the destination (the first host) is held while the pre-flight asks it.
    let d = open_migrate(&app, &b, "vireo-gui-mig");
    d.address.set_text("127.0.0.1");
    assert!(source.signal(libc::SIGSTOP));
    d.migrate.emit_clicked();
    wait_long("the migration to be cancellable", || d.can_cancel());
    d.cancel.emit_clicked();
    assert_eq!(d.status.text(), "Cancelling…");
    assert!(source.signal(libc::SIGCONT));
    wait_long("the cancelled migration's end", || !d.is_migrating());
    assert_eq!(
        d.status.text(),
        format!("Migration cancelled; “vireo-gui-mig” runs on at {b}.")
    );
    let dst = LibvirtConnection::open(&b).unwrap();
    assert_eq!(
        dst.domstate("vireo-gui-mig").unwrap().0,
        vireo::launch::connections::DomainState::Running
    );
    assert!(
        src.list_domains()
            .unwrap()
            .iter()
            .all(|r| r.name != "vireo-gui-mig"),
        "moved after all"
    );
    d.window.close();
    remove_connection(&app, &a);
    remove_connection(&app, &b);
    window.set_visible(false);
}
