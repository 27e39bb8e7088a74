//! What the main window knows of each VM, and how it drives them.
//!
//! VMs run in their own runner processes (`vireo-runner NAME`, see `launch::runner`), the
//! same way `vireoctl start` runs them. So a guest that misbehaves, or an engine fault, can
//! never take the window down; VMs keep running when the window closes; and a VM started
//! from the command line shows up here as running, with the same controls. This module has no
//! GTK in it: it is the plain logic behind the list, testable on its own.

use std::path::PathBuf;

use crate::domain::store::DomainStore;
use crate::launch::runner::{self, Request};

/// A VM's run state as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    ShutOff,
    Running,
    Paused,
    /// Not running, and its last run ended in a crash; the engine's reason.
    Crashed(String),
    /// The definition file could not be read; the message says why.
    Broken(String),
}

/// One row of the VM list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSummary {
    pub name: String,
    pub title: Option<String>,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub state: RunState,
    /// The runner process while the VM runs (for CPU use).
    pub runner_pid: Option<u32>,
    /// Running without a definition in the store (`vireoctl create`, or undefined while it
    /// ran): virsh lists such domains as transient; they are gone once they stop.
    pub transient: bool,
}

/// Something a user asks of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmAction {
    Pause,
    Resume,
    Shutdown,
    Reboot,
    ForceOff,
}

impl VmAction {
    /// The runner request for this action.
    fn request(self) -> Request {
        match self {
            VmAction::Pause => Request::Suspend,
            VmAction::Resume => Request::Resume,
            VmAction::Shutdown => Request::Shutdown,
            VmAction::Reboot => Request::Reboot,
            VmAction::ForceOff => Request::Destroy,
        }
    }
}

/// Every VM in `store`, with its run state, sorted by name.
pub fn list(store: &DomainStore) -> Vec<VmSummary> {
    let mut rows: Vec<VmSummary> = store
        .list()
        .into_iter()
        .map(|entry| match entry {
            Ok(stored) => {
                let domain = &stored.domain;
                let (state, runner_pid) = run_state(&stored.name);
                VmSummary {
                    title: domain.title().filter(|t| !t.is_empty()),
                    vcpus: domain.vcpu().ok().flatten().map_or(1, |v| v.count),
                    memory_mib: domain
                        .memory()
                        .ok()
                        .flatten()
                        .and_then(|m| m.bytes())
                        .map_or(0, |b| b >> 20),
                    name: stored.name,
                    state,
                    runner_pid,
                    transient: false,
                }
            }
            Err(broken) => VmSummary {
                name: broken.name,
                title: None,
                vcpus: 0,
                memory_mib: 0,
                state: RunState::Broken(broken.error),
                runner_pid: None,
                transient: false,
            },
        })
        .collect();
    rows.extend(transient_vms(&rows));
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// VMs whose runners answer but which `defined` does not list: those started from a file and
/// those undefined while running. Their size comes from the runner itself.
fn transient_vms(defined: &[VmSummary]) -> Vec<VmSummary> {
    runner::running_names()
        .into_iter()
        .filter(|name| defined.iter().all(|row| &row.name != name))
        .filter_map(|name| {
            let info = runner::info(&name).ok()?;
            Some(VmSummary {
                name,
                title: None,
                vcpus: info.vcpus,
                memory_mib: info.memory_bytes >> 20,
                state: live_state(&info),
                runner_pid: Some(info.runner_pid),
                transient: true,
            })
        })
        .collect()
}

/// Asks the VM's runner how it is; no runner means shut off, or crashed when the last
/// runner recorded a crash.
pub fn run_state(name: &str) -> (RunState, Option<u32>) {
    let Ok(info) = runner::info(name) else {
        let crash = runner::exit_state(name)
            .and_then(|state| state.strip_prefix("crashed: ").map(str::to_string));
        return (crash.map_or(RunState::ShutOff, RunState::Crashed), None);
    };
    (live_state(&info), Some(info.runner_pid))
}

/// The list's state for a VM whose runner answered: paused, else running (a runner winding
/// down after its VM ended still holds the VM as far as the list is concerned).
fn live_state(info: &runner::RunnerInfo) -> RunState {
    match info.state.as_str() {
        "paused" => RunState::Paused,
        _ => RunState::Running,
    }
}

/// The `vireoctl` binary that runs VMs: `$VIREO_VIREOCTL`, else the one beside this program.
pub fn vireoctl_path() -> PathBuf {
    if let Some(path) = std::env::var_os("VIREO_VIREOCTL") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("vireoctl")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("vireoctl"))
}

/// The runner executable (`vireo-runner`), which holds one VM: `$VIREO_RUNNER`, else the one
/// beside this executable, else the one beside [`vireoctl_path`], else `vireo-runner` on PATH.
/// A binary of its own so that each VM's process loads none of the libvirt client library
/// `vireoctl` links (about 50 shared libraries: 10 ms of CPU at every start and 10 MiB of
/// memory per running VM).
pub fn runner_path() -> PathBuf {
    if let Some(path) = std::env::var_os("VIREO_RUNNER") {
        return PathBuf::from(path);
    }
    let beside = |exe: PathBuf| exe.parent().map(|dir| dir.join(RUNNER_EXE));
    std::env::current_exe()
        .ok()
        .and_then(beside)
        .filter(|p| p.exists())
        .or_else(|| beside(vireoctl_path()).filter(|p| p.exists()))
        .unwrap_or_else(|| PathBuf::from(RUNNER_EXE))
}

/// The runner executable's file name.
const RUNNER_EXE: &str = "vireo-runner";

