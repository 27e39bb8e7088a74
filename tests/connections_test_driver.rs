//! libvirt connections against libvirt's `test:///default` driver: real libvirt, in-process,
//! no daemon. Every verb of the library and of `vireoctl -c URI`, the stored connections, and
//! the verbs that do not apply. (tests/connections_libvirtd.rs runs a real libvirtd with QEMU.)
//!
//! `test:///default` keeps its state per process, starting from one running domain `test`:
//! the library test works on its own domain and leaves `test` alone; every `vireoctl` run is a
//! fresh process, so each CLI check starts from that state.

mod connections_support;

use connections_support::{Home, domain_xml, stderr, stdout};
use vireo::launch::connections::{
    ConnectionError, DomainState, HypervisorSpec, LibvirtConnection, Lifecycle,
};

const URI: &str = "test:///default";

#[test]
fn the_library_drives_a_domain_through_its_life() {
    let conn = LibvirtConnection::open(URI).unwrap();
    let rows = conn.list_domains().unwrap();
    let test = rows
        .iter()
        .find(|r| r.name == "test")
        .expect("the driver's own domain");
    assert_eq!(
        (test.id, test.state, test.persistent),
        (Some(1), DomainState::Running, true)
    );
    // CPU time of the running domains only, for the list's sparklines.
    let times = conn.cpu_times().unwrap();
    assert_eq!(times.len(), 1, "{times:?}");
    assert_eq!(times[0].name, "test");
    assert!(times[0].cpu_time_ns > 0 && times[0].vcpus > 0, "{times:?}");

    let name = conn
        .define(&domain_xml(
            "lib-vm",
            "test",
            "<cpu mode='custom'><model>Haswell</model></cpu>",
        ))
        .unwrap();
    assert_eq!(name, "lib-vm");
    let row = conn
        .list_domains()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "lib-vm")
        .unwrap();
    assert_eq!(
        (row.id, row.state, row.persistent),
        (None, DomainState::ShutOff, true)
    );
    assert!(
        conn.dumpxml("lib-vm", true)
            .unwrap()
            .contains("<model fallback='allow'>Haswell")
    );
    // Looked up by UUID, as virsh does.
    assert_eq!(conn.domain_name(&row.uuid).unwrap(), "lib-vm");

    conn.start("lib-vm", false).unwrap();
    assert_eq!(
        conn.domstate("lib-vm").unwrap(),
        (DomainState::Running, "booted")
    );
    let info = conn.dominfo("lib-vm").unwrap();
    assert!(info.row.id.is_some());
    assert_eq!((info.vcpus, info.max_memory_kib), (1, 64 * 1024));
    assert!(
        info.to_dominfo().contains("State:          running\n"),
        "{}",
        info.to_dominfo()
    );
    conn.control("lib-vm", Lifecycle::Suspend).unwrap();
    assert_eq!(
        conn.domstate("lib-vm").unwrap(),
        (DomainState::Paused, "user")
    );
    conn.control("lib-vm", Lifecycle::Resume).unwrap();
    assert_eq!(conn.domstate("lib-vm").unwrap().0, DomainState::Running);
    conn.control("lib-vm", Lifecycle::Reboot).unwrap();
    conn.control("lib-vm", Lifecycle::Shutdown).unwrap();
    assert_eq!(
        conn.domstate("lib-vm").unwrap(),
        (DomainState::ShutOff, "shutdown")
    );
    // (The test driver has no start --paused; the libvirtd test covers it.)
    conn.start("lib-vm", false).unwrap();
    conn.control("lib-vm", Lifecycle::Destroy).unwrap();
    assert_eq!(
        conn.domstate("lib-vm").unwrap(),
        (DomainState::ShutOff, "destroyed")
    );

    // A refusal names the URI, the action and libvirt's reason.
    let err = conn
        .control("lib-vm", Lifecycle::Resume)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("test:///default: resuming domain 'lib-vm': "),
        "{err}"
    );
    assert!(err.contains("not paused"), "{err}");

    conn.undefine("lib-vm").unwrap();
    let err = conn.dumpxml("lib-vm", false).unwrap_err();
    assert!(matches!(err, ConnectionError::NoDomain { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("vireoctl -c test:///default list --all"),
        "{err}"
    );

    assert!(conn.capabilities().unwrap().contains("<capabilities>"));
    // The test driver has neither domain capabilities nor the hypervisor CPU calls: the
    // error says so, with the fix.
    let err = conn
        .domcapabilities(&HypervisorSpec::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not supported") && err.contains("qemu://"),
        "{err}"
    );
    let err = conn
        .compare_cpu(
            &HypervisorSpec::default(),
            "<cpu><model>Haswell</model></cpu>",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("virConnectCompareHypervisorCPU"), "{err}");
}

#[test]
fn a_missing_daemon_or_driver_is_named_with_the_fix() {
    let err = LibvirtConnection::open("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("qemu+unix:///system?socket=/nonexistent/libvirt-sock: cannot connect"),
        "{err}"
    );
    assert!(err.contains("systemctl start libvirtd"), "{err}");
    let err = LibvirtConnection::open("nosuchdriver:///x")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("nosuchdriver:///x: unknown URI scheme 'nosuchdriver'"),
        "{err}"
    );
}

