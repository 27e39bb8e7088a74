//! Verbs for defined (persistent) domains, each VM held by its own runner process
//! (`vireoctl runner NAME`, started detached by `start`) behind a control socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use clap::Subcommand;
use vireo::domain::store::DomainStore;
use vireo::engine::{Vm, VmState};
use vireo::launch::runner::{self, Request, RunningSummary};
use vireo::launch::{HostFacts, prepare, vnc};

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
    /// Internal: hold a VM for `start` / `create` (not for direct use).
    #[command(hide = true)]
    Runner {
        /// The defined domain to run, or the name to expect in --file.
        name: String,
        /// Run this domain XML file as a transient domain instead of a defined one.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Start with the vCPUs paused.
        #[arg(long)]
        paused: bool,
        /// Keep this domain id (a runner restarting its VM for `reboot`).
        #[arg(long)]
        id: Option<u32>,
        /// Remove --file once read (the live definition a rebooting runner hands on).
        #[arg(long, requires = "file")]
        remove_file: bool,
    },
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
        PersistentCommand::Runner {
            name,
            file,
            paused,
            id,
            remove_file,
        } => runner_main(&name, file.as_deref(), paused, id, remove_file),
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

fn start(name: &str, attach: bool, paused: bool) -> anyhow::Result<ExitCode> {
    vireo::domain::name::check(name)?;
    if runner::is_running(name) {
        bail!("domain '{name}' is already running");
    }
    // Fail early (and in this terminal) on an unknown name.
    let store = DomainStore::open_default()?;
    store.get(name)?;
    if let Err(message) = spawn_runner(name, None, paused)? {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(2));
    }
    // The VM has run now: its details offer "Start" rather than "Begin Installation".
    if let Err(error) = store.note_started(name) {
        eprintln!("warning: {name} started, but its definition could not be updated: {error}");
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
    let results = vireo::launch::autostart::start_marked(&store, |name| {
        match spawn_runner(name, None, false) {
            Ok(Ok(())) => {
                println!("Domain '{name}' started");
                if let Err(error) = store.note_started(name) {
                    eprintln!(
                        "warning: {name} started, but its definition could not be updated: {error}"
                    );
                }
                Ok(())
            }
            Ok(Err(message)) => Err(message),
            Err(error) => Err(format!("{error:#}")),
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
    if let Err(message) = spawn_runner(&name, Some(file), false)? {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(2));
    }
    println!("Domain '{name}' created from {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// What a runner logs unless `RUST_LOG` says otherwise: Vireo's own lifecycle news (starts,
/// restarts, passt's messages) and everyone's warnings.
const RUNNER_LOG_LEVEL: &str = "warn,vireo=info,vireoctl=info";

/// Starts `vireoctl runner` detached and waits for it to report the VM started. `Ok(Err(message))`
/// when the runner refused.
fn spawn_runner(
    name: &str,
    file: Option<&Path>,
    paused: bool,
) -> anyhow::Result<Result<(), String>> {
    let exe = std::env::current_exe().context("cannot find the vireoctl executable")?;
    // The runner outlives this command and its terminal: what it logs goes to the VM's log.
    let log = runner::open_log(name).context("cannot open the VM's log file")?;
    let mut child = Command::new(exe);
    child
        .arg("runner")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    if std::env::var_os("RUST_LOG").is_none() {
        child.env("RUST_LOG", RUNNER_LOG_LEVEL);
    }
    if let Some(file) = file {
        child.arg("--file").arg(std::path::absolute(file)?);
    }
    if paused {
        child.arg("--paused");
    }
    // SAFETY: setsid is async-signal-safe; it detaches the runner from this terminal's session
    // so it outlives this command.
    unsafe {
        child.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = child.spawn().context("cannot start the VM runner")?;
    let stdout = child.stdout.take().context("runner has no stdout")?;
    // Warnings (one `warning: …` line each) come before `ready` or `error: …`.
    let mut lines = BufReader::new(stdout);
    let mut first = String::new();
    loop {
        first.clear();
        lines.read_line(&mut first)?;
        match first.trim_end().strip_prefix("warning: ") {
            Some(warning) => eprintln!("warning: {warning}"),
            None => break,
        }
    }
    match first.trim().strip_prefix("error: ") {
        Some(message) => {
            let _ = child.wait();
            Ok(Err(message.to_string()))
        }
        None if first.trim() == "ready" => Ok(Ok(())),
        None => bail!(
            "the VM runner exited before the VM started; its log is {}",
            runner::log_path(name)?.display()
        ),
    }
}

/// The runner process: starts the VM, reports `ready` or `error: …` on stdout, then serves the
/// control socket until the VM ends.
fn runner_main(
    name: &str,
    file: Option<&Path>,
    paused: bool,
    id: Option<u32>,
    remove_file: bool,
) -> anyhow::Result<ExitCode> {
    // Whoever bound the socket removes it on failure; a refused name or a runner already
    // serving this name leaves every file alone.
    let mut bound = false;
    let started = (|| -> anyhow::Result<_> {
        vireo::domain::name::check(name)?;
        let domain = match file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read domain file {}", file.display()));
                if remove_file {
                    let _ = std::fs::remove_file(file);
                }
                vireo::domain::model::Domain::parse(&text?)?
            }
            None => DomainStore::open_default()?.get(name)?.domain,
        };
        let host = HostFacts::probe()?;
        let mut prepared = prepare(&domain, &host)?;
        let listener = runner::bind(name)?;
        bound = true;
        // The VNC port is taken before the live XML is written, which records it.
        let vnc = match prepared.vnc.take() {
            Some(settings) => Some((vnc::bind(&settings, name)?, settings)),
            None => None,
        };
        let summary = RunningSummary {
            name: name.to_string(),
            vcpus: prepared.config.vcpus(),
            memory_bytes: prepared.config.memory_bytes,
            cpu_model: prepared.cpu.model.clone(),
            cpu_xml: prepared.cpu.expansion_xml(Some(&prepared.config.topology)),
            warnings: prepared.all_warnings(),
            id: match id {
                Some(id) => id,
                None => runner::allocate_id()?,
            },
            reboot_requested: Default::default(),
            display: match &vnc {
                Some((listener, _)) => Some(listener.uri()?),
                None => None,
            },
        };
        // The live XML: what runs, with host-model replaced by its expansion.
        let mut live = domain.clone();
        if live.cpu_xml().is_some_and(|c| c.contains("host-model")) {
            live.set_cpu_xml(Some(&summary.cpu_xml))?;
        }
        if let Some(port) = vnc.as_ref().and_then(|(l, _)| l.port()) {
            live.set_graphics_attrs(
                vnc.as_ref().map_or(0, |(_, s)| s.index),
                &[("port", &port.to_string())],
            );
        }
        let live = live.to_xml();
        runner::write_live_xml(name, &live)?;
        // One passt per network card, stopped when `network` drops after the VM ended.
        let network = prepared.start_network()?;
        let vm = if paused {
            Vm::start_paused(prepared.config)
        } else {
            Vm::start(prepared.config)
        }
        .map_err(|e| start_error(e, name))?;
        let vnc = match vnc {
            Some((listener, settings)) => Some(start_vnc(&vm, name, listener, &settings)?),
            None => None,
        };
        Ok((vm, summary, listener, live, (network, vnc)))
    })();
    let mut out = std::io::stdout();
    let (vm, summary, listener, live, network) = match started {
        Ok(parts) => parts,
        Err(e) => {
            if let Some(path) = bound.then(|| runner::socket_path(name).ok()).flatten() {
                let _ = std::fs::remove_file(path);
            }
            tracing::error!(domain = name, "not started: {e:#}");
            writeln!(out, "error: {e:#}")?;
            return Ok(ExitCode::from(2));
        }
    };
    tracing::info!(
        domain = name,
        id = summary.id,
        pid = std::process::id(),
        version = env!("CARGO_PKG_VERSION"),
        "started"
    );
    for warning in &summary.warnings {
        tracing::warn!(domain = name, "{warning}");
        writeln!(out, "warning: {warning}")?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    // Nobody reads our stdout any more; keep later writes from failing the process.
    // SAFETY: dup2 onto fd 1 of a freshly opened /dev/null descriptor.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    let reboot = summary.reboot_requested.clone();
    let id = summary.id;
    let end = runner::serve(vm, summary, listener);
    drop(network);
    // Say how the VM ended, for the GUI's console banner and the VM list.
    runner::write_exit_state(name, &end);
    tracing::info!(domain = name, "ended: {end}");
    if reboot.load(std::sync::atomic::Ordering::SeqCst)
        && end == VmState::Shutoff(vireo::engine::StopReason::GuestPoweroff)
    {
        return restart(name, &live, id);
    }
    Ok(match end {
        VmState::Crashed(_) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// Serves the VM's screen over VNC until the returned server is dropped.
fn start_vnc(
    vm: &Vm,
    name: &str,
    listener: vnc::Listener,
    settings: &vnc::VncSettings,
) -> anyhow::Result<vnc::VncServer> {
    let sources = vnc::VncSources::of(vm.frontends()).with_context(|| {
        format!(
            "domain '{name}' has <graphics type='vnc'> but no display to serve; remove              <video><model type='none'/></video> with `vireoctl edit {name}`"
        )
    })?;
    vnc::VncServer::start(listener, sources, name, settings.password.as_deref())
        .context("starting the VNC server")
}

/// The second half of `reboot`: the guest has powered off, so this runner becomes a fresh one
/// for the same definition it ran (its live XML, so host-model keeps its expansion) and id.
fn restart(name: &str, live: &str, id: u32) -> anyhow::Result<ExitCode> {
    let file = runner::runtime_dir()?.join(format!("{name}.reboot.xml"));
    std::fs::write(&file, live).with_context(|| format!("cannot write {}", file.display()))?;
    let exe = std::env::current_exe().context("cannot find the vireoctl executable")?;
    let err = Command::new(exe)
        .arg("runner")
        .arg(name)
        .arg("--file")
        .arg(&file)
        .arg("--remove-file")
        .arg("--id")
        .arg(id.to_string())
        .exec();
    let _ = std::fs::remove_file(&file);
    Err(anyhow::Error::from(err).context(format!("cannot restart '{name}' for its reboot")))
}

/// A start error as the user reads it: an image another VM holds names that VM.
pub fn start_error(error: vireo::engine::EngineError, name: &str) -> anyhow::Error {
    match vireo::launch::disks::explain_start_error(&error, name) {
        Some(message) => anyhow::anyhow!(message),
        None => error.into(),
    }
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
