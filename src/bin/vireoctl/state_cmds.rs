//! virsh's verbs that report on a domain or change its stored size: `domstate`, `domid`,
//! `domuuid`, `vcpuinfo`, `dommemstat`, `domstats`, `send-key`, `autostart`, `setvcpus` and
//! `setmem`. The answers come from `vireo::launch::lookup` (the runner while the VM runs, the
//! store otherwise); every domain argument may be a name, an id or a UUID.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use vireo::domain::store::DomainStore;
use vireo::launch::lookup::{self, DomainStatus};
use vireo::launch::{machines, runner, size_edit};

#[derive(Subcommand)]
pub enum StateCommand {
    /// Print a VM's state (running, paused, shut off); --reason adds why (booted, user,
    /// shutdown, destroyed, crashed, unknown).
    Domstate {
        /// The domain's name, id or UUID.
        name: String,
        #[arg(long)]
        reason: bool,
    },
    /// Print a running VM's id ("-" when it is not running).
    Domid { name: String },
    /// Print a VM's UUID.
    Domuuid { name: String },
    /// Show each vCPU of a running VM: the host CPU it last ran on, its CPU time, its affinity.
    Vcpuinfo { name: String },
    /// Show a running VM's memory: `actual` (what the guest was given) and `rss` (what its
    /// runner process holds in host memory), in KiB.
    Dommemstat { name: String },
    /// Print statistics of the given VMs (all when none is given) as virsh's `key=value` lines:
    /// state, CPU time, memory, vCPUs, disks.
    Domstats { names: Vec<String> },
    /// Send keystrokes to a VM's keyboard.
    SendKey {
        name: String,
        /// Key names or codes (e.g. KEY_LEFTCTRL KEY_LEFTALT KEY_DELETE).
        #[arg(required = true)]
        keys: Vec<String>,
        /// The codeset the keys are given in (linux, xt, usb, …).
        #[arg(long)]
        codeset: Option<String>,
        /// How long to hold the keys, in milliseconds.
        #[arg(long)]
        holdtime: Option<u32>,
    },
    /// Mark a defined VM to start automatically (--disable unmarks it); `list --autostart`
    /// lists the marked ones.
    Autostart {
        name: String,
        #[arg(long)]
        disable: bool,
    },
    /// Set a VM's vCPU count in its stored definition (--config; the built-in engine has no
    /// vCPU hot-plug, so a running VM gets it at its next start).
    Setvcpus {
        name: String,
        count: u32,
        /// Change the stored definition (the only change the built-in engine supports).
        #[arg(long)]
        config: bool,
        /// Change the running VM: not supported by the built-in engine.
        #[arg(long)]
        live: bool,
        /// The running VM if it runs, else the definition.
        #[arg(long)]
        current: bool,
        /// Also the maximum: the same thing here, the engine gives the guest every vCPU.
        #[arg(long)]
        maximum: bool,
    },
    /// Set a VM's memory in its stored definition (SIZE: 2G, 512M, or KiB without a unit, as
    /// virsh reads it); --config as for setvcpus.
    Setmem {
        name: String,
        size: String,
        #[arg(long)]
        config: bool,
        #[arg(long)]
        live: bool,
        #[arg(long)]
        current: bool,
    },
}

/// How long send-key holds the keys without --holdtime (QEMU's default).
const DEFAULT_HOLD_MS: u32 = 100;

