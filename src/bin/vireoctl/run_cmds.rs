//! Verbs that run VMs or check the host: `create`, `host-validate`, and the persistent-domain
//! verbs (`start`, `shutdown`, `destroy`, `suspend`, `resume`, `console`, `dominfo`).

pub(crate) mod persistent;
mod terminal;

use terminal::{RawTerminal, forward_stdin};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use vireo::engine::{StopReason, Vm, VmState};
use vireo::host::validate::{self, Status};
use vireo::launch::{HostFacts, prepare_domain};

#[derive(Subcommand)]
pub enum RunCommand {
    /// Start a transient VM from a domain XML file (like `virsh create`): it runs on after this
    /// command returns; with --console it runs in this process with the serial console on this
    /// terminal until the guest stops (exit 0 on guest poweroff; Ctrl+] forces it off).
    Create {
        /// The domain XML file.
        file: PathBuf,
        /// Attach the serial console to stdin/stdout.
        #[arg(long)]
        console: bool,
    },
    /// Check that this host can run VMs (like virt-host-validate); exit 1 if any check fails.
    HostValidate,
    #[command(flatten)]
    Persistent(persistent::PersistentCommand),
}

pub fn run(cmd: RunCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunCommand::Create { file, console } => create(&file, console),
        RunCommand::HostValidate => host_validate(),
        RunCommand::Persistent(cmd) => persistent::run(cmd),
    }
}

fn host_validate() -> anyhow::Result<ExitCode> {
    let checks = validate::run_checks(vireo::engine::cpuid_probe::cpuid_is_enforced);
    for check in &checks {
        println!("{check}");
    }
    Ok(if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn create(file: &PathBuf, console: bool) -> anyhow::Result<ExitCode> {
    if !console {
        return persistent::create_detached(file);
    }
    let xml = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read domain file {}", file.display()))?;
    let t0 = Instant::now();
    let host = HostFacts::probe()?;
    let probed = t0.elapsed();
    let mut prepared = prepare_domain(&xml, &host)?;
    for warning in &prepared.all_warnings() {
        eprintln!("warning: {warning}");
    }
    if xml.contains("host-model") {
        eprintln!(
            "host-model expanded to:\n{}",
            prepared.cpu.expansion_xml(Some(&prepared.config.topology))
        );
    }
    let name = prepared.config.name.clone();
    // Stops the VM's passt processes when this function returns, after the VM ended.
    let _network = prepared.start_network()?;
    let vm = Vm::start(prepared.config).map_err(|e| vireo::launch::disks::start_error(e, &name))?;
    if !console {
        eprintln!(
            "Domain '{}' started (runs until the guest stops)",
            vm.name()
        );
    }
    let _raw = if console { RawTerminal::enter() } else { None };
    if console {
        forward_stdin(&vm);
        let reader = vm.console().attach();
        let mut out = std::io::stdout().lock();
        out.write_all(&reader.scrollback)?;
        out.flush()?;
        while let Some(chunk) = reader.recv() {
            out.write_all(&chunk)?;
            out.flush()?;
        }
    }
    let end = vm.wait();
    drop(_raw);
    if std::env::var_os("VIREO_BENCH_TIMINGS").is_some() {
        let timings = vm.timings();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        eprintln!(
            "timings: host_probe_ms={:.2} vm_build_ms={:.2} first_guest_exit_ms={:.2} total_ms={:.2} process_cpu_ms={:.2}",
            ms(probed),
            ms(timings.build),
            timings.first_guest_exit.map(ms).unwrap_or(f64::NAN),
            ms(t0.elapsed()),
            ms(process_cpu_time())
        );
    }
    Ok(match end {
        VmState::Shutoff(StopReason::GuestPoweroff) | VmState::Shutoff(StopReason::GuestReset) => {
            ExitCode::SUCCESS
        }
        VmState::Crashed(message) => {
            eprintln!("error: domain '{}' crashed: {message}", vm.name());
            ExitCode::from(1)
        }
        other => {
            eprintln!("domain '{}' {other}", vm.name());
            ExitCode::from(1)
        }
    })
}

/// User + system CPU time this process has used so far (finer than `time`'s 10 ms ticks).
fn process_cpu_time() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
