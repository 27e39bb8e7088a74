//! Disk images for the Linux-guest disk tests, built by the tests themselves with the host's
//! tools (mkfs.ext4, qemu-img, xorriso; `tools/testbed setup` installs them), and checks of what
//! a guest left in them (debugfs, e2fsck, `qemu-img check`). Also `vireoctl` runs with a private
//! runtime directory, for tests that need the runner process (image locks, power cuts).
//!
//! Images live in a [`Scratch`] folder: inside the test bed's L1 that is under the run's results
//! folder (`VIREO_TESTBED_OUT`), a real file system on the host that L1 can write and that takes
//! O_DIRECT (L1's tmpfs holds neither large files nor O_DIRECT); directly on a host, the
//! temporary directory.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A folder for one test's images: removed when the test passes, kept (and named on stderr)
/// when it fails, for a look at the images.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let base = std::env::var_os("VIREO_TESTBED_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("disk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("images kept for inspection in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a host tool and returns its output; panics naming the command when it cannot start.
fn tool(program: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(program)
        .args(args)
        // debugfs and e2fsck live in /sbin, which a user's PATH may lack.
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program} (tools/testbed setup installs it): {e}"))
}

/// Runs a host tool that must succeed; returns its stdout.
fn tool_ok(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = tool(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// The repository's `tools/testbed-guest/` folder.
fn guest_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/testbed-guest")
}

/// A raw ext4 image of `size_mib` MiB whose root is busybox (statically linked, as in the test
/// guest's initramfs) with `tools/testbed-guest/disk-init` as `/sbin/init`: the root disk for the
/// initramfs's `diskroot` scenario.
pub fn ext4_root_image(path: &Path, size_mib: u32) {
    let tree = path.with_extension("tree");
    let _ = std::fs::remove_dir_all(&tree);
    for d in ["bin", "sbin", "dev", "proc", "sys", "tmp", "mnt"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    let busybox = tool_ok("sh", os!["-c", "command -v busybox"]);
    let busybox = busybox.trim();
    let file = tool_ok("file", os!["-L", busybox]);
    assert!(
        file.contains("statically linked"),
        "{busybox} is not statically linked (install busybox-static): {file}"
    );
    std::fs::copy(busybox, tree.join("bin/busybox")).unwrap();
    for applet in tool_ok(busybox, os!["--list"]).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).unwrap();
        }
    }
    let init = tree.join("sbin/init");
    std::fs::copy(guest_sources().join("disk-init"), &init).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    tool_ok(
        "mkfs.ext4",
        &[
            "-q".as_ref(),
            "-F".as_ref(),
            "-L".as_ref(),
            "vireo-root".as_ref(),
            "-d".as_ref(),
            tree.as_os_str(),
            path.as_os_str(),
            format!("{size_mib}M").as_ref(),
        ],
    );
    let _ = std::fs::remove_dir_all(&tree);
}

/// A sparse raw image of `size` bytes (reads as zeroes).
pub fn raw_image(path: &Path, size: u64) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(size))
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

/// An empty qcow2 image of `size` bytes.
pub fn qcow2_image(path: &Path, size: u64) {
    tool_ok(
        "qemu-img",
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            path.as_os_str(),
            size.to_string().as_ref(),
        ],
    );
}

/// A qcow2 overlay on `backing` (format `backing_format`, `raw` or `qcow2`), the size of its
/// backing file.
pub fn qcow2_overlay(path: &Path, backing: &Path, backing_format: &str) {
    tool_ok(
        "qemu-img",
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-b".as_ref(),
            backing.as_os_str(),
            "-F".as_ref(),
            backing_format.as_ref(),
            path.as_os_str(),
        ],
    );
}

/// An ISO 9660 image holding `/VIREO.TXT` with `text`.
pub fn iso_image(path: &Path, text: &str) {
    let tree = path.with_extension("tree");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("VIREO.TXT"), format!("{text}\n")).unwrap();
    tool_ok(
        "xorriso",
        &[
            "-as".as_ref(),
            "mkisofs".as_ref(),
            "-quiet".as_ref(),
            "-V".as_ref(),
            "VIREO".as_ref(),
            "-o".as_ref(),
            path.as_os_str(),
            tree.as_os_str(),
        ],
    );
    let _ = std::fs::remove_dir_all(&tree);
}