/// `-c URI` before `verb`.
fn c<'a>(verb: &[&'a str]) -> Vec<&'a str> {
    [&["-c", URI][..], verb].concat()
}

#[test]
fn vireoctl_routes_every_verb_to_the_connection() {
    let home = Home::new();

    let list = home.ok(&c(&["list"]));
    assert!(list.contains(" 1    test   running"), "{list}");
    assert_eq!(home.ok(&c(&["list", "--inactive", "--name"])), "");
    assert_eq!(home.ok(&c(&["list", "--all", "--name"])), "test\n");
    let info = home.ok(&c(&["dominfo", "test"]));
    assert!(
        info.contains("Name:           test\n") && info.contains("Persistent:     yes"),
        "{info}"
    );
    assert_eq!(home.ok(&c(&["domstate", "test"])), "running\n");
    assert_eq!(home.ok(&c(&["domid", "test"])), "1\n");
    let uuid = home.ok(&c(&["domuuid", "test"]));
    assert_eq!(uuid.trim().len(), 36, "{uuid}");
    // By id and by UUID too.
    assert_eq!(home.ok(&c(&["domstate", "1"])), "running\n");
    assert_eq!(home.ok(&c(&["domstate", uuid.trim()])), "running\n");

    for (verb, said) in [
        ("suspend", "Domain 'test' suspended\n"),
        ("shutdown", "Domain 'test' is being shutdown\n"),
        ("reboot", "Domain 'test' is being rebooted\n"),
        ("destroy", "Domain 'test' destroyed\n"),
    ] {
        assert_eq!(home.ok(&c(&[verb, "test"])), said, "{verb}");
    }
    home.fails(2, &c(&["resume", "test"]), "not paused");
    home.fails(2, &c(&["start", "test"]), "already running");
    assert!(
        home.ok(&c(&["dumpxml", "test"]))
            .contains("<name>test</name>")
    );
    assert!(
        home.ok(&c(&["dumpxml", "--inactive", "test"]))
            .contains("<domain type='test'")
    );
    assert_eq!(
        home.ok(&c(&["undefine", "test"])),
        "Domain 'test' has been undefined\n"
    );

    let file = home.file(
        "vm.xml",
        &domain_xml("cli-vm", "test", "<cpu><model>Haswell</model></cpu>"),
    );
    let out = home.ok(&c(&["define", &file]));
    assert_eq!(out, format!("Domain 'cli-vm' defined from {file}\n"));
    assert!(home.ok(&c(&["capabilities"])).contains("<capabilities>"));
    home.fails(
        2,
        &c(&["domcapabilities"]),
        "virConnectGetDomainCapabilities",
    );
    home.fails(2, &c(&["hypervisor-cpu-compare", &file]), "not supported");
    home.fails(2, &c(&["hypervisor-cpu-baseline", &file]), "not supported");
    home.fails(2, &c(&["dominfo", "nosuch"]), "no domain 'nosuch'");
}

