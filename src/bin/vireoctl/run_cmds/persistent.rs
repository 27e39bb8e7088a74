//! Verbs for defined (persistent) domains, each VM held by its own runner process
//! (`vireo-runner NAME`, started detached by `start`) behind a control socket.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use vireo::domain::store::DomainStore;
use vireo::launch::runner::{self, Request};

use super::terminal::{ESCAPE, RawTerminal};

#[derive(Subcommand)]
pub enum PersistentCommand {
    /// Start a defined VM; it keeps running after this command returns (--console attaches).
    Start {
        /// The domain's name or UUID.
        #[arg(required_unless_present = "autostart")]
        name: Option<String>,
        /// Start every VM marked with `vireoctl autostart` that is not running (what the login
        /// entry written by the app's Preferences runs); a VM that fails is reported and the
        /// others still start.
        #[arg(long, conflicts_with_all = ["name", "console", "paused"])]
        autostart: bool,
        /// Attach the serial console after starting.
        #[arg(long)]
        console: bool,
        /// Start with the vCPUs paused, before the guest runs an instruction (`resume` lets
        /// it run).
        #[arg(long)]
        paused: bool,
    },
    /// Ask a running VM to shut down (ACPI power button).
    Shutdown {
        /// The domain's name, id or UUID.
        name: String,
        /// How to ask: only `acpi` (the power button) is supported by the built-in engine.
        #[arg(long)]
        mode: Option<String>,
    },
    /// Ask a running VM to reboot: the ACPI power button, then, once the guest has powered off,
    /// a fresh start with the same id (the built-in engine's `reboot --mode acpi`).
    Reboot {
        /// The domain's name, id or UUID.
        name: String,
        /// How to ask: only `acpi` is supported by the built-in engine.
        #[arg(long)]
        mode: Option<String>,
    },
    /// Force a running VM off (the guest is not asked).
    Destroy {
        /// The domain's name, id or UUID.
        name: String,
        /// Stop it in order rather than by killing a process: the built-in engine always
        /// does (vCPUs stopped, the disks' accepted writes flushed), so this changes nothing.
        #[arg(long)]
        graceful: bool,
    },
    /// Pause a running VM.
    Suspend { name: String },
    /// Continue a paused VM.
    Resume { name: String },
    /// Hard-reset a running VM (the guest is not asked; `reboot` asks it).
    Reset { name: String },
    /// Attach to a running VM's serial console (Ctrl+] detaches).
    Console {
        name: String,
        /// On a libvirt connection: take the console over from another client (as
        /// `virsh console --force`); this computer's consoles may be shared anyway.
        #[arg(long)]
        force: bool,
    },
    /// Show a VM's state and size.
    Dominfo { name: String },
}

pub fn run(cmd: PersistentCommand) -> anyhow::Result<ExitCode> {
    let resolve = |name: &str| -> anyhow::Result<String> {
        Ok(vireo::launch::lookup::resolve(
            &DomainStore::open_default()?,
            name,
        )?)
    };
    match cmd {
        PersistentCommand::Start {
            name,
            autostart,
            console,
            paused,
        } => match name {
            Some(name) if !autostart => start(&resolve(&name)?, console, paused),
            _ => start_autostart(),
        },
        PersistentCommand::Shutdown { name, mode } => {
            check_mode("shutdown", mode.as_deref())?;
            simple(&resolve(&name)?, Request::Shutdown, "is being shutdown")
        }
        PersistentCommand::Reboot { name, mode } => {
            check_mode("reboot", mode.as_deref())?;
            simple(&resolve(&name)?, Request::AcpiReboot, "is being rebooted")
        }
        PersistentCommand::Destroy { name, graceful: _ } => {
            simple(&resolve(&name)?, Request::Destroy, "destroyed")
        }
        PersistentCommand::Suspend { name } => {
            simple(&resolve(&name)?, Request::Suspend, "suspended")
        }
        PersistentCommand::Resume { name } => simple(&resolve(&name)?, Request::Resume, "resumed"),
        PersistentCommand::Reset { name } => simple(&resolve(&name)?, Request::Reboot, "was reset"),
        PersistentCommand::Console { name, force: _ } => console(&resolve(&name)?),
        PersistentCommand::Dominfo { name } => dominfo(&resolve(&name)?),
    }
}

/// virsh's `--mode` for shutdown and reboot: a comma-separated list of ways to ask the guest.
/// The built-in engine has the ACPI power button and nothing else (no guest agent, no initctl,
/// no signal to a hypervisor process, no paravirtual channel).
fn check_mode(verb: &str, mode: Option<&str>) -> anyhow::Result<()> {
    let Some(mode) = mode else { return Ok(()) };
    let unsupported: Vec<&str> = mode
        .split(',')
        .map(str::trim)
        .filter(|m| *m != "acpi")
        .collect();
    if !unsupported.is_empty() {
        bail!(
            "{verb} --mode {}: not supported by the built-in engine, which can only press the \
             guest's ACPI power button; use --mode acpi (or leave --mode out)",
            unsupported.join(",")
        );
    }
    Ok(())
}

