//! Live migration between two private libvirtd instances on this machine, each its own host
//! to libvirt (own host UUID, host name, sockets, state and migration ports;
//! tests/connections_support/libvirtd.rs), with a QEMU TCG guest (`<domain type='qemu'>`)
//! whose memory goes over tcp on 127.0.0.1.
//!
//! The destination is made to lack one CPU feature the source has: it starts from the
//! source's cached QEMU capabilities (/var/cache/libvirt/qemu/capabilities, the probe libvirt
//! keeps per daemon) with `avx2` taken out of TCG's host CPU, so libvirt on the destination
//! answers every CPU question as a host without avx2 would. A VM that requires avx2 runs on
//! the source; the pre-flight must refuse to move it, naming avx2, and move nothing.
//!
//! Fails under `VIREO_REQUIRE_ENV=1` when libvirtd, QEMU or root is missing.

mod connections_support;
mod require_env;

use connections_support::libvirtd::Libvirtd;
use connections_support::{Home, domain_xml, stderr, stdout};
use vireo::launch::connections::cross_host::{HostAnswer, compare_on_connection};
use vireo::launch::connections::migrate::{
    Blocker, MigrateError, MigrateOptions, Migration, MigrationEvent, preflight,
};
use vireo::launch::connections::{DomainState, HypervisorSpec, LibvirtConnection};

/// The feature the destination is made to lack.
const LACKING: &str = "avx2";

/// A source host and a destination host that lacks [`LACKING`] for TCG guests.
fn two_hosts() -> (Libvirtd, Libvirtd) {
    let source = Libvirtd::start();
    // Have the source probe QEMU (and cache what it found) before copying its cache.
    LibvirtConnection::open(&source.uri())
        .unwrap()
        .domcapabilities(&HypervisorSpec {
            virttype: Some("qemu".into()),
            ..HypervisorSpec::default()
        })
        .unwrap();
    let caps = source.dir.path().join("cache/qemu/capabilities");
    let dest = Libvirtd::start_prepared(|dir| {
        let to = dir.join("cache/qemu/capabilities");
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&caps).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(
                to.join(path.file_name().unwrap()),
                without_tcg_feature(&text),
            )
            .unwrap();
        }
    });
    (source, dest)
}

/// QEMU capabilities (libvirt's cache) with [`LACKING`] turned off in TCG's host CPU.
fn without_tcg_feature(caps: &str) -> String {
    let start = caps
        .find("<hostCPU type='tcg'")
        .expect("the cached QEMU capabilities have a TCG host CPU");
    let end = start + caps[start..].find("</hostCPU>").unwrap();
    let has = format!("<property name='{LACKING}' type='boolean' value='true' migratable='yes'/>");
    let lacks = format!("<property name='{LACKING}' type='boolean' value='false'/>");
    let section = &caps[start..end];
    assert!(
        section.contains(&has),
        "this QEMU's TCG offers no {LACKING}; pick another feature it has"
    );
    format!(
        "{}{}{}",
        &caps[..start],
        section.replace(&has, &lacks),
        &caps[end..]
    )
}

fn missing_env() -> Option<String> {
    Libvirtd::missing()
}

/// Memory over tcp on 127.0.0.1: each destination listens on its own ports there (libvirt
/// would otherwise offer the host name, which both daemons share in the network namespace).
fn options(live: bool, persistent: bool, undefine_source: bool) -> MigrateOptions {
    MigrateOptions {
        live,
        persistent,
        undefine_source,
        migrate_uri: Some("tcp://127.0.0.1".into()),
        bandwidth_mib: None,
    }
}

/// Defines and starts a TCG guest on `conn`.
fn run_guest(conn: &LibvirtConnection, name: &str, cpu: &str) {
    conn.define(&domain_xml(name, "qemu", cpu)).unwrap();
    conn.start(name, false).unwrap();
    assert_eq!(conn.domstate(name).unwrap().0, DomainState::Running);
}

fn has(conn: &LibvirtConnection, name: &str) -> bool {
    conn.list_domains().unwrap().iter().any(|r| r.name == name)
}

