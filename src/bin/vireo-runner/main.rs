//! `vireo-runner`: the process that holds one VM of the built-in engine. `vireoctl start` and
//! `create` (and so the app) start it detached; it starts the VM, reports `ready` or
//! `error: …` on stdout, then serves the VM's control socket until the VM ends.
//!
//! A binary of its own, apart from `vireoctl`: it references nothing of libvirt, so the linker
//! leaves out the libvirt client library and the ~50 shared libraries behind it, which cost
//! `vireoctl` about 10 ms of CPU at every start and each VM's process about 10 MiB of memory.
//! `tools/dev` checks it stays that way.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Parser;
use vireo::domain::store::DomainStore;
use vireo::engine::{Vm, VmState};
use vireo::launch::runner::{self, RunningSummary};
use vireo::launch::{HostFacts, prepare, vnc};

/// Holds one VM (started by `vireoctl start` and `create`; not for direct use).
#[derive(Parser)]
#[command(name = "vireo-runner", version)]
struct Args {
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
}

fn main() -> ExitCode {
    vireo::logging::init();
    let args = Args::parse();
    match runner_main(
        &args.name,
        args.file.as_deref(),
        args.paused,
        args.id,
        args.remove_file,
    ) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
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
        .map_err(|e| vireo::launch::disks::start_error(e, name))?;
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
    let exe = std::env::current_exe().context("cannot find the vireo-runner executable")?;
    let err = Command::new(exe)
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
