//! Running a VM outside the process that asked for it: a per-VM runner process holds the [`Vm`]
//! and serves a control socket at `$XDG_RUNTIME_DIR/vireo/<name>.sock`, so `vireoctl start`
//! can return while the VM lives on and `shutdown`, `destroy`, `suspend`, `resume`, `console`
//! and `dominfo` can reach it later. The GUI holds its `Vm` handles in-process and needs none
//! of this; both drive the same `Vm` API. Paths come from [`paths`]: the name is checked and
//! the runtime directory must be private to this user before any file is touched there.
//!
//! Protocol ([`protocol`]): the client sends one typed JSON request line, the runner answers one
//! JSON reply line and closes, except for a console, after which the connection is the raw
//! serial stream in both directions. Every client call has a timeout, so a runner that hangs
//! cannot hang the GUI or a script.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::engine::vm::{Vm, VmState};

/// Why a runner could not be reached or refused a request.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// No runner for that domain.
    #[error("domain '{0}' is not running")]
    NotRunning(String),
    /// Socket I/O failed.
    #[error("talking to the runner of '{name}': {cause}")]
    Io {
        /// The domain.
        name: String,
        /// The OS error (not a `source`: the message already carries it).
        cause: std::io::Error,
    },
    /// The runner answered with an error.
    #[error("{0}")]
    Refused(String),
    /// The domain name cannot become a file name (checked before any path is built).
    #[error(transparent)]
    BadName(#[from] crate::domain::name::NameError),
    /// The runtime directory is not private to this user, so it is not used.
    #[error("the runtime directory {} is not safe to use: {problem}; {fix}", dir.display())]
    UnsafeRuntimeDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What the user can do.
        fix: String,
    },
}

mod display;
mod ids;
mod log;
mod paths;
pub mod protocol;
pub mod screen;
mod spawn;

pub use display::{pointer, screenshot, send_keys};
pub use ids::allocate_id;
pub use log::{log_path, open_log};
pub use spawn::{SpawnError, spawn_runner, start_stored};

pub use paths::{exit_state_path, live_xml_path, runtime_dir, socket_path};
pub use protocol::{Reply, Request, RunnerInfo};

/// Records the running domain's live XML (removed again when the VM ends).
pub fn write_live_xml(name: &str, xml: &str) -> Result<(), RunnerError> {
    std::fs::write(live_xml_path(name)?, xml).map_err(|cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    })
}

/// The live XML of `name` if it is running (for `dumpxml` of a running domain).
pub fn live_xml(name: &str) -> Option<String> {
    is_running(name)
        .then(|| std::fs::read_to_string(live_xml_path(name).ok()?).ok())
        .flatten()
}

/// Records how the VM ended, for the GUI's console banner and `domstate --reason`. Written
/// whole (a reader never sees half of it). Best effort: a runner that cannot write it still
/// ends normally.
pub fn write_exit_state(name: &str, state: &VmState) {
    let written = exit_state_path(name).and_then(|path| {
        crate::util::atomic::write_atomic(&path, state.to_string().as_bytes()).map_err(|cause| {
            RunnerError::Io {
                name: name.to_string(),
                cause,
            }
        })
    });
    if let Err(err) = written {
        tracing::warn!(%name, %err, "cannot record how the VM ended");
    }
}

/// How the VM `name` last ended, if a runner recorded it.
pub fn exit_state(name: &str) -> Option<String> {
    std::fs::read_to_string(exit_state_path(name).ok()?).ok()
}

/// What `info` reports about a running VM.
#[derive(Debug, Clone)]
pub struct RunningSummary {
    /// Domain name.
    pub name: String,
    /// vCPU count.
    pub vcpus: u32,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// The CPU model the guest was given, if a named one.
    pub cpu_model: Option<String>,
    /// The concrete `<cpu>` the guest runs with (host-model's recorded expansion).
    pub cpu_xml: String,
    /// Warnings from the start, repeated to whoever asks for `info`.
    pub warnings: Vec<String>,
    /// The domain's id (see [`allocate_id`]).
    pub id: u32,
    /// Where its VNC server listens (`vnc://127.0.0.1:5900`), if it has one.
    pub display: Option<String>,
    /// Set when a client asked for an ACPI reboot: the runner starts the VM again once the
    /// guest has powered off.
    pub reboot_requested: Arc<AtomicBool>,
}

/// Binds the control socket of `name` (mode 0600: only this user may talk to the runner),
/// replacing a stale one; fails if a runner answers there.
pub fn bind(name: &str) -> Result<UnixListener, RunnerError> {
    let path = socket_path(name)?;
    let io = |cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    };
    if path.symlink_metadata().is_ok() {
        if UnixStream::connect(&path).is_ok() {
            return Err(RunnerError::Refused(format!(
                "domain '{name}' is already running"
            )));
        }
        std::fs::remove_file(&path).map_err(io)?;
    }
    let listener = UnixListener::bind(&path).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Serves requests for `vm` until it ends; removes the socket and returns the final state.
