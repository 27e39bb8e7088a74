//! `vireoctl -c SRC migrate NAME DEST_URI`: live migration between two libvirt hosts, as
//! `virsh migrate --p2p`, after a pre-flight (the destination reachable and another host, the
//! name free there, the VM's CPU given there) that is printed before anything moves.
//! Ctrl-C cancels a running migration (`virDomainAbortJob`), as in virsh.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use clap::Subcommand;
use vireo::launch::connections::migrate::{
    MigrateError, MigrateOptions, Migration, MigrationEvent, preflight,
};
use vireo::launch::connections::{LibvirtConnection, Target};

#[derive(Subcommand)]
pub enum MigrateCommand {
    /// Migrate a running VM from the -c libvirt host to another one (peer-to-peer), after a
    /// pre-flight that checks the destination can give its CPU; exit 1 when the pre-flight
    /// refuses.
    Migrate {
        /// The VM's name, id or UUID on the -c connection.
        name: String,
        /// The destination's libvirt URI, as the source host reaches it
        /// (e.g. qemu+ssh://root@far/system).
        dest_uri: String,
        /// Keep the VM running while its memory is copied.
        #[arg(long)]
        live: bool,
        /// Define the VM on the destination too.
        #[arg(long)]
        persistent: bool,
        /// Remove the VM's definition from the source afterwards.
        #[arg(long)]
        undefinesource: bool,
        /// Only run the pre-flight and print its verdict.
        #[arg(long)]
        dry_run: bool,
        /// Where QEMU sends the memory (tcp://host[:port]); by default the destination's
        /// host name.
        #[arg(long, value_name = "URI")]
        migrateuri: Option<String>,
        /// A bandwidth limit in MiB/s.
        #[arg(long, value_name = "MIB")]
        bandwidth: Option<u64>,
    },
}

/// Set by the SIGINT handler; the progress callback cancels the job when it sees it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn run(cmd: MigrateCommand, target: &Target) -> anyhow::Result<ExitCode> {
    let MigrateCommand::Migrate {
        name,
        dest_uri,
        live,
        persistent,
        undefinesource,
        dry_run,
        migrateuri,
        bandwidth,
    } = cmd;
    let Target::Libvirt(uri) = target else {
        bail!(
            "'migrate' moves a VM between libvirt hosts; name the source with -c URI \
             (this computer's built-in engine does not migrate)"
        );
    };
    let source = LibvirtConnection::open(uri)?;
    if dry_run {
        let verdict = preflight(&source, &name, &dest_uri)?;
        print!("{verdict}");
        return Ok(if verdict.can_migrate() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let options = MigrateOptions {
        live,
        persistent,
        undefine_source: undefinesource,
        migrate_uri: migrateuri,
        bandwidth_mib: bandwidth,
    };
    let migration = Migration::new(&source, &name)?;
    let canceller = migration.canceller();
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let mut last = None;
    let mut cancelled = false;
    let on_event = |event: MigrationEvent| {
        // A Ctrl-C during the pre-flight keeps the job from starting; during the job, aborts it.
        if INTERRUPTED.load(Ordering::SeqCst) && !cancelled {
            cancelled = true;
            if let Err(e) = canceller.cancel() {
                eprintln!("warning: {e}");
            }
        }
        match event {
            MigrationEvent::Checked(verdict) => print!("{verdict}"),
            MigrationEvent::Progress(p) => {
                if p.total == 0 {
                    // The job has begun but libvirt counts no bytes yet.
                    return;
                }
                let line = p.describe();
                if last.as_ref() != Some(&line) {
                    println!("Migration: {line}");
                    last = Some(line);
                }
            }
        }
    };
    match migration.run(&source, &dest_uri, &options, on_event) {
        Ok(()) => {
            println!("Domain '{}' migrated to {dest_uri}", migration.name());
            Ok(ExitCode::SUCCESS)
        }
        Err(MigrateError::Refused(_)) => {
            eprintln!("error: nothing was moved");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
