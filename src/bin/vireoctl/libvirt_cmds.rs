//! Verbs run against a libvirt connection (`vireoctl -c URI VERB` or `VIREO_DEFAULT_URI`):
//! the domain verbs libvirt has, through `vireo::launch::connections`. Verbs that only make
//! sense for the built-in engine say so instead of doing something else.

use std::process::ExitCode;

use anyhow::{Context, bail};
use vireo::launch::connections::{
    BUILTIN_URI, ConsoleSession, HypervisorSpec, LibvirtConnection, Lifecycle,
};

use crate::Command;
use crate::cpu_cmds::CpuCommand;
use crate::domain_cmds::{DomainCommand, Row, print_rows};
use crate::run_cmds::RunCommand;
use crate::run_cmds::persistent::PersistentCommand;
use crate::state_cmds::StateCommand;

/// Runs `command` on the libvirt connection `uri`; `verb` names it for messages.
pub fn run(uri: &str, verb: &str, command: Command) -> anyhow::Result<ExitCode> {
    let open = || LibvirtConnection::open(uri);
    match command {
        Command::Domain(cmd) => domain(open()?, verb, cmd),
        Command::Run(RunCommand::Persistent(cmd)) => persistent(open()?, verb, cmd),
        Command::State(cmd) => state(open()?, verb, cmd),
        Command::Cpu(CpuCommand::Capabilities) => {
            print!("{}", open()?.capabilities()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cpu(CpuCommand::Domcapabilities) => {
            print!("{}", open()?.domcapabilities(&HypervisorSpec::default())?);
            Ok(ExitCode::SUCCESS)
        }
        _ => not_applicable(uri, verb),
    }
}

/// The answer for a verb a libvirt connection has no counterpart for.
pub fn not_applicable(uri: &str, verb: &str) -> anyhow::Result<ExitCode> {
    bail!(
        "'{verb}' does not apply to the libvirt connection {uri}: it works on this computer's \
         built-in engine only; run it without -c (or with -c {BUILTIN_URI}), or use \
         `virsh -c {uri} {verb}`"
    )
}

fn unsupported_option(uri: &str, verb: &str, option: &str) -> anyhow::Result<ExitCode> {
    bail!("'{verb} {option}' is not supported on libvirt connections ({uri}); leave {option} out")
}

fn domain(conn: LibvirtConnection, verb: &str, cmd: DomainCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DomainCommand::Define { file } => {
            let xml = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = conn.define(&xml)?;
            println!("Domain '{name}' defined from {}", file.display());
        }
        DomainCommand::Undefine {
            name,
            remove_all_storage,
        } => {
            if remove_all_storage {
                return unsupported_option(conn.uri(), verb, "--remove-all-storage");
            }
            let name = conn.domain_name(&name)?;
            conn.undefine(&name)?;
            println!("Domain '{name}' has been undefined");
        }
        DomainCommand::List(args) => {
            let rows: Vec<Row> = conn
                .list_domains()?
                .into_iter()
                .map(|d| Row {
                    name: d.name,
                    id: d.id,
                    state: d.state.to_string(),
                    uuid: Some(d.uuid),
                    transient: !d.persistent,
                    autostart: d.autostart,
                })
                .collect();
            print_rows(&args, &rows);
        }
        DomainCommand::Dumpxml { name, inactive } => print!("{}", conn.dumpxml(&name, inactive)?),
        _ => return not_applicable(conn.uri(), verb),
    }
    Ok(ExitCode::SUCCESS)
}

fn persistent(
    conn: LibvirtConnection,
    verb: &str,
    cmd: PersistentCommand,
) -> anyhow::Result<ExitCode> {
    let uri = conn.uri().to_owned();
    let (name, action) = match cmd {
        PersistentCommand::Start {
            name,
            autostart,
            console,
            paused,
        } => {
            // libvirtd starts its autostart domains itself, when it starts.
            let Some(name) = name.filter(|_| !autostart) else {
                return unsupported_option(&uri, verb, "--autostart");
            };
            let name = conn.domain_name(&name)?;
            conn.start(&name, paused)?;
            println!("Domain '{name}' started");
            if console {
                let session = ConsoleSession::open(&uri, &name, false)?;
                return crate::run_cmds::persistent::attach_terminal(&name, session.into_stream());
            }
            return Ok(ExitCode::SUCCESS);
        }
        PersistentCommand::Shutdown { mode: Some(_), .. }
        | PersistentCommand::Reboot { mode: Some(_), .. } => {
            return unsupported_option(&uri, verb, "--mode");
        }
        PersistentCommand::Shutdown { name, mode: None } => (name, Lifecycle::Shutdown),
        PersistentCommand::Reboot { name, mode: None } => (name, Lifecycle::Reboot),
        PersistentCommand::Destroy { name, graceful: _ } => (name, Lifecycle::Destroy),
        PersistentCommand::Suspend { name } => (name, Lifecycle::Suspend),
        PersistentCommand::Resume { name } => (name, Lifecycle::Resume),
        PersistentCommand::Console { name, force } => {
            let session = ConsoleSession::open(&uri, &name, force)?;
            return crate::run_cmds::persistent::attach_terminal(&name, session.into_stream());
        }
        PersistentCommand::Dominfo { name } => {
            print!("{}", conn.dominfo(&name)?.to_dominfo());
            return Ok(ExitCode::SUCCESS);
        }
        _ => return not_applicable(&uri, verb),
    };
    let name = conn.domain_name(&name)?;
    conn.control(&name, action)?;
    println!("Domain '{name}' {}", action.done());
    Ok(ExitCode::SUCCESS)
}

fn state(conn: LibvirtConnection, verb: &str, cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Domstate { name, reason } => {
            let (state, why) = conn.domstate(&name)?;
            if reason {
                println!("{state} ({why})");
            } else {
                println!("{state}");
            }
        }
        StateCommand::Domid { name } => match conn.dominfo(&name)?.row.id {
            Some(id) => println!("{id}"),
            None => println!("-"),
        },
        StateCommand::Domuuid { name } => println!("{}", conn.dominfo(&name)?.row.uuid),
        _ => return not_applicable(conn.uri(), verb),
    }
    Ok(ExitCode::SUCCESS)
}
