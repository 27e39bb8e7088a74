//! `vireoctl`: Vireo's command-line interface, with virsh's verbs, over the same library as the GUI.
//!
//! Exit codes: 0 success, 1 a negative answer (e.g. `cpu-compare` found the CPU incompatible),
//! 2 an error (bad input, unknown model, …), printed on stderr as `error: …`.
//!
//! Each group of verbs lives in its own module with its own `clap::Subcommand` enum, flattened
//! into [`Command`] here, so this file only wires groups together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cpu_cmds;
mod disk_cmds;
mod domain_cmds;
mod net_cmds;
mod run_cmds;

#[derive(Parser)]
#[command(
    name = "vireoctl",
    version,
    about = "Manage Vireo virtual machines and inspect this host's CPU from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print Vireo's version.
    Version,
    #[command(flatten)]
    Run(run_cmds::RunCommand),
    // Groups of verbs are flattened in here, one line each:
    #[command(flatten)]
    Domain(domain_cmds::DomainCommand),
    #[command(flatten)]
    Disk(disk_cmds::DiskCommand),
    #[command(flatten)]
    Net(net_cmds::NetCommand),
    #[command(flatten)]
    Cpu(cpu_cmds::CpuCommand),
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Version => {
            println!("vireoctl {}", vireo::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Command::Domain(cmd) => domain_cmds::run(cmd),
        Command::Disk(cmd) => disk_cmds::run(cmd),
        Command::Net(cmd) => net_cmds::run(cmd),

        Command::Cpu(cmd) => cpu_cmds::run(cmd),
        Command::Run(cmd) => run_cmds::run(cmd),
    }
}

fn main() -> ExitCode {
    vireo::logging::init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
