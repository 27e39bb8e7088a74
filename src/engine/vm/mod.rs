//! The handle a caller (GUI, `vireoctl`, a runner process) holds on a running VM.
//!
//! Every method returns at once: requests go to the VM's supervisor thread, which owns the
//! machine, applies `on_poweroff` / `on_reboot` / `on_crash`, and publishes each state change to
//! subscribers. Dropping the handle forces the VM off.

mod supervisor;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cpu::guest::GuestCpuid;
use crate::engine::config::VmConfig;
use crate::engine::console::{Console, DEFAULT_SCROLLBACK};
use crate::engine::devices::Frontends;
use crate::engine::error::EngineError;
use crate::engine::machine::Machine;
use crate::engine::vcpu::VcpuReport;
use supervisor::Supervisor;

/// Where a VM is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmState {
    /// The guest is running.
    Running,
    /// The vCPUs are stopped; memory and devices are kept.
    Paused,
    /// The VM is gone.
    Shutoff(StopReason),
    /// The guest crashed; the message says how. Final unless `on_crash='restart'`.
    Crashed(String),
}

impl VmState {
    /// Whether the VM has ended for good (no further events follow).
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Shutoff(_) | Self::Crashed(_))
    }
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Running => f.write_str("running"),
            Self::Paused => f.write_str("paused"),
            Self::Shutoff(reason) => write!(f, "shut off ({reason})"),
            Self::Crashed(message) => write!(f, "crashed: {message}"),
        }
    }
}

/// Why a VM is shut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The guest powered off.
    GuestPoweroff,
    /// The guest reset itself and `on_reboot` said not to restart.
    GuestReset,
    /// Forced off by the user.
    Destroyed,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::GuestPoweroff => "guest powered off",
            Self::GuestReset => "guest reset, on_reboot=destroy",
            Self::Destroyed => "destroyed",
        })
    }
}

/// Requests from the handle to the supervisor.
pub(super) enum Command {
    Pause,
    Resume,
    Shutdown,
    Reboot,
    ForceOff,
    Input(Vec<u8>),
}

pub(super) enum Message {
    Command(Command),
    Vcpu(VcpuReport),
}

/// State shared by the handle and the supervisor.
pub(super) struct Shared {
    pub(super) state: Mutex<VmState>,
    pub(super) changed: Condvar,
    pub(super) subscribers: Mutex<Vec<Sender<VmState>>>,
    pub(super) programmed_cpuid: Mutex<Vec<GuestCpuid>>,
    pub(super) first_exit: Arc<OnceLock<Instant>>,
    pub(super) started: Instant,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, VmState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn publish(&self, state: VmState) {
        *self.state() = state.clone();
        self.changed.notify_all();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|tx| tx.send(state.clone()).is_ok());
    }
}

/// Start-up timings, for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy)]
pub struct StartTimings {
    /// From `Vm::start` until the vCPU threads were running.
    pub build: Duration,
    /// From `Vm::start` until the guest's first exit to the engine (its first I/O), if any yet.
    pub first_guest_exit: Option<Duration>,
}

/// A running (or finished) VM.
pub struct Vm {
    name: String,
    commands: Sender<Message>,
    shared: Arc<Shared>,
    console: Console,
    frontends: Frontends,
    supervisor: Option<JoinHandle<()>>,
    build_time: Duration,
}

impl Vm {
    /// Builds the VM from `config` and starts it. Errors (bad kernel, no KVM, too much memory,
    /// …) come back here, before anything runs; nothing is left behind on error.
    pub fn start(config: VmConfig) -> Result<Vm, EngineError> {
        Self::start_with(config, false)
    }

    /// As [`Vm::start`], but the vCPUs are parked before they run a single guest instruction
    /// (virsh's `start --paused`); [`Vm::resume`] lets them go.
    pub fn start_paused(config: VmConfig) -> Result<Vm, EngineError> {
        Self::start_with(config, true)
    }

