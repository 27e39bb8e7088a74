//! Connection verbs: the stored libvirt connections (`connection add|remove|list`, as
//! virt-manager's "Add Connection"), virsh's `hypervisor-cpu-compare` and
//! `hypervisor-cpu-baseline` against the chosen connection, and the cross-host CPU checks
//! `hosts-cpu-compare` and `hosts-cpu-baseline` over this computer and every stored
//! connection.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use vireo::cpu::CpuDef;
use vireo::launch::connections::cross_host::{self, HostAnswer};
use vireo::launch::connections::{Comparison, HypervisorSpec, LibvirtConnection, Target};
use vireo::prefs::Prefs;

use crate::cpu_cmds::CpuCommand;

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Manage the stored libvirt connections (the GUI lists their VMs beside this computer's).
    #[command(subcommand)]
    Connection(ConnectionVerb),
    /// Compare a CPU with what the connection's hypervisor can give a guest (virsh's verb);
    /// prints identical, superset or incompatible with the missing features (exit 1).
    HypervisorCpuCompare {
        /// A file with a <cpu>, or a domain, capabilities or domain capabilities XML.
        file: PathBuf,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Print the CPU the connection's hypervisor can give that every CPU in the files can run.
    HypervisorCpuBaseline {
        /// Files with <cpu> elements, domain, capabilities or domain capabilities XML.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// List every feature of the resulting model.
        #[arg(long)]
        features: bool,
        /// Leave out features that block migration.
        #[arg(long)]
        migratable: bool,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Which hosts (this computer and every stored connection) can run a VM's CPU, naming what
    /// each one lacks; exit 1 if one cannot. The VM is read from the -c connection.
    HostsCpuCompare {
        /// The VM's name, id or UUID.
        name: String,
    },
    /// Print the CPU every host (this computer and every stored connection) can run, without
    /// the features that block migration: a CPU to give a VM that moves between them.
    HostsCpuBaseline,
}

/// libvirt's choice of hypervisor on the host (its defaults when left out).
#[derive(clap::Args)]
pub struct SpecArgs {
    /// The emulator binary, e.g. /usr/bin/qemu-system-x86_64.
    #[arg(long)]
    emulator: Option<String>,
    /// The guest architecture, e.g. x86_64.
    #[arg(long)]
    arch: Option<String>,
    /// The machine type, e.g. q35.
    #[arg(long)]
    machine: Option<String>,
    /// The virtualization type: kvm or qemu.
    #[arg(long)]
    virttype: Option<String>,
}

impl SpecArgs {
    fn spec(self) -> HypervisorSpec {
        HypervisorSpec {
            emulator: self.emulator,
            arch: self.arch,
            machine: self.machine,
            virttype: self.virttype,
        }
    }
}

#[derive(Subcommand)]
pub enum ConnectionVerb {
    /// Store a libvirt connection: qemu:///system, qemu:///session, qemu+ssh://user@host/system.
    Add {
        uri: String,
        /// Connect when the app starts.
        #[arg(long)]
        autoconnect: bool,
        /// Store it without first checking that it connects.
        #[arg(long)]
        no_check: bool,
    },
    /// Forget a stored connection (its VMs stay where they are).
    Remove { uri: String },
    /// List this computer and the stored connections.
    List,
}

pub fn run(cmd: ConnectionCommand, target: &Target) -> anyhow::Result<ExitCode> {
    match cmd {
        ConnectionCommand::Connection(verb) => connection(verb),
        ConnectionCommand::HypervisorCpuCompare { file, spec } => match target {
            // This computer's hypervisor is its KVM: `cpu-compare` without --host.
            Target::Builtin => crate::cpu_cmds::run(CpuCommand::CpuCompare {
                host: None,
                cpu_file: file,
            }),
            Target::Libvirt(uri) => hypervisor_compare(uri, &file, spec.spec()),
        },
        ConnectionCommand::HypervisorCpuBaseline {
            files,
            features,
            migratable,
            spec,
        } => match target {
            Target::Builtin => crate::cpu_cmds::run(CpuCommand::CpuBaseline {
                features,
                migratable,
                files,
            }),
            Target::Libvirt(uri) => {
                let mut cpus = Vec::new();
                for file in &files {
                    for cpu in CpuDef::all_from_xml(&read(file)?)
                        .with_context(|| format!("{}", file.display()))?
                    {
                        cpus.push(cpu.to_xml());
                    }
                }
                let conn = LibvirtConnection::open(uri)?;
                print!(
                    "{}",
                    conn.baseline_cpu(&spec.spec(), &cpus, migratable, features)?
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        ConnectionCommand::HostsCpuCompare { name } => hosts_compare(target, &name),
        ConnectionCommand::HostsCpuBaseline => {
            let (cpu, unreachable) = cross_host::baseline_of_hosts(&all_hosts(target)?)?;
            for host in unreachable {
                if let HostAnswer::Unreachable(why) = host.answer {
                    eprintln!("warning: {} left out: {why}", host.host);
                }
            }
            print!("{cpu}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn connection(verb: ConnectionVerb) -> anyhow::Result<ExitCode> {
    let mut prefs = Prefs::load()?;
    match verb {
        ConnectionVerb::Add {
            uri,
            autoconnect,
            no_check,
        } => {
            if matches!(Target::choose(Some(&uri), None), Target::Builtin) {
                anyhow::bail!("{uri} is this computer, which is always listed; nothing to add");
            }
            vireo::prefs::check_connection_uri(&uri)?;
            if !no_check {
                LibvirtConnection::open(&uri)
                    .context("not stored (add --no-check to store it anyway)")?;
            }
            let new = prefs.add_connection(&uri, autoconnect)?;
            prefs.save()?;
            println!(
                "Connection '{uri}' {}",
                if new { "added" } else { "updated" }
            );
        }
        ConnectionVerb::Remove { uri } => {
            prefs.remove_connection(&uri)?;
            prefs.save()?;
            println!("Connection '{uri}' removed");
        }
        ConnectionVerb::List => {
            println!(" {:<40} Autoconnect", "URI");
            println!("{}", "-".repeat(53));
            println!(
                " {:<40} yes (This computer)",
                vireo::launch::connections::BUILTIN_URI
            );
            for c in &prefs.connections {
                let auto = if c.autoconnect { "yes" } else { "no" };
                println!(" {:<40} {auto}", c.uri);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn hypervisor_compare(uri: &str, file: &Path, spec: HypervisorSpec) -> anyhow::Result<ExitCode> {
    // Like virsh: the first CPU of the file, which may be a domain or capabilities document.
    let cpu =
        CpuDef::first_from_xml(&read(file)?).with_context(|| format!("{}", file.display()))?;
    let conn = LibvirtConnection::open(uri)?;
    match conn.compare_cpu(&spec, &cpu.to_xml())? {
        Comparison::Identical => println!("identical"),
        Comparison::Superset => println!("superset"),
        Comparison::Incompatible { features, message } => {
            println!("incompatible: {}", features.join(" "));
            eprintln!("{message}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// This computer, the stored connections, and the -c connection if it is not stored.
fn all_hosts(target: &Target) -> anyhow::Result<Vec<Target>> {
    let mut hosts = vec![Target::Builtin];
    for c in Prefs::load()?.connections {
        hosts.push(Target::Libvirt(c.uri));
    }
    if !hosts.contains(target) {
        hosts.push(target.clone());
    }
    Ok(hosts)
}

fn hosts_compare(target: &Target, name: &str) -> anyhow::Result<ExitCode> {
    let xml = match target {
        Target::Builtin => {
            let store = vireo::domain::DomainStore::open_default()?;
            let name = vireo::launch::lookup::resolve(&store, name)?;
            store.get(&name)?.domain.to_xml()
        }
        Target::Libvirt(uri) => LibvirtConnection::open(uri)?.dumpxml(name, true)?,
    };
    let verdicts = cross_host::compare_on_hosts(&xml, &all_hosts(target)?)?;
    let width = verdicts.iter().map(|v| v.host.len()).max().unwrap_or(4);
    let mut all_can = true;
    for v in verdicts {
        let answer = match v.answer {
            HostAnswer::CanRun(how) => format!("can run it ({how})"),
            HostAnswer::FollowsHost(mode) => {
                format!("can run it (CPU mode {mode} follows the host)")
            }
            HostAnswer::Cannot { missing, why } => {
                all_can = false;
                if missing.is_empty() {
                    format!("cannot run it: {why}")
                } else {
                    format!("cannot run it: lacks {}", missing.join(", "))
                }
            }
            HostAnswer::Unreachable(why) => {
                all_can = false;
                format!("not asked: {why}")
            }
        };
        println!("{:<width$}  {answer}", v.host);
    }
    Ok(if all_can {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
