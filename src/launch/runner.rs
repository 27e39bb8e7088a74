//! Running a VM outside the process that asked for it: a per-VM runner process holds the [`Vm`]
//! and serves a control socket at `$XDG_RUNTIME_DIR/vireo/<name>.sock`, so `vireoctl start`
//! can return while the VM lives on and `shutdown`, `destroy`, `suspend`, `resume`, `console`
//! and `dominfo` can reach it later. The GUI holds its `Vm` handles in-process and needs none
//! of this; both drive the same `Vm` API. Paths come from [`paths`]: the name is checked and
//! the runtime directory must be private to this user before any file is touched there.
//!
//! Protocol: the client sends one request line (`shutdown`, `destroy`, `reboot`, `suspend`,
//! `resume`, `info`, `console`); the runner answers `ok …` or `error …` lines and closes, except
//! for `console`, after which the connection is the raw serial stream in both directions.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

mod paths;

pub use paths::{exit_state_path, live_xml_path, runtime_dir, socket_path};

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

/// Records how the VM ended, for the GUI's console banner. Best effort: a runner that cannot
/// write it still ends normally.
pub fn write_exit_state(name: &str, state: &VmState) {
    let written = exit_state_path(name).and_then(|path| {
        std::fs::write(path, state.to_string()).map_err(|cause| RunnerError::Io {
            name: name.to_string(),
            cause,
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

fn handle_client(
    stream: UnixStream,
    vm: &Vm,
    summary: &RunningSummary,
    started: Instant,
    answering: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut out = stream;
    let answer = |out: &mut UnixStream, done: bool, what: &str| {
        if done {
            writeln!(out, "ok")
        } else {
            writeln!(
                out,
                "error the VM did not {what} within {STATE_CHANGE_TIMEOUT:?}"
            )
        }
    };
    match line.trim() {
        "shutdown" => {
            vm.shutdown();
            writeln!(out, "ok")
        }
        "destroy" => {
            vm.force_off();
            let done = vm.wait_timeout(STATE_CHANGE_TIMEOUT).is_some();
            answer(&mut out, done, "stop")
        }
        "reboot" => {
            vm.reboot();
            writeln!(out, "ok")
        }
        "suspend" => {
            vm.pause();
            let done = vm.wait_for_state(&VmState::Paused, STATE_CHANGE_TIMEOUT);
            answer(&mut out, done, "pause")
        }
        "resume" => {
            vm.resume();
            let done = vm.wait_for_state(&VmState::Running, STATE_CHANGE_TIMEOUT);
            answer(&mut out, done, "resume")
        }
        "info" => {
            let state = match vm.state() {
                VmState::Running => "running".to_string(),
                VmState::Paused => "paused".to_string(),
                other => other.to_string(),
            };
            writeln!(out, "ok")?;
            writeln!(out, "Name:           {}", summary.name)?;
            writeln!(out, "State:          {state}")?;
            writeln!(out, "CPU(s):         {}", summary.vcpus)?;
            writeln!(out, "Max memory:     {} KiB", summary.memory_bytes >> 10)?;
            writeln!(out, "Used memory:    {} KiB", summary.memory_bytes >> 10)?;
            writeln!(
                out,
                "CPU model:      {}",
                summary.cpu_model.as_deref().unwrap_or("(host CPU)")
            )?;
            writeln!(out, "Runner PID:     {}", std::process::id())?;
            writeln!(out, "Uptime:         {} s", started.elapsed().as_secs())
        }
        "cpu-xml" => {
            writeln!(out, "ok")?;
            write!(out, "{}", summary.cpu_xml)
        }
        "console" => {
            // A console stays attached until the VM ends; it does not hold the exit back.
            answering.fetch_sub(1, Ordering::SeqCst);
            let _guard = Rebalance(answering);
            writeln!(out, "ok")?;
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
            let mut buf = [0u8; 256];
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(n) => control.send_input(&buf[..n]),
                }
            }
        }
        other => writeln!(out, "error unknown request '{other}'"),
    }
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

/// How long a request waits for the runner's answer. Runners answer at once (a shutdown is
/// only requested, not awaited), so this only bounds a runner that hangs.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends `request` to the runner of `name`; returns the lines after `ok`.
pub fn request(name: &str, request: &str) -> Result<String, RunnerError> {
    let io = |cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    };
    let mut stream = connect(name)?;
    // A runner that stopped answering must not hold its caller (the GUI's poll) forever.
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(io)?;
    writeln!(stream, "{request}").map_err(io)?;
    let mut reply = String::new();
    // A runner whose VM just ended closes without answering: the domain is no longer running.
    let gone = || RunnerError::NotRunning(name.to_string());
    match stream.read_to_string(&mut reply) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err(gone()),
        Err(e) => return Err(io(e)),
        Ok(_) if reply.is_empty() => return Err(gone()),
        Ok(_) => {}
    }
    match reply.split_once('\n') {
        Some(("ok", rest)) => Ok(rest.to_string()),
        _ if reply.trim() == "ok" => Ok(String::new()),
        _ => Err(RunnerError::Refused(
            reply.trim().trim_start_matches("error ").to_string(),
        )),
    }
}

/// Attaches to the serial console of `name`: the returned stream carries guest output (after
/// the scrollback) one way and keyboard input the other.
pub fn attach_console(name: &str) -> Result<UnixStream, RunnerError> {
    let io = |cause| RunnerError::Io {
        name: name.to_string(),
        cause,
    };
    let mut stream = connect(name)?;
    writeln!(stream, "console").map_err(io)?;
    let mut ok = [0u8; 3];
    stream.read_exact(&mut ok).map_err(io)?;
    if &ok != b"ok\n" {
        return Err(RunnerError::Refused(
            "the runner refused the console".into(),
        ));
    }
    Ok(stream)
}
