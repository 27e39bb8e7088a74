//! `qemu+ssh://` through Vireo's library, to an sshd the test starts on 127.0.0.1 in front of
//! a private libvirtd (tests/connections_support/sshd.rs): list, define, start and stop over
//! SSH (through virt-ssh-helper, and with `socket=` through netcat); and the faults a user meets first, each naming the URI and the fix: an unknown host
//! key, a refused key, a closed port, an unknown URI scheme.
//!
//! One test only: it puts the `ssh` wrapper first on PATH (libvirt runs `ssh` by name), which
//! is sound only while no other test thread runs. Fails under `VIREO_REQUIRE_ENV=1` when root,
//! libvirtd, QEMU, sshd or ssh is missing.

mod connections_support;
mod require_env;

use connections_support::domain_xml;
use connections_support::libvirtd::Libvirtd;
use connections_support::sshd::{Sshd, free_port};
use vireo::launch::connections::{ConnectionError, DomainState, LibvirtConnection, Lifecycle};

fn open_err(uri: &str) -> String {
    match LibvirtConnection::open(uri) {
        Ok(_) => panic!("{uri} connected"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn qemu_ssh_reaches_a_host_and_names_each_fault_with_its_fix() {
    if let Some(missing) = Libvirtd::missing().or_else(Sshd::missing) {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let sshd = Sshd::start(&daemon);
    let path = format!(
        "{}:{}",
        sshd.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: this binary has one test, and nothing of it runs on another thread yet, so
    // nothing reads the environment while it changes.
    unsafe { std::env::set_var("PATH", path) };
    let port = sshd.port;

    // A host SSH has never seen is refused until its key is accepted.
    let uri = sshd.uri(port, &sshd.user_key(), false);
    let err = open_err(&uri);
    assert!(
        err.starts_with(&format!("{uri}: cannot connect: ")),
        "{err}"
    );
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(
        err.contains(&format!("connect once with `ssh -p {port} root@127.0.0.1`")),
        "{err}"
    );

    // With no_verify=1 it connects; the daemon behind it is the private one.
    let uri = sshd.uri(port, &sshd.user_key(), true);
    let conn = LibvirtConnection::open(&uri).unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert!(
        conn.hostname().unwrap().starts_with("vireo-test-host-"),
        "not the private daemon"
    );
    assert!(conn.list_domains().unwrap().is_empty());
    assert_eq!(
        conn.define(&domain_xml("vireo-ssh", "qemu", "")).unwrap(),
        "vireo-ssh"
    );
    let rows = conn.list_domains().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].name.as_str(), rows[0].state),
        ("vireo-ssh", DomainState::ShutOff)
    );
    // The same daemon named by its socket (libvirt's `socket=` parameter, which makes libvirt
    // run netcat on the host instead of virt-ssh-helper).
    let by_socket = format!("{uri}&socket={}", daemon.socket().display());
    let other = LibvirtConnection::open(&by_socket).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        other
            .list_domains()
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["vireo-ssh"]
    );
    drop(other);
    conn.start("vireo-ssh", false).unwrap();
    assert_eq!(conn.domstate("vireo-ssh").unwrap().0, DomainState::Running);
    conn.control("vireo-ssh", Lifecycle::Destroy).unwrap();
    // The same domain through the daemon's own socket: SSH reached that daemon.
    let local = LibvirtConnection::open(&daemon.uri()).unwrap();
    assert_eq!(
        local.domstate("vireo-ssh").unwrap(),
        (DomainState::ShutOff, "destroyed")
    );
    conn.undefine("vireo-ssh").unwrap();
    drop(conn);

    // A key the host does not accept.
    let uri = sshd.uri(port, &sshd.wrong_key(), true);
    let err = open_err(&uri);
    assert!(
        err.starts_with(&format!("{uri}: cannot connect: ")),
        "{err}"
    );
    assert!(err.contains("Permission denied (publickey)"), "{err}");
    assert!(
        err.contains(&format!(
            "127.0.0.1 refused your SSH key: install it there with `ssh-copy-id -p {port} root@127.0.0.1`"
        )),
        "{err}"
    );

    // Nothing listening.
    let closed = free_port();
    let uri = sshd.uri(closed, &sshd.user_key(), true);
    let err = open_err(&uri);
    assert!(
        err.starts_with(&format!("{uri}: cannot connect: ")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "nothing accepts SSH connections on 127.0.0.1 port {closed}"
        )),
        "{err}"
    );

    // A scheme libvirt does not know is refused before libvirt tries TLS with it.
    for uri in [
        "foo://127.0.0.1/system",
        "qemu+sftp://root@127.0.0.1/system",
    ] {
        let err = LibvirtConnection::open(uri).unwrap_err();
        assert!(
            matches!(err, ConnectionError::UnknownScheme { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{uri}: unknown URI scheme '")),
            "{text}"
        );
        assert!(text.contains("qemu+ssh://user@host/system"), "{text}");
    }
}