/// Starts the stored VM `name` in its own runner; returns once it runs, or with the reason it
/// could not start (e.g. "this host's KVM cannot provide: sse4.2, avx"). Blocks briefly: call
/// it off the UI thread.
pub fn start(name: &str) -> Result<(), String> {
    runner::start_stored(name, false)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether a start error is the engine saying it cannot give the guest the CPU its definition
/// asks for (the `guest CPU: …` errors of `vireoctl start`), so that a different CPU is the fix.
pub fn is_cpu_error(message: &str) -> bool {
    message.starts_with("guest CPU")
}

/// Switches the stored VM `name` to host-model, the one-click fix for a CPU this host cannot
/// give: host-model takes what this host's KVM offers. vCPU count and topology stay; feature
/// settings that can only hide features (disable, forbid, optional) stay too, while required
/// and forced ones go, since this host may lack them.
pub fn use_host_model(store: &DomainStore, name: &str) -> Result<(), String> {
    use super::cpu_edit::{CpuChoice, CpuSettings};
    use crate::cpu::Policy;
    let mut stored = store.get(name).map_err(|e| e.to_string())?;
    let mut cpu = CpuSettings::read(&stored.domain);
    cpu.choice = CpuChoice::HostModel;
    cpu.features.retain(|(_, policy)| {
        matches!(policy, Policy::Disable | Policy::Forbid | Policy::Optional)
    });
    cpu.write(&mut stored.domain).map_err(|e| e.to_string())?;
    store.save(&mut stored).map_err(|e| e.to_string())
}

/// Sends `action` to the running VM `name`.
pub fn control(name: &str, action: VmAction) -> Result<(), String> {
    runner::control(name, action.request()).map_err(|e| e.to_string())
}

/// CPU time used so far by process `pid`, in clock ticks (utime + stime of /proc/PID/stat).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second, for turning [`cpu_ticks`] into a share of one CPU.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; a negative answer means unknown.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// A bounded history of CPU-use samples (0.0 ..= 1.0 per vCPU share) for the sparkline.
#[derive(Debug, Clone, Default)]
pub struct CpuHistory {
    samples: std::collections::VecDeque<f64>,
    last: Option<(std::time::Instant, u64)>,
}

impl CpuHistory {
    /// How many samples the sparkline shows.
    pub const LEN: usize = 40;

    /// Records a reading of the runner's CPU ticks; `vcpus` scales it to the VM's capacity.
    pub fn record(&mut self, now: std::time::Instant, ticks: u64, vcpus: u32) {
        self.record_units(now, ticks, ticks_per_second(), vcpus);
    }

    /// Records a reading of a libvirt domain's CPU time in nanoseconds (`virDomainGetInfo`).
    pub fn record_ns(&mut self, now: std::time::Instant, cpu_time_ns: u64, vcpus: u32) {
        self.record_units(now, cpu_time_ns, 1_000_000_000, vcpus);
    }

    /// Records a cumulative CPU-time counter counting `per_second` units per CPU second.
    fn record_units(&mut self, now: std::time::Instant, used: u64, per_second: u64, vcpus: u32) {
        if let Some((then, before)) = self.last {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                let used = used.saturating_sub(before) as f64 / per_second.max(1) as f64;
                let share = used / seconds / f64::from(vcpus.max(1));
                self.push(share.clamp(0.0, 1.0));
            }
        }
        self.last = Some((now, used));
    }

    /// Records that the VM is not running (a flat zero).
    pub fn record_idle(&mut self) {
        self.last = None;
        self.push(0.0);
    }

    fn push(&mut self, value: f64) {
        if self.samples.len() == Self::LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(value);
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = f64> + '_ {
        self.samples.iter().copied()
    }

    /// The latest sample.
    pub fn latest(&self) -> f64 {
        self.samples.back().copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_errors_are_told_apart_as_vireoctl_prints_them() {
        use crate::cpu::guest::ResolveError;
        use crate::launch::ConfigError;
        // `vireoctl start` prints errors as anyhow's "{:#}" chain; `start` strips "error: ".
        let printed = |err: ConfigError| format!("{:#}", anyhow::Error::from(err));
        assert!(is_cpu_error(&printed(ConfigError::Cpu(
            ResolveError::NoModel
        ))));
        assert!(!is_cpu_error(&printed(ConfigError::Invalid(
            "missing <name>".into()
        ))));
        assert!(!is_cpu_error(&printed(ConfigError::Host(
            "no /dev/kvm".into()
        ))));
    }

    #[test]
    fn cpu_history_turns_ticks_into_shares() {
        let hz = ticks_per_second();
        let t0 = std::time::Instant::now();
        let mut history = CpuHistory::default();
        history.record(t0, 1000, 2);
        assert_eq!(
            history.samples().count(),
            0,
            "first reading is only a baseline"
        );
        // One full second of CPU over one second on a 2-vCPU VM: half its capacity.
        history.record(t0 + std::time::Duration::from_secs(1), 1000 + hz, 2);
        assert!((history.latest() - 0.5).abs() < 1e-9);
        for i in 0..100 {
            history.record_idle();
            assert!(
                history.samples().count() <= CpuHistory::LEN,
                "bounded at {i}"
            );
        }
        assert_eq!(history.latest(), 0.0);
    }

    #[test]
    fn own_process_has_cpu_ticks() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(cpu_ticks(u32::MAX).is_none());
    }

    #[test]
    fn a_vm_without_runner_is_shut_off() {
        assert_eq!(run_state("no-such-vm-anywhere").0, RunState::ShutOff);
    }
}
