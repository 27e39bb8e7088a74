//! `vireoctl`: Vireo's command-line interface, with virsh's verbs, over the same library as the GUI.
//!
//! Exit codes: 0 success, 1 a negative answer (e.g. `cpu-compare` found the CPU incompatible),
//! 2 an error (bad input, unknown model, …), printed on stderr as `error: …`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vireoctl", version, about = "Manage Vireo virtual machines from the command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print Vireo's version and the versions of the parts it was built with.
    Version,
}

fn main() -> ExitCode {
    vireo::logging::init();
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Version => {
            println!("vireoctl {}", vireo::VERSION);
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
