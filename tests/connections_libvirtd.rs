//! A real libvirtd with the QEMU driver, started by the test itself, entirely private: as root
//! in its own mount namespace (`unshare -m`), with a temporary directory bound over
//! /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, and
//! its socket in that directory; so nothing it writes (definitions, caches, logs) reaches the
//! host, and a system libvirtd, if any, is not touched. The QEMU driver needs a privileged
//! daemon to use /dev/kvm (a session daemon runs as a user that may not open it), which is why
//! the test needs root. Fails under `VIREO_REQUIRE_ENV=1` when libvirtd, QEMU or root is
//! missing.

mod connections_support;
mod require_env;

use std::path::Path;
use std::time::Duration;

use connections_support::libvirtd::Libvirtd;
use connections_support::{Home, domain_xml, stderr, stdout};
use vireo::launch::connections::cross_host::libvirt_host_model;
use vireo::launch::connections::{
    Comparison, DomainState, HypervisorSpec, LibvirtConnection, Lifecycle,
};

/// The first CPU model the host's domain capabilities mark unusable, with the features
/// libvirt says block it (libvirt 10 lists `<blockers>`; 9 does not, then the list is empty);
/// `None` when every model is usable on this host.
fn unusable_model(domcaps: &str) -> Option<(String, Vec<String>)> {
    let start = domcaps.find("<model usable='no'")?;
    let rest = &domcaps[start..];
    let model = rest[rest.find('>')? + 1..rest.find("</model>")?].to_owned();
    let blockers = domcaps
        .split(&format!("<blockers model='{model}'>"))
        .nth(1)
        .and_then(|b| b.split("</blockers>").next())
        .map(|b| {
            b.split("<feature name='")
                .skip(1)
                .filter_map(|f| f.split('\'').next())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some((model, blockers))
}

#[test]
fn a_real_libvirtd_defines_runs_and_compares_cpus() {
    if let Some(missing) = Libvirtd::missing() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let uri = daemon.uri();
    let conn = LibvirtConnection::open(&uri).unwrap();
    let virt_type = if Path::new("/dev/kvm").exists() {
        "kvm"
    } else {
        "qemu"
    };

    // define → list → dumpxml → start/suspend/resume/destroy → undefine, through the library.
    let name = conn.define(&domain_xml("vireo-lv", virt_type, "")).unwrap();
    assert_eq!(name, "vireo-lv");
    let rows = conn.list_domains().unwrap();
    let row = rows.iter().find(|r| r.name == "vireo-lv").unwrap();
    assert_eq!(
        (row.id, row.state, row.persistent),
        (None, DomainState::ShutOff, true)
    );
    let xml = conn.dumpxml("vireo-lv", true).unwrap();
    assert!(xml.contains(&format!("<uuid>{}</uuid>", row.uuid)), "{xml}");
    conn.start("vireo-lv", true).unwrap();
    assert_eq!(
        conn.domstate("vireo-lv").unwrap(),
        (DomainState::Paused, "user")
    );
    conn.control("vireo-lv", Lifecycle::Resume).unwrap();
    assert_eq!(
        conn.domstate("vireo-lv").unwrap(),
        (DomainState::Running, "unpaused")
    );
    // The live XML names the emulator QEMU runs as.
    assert!(
        conn.dumpxml("vireo-lv", false)
            .unwrap()
            .contains("<emulator>")
    );
    conn.control("vireo-lv", Lifecycle::Suspend).unwrap();
    assert_eq!(
        conn.domstate("vireo-lv").unwrap(),
        (DomainState::Paused, "user")
    );
    conn.control("vireo-lv", Lifecycle::Destroy).unwrap();
    assert_eq!(
        conn.domstate("vireo-lv").unwrap(),
        (DomainState::ShutOff, "destroyed")
    );
    conn.undefine("vireo-lv").unwrap();
    assert!(
        conn.list_domains()
            .unwrap()
            .iter()
            .all(|r| r.name != "vireo-lv")
    );

    // The same through vireoctl -c.
    let home = Home::new();
    let c = |verb: &[&str]| -> Vec<String> {
        ["-c", uri.as_str()]
            .iter()
            .chain(verb)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        home.run(&args)
    };
    let file = home.file("vm.xml", &domain_xml("vireo-cli", virt_type, ""));
    let out = run(c(&["define", &file]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(c(&["list", "--all"]));
    assert!(
        stdout(&out).contains(" -    vireo-cli   shut off"),
        "{}",
        stdout(&out)
    );
    let out = run(c(&["dumpxml", "vireo-cli"]));
    assert!(
        stdout(&out).contains(&format!("<domain type='{virt_type}'>")),
        "{}",
        stdout(&out)
    );
    let out = run(c(&["undefine", "vireo-cli"]));
    assert_eq!(
        stdout(&out),
        "Domain 'vireo-cli' has been undefined\n",
        "{}",
        stderr(&out)
    );

    // Domain capabilities and the hypervisor CPU: QEMU's host-model is what it can give, so
    // comparing it is never incompatible, and the baseline of it is a named model.
    let spec = HypervisorSpec {
        virttype: Some(virt_type.into()),
        ..HypervisorSpec::default()
    };
    let domcaps = conn.domcapabilities(&spec).unwrap();
    assert!(
        domcaps.contains("<mode name='host-model' supported='yes'>"),
        "{domcaps}"
    );
    let host_model = libvirt_host_model(&conn).unwrap();
    let answer = conn.compare_cpu(&spec, &host_model).unwrap();
    assert!(
        matches!(answer, Comparison::Identical | Comparison::Superset),
        "{answer:?} for {host_model}"
    );
    let baseline = conn
        .baseline_cpu(&spec, std::slice::from_ref(&host_model), true, false)
        .unwrap();
    assert!(baseline.contains("<model"), "{baseline}");

    // A model the host cannot run is incompatible, naming the features it lacks (those libvirt
    // lists as its blockers among them), through the library and through vireoctl.
    match unusable_model(&domcaps) {
        None => eprintln!("every CPU model is usable here; nothing incompatible to compare"),
        Some((model, blockers)) => {
            let cpu = format!("<cpu mode='custom' match='exact'><model>{model}</model></cpu>");
            match conn.compare_cpu(&spec, &cpu).unwrap() {
                Comparison::Incompatible { features, .. } => {
                    assert!(!features.is_empty(), "{model}: no missing features named");
                    for blocker in &blockers {
                        assert!(
                            features.contains(blocker),
                            "{model}: {blocker} not in {features:?}"
                        );
                    }
                }
                other => panic!("{model} is blocked by {blockers:?} but compares {other:?}"),
            }
            let file = home.file("cpu.xml", &cpu);
            let out = run(c(&[
                "hypervisor-cpu-compare",
                "--virttype",
                virt_type,
                &file,
            ]));
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            assert!(
                stdout(&out).starts_with("incompatible: "),
                "{}",
                stdout(&out)
            );
            assert!(
                stdout(&out).trim().len() > "incompatible:".len(),
                "{}",
                stdout(&out)
            );
        }
    }
    let caps_file = home.file("domcaps.xml", &domcaps);
    let out = run(c(&["hypervisor-cpu-baseline", "--migratable", &caps_file]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("<cpu"), "{}", stdout(&out));
}

/// A watched connection hears its daemon go away (the close callback), so the app can mark
/// the host disconnected without polling.
#[test]
fn a_watched_connection_reports_the_daemon_going_away() {
    use vireo::launch::connections::events::{ConnectionEvent, watch};
    if let Some(missing) = Libvirtd::missing() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let (tx, rx) = std::sync::mpsc::channel();
    let (conn, watch) = watch(&daemon.uri(), move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    assert!(conn.list_domains().unwrap().is_empty());
    drop(daemon);
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(ConnectionEvent::Closed(why)) => {
                assert!(why.contains("closed"), "{why}");
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("no close event after the daemon stopped: {e}"),
        }
    }
    drop(watch);
    drop(conn);
}
