//! A real libvirtd with the QEMU driver, started by the test itself, entirely private: as root
//! in its own mount and UTS namespaces (`unshare -m -u`), with a temporary directory bound
//! over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt,
//! and its socket in that directory; so nothing it writes (definitions, caches, logs) reaches
//! the host, and a system libvirtd, if any, is not touched. The QEMU driver needs a privileged
//! daemon to use /dev/kvm (a session daemon runs as a user that may not open it), which is why
//! the tests need root.
//!
//! Several can run at once, as separate hosts to libvirt: each has its own host UUID
//! (libvirtd.conf's `host_uuid`; libvirt refuses to migrate a VM to the host it runs on), its
//! own host name and its own range of incoming migration ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use vireo::launch::connections::{LibvirtConnection, Lifecycle};

/// The private libvirtd; its running domains are destroyed and it is stopped when dropped.
pub struct Libvirtd {
    pub dir: tempfile::TempDir,
    child: Child,
}

const BOUND: [(&str, &str); 5] = [
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
];

/// Daemons started by this process so far: each gets its own host UUID, host name and
/// migration ports from it.
static STARTED: AtomicU16 = AtomicU16::new(0);

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
        Libvirtd::start_prepared(|_| {})
    }

    /// Starts one after `prepare` has had its directory (`cache/` is its /var/cache/libvirt,
    /// say, to seed QEMU capabilities).
    pub fn start_prepared(prepare: impl FnOnce(&Path)) -> Libvirtd {
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (sub, _) in BOUND {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::create_dir_all(d.join("sock")).unwrap();
        // Host UUIDs unique per process and daemon, so two test processes do not clash either.
        let host_uuid = format!(
            "5eed0000-0000-4000-8000-{:06x}{:06x}",
            std::process::id() & 0xff_ffff,
            n
        );
        std::fs::write(
            d.join("etc/libvirtd.conf"),
            format!(
                "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n\
                 host_uuid = \"{host_uuid}\"\n",
                d.join("sock").display()
            ),
        )
        .unwrap();
        // QEMU as root, so it can open /dev/kvm (0600 on some hosts); no security driver,
        // cgroups or virtlogd, none of which a test container has. Incoming migrations listen
        // on ports of this daemon's own (the allocator skips ports in use by others).
        let ports = 49152 + 32 * (n % 64);
        std::fs::write(
            d.join("etc/qemu.conf"),
            format!(
                "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n\
                 stdio_handler = \"file\"\ncgroup_controllers = [ ]\n\
                 migration_port_min = {ports}\nmigration_port_max = {}\n",
                ports + 31
            ),
        )
        .unwrap();
        prepare(d);
        let mut script = format!("set -e\nhostname vireo-test-host-{n}\n");
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
            .args([
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
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
            assert!(
                Instant::now() < deadline,
                "libvirtd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's own log (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("libvirtd.log")).unwrap_or_default()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock/libvirt-sock")
    }

    pub fn uri(&self) -> String {
        format!("qemu+unix:///system?socket={}", self.socket().display())
    }

    /// The daemon's process id (unshare exec'd sh, which exec'd libvirtd).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the daemon (SIGSTOP to hold it, SIGCONT to let it go on); false if
    /// it is gone.
    pub fn signal(&self, signal: i32) -> bool {
        // SAFETY: kill with the pid of our own child, not yet reaped (only Drop waits for it).
        unsafe { libc::kill(self.pid(), signal) == 0 }
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // QEMU processes outlive their daemon; force off what still runs first.
        self.signal(libc::SIGCONT);
        if let Ok(conn) = LibvirtConnection::open(&self.uri())
            && let Ok(rows) = conn.list_domains()
        {
            for row in rows.iter().filter(|r| r.id.is_some()) {
                let _ = conn.control(&row.name, Lifecycle::Destroy);
            }
        }
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}
