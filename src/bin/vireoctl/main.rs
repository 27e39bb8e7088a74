//! `vireoctl`: Vireo's command-line interface, with virsh's verbs, over the same library as the GUI.
//!
//! Exit codes: 0 success, 1 a negative answer (e.g. `cpu-compare` found the CPU incompatible),
//! 2 an error (bad input, unknown model, …), printed on stderr as `error: …`.
//!
//! Each group of verbs lives in its own module with its own `clap::Subcommand` enum, flattened
//! into [`Command`] here, so this file only wires groups together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod connection_cmds;
mod cpu_cmds;
mod disk_cmds;
mod domain_cmds;
mod libvirt_cmds;
mod migrate_cmds;
mod net_cmds;
mod run_cmds;
mod screen_cmds;
mod state_cmds;

#[derive(Parser)]
#[command(
    name = "vireoctl",
    version,
    about = "Manage Vireo virtual machines and inspect this host's CPU from the command line"
)]
struct Cli {
    /// The connection: a libvirt URI (qemu:///system, qemu:///session,
    /// qemu+ssh://user@host/system); default $VIREO_DEFAULT_URI, else this computer's built-in
    /// engine (vireo:///session).
    #[arg(short = 'c', long = "connect", global = true, value_name = "URI")]
    connect: Option<String>,
    #[command(subcommand)]
    command: Command,
    /// The verb as typed, for messages about it.
    #[arg(skip)]
    verb: String,
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
    State(state_cmds::StateCommand),
    #[command(flatten)]
    Disk(disk_cmds::DiskCommand),
    #[command(flatten)]
    Net(net_cmds::NetCommand),
    #[command(flatten)]
    Cpu(cpu_cmds::CpuCommand),
    #[command(flatten)]
    Screen(screen_cmds::ScreenCommand),
    #[command(flatten)]
    Connection(connection_cmds::ConnectionCommand),
    #[command(flatten)]
    Migrate(migrate_cmds::MigrateCommand),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use vireo::launch::connections::Target;
    let target = Target::from_env(cli.connect.as_deref());
    let command = cli.command;
    match (&target, command) {
        // Verbs that need no connection, or choose their hosts themselves.
        (_, Command::Connection(cmd)) => connection_cmds::run(cmd, &target),
        (_, Command::Migrate(cmd)) => migrate_cmds::run(cmd, &target),
        (_, Command::Version) => run_builtin(Command::Version),
        (_, Command::Domain(domain_cmds::DomainCommand::Prefs(cmd))) => {
            run_builtin(Command::Domain(domain_cmds::DomainCommand::Prefs(cmd)))
        }
        (Target::Libvirt(uri), command) => libvirt_cmds::run(uri, &cli.verb, command),
        (Target::Builtin, command) => run_builtin(command),
    }
}

/// A verb on this computer's built-in engine.
fn run_builtin(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Version => {
            println!("vireoctl {}", vireo::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Command::Domain(cmd) => domain_cmds::run(cmd),
        Command::State(cmd) => state_cmds::run(cmd),
        Command::Disk(cmd) => disk_cmds::run(cmd),
        Command::Net(cmd) => net_cmds::run(cmd),

        Command::Cpu(cmd) => cpu_cmds::run(cmd),
        Command::Screen(cmd) => screen_cmds::run(cmd),
        Command::Run(cmd) => run_cmds::run(cmd),
        Command::Connection(cmd) => {
            connection_cmds::run(cmd, &vireo::launch::connections::Target::Builtin)
        }
        Command::Migrate(cmd) => {
            migrate_cmds::run(cmd, &vireo::launch::connections::Target::Builtin)
        }
    }
}

/// Levenshtein distance between two verbs.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The verbs close enough to `typed` to be a typo of it: at most two edits away (one for
/// short words), closest first. clap's own suggestions go by likeness and offered `reset`
/// for `reboot`, a verb that does something else; a suggestion must not change the meaning.
fn suggestions(typed: &str) -> Vec<String> {
    use clap::CommandFactory;
    let limit = if typed.chars().count() <= 4 { 1 } else { 2 };
    let mut close: Vec<(usize, String)> = Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string())
                .chain(c.get_visible_aliases().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .map(|verb| (edit_distance(typed, &verb), verb))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    close.sort();
    close.into_iter().map(|(_, verb)| verb).collect()
}

/// Parses the command line; an unknown verb is answered with [`suggestions`] instead of
/// clap's.
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.verb = matches.subcommand_name().unwrap_or_default().to_owned();
        Ok(cli)
    });
    let err = match parsed {
        Ok(cli) => return cli,
        Err(err) => err,
    };
    if err.kind() != clap::error::ErrorKind::InvalidSubcommand {
        err.exit();
    }
    let typed = match err.get(clap::error::ContextKind::InvalidSubcommand) {
        Some(clap::error::ContextValue::String(typed)) => typed.clone(),
        _ => err.exit(),
    };
    eprintln!("error: unknown command '{typed}'");
    match suggestions(&typed).as_slice() {
        [] => eprintln!("\n  `vireoctl --help` lists the commands"),
        [one] => eprintln!("\n  tip: did you mean '{one}'?"),
        many => eprintln!("\n  tip: did you mean one of: {}?", many.join(", ")),
    }
    std::process::exit(2);
}

fn main() -> ExitCode {
    vireo::logging::init();
    let cli = parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