/// A file's SHA-256 (to prove an image unchanged).
pub fn sha256(path: &Path) -> String {
    tool_ok("sha256sum", &[path.as_os_str()])
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The content of `file` in the ext4 image `image` (raw), read with debugfs.
pub fn ext4_cat(image: &Path, file: &str) -> String {
    let out = tool(
        "debugfs",
        &[
            "-R".as_ref(),
            format!("cat {file}").as_ref(),
            image.as_os_str(),
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the ext4 image `image` (raw) is clean: `e2fsck -fn` finds nothing to fix.
pub fn assert_ext4_clean(image: &Path) {
    let out = tool("e2fsck", &["-fn".as_ref(), image.as_os_str()]);
    assert!(
        out.status.success(),
        "e2fsck -fn {}: {}{}",
        image.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that `qemu-img check` finds the qcow2 image `image` consistent (no corruptions and
/// no leaked clusters).
pub fn assert_qcow2_clean(image: &Path) {
    let out = tool("qemu-img", &["check".as_ref(), image.as_os_str()]);
    assert!(
        out.status.success(),
        "qemu-img check {}: {}{}",
        image.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Converts `image` (`raw` or `qcow2`, with its backing chain) to the raw file `raw`.
pub fn convert_to_raw(image: &Path, raw: &Path) {
    tool_ok(
        "qemu-img",
        &[
            "convert".as_ref(),
            "-O".as_ref(),
            "raw".as_ref(),
            image.as_os_str(),
            raw.as_os_str(),
        ],
    );
}

/// A `<disk>` element: a file image on the virtio bus; `extra` goes inside the element (e.g.
/// `<readonly/>`, `<serial>…</serial>`).
pub fn disk_xml(path: &Path, format: &str, cache: &str, target: &str, extra: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='{format}' cache='{cache}'/>\
         <source file='{}'/><target dev='{target}' bus='virtio'/>{extra}</disk>",
        path.display()
    )
}

/// A CD-ROM element for an ISO image (read-only, on the virtio bus).
pub fn cdrom_xml(path: &Path, target: &str) -> String {
    format!(
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='{target}' bus='virtio'/><readonly/></disk>",
        path.display()
    )
}

/// The record the `fsync-loop` scenario writes as block `n - 1` (4 KiB blocks).
pub fn fsync_record(n: u64) -> String {
    format!("VIREO-REC {n:012}\n")
}

/// The records among 1..=`last` missing from the raw image `raw`.
pub fn missing_records(raw: &Path, last: u64) -> Vec<u64> {
    let mut file =
        std::fs::File::open(raw).unwrap_or_else(|e| panic!("opening {}: {e}", raw.display()));
    let mut missing = Vec::new();
    let mut block = vec![0u8; 4096];
    for n in 1..=last {
        use std::io::{Seek, SeekFrom};
        let want = fsync_record(n);
        let ok = file.seek(SeekFrom::Start((n - 1) * 4096)).is_ok()
            && file.read_exact(&mut block).is_ok()
            && block.starts_with(want.as_bytes());
        if !ok {
            missing.push(n);
        }
    }
    missing
}

/// `vireoctl` with a runtime directory of its own (so its runners and sockets are this test's).
pub struct Vireoctl {
    runtime: PathBuf,
}

impl Vireoctl {
    pub fn new(scratch: &Scratch) -> Self {
        let runtime = scratch.path("xdg-runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self { runtime }
    }

    fn command(&self, args: &[&std::ffi::OsStr]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vireoctl"));
        let home = self.runtime.parent().expect("scratch folder");
        c.args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .stdin(Stdio::null());
        c
    }

    /// Runs `vireoctl ARGS` to its end.
    pub fn run(&self, args: &[&std::ffi::OsStr]) -> Output {
        self.command(args).output().expect("running vireoctl")
    }

    /// `vireoctl create FILE`: a transient domain held by a detached runner.
    pub fn create(&self, xml: &Path) -> Output {
        self.run(&["create".as_ref(), xml.as_os_str()])
    }

    /// `vireoctl destroy NAME` (errors ignored: the VM may have ended already).
    pub fn destroy(&self, name: &str) {
        let _ = self.run(os!["destroy", name]);
    }

    /// The process id of the runner holding `name` (`Runner PID` of `vireoctl dominfo`).
    pub fn runner_pid(&self, name: &str) -> u32 {
        let out = self.run(os!["dominfo", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("Runner PID:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no runner PID for {name}: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }

    /// The control socket of the runner holding `name` (`$XDG_RUNTIME_DIR/vireo/NAME.sock`), for
    /// requests `vireoctl` does not make (the GUI's screen channel).
    pub fn control_socket(&self, name: &str) -> PathBuf {
        self.runtime.join("vireo").join(format!("{name}.sock"))
    }

    /// Whether `vireoctl dominfo NAME` reports it running.
    pub fn is_running(&self, name: &str) -> bool {
        let out = self.run(os!["dominfo", name]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("State:") && l.contains("running"))
    }

    /// Follows the serial console of `name` (`vireoctl console`, scrollback first).
    pub fn console(&self, name: &str) -> Console {
        let mut child = self
            .command(os!["console", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running vireoctl console");
        let text = Arc::new(Mutex::new(String::new()));
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, end) = (Arc::clone(&text), Arc::clone(&ended));
        let stdout = child.stdout.take().expect("console stdout");
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            // Whole lines only: a record counts once its line has fully arrived.
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                if line.ends_with(b"\n") {
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&line));
                }
                line.clear();
            }
            end.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Console { child, text, ended }
    }
}

/// A `vireoctl console` client's output so far.
pub struct Console {
    child: Child,
    text: Arc<Mutex<String>>,
    /// The stream ended: the VM (or its runner) is gone.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Console {
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until the console shows `needle`; panics with its tail after `timeout`, or at once
    /// when the console ends without it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.text().contains(needle) {
            let ended = self.ended.load(std::sync::atomic::Ordering::SeqCst);
            // The reader pushes every line before it marks the end: look once more.
            if ended && self.text().contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline && !ended,
                "{} waiting for '{needle}'; console:\n{}",
                if ended {
                    "the VM ended".to_string()
                } else {
                    format!("waited {timeout:?}")
                },
                super::tail(&self.text(), 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGKILL to process `pid` and waits (up to 10 s) until it is gone.
pub fn kill_hard(pid: u32) {
    let out = tool("kill", os!["-KILL", &pid.to_string()]);
    assert!(out.status.success(), "kill -KILL {pid}: {out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    // A killed runner is reaped by init (it was started with setsid, its parent has exited);
    // until then /proc shows it as a zombie, which holds no files.
    while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            break;
        }
        assert!(Instant::now() < deadline, "process {pid} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}
