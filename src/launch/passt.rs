//! User-mode networking through passt (Debian package `passt`): one passt process per network
//! card, connected to the engine over a socketpair (`passt --fd N`, QEMU's stream framing), so
//! a VM gets DHCP, DNS forwarding, outbound TCP/UDP/ICMP and host→guest port forwards with no
//! root, bridge or tap device. [`start_backends`] starts them before the VM and
//! [`NetworkBackends`] stops and reaps them when it is dropped (the runner holds it until the
//! VM ends); a passt whose socket closes exits by itself too (`--fd` serves one client).
//!
//! Readiness: passt writes its PID file once it is set up and about to serve, so the PID file
//! is a pipe (`-P /proc/self/fd/N`): a line means ready, end-of-file means it gave up, and its stderr
//! says why.
//!
//! passt must not run as root: started as root it switches to `nobody` and, in the test bed,
//! never serves its socket. Vireo run as root (tests, the test bed) therefore starts it as
//! `nobody` itself, which works.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::nics::{Forward, NicPlan};

mod addresses;
use crate::engine::config::{FrameStream, NetBackend, NetConfig};
pub use addresses::{GuestAddress, guest_addresses};

/// The program started, unless `VIREO_PASST` names another (tests use it to fake a missing one).
const PASST: &str = "passt";
/// How long passt may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Guest addresses for a host without a default route (QEMU's user-mode defaults).
const OFFLINE_ADDRESS: &str = "10.0.2.15";
const OFFLINE_PREFIX: &str = "24";
const OFFLINE_GATEWAY: &str = "10.0.2.2";

/// Why a card's backend could not start. Each names the card and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PasstError {
    /// No passt on this host.
    #[error(
        "network interface {nic} needs passt for user-mode networking, but '{program}' is not \
         installed; install the Debian package 'passt' (sudo apt install passt), or unplug the \
         card to start the VM without its network (<link state='down'/> in the <interface>, or \
         remove the <interface>)"
    )]
    NotInstalled {
        /// The card (`net0`).
        nic: String,
        /// The program looked for.
        program: String,
    },
    /// A forwarded host port is taken or not allowed.
    #[error("network interface {nic}: {message}")]
    Port {
        /// The card.
        nic: String,
        /// Which port and what to do.
        message: String,
    },
    /// passt refused to run.
    #[error("network interface {nic}: passt could not start: {message}")]
    Failed {
        /// The card.
        nic: String,
        /// passt's own words, and the fix when known.
        message: String,
    },
    /// The system refused a socket, pipe or process.
    #[error("network interface {nic}: {what}: {cause}")]
    Os {
        /// The card.
        nic: String,
        /// What was being done.
        what: String,
        /// The OS error (not a `source`: the message carries it).
        cause: std::io::Error,
    },
}

/// The running passt processes of one VM; dropping this stops and reaps them.
#[derive(Debug, Default)]
pub struct NetworkBackends {
    children: Vec<(String, Child)>,
}

impl NetworkBackends {
    /// The process IDs, by card (for tests and diagnostics).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(nic, child)| (nic.clone(), child.id()))
            .collect()
    }
}