fn simple(name: &str, request: Request, done: &str) -> anyhow::Result<ExitCode> {
    runner::control(name, request)?;
    println!("Domain '{name}' {done}");
    Ok(ExitCode::SUCCESS)
}

/// Reports a runner's start in this terminal: its warnings, or its refusal as `error: …`
/// (`Ok(false)`: exit 2 without a second message); any other failure is the error.
fn started(outcome: Result<Vec<String>, runner::SpawnError>) -> anyhow::Result<bool> {
    match outcome {
        Ok(warnings) => {
            warnings.iter().for_each(|w| eprintln!("warning: {w}"));
            Ok(true)
        }
        Err(runner::SpawnError::Refused(message)) => {
            eprintln!("error: {message}");
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

fn start(name: &str, attach: bool, paused: bool) -> anyhow::Result<ExitCode> {
    if !started(runner::start_stored(name, paused))? {
        return Ok(ExitCode::from(2));
    }
    println!(
        "Domain '{name}' started{}",
        if paused { " (paused)" } else { "" }
    );
    if attach {
        return console(name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `start --autostart`: starts every VM marked to start automatically that is not running (see
/// [`vireo::launch::autostart`]); exit status 1 when any failed, each failure named.
fn start_autostart() -> anyhow::Result<ExitCode> {
    let store = DomainStore::open_default()?;
    let results =
        vireo::launch::autostart::start_marked(&store, |name| {
            match runner::start_stored(name, false) {
                Ok(warnings) => {
                    println!("Domain '{name}' started");
                    warnings.iter().for_each(|w| eprintln!("warning: {w}"));
                    Ok(())
                }
                Err(error) => Err(error.to_string()),
            }
        });
    let mut failed = false;
    for outcome in &results {
        if let Err(error) = &outcome.result {
            eprintln!("error: autostart of '{}' failed: {error}", outcome.name);
            failed = true;
        }
    }
    if results.is_empty() {
        println!("No VM marked to start automatically is waiting to start");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `create FILE` without --console: a transient domain held by a detached runner.
pub fn create_detached(file: &Path) -> anyhow::Result<ExitCode> {
    let xml = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read domain file {}", file.display()))?;
    let name = vireo::domain::model::Domain::parse(&xml)?
        .name()
        .context("the domain XML has no <name>")?;
    // Before any runtime path is built from it, and in this terminal.
    vireo::domain::name::check(&name)?;
    if runner::is_running(&name) {
        bail!("domain '{name}' is already running");
    }
    if !started(runner::spawn_runner(&name, Some(file), false))? {
        return Ok(ExitCode::from(2));
    }
    println!("Domain '{name}' created from {}", file.display());
    Ok(ExitCode::SUCCESS)
}

fn console(name: &str) -> anyhow::Result<ExitCode> {
    attach_terminal(name, runner::attach_console(name)?)
}

/// This terminal as the serial console of `name` over `stream` until Ctrl+] or the guest's
/// side ends (the built-in engine's runner or a libvirt console session).
pub fn attach_terminal(
    name: &str,
    stream: std::os::unix::net::UnixStream,
) -> anyhow::Result<ExitCode> {
    eprintln!("Connected to domain '{name}'\nEscape character is ^]");
    let raw = RawTerminal::enter();
    let mut input_side = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(at) = buf[..n].iter().position(|b| *b == ESCAPE) {
                let _ = input_side.write_all(&buf[..at]);
                let _ = input_side.shutdown(std::net::Shutdown::Both);
                break;
            }
            if input_side.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut output = stream;
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0u8; 4096];
    while let Ok(n) = output.read(&mut buf) {
        if n == 0 {
            break;
        }
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
    drop(raw);
    Ok(ExitCode::SUCCESS)
}

fn dominfo(name: &str) -> anyhow::Result<ExitCode> {
    let store = DomainStore::open_default()?;
    let uuid = vireo::launch::lookup::uuid(&store, name).unwrap_or_else(|| "-".into());
    let autostart = if store.autostart(name) {
        "enable"
    } else {
        "disable"
    };
    match runner::info(name) {
        Ok(info) => {
            print!("{}", info.to_dominfo());
            println!("UUID:           {uuid}\nAutostart:      {autostart}");
        }
        Err(runner::RunnerError::NotRunning(_)) => {
            let stored = store.get(name)?;
            let d = &stored.domain;
            println!("Id:             -");
            println!("Name:           {name}");
            println!("UUID:           {uuid}");
            println!("Autostart:      {autostart}");
            println!("State:          shut off");
            if let Ok(Some(vcpu)) = d.vcpu() {
                println!("CPU(s):         {}", vcpu.count);
            }
            if let Ok(Some(bytes)) = d.memory().map(|m| m.and_then(|m| m.bytes())) {
                println!("Max memory:     {} KiB", bytes >> 10);
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}
