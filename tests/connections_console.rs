//! The serial console of a libvirt domain (`virDomainOpenConsole`) on a private libvirtd (see
//! tests/connections_support/libvirtd.rs): the guest's output read through a
//! `ConsoleSession`, a keystroke that reaches the guest, a console held by another client
//! (refused, then taken over with force), and `vireoctl -c URI console`.
//!
//! The guest is SeaBIOS alone (no disk): with `<bios useserial='yes'/>` it prints to the
//! serial port and, with the boot menu on, answers Esc with its menu — so the output proves
//! the read path and the menu proves a typed byte reached the guest.

mod connections_support;
mod require_env;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connections_support::libvirtd::Libvirtd;
use connections_support::{stderr, stdout};
use vireo::launch::connections::{ConsoleError, ConsoleSession, LibvirtConnection, Lifecycle};

fn guest_xml(name: &str, virt_type: &str, serial: bool) -> String {
    let (firmware, devices) = if serial {
        (
            "<bootmenu enable='yes' timeout='60000'/><bios useserial='yes'/>",
            "<devices><serial type='pty'/><console type='pty'/></devices>",
        )
    } else {
        ("", "<devices/>")
    };
    format!(
        "<domain type='{virt_type}'><name>{name}</name><memory unit='MiB'>64</memory>\
         <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type>{firmware}</os>\
         <features><acpi/></features>{devices}</domain>"
    )
}

/// Reads from `session` until `needle` has appeared; returns all that was read. Fails with what
/// arrived when the guest does not print it within a minute (it prints within seconds).
fn read_until(session: &mut ConsoleSession, needle: &str) -> String {
    session
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on the console; got {:?}",
            String::from_utf8_lossy(&seen)
        );
        match session.read(&mut buf) {
            Ok(0) => panic!(
                "the console ended before {needle:?}; got {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the console: {e}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads until end of file (the session was closed from the host's side).
fn read_to_end(session: &mut ConsoleSession) {
    session
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    session
        .read_to_end(&mut rest)
        .expect("the taken-over console ends");
}

#[test]
fn a_libvirt_console_reads_output_takes_input_and_can_be_taken_over() {
    if let Some(missing) = Libvirtd::missing() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let uri = daemon.uri();
    let conn = LibvirtConnection::open(&uri).unwrap();
    // TCG: what CI runners without KVM run too.
    conn.define(&guest_xml("vireo-con", "qemu", true)).unwrap();

    // Not running: no console, and the message says to start it.
    let err = ConsoleSession::open(&uri, "vireo-con", false).unwrap_err();
    assert!(matches!(err, ConsoleError::NotRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("start vireo-con"), "{err}");

    // Paused until the console is open, so no early output is lost.
    conn.start("vireo-con", true).unwrap();
    let mut session = ConsoleSession::open(&uri, "vireo-con", false).unwrap();
    conn.control("vireo-con", Lifecycle::Resume).unwrap();
    let banner = read_until(&mut session, "Press ESC for boot menu");
    assert!(banner.contains("SeaBIOS"), "{banner}");
    // Esc typed on the console reaches the firmware, which answers with its menu.
    session.write_all(b"\x1b").unwrap();
    read_until(&mut session, "Select boot device");

    // Held by this session: a second client is refused with the way out named.
    let err = ConsoleSession::open(&uri, "vireo-con", false).unwrap_err();
    assert!(err.is_busy(), "{err:?}");
    assert!(err.to_string().contains("--force"), "{err}");
    // vireoctl says the same.
    let home = connections_support::Home::new();
    let out = home.run(&["-c", &uri, "console", "vireo-con"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in use by another client"),
        "{}",
        stderr(&out)
    );

    // Taken over with force: the new session works, the old one ends.
    let mut taker = ConsoleSession::open(&uri, "vireo-con", true).unwrap();
    read_to_end(&mut session);
    taker.write_all(b"\x1b").unwrap();
    drop(taker);

    // vireoctl -c URI console --force, detached at once with Ctrl+] on its stdin.
    let out = detached_at_once(&home, &["-c", &uri, "console", "--force", "vireo-con"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Connected to domain 'vireo-con'\nEscape character is ^]"),
        "{}",
        stderr(&out)
    );
    // Ctrl+] released the console: a plain open works again.
    drop(ConsoleSession::open(&uri, "vireo-con", false).unwrap());
    conn.control("vireo-con", Lifecycle::Destroy).unwrap();
    // start --console starts it and attaches.
    let out = detached_at_once(&home, &["-c", &uri, "start", "--console", "vireo-con"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Domain 'vireo-con' started\n"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("Escape character is ^]"),
        "{}",
        stderr(&out)
    );
    conn.control("vireo-con", Lifecycle::Destroy).unwrap();

    // A running domain without a serial console: the message says what to add.
    conn.define(&guest_xml("vireo-nocon", "qemu", false))
        .unwrap();
    conn.start("vireo-nocon", true).unwrap();
    let err = ConsoleSession::open(&uri, "vireo-nocon", false).unwrap_err();
    assert!(matches!(err, ConsoleError::NoConsole { .. }), "{err:?}");
    assert!(err.to_string().contains("<serial type='pty'/>"), "{err}");
    conn.control("vireo-nocon", Lifecycle::Destroy).unwrap();
}

/// Runs vireoctl with Ctrl+] as its whole input (detaching at once from a console).
fn detached_at_once(home: &connections_support::Home, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vireoctl"))
        .args(args)
        .env("XDG_RUNTIME_DIR", home.path("run"))
        .env("XDG_CONFIG_HOME", home.path("config"))
        .env("XDG_DATA_HOME", home.path("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\x1d").unwrap();
    child.wait_with_output().unwrap()
}