impl Drop for NetworkBackends {
    fn drop(&mut self) {
        for (nic, child) in &mut self.children {
            if let Ok(None) = child.try_wait() {
                // SAFETY: a signal to our own child, which has not been reaped (try_wait said
                // it still runs), so the PID is still its.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        tracing::warn!(%nic, "passt ignored SIGTERM; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

/// Starts one passt per card and returns the engine's cards (in `plans`' order) with the
/// processes behind them. `vm_name` goes into log lines.
pub fn start_backends(
    vm_name: &str,
    plans: &[NicPlan],
) -> Result<(Vec<NetConfig>, NetworkBackends), PasstError> {
    let program = std::env::var("VIREO_PASST").unwrap_or_else(|_| PASST.to_string());
    start_with(&program, vm_name, plans)
}

fn start_with(
    program: &str,
    vm_name: &str,
    plans: &[NicPlan],
) -> Result<(Vec<NetConfig>, NetworkBackends), PasstError> {
    let mut backends = NetworkBackends::default();
    let mut nics = Vec::new();
    let offline = !has_default_route();
    for plan in plans {
        if plan.link_down {
            let stream =
                FrameStream::unplugged().map_err(os_error(&plan.id, "creating a socket"))?;
            tracing::info!(vm = vm_name, nic = %plan.id, "link down in the definition: no passt");
            nics.push(NetConfig {
                id: plan.id.clone(),
                mac: plan.mac,
                backend: NetBackend::Stream(stream),
            });
            continue;
        }
        check_ports(plan)?;
        let (stream, child) = spawn(program, vm_name, plan, offline)?;
        backends.children.push((plan.id.clone(), child));
        nics.push(NetConfig {
            id: plan.id.clone(),
            mac: plan.mac,
            backend: NetBackend::Stream(stream),
        });
    }
    Ok((nics, backends))
}

/// passt's arguments for `plan`, its socket at `fd` and PID file at `pid_path`, without the
/// program name.
pub fn passt_args(plan: &NicPlan, fd: RawFd, pid_path: &str, offline: bool) -> Vec<String> {
    let mut args: Vec<String> = ["--fd", &fd.to_string(), "--foreground", "--quiet"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--pid".into(), pid_path.into()]);
    // For finding out what passt did with a guest's traffic: VIREO_PASST_LOG=FILE runs it with
    // --debug and its log in FILE (which passt, as nobody when Vireo is root, must be able to
    // create).
    if let Some(log) = std::env::var_os("VIREO_PASST_LOG") {
        args.retain(|a| a != "--quiet");
        args.extend([
            "--debug".into(),
            "--log-file".into(),
            log.to_string_lossy().into_owned(),
        ]);
    }
    if offline {
        // Newer passt serves without a default route given addresses; Debian 12's still
        // refuses, and the error below says what to do.
        for (flag, value) in [
            ("--address", OFFLINE_ADDRESS),
            ("--netmask", OFFLINE_PREFIX),
            ("--gateway", OFFLINE_GATEWAY),
        ] {
            args.extend([flag.into(), value.into()]);
        }
    }
    for Forward { udp, spec, .. } in &plan.forwards {
        args.extend([if *udp { "-u" } else { "-t" }.into(), spec.clone()]);
    }
    args
}

/// True when the host has an IPv4 or IPv6 default route (what passt takes its addresses from).
pub fn has_default_route() -> bool {
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v4 = v4.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 7 && f[1] == "00000000" && f[7] == "00000000"
    });
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    let v6 = v6.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 9 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" && f[9] != "lo"
    });
    v4 || v6
}

/// The lowest port a program that is not root may listen on here
/// (`net.ipv4.ip_unprivileged_port_start`, 1024 unless changed): passt never runs as root.
pub fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Whether passt (or the program `VIREO_PASST` names) can be started: found on `PATH` (or at
/// the path given) as an executable file. The wizard offers user-mode networking by default
/// only then. A hand-written `PATH` walk: a crate for these few lines is not worth it.
pub fn passt_installed() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let program = std::env::var("VIREO_PASST").unwrap_or_else(|_| PASST.to_string());
    let executable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(&program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(&program))))
}

/// Refuses forwards passt could not listen on: ports in use, or privileged ports passt (never
/// root) may not bind.
fn check_ports(plan: &NicPlan) -> Result<(), PasstError> {
    let unprivileged_from = unprivileged_port_start();
    let error = |message: String| PasstError::Port {
        nic: plan.id.clone(),
        message,
    };
    for forward in &plan.forwards {
        let proto = if forward.udp { "udp" } else { "tcp" };
        for &port in &forward.host_ports {
            if port < unprivileged_from {
                return Err(error(format!(
                    "host port {port}/{proto} in <portForward> is a privileged port (below \
                     {unprivileged_from}) and passt runs unprivileged; forward from port \
                     {unprivileged_from} or above (e.g. <range start='{}' to='{port}'/>)",
                    u32::from(port) + 8000
                )));
            }
            let free = if forward.udp {
                UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
            } else {
                TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
            };
            if !free {
                return Err(error(format!(
                    "host port {port}/{proto} in <portForward> is already in use on this host; \
                     stop the program using it or forward from another port"
                )));
            }
        }
    }
    Ok(())
}

fn os_error(nic: &str, what: &str) -> impl FnOnce(std::io::Error) -> PasstError {
    let (nic, what) = (nic.to_string(), what.to_string());
    move |cause| PasstError::Os { nic, what, cause }
}

