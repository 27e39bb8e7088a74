//! Verbs that run VMs or check the host: `create`, `host-validate`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use vireo::engine::config::{HostFacts, prepare_domain};
use vireo::engine::{StopReason, Vm, VmState};
use vireo::host::validate::{self, Status};

#[derive(Subcommand)]
pub enum RunCommand {
    /// Start a transient VM from a domain XML file (like `virsh create`). Runs until the guest
    /// stops; with --console the serial console is on this terminal (Ctrl+] forces the VM off).
    Create {
        /// The domain XML file.
        file: PathBuf,
        /// Attach the serial console to stdin/stdout.
        #[arg(long)]
        console: bool,
    },
    /// Check that this host can run VMs (like virt-host-validate); exit 1 if any check fails.
    HostValidate,
}

pub fn run(cmd: RunCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunCommand::Create { file, console } => create(&file, console),
        RunCommand::HostValidate => host_validate(),
    }
}

fn host_validate() -> anyhow::Result<ExitCode> {
    let checks = validate::run_checks();
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
    let xml = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read domain file {}", file.display()))?;
    let t0 = Instant::now();
    let host = HostFacts::probe()?;
    let probed = t0.elapsed();
    let prepared = prepare_domain(&xml, &host)?;
    for warning in &prepared.cpu.warnings {
        eprintln!("warning: {warning}");
    }
    if xml.contains("host-model") {
        eprintln!("host-model expanded to:\n{}", prepared.cpu.expansion_xml());
    }
    let vm = Vm::start(prepared.config)?;
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
            "timings: host_probe_ms={:.2} vm_build_ms={:.2} first_guest_exit_ms={:.2} total_ms={:.2}",
            ms(probed),
            ms(timings.build),
            timings.first_guest_exit.map(ms).unwrap_or(f64::NAN),
            ms(t0.elapsed())
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

/// The byte Ctrl+] sends, virsh's console escape.
const ESCAPE: u8 = 0x1d;

/// Copies stdin to the guest's serial port on a background thread; Ctrl+] forces the VM off.
fn forward_stdin(vm: &Vm) {
    let control = vm.controller();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = &buf[..n];
                    if let Some(at) = bytes.iter().position(|b| *b == ESCAPE) {
                        control.send_input(&bytes[..at]);
                        control.force_off();
                        break;
                    }
                    control.send_input(bytes);
                }
            }
        }
    });
}

/// Puts the terminal in raw mode while the console is attached; restores it on drop.
struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(0) } != 1 {
            return None;
        }
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0, checked below.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is a terminal and `saved` is a valid termios to write into.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct we own.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: fd 0 is a terminal; `raw` is a valid termios.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same terminal in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}
