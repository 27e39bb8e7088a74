//! An sshd of the test's own on 127.0.0.1 in front of a private libvirtd, so `qemu+ssh://`
//! is tried as a user meets it: a free port, a throwaway host key, a throwaway user key (and
//! a second one it does not know), root login by key only, `AuthorizedKeysFile` in the temp
//! directory. It runs in a mount namespace of its own where the private daemon's socket
//! directory is bound over /run/libvirt, so the plain URI
//! `qemu+ssh://root@127.0.0.1:PORT/system` reaches that daemon through libvirt's
//! virt-ssh-helper, as it would reach a host's system daemon.
//!
//! The client side is `ssh` from PATH (libvirt runs it by name): [`Sshd::bin_dir`] holds a
//! wrapper that keeps its known hosts in the temp directory and reads no user configuration,
//! so a test leaves nothing in ~/.ssh.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::libvirtd::Libvirtd;

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

/// A port nothing listens on now (the kernel's pick, released again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// What is missing to run one, if anything (beyond [`Libvirtd::missing`]).
    pub fn missing() -> Option<String> {
        [
            ("/usr/sbin/sshd", "openssh-server"),
            ("/usr/bin/ssh", "openssh-client"),
            ("/usr/bin/ssh-keygen", "openssh-client"),
            ("/usr/bin/virt-ssh-helper", "libvirt-daemon"),
            ("/usr/bin/nc", "netcat-openbsd"),
        ]
        .into_iter()
        .find(|(p, _)| !Path::new(p).exists())
        .map(|(p, pkg)| format!("{p} (apt package {pkg})"))
    }

    /// Starts one in front of `daemon`.
    pub fn start(daemon: &Libvirtd) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "user_key", "wrong_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(d.join(key))
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen {key}");
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
                d.join("host_key").display(),
                d.join("sshd.pid").display(),
                d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        let wrapper = d.join("bin/ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F /dev/null -o UserKnownHostsFile={} \
                 -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o IdentityAgent=none \
                 \"$@\"\n",
                d.join("known_hosts").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        // sshd's privilege separation directory, as Debian's service creates it.
        let script = format!(
            "set -e\nmkdir -p /run/sshd\nmount --bind {} /run/libvirt\n\
             exec /usr/sbin/sshd -D -e -f {}\n",
            daemon.dir.path().join("sock").display(),
            d.join("sshd_config").display()
        );
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { dir, port, child };
        sshd.wait_for_port();
        sshd
    }

    fn wait_for_port(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The key sshd accepts for root.
    pub fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// A key sshd does not know.
    pub fn wrong_key(&self) -> PathBuf {
        self.dir.path().join("wrong_key")
    }

    /// The directory with the `ssh` wrapper, to put first on PATH.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// `qemu+ssh://root@127.0.0.1:PORT/system` with libvirt's `keyfile` and `no_tty`, and
    /// `no_verify=1` (accept an unknown host key) when `no_verify`.
    pub fn uri(&self, port: u16, key: &Path, no_verify: bool) -> String {
        let mut uri = format!(
            "qemu+ssh://root@127.0.0.1:{port}/system?keyfile={}&no_tty=1",
            key.display()
        );
        if no_verify {
            uri += "&no_verify=1";
        }
        uri
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: kill with the pid of our own child (unshare exec'd sh, which exec'd sshd),
        // not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