pub fn serve(vm: Vm, summary: RunningSummary, listener: UnixListener) -> VmState {
    let started = Instant::now();
    let vm = Arc::new(vm);
    let shared = vm.clone();
    let summary_for_clients = summary.clone();
    // Requests being answered: the process must not exit under a `destroy` still replying.
    let answering = Arc::new(AtomicUsize::new(0));
    let counter = answering.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let vm = shared.clone();
            let summary = summary_for_clients.clone();
            let counter = counter.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = handle_client(stream, &vm, &summary, started, &counter);
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let end = vm.wait();
    for path in [socket_path(&summary.name), live_xml_path(&summary.name)]
        .into_iter()
        .flatten()
    {
        let _ = std::fs::remove_file(path);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while answering.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    end
}

/// How long `suspend`/`resume` wait for the vCPUs to obey before answering.
const STATE_CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the runner waits for a client's request line: a client that connects and says
/// nothing must not hold a thread (and the process's exit) forever.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn handle_client(
    stream: UnixStream,
    vm: &Vm,
    summary: &RunningSummary,
    started: Instant,
    answering: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_READ_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut out = stream;
    let send =
        |out: &mut UnixStream, reply: &Reply| out.write_all(protocol::encode(reply).as_bytes());
    let waited = |done: bool, what: &str| {
        if done {
            Reply::Ok
        } else {
            Reply::Error {
                message: format!("the VM did not {what} within {STATE_CHANGE_TIMEOUT:?}"),
            }
        }
    };
    let request = match serde_json::from_str::<Request>(line.trim()) {
        Ok(request) => request,
        Err(e) => {
            let message = format!(
                "the runner of '{}' does not understand the request ({e}); is this vireoctl from another version?",
                summary.name
            );
            return send(&mut out, &Reply::Error { message });
        }
    };
    let reply = match request {
        Request::Shutdown => {
            vm.shutdown();
            Reply::Ok
        }
        Request::Destroy => {
            vm.force_off();
            let end = vm.wait_timeout(STATE_CHANGE_TIMEOUT);
            // Before the answer, so whoever asks next (`domstate --reason`) reads it.
            if let Some(end) = &end {
                write_exit_state(&summary.name, end);
            }
            waited(end.is_some(), "stop")
        }
        Request::Reboot => {
            vm.reboot();
            Reply::Ok
        }
        Request::AcpiReboot => {
            summary.reboot_requested.store(true, Ordering::SeqCst);
            vm.shutdown();
            Reply::Ok
        }
        Request::Suspend => {
            vm.pause();
            waited(
                vm.wait_for_state(&VmState::Paused, STATE_CHANGE_TIMEOUT),
                "pause",
            )
        }
        Request::Resume => {
            vm.resume();
            waited(
                vm.wait_for_state(&VmState::Running, STATE_CHANGE_TIMEOUT),
                "resume",
            )
        }
        Request::Info => Reply::Info(RunnerInfo {
            name: summary.name.clone(),
            state: match vm.state() {
                VmState::Running => "running".to_string(),
                VmState::Paused => "paused".to_string(),
                other => other.to_string(),
            },
            vcpus: summary.vcpus,
            memory_bytes: summary.memory_bytes,
            cpu_model: summary.cpu_model.clone(),
            runner_pid: std::process::id(),
            id: summary.id,
            uptime_s: started.elapsed().as_secs(),
            warnings: summary.warnings.clone(),
            display: summary.display.clone(),
        }),
        Request::CpuXml => Reply::CpuXml {
            xml: summary.cpu_xml.clone(),
        },
        Request::Screenshot => match display::png_of_screen(vm, &summary.name) {
            Ok(png) => {
                let announced = Reply::Screenshot {
                    bytes: png.len() as u64,
                };
                send(&mut out, &announced)?;
                return out.write_all(&png);
            }
            Err(message) => Reply::Error { message },
        },
        Request::SendKeys { codes, hold_ms } => {
            display::press_keys(vm, &summary.name, &codes, hold_ms)
        }
        Request::Pointer { x, y, buttons } => {
            display::move_pointer(vm, &summary.name, x, y, buttons)
        }
        Request::Screen => {
            // Like a console, a viewer stays until it or the VM goes.
            answering.fetch_sub(1, Ordering::SeqCst);
            let _guard = Rebalance(answering);
            return screen::serve(out, reader, vm.frontends(), &summary.name);
        }
        Request::Console => {
            // A console stays attached until the VM ends; it does not hold the exit back.
            answering.fetch_sub(1, Ordering::SeqCst);
            let _guard = Rebalance(answering);
            send(&mut out, &Reply::Console)?;
            out.set_write_timeout(None)?;
            let attached = vm.console().attach();
            let mut sink = out.try_clone()?;
            std::thread::spawn(move || {
                if sink.write_all(&attached.scrollback).is_err() {
                    return;
                }
                while let Some(chunk) = attached.recv() {
                    if sink.write_all(&chunk).is_err() {
                        return;
                    }
                }
                let _ = sink.shutdown(std::net::Shutdown::Both);
            });
            let control = vm.controller();
            let mut input = reader.into_inner();
            input.set_read_timeout(None)?;
            let mut buf = [0u8; 256];
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(n) => control.send_input(&buf[..n]),
                }
            }
        }
    };
    send(&mut out, &reply)
}

