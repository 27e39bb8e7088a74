//! The supervisor thread: owns the machine, turns requests and guest events into state
//! changes, and applies `on_poweroff` / `on_reboot` / `on_crash`.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::{Command, Message, Shared, StopReason, VmState};
use crate::engine::config::{LifecycleAction, VmConfig};
use crate::engine::console::Console;
use crate::engine::devices::{Frontends, GuestRequest};
use crate::engine::machine::Machine;
use crate::engine::run_control::Desired;
use crate::engine::vcpu::VcpuReport;

/// Owns the machine; the only thread that changes it.
pub(super) struct Supervisor {
    pub(super) config: VmConfig,
    pub(super) machine: Option<Machine>,
    pub(super) shared: Arc<Shared>,
    pub(super) console: Console,
    pub(super) frontends: Frontends,
    pub(super) vcpu_tx: Sender<VcpuReport>,
    pub(super) paused: bool,
}

impl Supervisor {
    pub(super) fn run(mut self, rx: Receiver<Message>) {
        if let Some(cpus) = &self.config.emulator_pin
            && let Err(e) = crate::engine::pinning::pin_current_thread(cpus)
        {
            tracing::warn!("emulatorpin not applied: {e}");
        }
        loop {
            let message = match rx.recv_timeout(Duration::from_secs(3600)) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish(VmState::Shutoff(StopReason::Destroyed));
                    return;
                }
            };
            if let Some(end) = self.handle(message) {
                self.finish(end);
                return;
            }
        }
    }

    /// Handles one message; `Some(state)` when the VM has ended.
    fn handle(&mut self, message: Message) -> Option<VmState> {
        match message {
            Message::Command(Command::Pause) => {
                if let Some(m) = &self.machine
                    && !self.paused
                {
                    m.request(Desired::Pause);
                    self.paused = true;
                    self.shared.publish(VmState::Paused);
                }
                None
            }
            Message::Command(Command::Resume) => {
                if let Some(m) = &self.machine
                    && self.paused
                {
                    m.request(Desired::Run);
                    self.paused = false;
                    self.shared.publish(VmState::Running);
                }
                None
            }
            Message::Command(Command::Shutdown) => {
                if let Some(m) = &self.machine {
                    m.devices().press_power_button();
                }
                None
            }
            Message::Command(Command::Input(bytes)) => {
                if let Some(m) = &self.machine {
                    m.devices().send_serial_input(&bytes);
                }
                None
            }
            Message::Command(Command::Reboot) => self.restart("reboot requested"),
            Message::Command(Command::ForceOff) => Some(VmState::Shutoff(StopReason::Destroyed)),
            Message::Vcpu(VcpuReport::Guest(GuestRequest::PowerOff)) => self.apply(
                self.config.on_poweroff,
                VmState::Shutoff(StopReason::GuestPoweroff),
            ),
            Message::Vcpu(VcpuReport::Guest(GuestRequest::Reset)) => self.apply(
                self.config.on_reboot,
                VmState::Shutoff(StopReason::GuestReset),
            ),
            Message::Vcpu(VcpuReport::Guest(GuestRequest::Panicked)) => self.apply(
                self.config.on_crash,
                VmState::Crashed("the guest kernel panicked (reported through pvpanic)".into()),
            ),
            Message::Vcpu(VcpuReport::Crash(message)) => {
                tracing::warn!(vm = %self.config.name, "guest crashed: {message}");
                self.apply(self.config.on_crash, VmState::Crashed(message))
            }
        }
    }

    fn apply(&mut self, action: LifecycleAction, ended: VmState) -> Option<VmState> {
        match action {
            LifecycleAction::Destroy => Some(ended),
            LifecycleAction::Restart => {
                let why = match &ended {
                    VmState::Shutoff(StopReason::GuestReset) => "the guest reset itself".into(),
                    VmState::Shutoff(StopReason::GuestPoweroff) => {
                        "the guest powered off and on_poweroff says restart".into()
                    }
                    other => format!("{other}; the definition says restart"),
                };
                self.restart(&why)
            }
            LifecycleAction::Preserve => {
                // Stop the vCPUs but keep memory until the user destroys the VM.
                if let Some(m) = &self.machine {
                    m.request(Desired::Pause);
                }
                self.paused = true;
                self.shared.publish(ended);
                None
            }
        }
    }

    /// Replaces the machine with a freshly built one (same configuration, same CPUID). A VM
    /// the user paused stays paused (as QEMU keeps a paused VM paused across a reset): the
    /// guest may have asked for the reset just before the pause reached every vCPU, and a
    /// pause must never be undone behind the user's back. A VM stopped by `on_*='preserve'`
    /// is not "paused" in that sense and runs again.
    fn restart(&mut self, why: &str) -> Option<VmState> {
        let keep_paused = self.paused && *self.shared.state() == VmState::Paused;
        tracing::info!(vm = %self.config.name, keep_paused, "restarting: {why}");
        if let Some(mut old) = self.machine.take() {
            old.stop();
        }
        let rebuilt =
            Machine::build(&self.config, &self.console, &self.frontends).and_then(|mut m| {
                if keep_paused {
                    m.request(Desired::Pause);
                }
                m.start(&self.config, &self.vcpu_tx, &self.shared.first_exit)?;
                Ok(m)
            });
        match rebuilt {
            Ok(machine) => {
                *self
                    .shared
                    .programmed_cpuid
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = machine.programmed_cpuid().to_vec();
                self.machine = Some(machine);
                self.paused = keep_paused;
                self.shared.publish(if keep_paused {
                    VmState::Paused
                } else {
                    VmState::Running
                });
                None
            }
            Err(e) => Some(VmState::Crashed(format!("restart failed: {e}"))),
        }
    }

    fn finish(&mut self, end: VmState) {
        if let Some(mut machine) = self.machine.take() {
            machine.stop();
        }
        self.console.close();
        self.shared.publish(end);
    }
}