/// A pipe whose ends are close-on-exec: (read, write).
fn pipe(nic: &str) -> Result<(OwnedFd, OwnedFd), PasstError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_error(nic, "creating a pipe")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The user passt runs as when Vireo runs as root: `nobody`.
fn unprivileged_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: getpwnam with a NUL-terminated name; the record is read at once, before any other
    // getpw* call on this thread.
    let pw = unsafe { libc::getpwnam(c"nobody".as_ptr()) };
    if pw.is_null() {
        return Some((65534, 65534));
    }
    // SAFETY: pw is a valid passwd record (checked non-null above).
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn spawn(
    program: &str,
    vm_name: &str,
    plan: &NicPlan,
    offline: bool,
) -> Result<(FrameStream, Child), PasstError> {
    let nic = plan.id.as_str();
    let (ours, theirs) = UnixStream::pair().map_err(os_error(nic, "creating a socketpair"))?;
    let (pid_read, pid_write) = pipe(nic)?;
    let drop_to = unprivileged_ids();
    if drop_to.is_some() {
        // passt, as nobody, reopens the pipe through /proc/self/fd: let it.
        // SAFETY: fchmod on a pipe descriptor we own.
        unsafe { libc::fchmod(pid_write.as_raw_fd(), 0o622) };
    }
    // /proc/self/fd, not /dev/fd: a bare devtmpfs (the test bed's L1) has no /dev/fd.
    let pid_path = format!("/proc/self/fd/{}", pid_write.as_raw_fd());
    let args = passt_args(plan, theirs.as_raw_fd(), &pid_path, offline);
    let mut command = Command::new(program);
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = drop_to {
        // std clears the supplementary groups when it changes the user.
        command.uid(uid).gid(gid);
    }
    let inherit = [theirs.as_raw_fd(), pid_write.as_raw_fd()];
    // SAFETY: runs in the forked child before exec and only calls fcntl (async-signal-safe) on
    // descriptors that are open in it.
    unsafe {
        command.pre_exec(move || {
            for fd in inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    tracing::debug!(vm = vm_name, %nic, ?args, "starting passt");
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PasstError::NotInstalled {
                nic: nic.to_string(),
                program: program.to_string(),
            });
        }
        Err(e) => return Err(os_error(nic, "starting passt")(e)),
    };
    drop(theirs);
    drop(pid_write);
    let stderr = child.stderr.take();
    if let Err(why) = wait_ready(pid_read) {
        // It gave up (or hangs): stop it and say what it said.
        let _ = child.kill();
        let _ = child.wait();
        let mut said = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut said);
        }
        let said = passt_lines(&said).join("; ");
        let mut message = if said.is_empty() { why } else { said };
        if offline {
            message.push_str(
                "; this host has no default route, and Debian 12's passt takes the guest's \
                 addresses from the interface that has one: connect the host to a network (an \
                 interface with an address and a default route is enough, e.g. a dummy one), \
                 or remove the <interface> to start the VM without a network",
            );
        }
        return Err(PasstError::Failed {
            nic: nic.to_string(),
            message,
        });
    }
    if let Some(stderr) = stderr {
        let (vm, nic) = (vm_name.to_string(), nic.to_string());
        let _ = std::thread::Builder::new()
            .name(format!("passt-log-{nic}"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    for line in passt_lines(&line) {
                        tracing::info!(%vm, %nic, "passt: {line}");
                    }
                }
            });
    }
    let stream = FrameStream::new(ours).map_err(os_error(nic, "setting up the socket"))?;
    Ok((stream, child))
}

/// passt's stderr without its complaints about having no syslog.
fn passt_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !(l.starts_with("Failed to send") && l.ends_with("syslog")))
        .map(str::to_string)
        .collect()
}

/// Waits for passt's PID line on the pipe.
fn wait_ready(pid_read: OwnedFd) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut file = std::fs::File::from(pid_read);
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut poll = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for a descriptor we own.
        let n = unsafe { libc::poll(&mut poll, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n == 0 {
            return Err(format!(
                "it did not get ready within {} seconds",
                READY_TIMEOUT.as_secs()
            ));
        }
        let mut buf = [0u8; 64];
        match file.read(&mut buf) {
            Ok(0) => return Err("it exited before serving".into()),
            Ok(k) => {
                got.extend_from_slice(&buf[..k]);
                if got.contains(&b'\n') {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading its PID file: {e}")),
        }
    }
}

#[cfg(test)]
mod tests;