#[test]
fn verbs_without_a_libvirt_counterpart_say_so() {
    let home = Home::new();
    for verb in [
        &["vcpuinfo", "test"][..],
        &["host-validate"],
        &["edit", "test"],
    ] {
        let args = [&["-c", URI][..], verb].concat();
        home.fails(
            2,
            &args,
            &format!(
                "'{}' does not apply to the libvirt connection test:///default",
                verb[0]
            ),
        );
    }
    // console applies (tests/connections_console.rs), but the test driver has no consoles.
    home.fails(
        2,
        &["-c", URI, "console", "test"],
        "opening the console of domain 'test'",
    );
    // start --console starts first: the test driver's VM already runs.
    home.fails(
        2,
        &["-c", URI, "start", "--console", "test"],
        "starting domain 'test'",
    );
    home.fails(
        2,
        &["-c", URI, "undefine", "--remove-all-storage", "test"],
        "leave --remove-all-storage out",
    );
    // Verbs that need no connection still work with one.
    assert!(home.ok(&["-c", URI, "version"]).starts_with("vireoctl "));
    home.ok(&["-c", URI, "prefs", "list"]);
}

#[test]
fn the_default_uri_comes_from_the_environment_and_c_overrides_it() {
    let home = Home::new();
    let out = home.run_with_default(Some(URI), &["list", "--name"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "test\n");
    // -c names this computer explicitly: its (empty) store, not the test driver.
    let out = home.run_with_default(
        Some(URI),
        &["-c", "vireo:///session", "list", "--all", "--name"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    // -c after the verb works too (a global option, as virsh users type it before).
    assert_eq!(home.ok(&["list", "--name", "-c", URI]), "test\n");
}

#[test]
fn connections_are_added_listed_and_removed() {
    let home = Home::new();
    assert_eq!(
        home.ok(&["connection", "add", URI]),
        "Connection 'test:///default' added\n"
    );
    home.fails(
        2,
        &[
            "connection",
            "add",
            "qemu+unix:///system?socket=/nonexistent/sock",
        ],
        "add --no-check to store it anyway",
    );
    let far = "qemu+ssh://me@far.example/system";
    assert_eq!(
        home.ok(&["connection", "add", "--no-check", "--autoconnect", far]),
        format!("Connection '{far}' added\n")
    );
    home.fails(
        2,
        &["connection", "add", "system"],
        "not a libvirt connection URI",
    );
    home.fails(
        2,
        &["connection", "add", "vireo:///session"],
        "is this computer",
    );
    let list = home.ok(&["connection", "list"]);
    let lines: Vec<&str> = list.lines().skip(2).map(str::trim).collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("vireo:///session") && lines[0].ends_with("(This computer)"));
    assert!(
        lines[1].starts_with(URI) && lines[1].ends_with(" no"),
        "{list}"
    );
    assert!(
        lines[2].starts_with(far) && lines[2].ends_with(" yes"),
        "{list}"
    );
    let prefs = std::fs::read_to_string(home.path("config/vireo/prefs.toml")).unwrap();
    assert!(
        prefs.contains("[[connections]]") && prefs.contains(far),
        "{prefs}"
    );

    assert_eq!(
        home.ok(&["connection", "remove", far]),
        format!("Connection '{far}' removed\n")
    );
    home.fails(2, &["connection", "remove", far], "no stored connection");
    assert_eq!(home.ok(&["connection", "list"]).lines().count(), 4);
}

#[test]
fn hosts_cpu_compare_answers_for_every_stored_host() {
    let home = Home::new();
    home.ok(&["connection", "add", URI]);
    // The test driver's domain has no <cpu>: it runs wherever its hypervisor's default does.
    let out = home.ok(&["-c", URI, "hosts-cpu-compare", "test"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("This computer") && lines[0].ends_with("follows the host)"),
        "{out}"
    );
    assert!(lines[1].starts_with(URI), "{out}");

    // A fixed model must be asked of each host; the test driver cannot answer, so the verb
    // says which host was not asked and why, and exits 1.
    let file = home.file(
        "vm.xml",
        &domain_xml(
            "fixed",
            "kvm",
            "<cpu mode='custom' match='exact'><model>qemu64</model></cpu>",
        ),
    );
    home.ok(&["define", &file]);
    let out = home.run(&["hosts-cpu-compare", "fixed"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let test_line = text.lines().find(|l| l.starts_with(URI)).unwrap();
    assert!(
        test_line.contains("not asked") && test_line.contains("not supported"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("This computer")),
        "{text}"
    );
}