/// Restores the "answering" count on the way out of a console session, so the caller's
/// decrement balances.
struct Rebalance<'a>(&'a AtomicUsize);

impl Drop for Rebalance<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn connect(name: &str) -> Result<UnixStream, RunnerError> {
    UnixStream::connect(socket_path(name)?).map_err(|_| RunnerError::NotRunning(name.to_string()))
}

/// Whether a runner for `name` answers.
pub fn is_running(name: &str) -> bool {
    connect(name).is_ok()
}

/// The names of the domains whose runners answer now, defined or not, sorted.
pub fn running_names() -> Vec<String> {
    let Ok(dir) = runtime_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".sock")
                .map(str::to_owned)
        })
        .filter(|name| crate::domain::name::check(name).is_ok() && is_running(name))
        .collect();
    names.sort();
    names
}

/// How long a request waits for the runner's answer. Runners answer at once (a shutdown is
/// only requested, not awaited; suspend, resume and destroy wait at most
/// `STATE_CHANGE_TIMEOUT`), so this only bounds a runner that hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `request` to the runner of `name` and reads its reply line, within
/// [`REQUEST_TIMEOUT`]. The stream is returned for a console, which carries on after the reply.
fn exchange(name: &str, request: Request) -> Result<(Reply, UnixStream), RunnerError> {
    let io = |cause: std::io::Error| {
        let cause = if matches!(
            cause.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer to '{}' within {} s: the runner hangs; `vireoctl destroy {name}` or kill its process",
                    request.verb(),
                    REQUEST_TIMEOUT.as_secs()
                ),
            )
        } else {
            cause
        };
        RunnerError::Io {
            name: name.to_string(),
            cause,
        }
    };
    let mut stream = connect(name)?;
    // A runner that stopped answering must not hold its caller (the GUI's poll) forever.
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(io)?;
    stream
        .write_all(protocol::encode(&request).as_bytes())
        .map_err(io)?;
    // Byte by byte up to the newline, so nothing of a console's stream is read ahead.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A runner whose VM just ended closes without answering: no longer running.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(RunnerError::NotRunning(name.to_string()));
            }
            Err(e) => return Err(io(e)),
        }
    }
    if line.is_empty() {
        return Err(RunnerError::NotRunning(name.to_string()));
    }
    let reply = serde_json::from_slice::<Reply>(&line).map_err(|e| {
        RunnerError::Refused(format!(
            "the runner of '{name}' answered something this vireoctl cannot read ({e}); is it from another version? Stop it with `vireoctl destroy {name}` and start the VM again"
        ))
    })?;
    if let Reply::Error { message } = reply {
        return Err(RunnerError::Refused(message));
    }
    Ok((reply, stream))
}

/// Sends a control request (`shutdown`, `destroy`, `reboot`, `suspend`, `resume`) to the runner
/// of `name` and waits for it to be done.
pub fn control(name: &str, request: Request) -> Result<(), RunnerError> {
    match exchange(name, request.clone())?.0 {
        Reply::Ok => Ok(()),
        other => Err(unexpected(name, request, &other)),
    }
}

/// The running VM's state and size.
pub fn info(name: &str) -> Result<RunnerInfo, RunnerError> {
    match exchange(name, Request::Info)?.0 {
        Reply::Info(info) => Ok(info),
        other => Err(unexpected(name, Request::Info, &other)),
    }
}

/// The concrete `<cpu>` the running guest has.
pub fn cpu_xml(name: &str) -> Result<String, RunnerError> {
    match exchange(name, Request::CpuXml)?.0 {
        Reply::CpuXml { xml } => Ok(xml),
        other => Err(unexpected(name, Request::CpuXml, &other)),
    }
}

fn unexpected(name: &str, request: Request, reply: &Reply) -> RunnerError {
    RunnerError::Refused(format!(
        "the runner of '{name}' answered '{}' with {reply:?}",
        request.verb()
    ))
}

/// Attaches to the serial console of `name`: the returned stream carries guest output (after
/// the scrollback) one way and keyboard input the other. The handshake has the request timeout;
/// the stream returned has none (a console may be quiet for hours).
pub fn attach_console(name: &str) -> Result<UnixStream, RunnerError> {
    let (reply, stream) = exchange(name, Request::Console)?;
    if reply != Reply::Console {
        return Err(unexpected(name, Request::Console, &reply));
    }
    let io = |cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    };
    stream.set_read_timeout(None).map_err(io)?;
    stream.set_write_timeout(None).map_err(io)?;
    Ok(stream)
}