    fn start_with(config: VmConfig, paused: bool) -> Result<Vm, EngineError> {
        let started = Instant::now();
        let console = Console::new(DEFAULT_SCROLLBACK);
        let frontends = Frontends::for_config(&config)?;
        let mut machine = Machine::build(&config, &console, &frontends)?;
        if paused {
            // No vCPU thread exists yet, so this only sets the request each one reads first.
            machine.request(crate::engine::run_control::Desired::Pause);
        }
        let (tx, rx) = mpsc::channel::<Message>();
        let (vcpu_tx, vcpu_rx) = mpsc::channel::<VcpuReport>();
        let shared = Arc::new(Shared {
            state: Mutex::new(if paused {
                VmState::Paused
            } else {
                VmState::Running
            }),
            changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            programmed_cpuid: Mutex::new(machine.programmed_cpuid().to_vec()),
            first_exit: Arc::new(OnceLock::new()),
            started,
        });
        machine.start(&config, &vcpu_tx, &shared.first_exit)?;
        let forward = tx.clone();
        let name = config.name.clone();
        std::thread::Builder::new()
            .name("vcpu-reports".into())
            .spawn(move || {
                for report in vcpu_rx {
                    if forward.send(Message::Vcpu(report)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|cause| EngineError::Thread {
                what: format!("{name} report forwarder"),
                cause,
            })?;
        let supervisor = Supervisor {
            config,
            machine: Some(machine),
            shared: shared.clone(),
            console: console.clone(),
            frontends: frontends.clone(),
            vcpu_tx,
            paused,
        };
        let name = supervisor.config.name.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vm-{name}"))
            .spawn(move || supervisor.run(rx))
            .map_err(|cause| EngineError::Thread {
                what: format!("{name} supervisor"),
                cause,
            })?;
        Ok(Vm {
            name,
            commands: tx,
            shared,
            console,
            frontends,
            supervisor: Some(handle),
            build_time: started.elapsed(),
        })
    }

    /// The domain name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current state.
    pub fn state(&self) -> VmState {
        self.shared.state().clone()
    }

    /// A stream of every later state change.
    pub fn subscribe(&self) -> Receiver<VmState> {
        let (tx, rx) = mpsc::channel();
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// The serial console.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The screen and input devices (empty without `<video>` and `<input>`).
    pub fn frontends(&self) -> &Frontends {
        &self.frontends
    }

    /// A cloneable remote control for other threads (console input, GUI buttons).
    pub fn controller(&self) -> VmController {
        VmController {
            commands: self.commands.clone(),
        }
    }

    /// Types `bytes` into the serial port.
    pub fn send_input(&self, bytes: &[u8]) {
        self.controller().send_input(bytes);
    }

    /// Stops the vCPUs, keeping everything else.
    pub fn pause(&self) {
        self.controller().pause();
    }

    /// Continues after [`Vm::pause`].
    pub fn resume(&self) {
        self.controller().resume();
    }

    /// Asks the guest to shut down by pressing the ACPI power button. A guest that ignores
    /// ACPI keeps running: follow up with [`Vm::force_off`] after a timeout.
    pub fn shutdown(&self) {
        self.controller().shutdown();
    }

    /// Resets the VM (a hard reset, like the reset button; the guest is not asked first).
    pub fn reboot(&self) {
        self.controller().reboot();
    }

    /// Pulls the plug.
    pub fn force_off(&self) {
        self.controller().force_off();
    }

    /// Waits until the VM has ended and returns how.
    pub fn wait(&self) -> VmState {
        let mut state = self.shared.state();
        while !state.is_final() {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        state.clone()
    }

    /// Waits up to `timeout` for the VM to end; `None` if it is still alive.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<VmState> {
        let guard = self.shared.state();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |s| !s.is_final())
            .unwrap_or_else(|p| p.into_inner());
        state.is_final().then(|| state.clone())
    }

    /// Waits up to `timeout` for the state to become `wanted`.
    pub fn wait_for_state(&self, wanted: &VmState, timeout: Duration) -> bool {
        let guard = self.shared.state();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |s| s != wanted)
            .unwrap_or_else(|p| p.into_inner());
        *state == *wanted
    }

    /// What KVM holds as each vCPU's CPUID table (KVM_GET_CPUID2 after KVM_SET_CPUID2).
    pub fn programmed_cpuid(&self) -> Vec<GuestCpuid> {
        self.shared
            .programmed_cpuid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How long start-up took.
    pub fn timings(&self) -> StartTimings {
        StartTimings {
            build: self.build_time,
            first_guest_exit: self
                .shared
                .first_exit
                .get()
                .map(|t| t.duration_since(self.shared.started)),
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.force_off();
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
    }
}

/// Sends requests to a VM from any thread; every call returns at once and does nothing once the
/// VM is gone.
#[derive(Clone)]
pub struct VmController {
    commands: Sender<Message>,
}

impl VmController {
    /// See [`Vm::send_input`].
    pub fn send_input(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.send(Command::Input(bytes.to_vec()));
        }
    }

    /// See [`Vm::pause`].
    pub fn pause(&self) {
        self.send(Command::Pause);
    }

    /// See [`Vm::resume`].
    pub fn resume(&self) {
        self.send(Command::Resume);
    }

    /// See [`Vm::shutdown`].
    pub fn shutdown(&self) {
        self.send(Command::Shutdown);
    }

    /// See [`Vm::reboot`].
    pub fn reboot(&self) {
        self.send(Command::Reboot);
    }

    /// See [`Vm::force_off`].
    pub fn force_off(&self) {
        self.send(Command::ForceOff);
    }

    fn send(&self, command: Command) {
        // A closed channel means the VM is already gone: nothing left to do.
        let _ = self.commands.send(Message::Command(command));
    }
}