pub fn run(cmd: StateCommand) -> anyhow::Result<ExitCode> {
    let store = DomainStore::open_default()?;
    let resolve = |name: &str| -> anyhow::Result<String> { Ok(lookup::resolve(&store, name)?) };
    match cmd {
        StateCommand::Domstate { name, reason } => {
            let name = resolve(&name)?;
            known(&store, &name)?;
            let status = lookup::status(&name);
            if reason {
                println!("{} ({})", status.state, status.reason);
            } else {
                println!("{}", status.state);
            }
        }
        StateCommand::Domid { name } => {
            let name = resolve(&name)?;
            known(&store, &name)?;
            match lookup::status(&name).info {
                Some(info) => println!("{}", info.id),
                None => println!("-"),
            }
        }
        StateCommand::Domuuid { name } => {
            let name = resolve(&name)?;
            known(&store, &name)?;
            let uuid = lookup::uuid(&store, &name).with_context(|| {
                format!(
                    "domain '{name}' has no readable <uuid>; fix it with `vireoctl edit {name}`"
                )
            })?;
            println!("{uuid}");
        }
        StateCommand::Vcpuinfo { name } => vcpuinfo(&running(&resolve(&name)?)?)?,
        StateCommand::Dommemstat { name } => {
            let info = running(&resolve(&name)?)?;
            println!("actual {}", info.memory_bytes >> 10);
            if let Some(rss) = lookup::rss_kib(info.runner_pid) {
                println!("rss {rss}");
            }
        }
        StateCommand::Domstats { names } => {
            let names = if names.is_empty() {
                machines::list(&store)
                    .into_iter()
                    .filter(|vm| !matches!(vm.state, machines::RunState::Broken(_)))
                    .map(|vm| vm.name)
                    .collect()
            } else {
                let mut resolved = Vec::new();
                for name in &names {
                    let name = resolve(name)?;
                    known(&store, &name)?;
                    resolved.push(name);
                }
                resolved
            };
            for name in names {
                print!("{}", domstats(&store, &name));
            }
        }
        StateCommand::SendKey {
            name,
            keys,
            codeset,
            holdtime,
        } => {
            let name = resolve(&name)?;
            running(&name)?;
            let codes = vireo::launch::keys::parse_keys(&keys, codeset.as_deref())
                .map_err(anyhow::Error::msg)?;
            runner::send_keys(&name, codes, holdtime.unwrap_or(DEFAULT_HOLD_MS))?;
        }
        StateCommand::Autostart { name, disable } => {
            let name = resolve(&name)?;
            store.set_autostart(&name, !disable)?;
            if disable {
                println!("Domain '{name}' unmarked as autostarted");
            } else {
                println!("Domain '{name}' marked as autostarted");
            }
        }
        StateCommand::Setvcpus {
            name,
            count,
            config,
            live,
            current,
            maximum: _,
        } => {
            let name = resolve(&name)?;
            config_only("setvcpus", &name, config, live, current)?;
            size_edit::set_vcpus(&store, &name, count)?;
            println!("Domain '{name}' now has {count} vCPU(s) from its next start");
        }
        StateCommand::Setmem {
            name,
            size,
            config,
            live,
            current,
        } => {
            let name = resolve(&name)?;
            config_only("setmem", &name, config, live, current)?;
            // virsh reads a bare number as KiB.
            let size = if size.trim().bytes().all(|b| b.is_ascii_digit()) {
                format!("{}KiB", size.trim())
            } else {
                size
            };
            let bytes = vireo::domain::units::parse_size(&size).map_err(anyhow::Error::msg)?;
            size_edit::set_memory(&store, &name, bytes)?;
            println!(
                "Domain '{name}' now has {} KiB of memory from its next start",
                bytes.div_ceil(1024)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Fails with virsh-like words when `name` is neither defined nor running.
fn known(store: &DomainStore, name: &str) -> anyhow::Result<()> {
    if store.path_of(name).is_file() || runner::is_running(name) {
        return Ok(());
    }
    store.get(name)?;
    Ok(())
}

/// The runner's answer for a running VM, or an error saying it is not running.
fn running(name: &str) -> anyhow::Result<runner::RunnerInfo> {
    runner::info(name).map_err(|e| match e {
        runner::RunnerError::NotRunning(_) => anyhow::anyhow!(
            "domain '{name}' is not running; start it first (vireoctl start {name})"
        ),
        other => other.into(),
    })
}

/// Only stored-definition changes are possible: a live one (asked for, or implied by
/// `--current` on a running VM) is refused with the fix.
fn config_only(
    verb: &str,
    name: &str,
    config: bool,
    live: bool,
    current: bool,
) -> anyhow::Result<()> {
    let runs = runner::is_running(name);
    if live || (runs && !config) {
        let _ = current;
        bail!(
            "{verb} on the running VM '{name}' is not supported by the built-in engine (no \
             hot-plug); add --config to change its definition, which takes effect at its next start"
        );
    }
    Ok(())
}

fn vcpuinfo(info: &runner::RunnerInfo) -> anyhow::Result<()> {
    let hz = machines::ticks_per_second() as f64;
    let host_cpus = vireo::host::facts::online_cpus();
    let threads = lookup::vcpu_threads(info.runner_pid);
    if threads.is_empty() {
        bail!(
            "cannot read the vCPU threads of '{}' (runner process {}) from /proc",
            info.name,
            info.runner_pid
        );
    }
    for (n, thread) in threads.iter().enumerate() {
        if n > 0 {
            println!();
        }
        let affinity: String = (0..host_cpus.max(1))
            .map(|cpu| {
                if thread.affinity.contains(&cpu) {
                    'y'
                } else {
                    '-'
                }
            })
            .collect();
        println!("VCPU:           {}", thread.index);
        println!(
            "CPU:            {}",
            thread
                .host_cpu
                .map_or_else(|| "-".to_string(), |c| c.to_string())
        );
        println!("State:          {}", info.state);
        println!("CPU time:       {:.1}s", thread.ticks as f64 / hz);
        println!("CPU Affinity:   {affinity}");
    }
    Ok(())
}

/// virsh's `domstats` block for one domain.
fn domstats(store: &DomainStore, name: &str) -> String {
    let status: DomainStatus = lookup::status(name);
    let mut out = format!(
        "Domain: '{name}'\n  state.state={}\n  state.reason={}\n",
        status.state_code(),
        status.reason_code()
    );
    let domain = runner::live_xml(name)
        .and_then(|xml| vireo::domain::Domain::parse(&xml).ok())
        .or_else(|| store.get(name).ok().map(|s| s.domain));
    let max_kib = domain
        .as_ref()
        .and_then(|d| d.memory().ok().flatten())
        .and_then(|m| m.bytes())
        .map(|b| b >> 10);
    let vcpus = domain
        .as_ref()
        .and_then(|d| d.vcpu().ok().flatten())
        .map(|v| v.count);
    if let Some(info) = &status.info {
        if let Some(ticks) = machines::cpu_ticks(info.runner_pid) {
            let ns = ticks as u128 * 1_000_000_000 / u128::from(machines::ticks_per_second());
            out += &format!("  cpu.time={ns}\n");
        }
        out += &format!("  balloon.current={}\n", info.memory_bytes >> 10);
        if let Some(max) = max_kib {
            out += &format!("  balloon.maximum={max}\n");
        }
        if let Some(rss) = lookup::rss_kib(info.runner_pid) {
            out += &format!("  balloon.rss={rss}\n");
        }
        out += &format!(
            "  vcpu.current={}\n  vcpu.maximum={}\n",
            info.vcpus, info.vcpus
        );
    } else {
        if let Some(max) = max_kib {
            out += &format!("  balloon.current={max}\n  balloon.maximum={max}\n");
        }
        if let Some(count) = vcpus {
            out += &format!("  vcpu.current={count}\n  vcpu.maximum={count}\n");
        }
    }
    let disks = domain.map(|d| d.disks()).unwrap_or_default();
    out += &format!("  block.count={}\n", disks.len());
    for (i, disk) in disks.iter().enumerate() {
        if let Some(target) = &disk.target_dev {
            out += &format!("  block.{i}.name={target}\n");
        }
        if let Some(source) = &disk.source {
            out += &format!("  block.{i}.path={source}\n");
            if let Ok(meta) = std::fs::metadata(source) {
                use std::os::unix::fs::MetadataExt;
                out += &format!(
                    "  block.{i}.allocation={}\n  block.{i}.physical={}\n",
                    meta.blocks() * 512,
                    meta.len()
                );
            }
        }
    }
    out + "\n"
}