#[test]
fn a_running_vm_migrates_live_to_the_other_host_and_back() {
    if let Some(missing) = missing_env() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let (source, dest) = two_hosts();
    let src = LibvirtConnection::open(&source.uri()).unwrap();
    let dst = LibvirtConnection::open(&dest.uri()).unwrap();
    run_guest(&src, "vireo-mig", "");

    // A host is not its own destination.
    let verdict = preflight(&src, "vireo-mig", &source.uri()).unwrap();
    assert!(
        matches!(verdict.blockers.as_slice(), [Blocker::SameHost { .. }]),
        "{verdict}"
    );

    // Live, defined on the destination, undefined on the source.
    let migration = Migration::new(&src, "vireo-mig").unwrap();
    let mut events = Vec::new();
    migration
        .run(&src, &dest.uri(), &options(true, true, true), |e| {
            events.push(e)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", source.log()));
    let Some(MigrationEvent::Checked(verdict)) = events.first() else {
        panic!("the verdict did not come first: {events:?}");
    };
    assert!(verdict.can_migrate(), "{verdict}");
    assert!(
        matches!(verdict.cpu, Some(HostAnswer::CanRun(_))),
        "the guest's CPU was not compared: {verdict}"
    );
    assert_eq!(
        dst.domstate("vireo-mig").unwrap(),
        (DomainState::Running, "migrated")
    );
    assert!(dst.dominfo("vireo-mig").unwrap().row.persistent);
    assert!(!has(&src, "vireo-mig"), "still defined on the source");

    // And back with vireoctl, live only: it runs on the first host again (not defined
    // there), and the second keeps its definition, shut off.
    let home = Home::new();
    let out = home.run(&[
        "-c",
        &dest.uri(),
        "migrate",
        "--live",
        "--migrateuri",
        "tcp://127.0.0.1",
        "vireo-mig",
        &source.uri(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "Pre-flight for 'vireo-mig' from {} to {}:\n",
            dest.uri(),
            source.uri()
        )),
        "{text}"
    );
    assert!(text.contains("verdict: can migrate"), "{text}");
    assert!(
        text.ends_with(&format!(
            "Domain 'vireo-mig' migrated to {}\n",
            source.uri()
        )),
        "{text}"
    );
    assert_eq!(
        src.domstate("vireo-mig").unwrap(),
        (DomainState::Running, "migrated")
    );
    assert!(!src.dominfo("vireo-mig").unwrap().row.persistent);
    assert_eq!(
        dst.domstate("vireo-mig").unwrap(),
        (DomainState::ShutOff, "migrated")
    );
}

#[test]
fn a_cpu_feature_the_destination_lacks_is_named_and_nothing_moves() {
    if let Some(missing) = missing_env() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let (source, dest) = two_hosts();
    let src = LibvirtConnection::open(&source.uri()).unwrap();
    let dst = LibvirtConnection::open(&dest.uri()).unwrap();
    let cpu = format!(
        "<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model>\
         <feature policy='require' name='{LACKING}'/></cpu>"
    );
    run_guest(&src, "vireo-cpu", &cpu);
    // The source gives the guest its CPU; the destination cannot.
    let live = src.dumpxml("vireo-cpu", false).unwrap();
    assert!(
        matches!(
            compare_on_connection(&live, &src).unwrap(),
            HostAnswer::CanRun(_)
        ),
        "the source itself cannot run {live}"
    );

    let migration = Migration::new(&src, "vireo-cpu").unwrap();
    let err = migration
        .run(&src, &dest.uri(), &options(true, true, true), |_| {})
        .unwrap_err();
    let MigrateError::Refused(verdict) = &err else {
        panic!("not refused by the pre-flight: {err}");
    };
    let missing = verdict
        .blockers
        .iter()
        .find_map(|b| match b {
            Blocker::Cpu { missing, .. } => Some(missing.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no CPU blocker: {verdict}"));
    assert!(missing.iter().any(|f| f == LACKING), "{missing:?}");
    assert_eq!(verdict.blockers.len(), 1, "{verdict}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot migrate 'vireo-cpu' to {}: ", dest.uri()))
            && text.contains(&format!("it lacks {}", missing.join(", "))),
        "{text}"
    );

    // vireoctl says the same and exits 1.
    let home = Home::new();
    let out = home.run(&[
        "-c",
        &source.uri(),
        "migrate",
        "--live",
        "vireo-cpu",
        &dest.uri(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "CPU: the destination lacks {}",
            missing.join(", ")
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("nothing was moved"),
        "{}",
        stderr(&out)
    );

    // Nothing moved.
    assert_eq!(src.domstate("vireo-cpu").unwrap().0, DomainState::Running);
    assert!(src.dominfo("vireo-cpu").unwrap().row.persistent);
    assert!(!has(&dst, "vireo-cpu"), "defined on the destination");
}

#[test]
fn a_cancelled_migration_leaves_the_vm_running_on_the_source() {
    if let Some(missing) = missing_env() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let (source, dest) = two_hosts();
    let src = LibvirtConnection::open(&source.uri()).unwrap();
    let dst = LibvirtConnection::open(&dest.uri()).unwrap();
    run_guest(&src, "vireo-cancel", "");

    // The destination daemon is held (SIGSTOP) once the pre-flight has passed, so the job
    // cannot finish before it is cancelled; let go soon after the cancel is asked for. The
    // cancel runs on a thread of its own: libvirt's abort can wait for the held destination
    // (the job may still be preparing there), and that wait must not hold back the SIGCONT.
    let migration = Migration::new(&src, "vireo-cancel").unwrap();
    let canceller = migration.canceller();
    let mut progress = 0;
    let mut cancelling = None;
    let err = migration
        .run(
            &src,
            &dest.uri(),
            &options(true, false, false),
            |e| match e {
                MigrationEvent::Checked(_) => assert!(dest.signal(libc::SIGSTOP)),
                MigrationEvent::Progress(_) => {
                    progress += 1;
                    if progress == 1 {
                        let canceller = canceller.clone();
                        cancelling = Some(std::thread::spawn(move || canceller.cancel()));
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        assert!(dest.signal(libc::SIGCONT));
                    }
                }
            },
        )
        .unwrap_err();
    cancelling
        .expect("the cancel was asked for")
        .join()
        .unwrap()
        .unwrap();
    assert!(progress >= 1);
    assert!(
        matches!(err, MigrateError::Cancelled { .. }),
        "{err}\n{}",
        source.log()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "migration of 'vireo-cancel' to {} cancelled; it runs on at {}",
            dest.uri(),
            source.uri()
        )
    );
    assert_eq!(
        src.domstate("vireo-cancel").unwrap().0,
        DomainState::Running
    );
    assert!(!has(&dst, "vireo-cancel"), "left on the destination");

    // Cancelled before its job began (during the pre-flight, say): it never begins.
    let migration = Migration::new(&src, "vireo-cancel").unwrap();
    migration.canceller().cancel().unwrap();
    let err = migration
        .run(&src, &dest.uri(), &options(true, false, false), |e| {
            assert!(
                matches!(e, MigrationEvent::Checked(_)),
                "the job ran: {e:?}"
            )
        })
        .unwrap_err();
    assert!(matches!(err, MigrateError::Cancelled { .. }), "{err}");
    assert_eq!(
        src.domstate("vireo-cancel").unwrap().0,
        DomainState::Running
    );
    assert!(!has(&dst, "vireo-cancel"), "left on the destination");
}

#[test]
fn an_unreachable_destination_or_a_stopped_vm_is_refused_with_the_reason() {
    if let Some(missing) = missing_env() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let source = Libvirtd::start();
    let src = LibvirtConnection::open(&source.uri()).unwrap();
    src.define(&domain_xml("vireo-off", "qemu", "")).unwrap();
    let gone = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let verdict = preflight(&src, "vireo-off", gone).unwrap();
    assert_eq!(verdict.blockers.len(), 2, "{verdict}");
    assert_eq!(
        verdict.blockers[0],
        Blocker::NotRunning(DomainState::ShutOff)
    );
    let lines = verdict.blocker_lines();
    assert!(lines[0].contains("start it first"), "{lines:?}");
    assert!(
        lines[1].starts_with(&format!(
            "the destination is unreachable: {gone}: cannot connect"
        )) && lines[1].contains("systemctl start libvirtd"),
        "{lines:?}"
    );
}
