//! A private libvirtd with the QEMU driver for the tests that need a real one (see
//! tests/connections_libvirtd.rs for why it runs as root in its own mount namespace).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The private libvirtd; stopped when dropped.
pub struct Libvirtd {
    dir: tempfile::TempDir,
    child: Child,
}

const BOUND: [(&str, &str); 5] = [
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
];

impl Libvirtd {
    /// What is missing to run one, if anything.
    pub fn missing() -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("root (for a private privileged libvirtd in a mount namespace)".into());
        }
        [
            "/usr/sbin/libvirtd",
            "/usr/bin/unshare",
            "/usr/bin/qemu-system-x86_64",
        ]
        .into_iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} (apt packages libvirt-daemon-system, qemu-system-x86)"))
    }

    pub fn start() -> Libvirtd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (sub, _) in BOUND {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::create_dir_all(d.join("sock")).unwrap();
        std::fs::write(
            d.join("etc/libvirtd.conf"),
            format!(
                "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n",
                d.join("sock").display()
            ),
        )
        .unwrap();
        // QEMU as root, so it can open /dev/kvm (0600 on some hosts); no security driver,
        // cgroups or virtlogd, none of which a test container has.
        std::fs::write(
            d.join("etc/qemu.conf"),
            "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n\
             stdio_handler = \"file\"\ncgroup_controllers = [ ]\n",
        )
        .unwrap();
        let mut script = String::from("set -e\n");
        for (sub, target) in BOUND {
            script += &format!(
                "mkdir -p {target}\nmount --bind {} {target}\n",
                d.join(sub).display()
            );
        }
        script += &format!(
            "exec /usr/sbin/libvirtd --config {} --pid-file {}\n",
            d.join("etc/libvirtd.conf").display(),
            d.join("libvirtd.pid").display()
        );
        let log = std::fs::File::create(d.join("libvirtd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start unshare");
        let daemon = Libvirtd { dir, child };
        daemon.wait_for_socket();
        daemon
    }

    /// Waits until the daemon listens; fails with its log if it exits or never does.
    fn wait_for_socket(&self) {
        let socket = self.socket();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            let log =
                std::fs::read_to_string(self.dir.path().join("libvirtd.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "libvirtd did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock/libvirt-sock")
    }

    pub fn uri(&self) -> String {
        format!("qemu+unix:///system?socket={}", self.socket().display())
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // QEMU outlives libvirtd: force off what still runs (a test that failed midway), so
        // no guest is left behind.
        if let Ok(conn) = vireo::launch::connections::LibvirtConnection::open(&self.uri()) {
            for row in conn.list_domains().unwrap_or_default() {
                if row.id.is_some() {
                    let _ = conn.control(&row.name, vireo::launch::connections::Lifecycle::Destroy);
                }
            }
        }
        // SAFETY: kill with the pid of our own child (unshare exec'd sh, which exec'd libvirtd).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
