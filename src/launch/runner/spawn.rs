//! Starting a VM's runner process (`vireo-runner`) detached and waiting for its verdict: the
//! one way both `vireoctl start`/`create` and the app start a VM of this computer.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{RunnerError, is_running, log_path, open_log};
use crate::domain::store::{DomainStore, StoreError};

/// What a runner logs unless `RUST_LOG` says otherwise: Vireo's own lifecycle news (starts,
/// restarts, passt's messages) and everyone's warnings.
const RUNNER_LOG_LEVEL: &str = "warn,vireo=info,vireo_runner=info";

/// Why a VM was not started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The name, the runtime directory or the log file.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// A runner for this name already answers.
    #[error("domain '{0}' is already running")]
    AlreadyRunning(String),
    /// The stored definition (unknown name, unreadable store).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runner executable could not be started.
    #[error(
        "cannot start the VM runner {}: {source} (it is installed beside vireoctl; \
         VIREO_RUNNER names another)",
        exe.display()
    )]
    Exec {
        /// The runner executable tried.
        exe: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The runner's report could not be read, or it ended without one.
    #[error("the VM runner exited before the VM started; its log is {}", log.display())]
    ExitedEarly {
        /// The VM's log, where the runner wrote why.
        log: PathBuf,
    },
    /// The runner refused to start the VM, in its words.
    #[error("{0}")]
    Refused(String),
}

/// Starts a runner for `name` (the stored definition, or the domain XML in `file`) detached
/// from this process and its terminal, and waits until it reports the VM running (or paused).
/// Returns the warnings the runner gave (they are in the VM's log too). Blocks until the VM
/// has started: call it off the UI thread.
pub fn spawn_runner(
    name: &str,
    file: Option<&Path>,
    paused: bool,
) -> Result<Vec<String>, SpawnError> {
    let exe = crate::launch::machines::runner_path();
    // The runner outlives this process and its terminal: what it logs goes to the VM's log.
    let log = open_log(name)?;
    let mut child = Command::new(&exe);
    child
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    if std::env::var_os("RUST_LOG").is_none() {
        child.env("RUST_LOG", RUNNER_LOG_LEVEL);
    }
    if let Some(file) = file {
        let file = std::path::absolute(file).map_err(|source| SpawnError::Exec {
            exe: exe.clone(),
            source,
        })?;
        child.arg("--file").arg(file);
    }
    if paused {
        child.arg("--paused");
    }
    // SAFETY: setsid is async-signal-safe; it detaches the runner from this process's session
    // so it outlives this process and its terminal.
    unsafe {
        child.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = child.spawn().map_err(|source| SpawnError::Exec {
        exe: exe.clone(),
        source,
    })?;
    let early = || SpawnError::ExitedEarly {
        log: log_path(name).unwrap_or_default(),
    };
    let stdout = child.stdout.take().ok_or_else(early)?;
    // Warnings (one `warning: …` line each) come before `ready` or `error: …`.
    let mut lines = BufReader::new(stdout);
    let mut warnings = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        lines.read_line(&mut line).map_err(|_| early())?;
        match line.trim_end().strip_prefix("warning: ") {
            Some(warning) => warnings.push(warning.to_owned()),
            None => break,
        }
    }
    match line.trim().strip_prefix("error: ") {
        Some(message) => {
            let _ = child.wait();
            Err(SpawnError::Refused(message.to_owned()))
        }
        None if line.trim() == "ready" => {
            // The runner is this process's child until it ends: reap it then, or every VM
            // run from the app would leave a zombie behind for as long as the app runs.
            drop(lines);
            let reaper = std::thread::Builder::new()
                .name("runner-reaper".into())
                .spawn(move || child.wait());
            if let Err(error) = reaper {
                tracing::warn!(%error, domain = name, "cannot wait for the runner; it will linger as a zombie when it ends");
            }
            Ok(warnings)
        }
        None => {
            let _ = child.wait();
            Err(early())
        }
    }
}

/// Starts the stored VM `name` in its own runner (`vireoctl start`, the app's Run): the name
/// checked, an unknown or running one refused before anything starts, and the definition
/// marked as having run. Returns the runner's warnings.
pub fn start_stored(name: &str, paused: bool) -> Result<Vec<String>, SpawnError> {
    crate::domain::name::check(name).map_err(RunnerError::from)?;
    if is_running(name) {
        return Err(SpawnError::AlreadyRunning(name.to_owned()));
    }
    let store = DomainStore::open_default()?;
    store.get(name)?;
    let mut warnings = spawn_runner(name, None, paused)?;
    // The VM has run now: its details offer "Start" rather than "Begin Installation".
    if let Err(error) = store.note_started(name) {
        warnings.push(format!(
            "{name} started, but its definition could not be updated: {error}"
        ));
    }
    Ok(warnings)
}
