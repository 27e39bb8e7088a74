//! Live migration of a VM between two libvirt hosts: libvirt's peer-to-peer migration
//! (`virDomainMigrateToURI3` with `VIR_MIGRATE_PEER2PEER`: the source daemon talks to the
//! destination itself, so the app needs no connection that both hosts can see), after the
//! [`preflight`] has found nothing that would break; progress from `virDomainGetJobStats`
//! polled on a thread beside the blocking call; cancel through `virDomainAbortJob`.

mod preflight;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use virt::domain::{Domain, MigrateParameters};
use virt::error::ErrorNumber;
use virt::sys;

pub use preflight::{Blocker, Preflight, preflight};

use super::{ConnectionError, LibvirtConnection};

/// How often a running migration's progress is read.
const POLL: Duration = Duration::from_millis(200);

/// How often a cancelled migration's job is aborted again until it ends. libvirt's abort
/// reaches only a job whose data transfer has begun: one asked for while the destination is
/// still preparing is lost, and the transfer of a small VM that begins then can finish within
/// one [`POLL`].
const ABORT_RETRY: Duration = Duration::from_millis(20);

/// How to migrate (virsh migrate's options of the same names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Keep the guest running while its memory is copied (else it is paused meanwhile).
    pub live: bool,
    /// Define the VM on the destination, not only run it there.
    pub persistent: bool,
    /// Remove the VM's definition from the source once it runs on the destination.
    pub undefine_source: bool,
    /// Where the source QEMU sends the memory (`tcp://host[:port]`); `None` lets the
    /// destination offer its own host name, which the source must be able to resolve.
    pub migrate_uri: Option<String>,
    /// A bandwidth limit in MiB/s.
    pub bandwidth_mib: Option<u64>,
}

impl MigrateOptions {
    /// libvirt's flags: always peer-to-peer, plus what was asked for.
    fn flags(&self) -> u32 {
        let mut flags = sys::VIR_MIGRATE_PEER2PEER;
        if self.live {
            flags |= sys::VIR_MIGRATE_LIVE;
        }
        if self.persistent {
            flags |= sys::VIR_MIGRATE_PERSIST_DEST;
        }
        if self.undefine_source {
            flags |= sys::VIR_MIGRATE_UNDEFINE_SOURCE;
        }
        flags
    }

    fn parameters(&self) -> MigrateParameters {
        MigrateParameters {
            uri: self.migrate_uri.clone(),
            bandwidth: self.bandwidth_mib,
            ..MigrateParameters::default()
        }
    }
}

/// How far a migration is: the bytes libvirt counts for the job (memory and, with storage
/// migration, disks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub processed: u64,
    pub remaining: u64,
    pub total: u64,
    pub elapsed_ms: u64,
}

impl Progress {
    /// The share done, 0.0 to 1.0 (0 while libvirt knows no total yet).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.total.saturating_sub(self.remaining) as f64 / self.total as f64).clamp(0.0, 1.0)
    }

    /// "42 % (27.1 of 64.5 MiB)", for the CLI.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        format!(
            "{:.0} % ({:.1} of {:.1} MiB)",
            self.fraction() * 100.0,
            mib(self.total.saturating_sub(self.remaining)),
            mib(self.total)
        )
    }
}

/// What [`Migration::run`] reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrationEvent {
    /// The pre-flight's verdict, before anything moves.
    Checked(Preflight),
    /// How far the running job is.
    Progress(Progress),
}

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The pre-flight found something that would break; nothing was moved.
    #[error("cannot migrate '{}' to {}: {}", .0.name, .0.destination, .0.blocker_lines().join("; "))]
    Refused(Box<Preflight>),
    /// [`Canceller::cancel`] stopped it; the VM runs on at the source.
    #[error("migration of '{name}' to {destination} cancelled; it runs on at {from}")]
    Cancelled {
        name: String,
        /// The source URI (not called `source`, which thiserror reserves for the cause).
        from: String,
        destination: String,
    },
    /// libvirt failed it (its message, with the fix where known).
    #[error(transparent)]
    Failed(#[from] ConnectionError),
}

/// One VM on its way from a libvirt host to another; [`Migration::canceller`] hands out the
/// means to stop it from another thread.
pub struct Migration {
    source: String,
    name: String,
    domain: Arc<Domain>,
    /// Set by [`Canceller::cancel`]: also stops a migration whose job has not begun yet
    /// (during the pre-flight), which libvirt's abort cannot reach.
    cancelled: Arc<AtomicBool>,
}

/// Cancels the migration it came from ([`Migration::canceller`]); cheap to clone and send.
#[derive(Clone)]
pub struct Canceller {
    source: String,
    name: String,
    domain: Arc<Domain>,
    cancelled: Arc<AtomicBool>,
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceller")
            .field("source", &self.source)
            .field("name", &self.name)
            .finish()
    }
}

impl Canceller {
    /// Stops the migration: asks libvirt to abort the domain's job (`virDomainAbortJob`),
    /// and, should the job not have begun yet, keeps it from beginning. The migration then
    /// ends with [`MigrateError::Cancelled`]; the VM keeps running on the source.
    pub fn cancel(&self) -> Result<(), ConnectionError> {
        self.cancelled.store(true, Ordering::SeqCst);
        match abort_job(&self.domain) {
            // No job yet: the flag stops it before it starts, or the poller once it runs.
            Err(e) if e.code() == ErrorNumber::OperationInvalid => Ok(()),
            Err(e) => Err(ConnectionError::from_virt(
                &self.source,
                format!("cancelling the migration of domain '{}'", self.name),
                &e,
            )),
            Ok(()) => Ok(()),
        }
    }
}

/// `virDomainAbortJob`, which the `virt` crate does not wrap.
fn abort_job(domain: &Domain) -> Result<(), virt::error::Error> {
    // SAFETY: `domain` holds a valid virDomainPtr (and with it a reference to its connection)
    // for as long as it lives; virDomainAbortJob only reads it.
    if unsafe { sys::virDomainAbortJob(domain.as_ptr()) } == -1 {
        return Err(virt::error::Error::last_error());
    }
    Ok(())
}

impl Migration {
    /// Gets ready to migrate `name` (a name, UUID or id) away from `source`.
    pub fn new(source: &LibvirtConnection, name: &str) -> Result<Migration, ConnectionError> {
        let domain = source.domain(name)?;
        let name = domain
            .get_name()
            .map_err(|e| ConnectionError::from_virt(source.uri(), "reading a domain's name", &e))?;
        Ok(Migration {
            source: source.uri().to_owned(),
            name,
            domain: Arc::new(domain),
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn canceller(&self) -> Canceller {
        Canceller {
            source: self.source.clone(),
            name: self.name.clone(),
            domain: Arc::clone(&self.domain),
            cancelled: Arc::clone(&self.cancelled),
        }
    }

    /// Runs the pre-flight on `source` (the connection this migration came from) and, when
    /// nothing stops it, migrates to `dest_uri`. `on_event` hears the verdict first, then the
    /// job's progress, polled on a thread while the blocking migration call runs.
    pub fn run(
        &self,
        source: &LibvirtConnection,
        dest_uri: &str,
        options: &MigrateOptions,
        mut on_event: impl FnMut(MigrationEvent) + Send,
    ) -> Result<(), MigrateError> {
        let verdict = preflight(source, &self.name, dest_uri)?;
        let can = verdict.can_migrate();
        on_event(MigrationEvent::Checked(verdict.clone()));
        if !can {
            return Err(MigrateError::Refused(Box::new(verdict)));
        }
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(self.cancelled_error(dest_uri));
        }
        tracing::info!(name = %self.name, source = %self.source, dest_uri, ?options, "migrating");
        self.migrate(dest_uri, options, move |p| {
            on_event(MigrationEvent::Progress(p))
        })
    }

    /// The migration itself, without the pre-flight.
    fn migrate(
        &self,
        dest_uri: &str,
        options: &MigrateOptions,
        mut on_progress: impl FnMut(Progress) + Send,
    ) -> Result<(), MigrateError> {
        let (done, finished) = mpsc::channel::<()>();
        let (domain, cancelled) = (&self.domain, &self.cancelled);
        let result = std::thread::scope(|scope| {
            scope.spawn(move || {
                let wait = || match cancelled.load(Ordering::SeqCst) {
                    true => ABORT_RETRY,
                    false => POLL,
                };
                let mut last_report = std::time::Instant::now();
                while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(wait()) {
                    if let Some(progress) = job_progress(domain) {
                        // A cancel that came before the job began, or before its transfer
                        // did, reaches it now.
                        if cancelled.load(Ordering::SeqCst) {
                            let _ = abort_job(domain);
                        }
                        if last_report.elapsed() >= POLL {
                            last_report = std::time::Instant::now();
                            on_progress(progress);
                        }
                    }
                }
            });
            let result =
                domain.migrate_to_uri3(Some(dest_uri), options.parameters(), options.flags());
            drop(done);
            result
        });
        result.map_err(|e| {
            if e.code() == ErrorNumber::OperationAborted {
                self.cancelled_error(dest_uri)
            } else {
                MigrateError::Failed(ConnectionError::from_virt(
                    &self.source,
                    format!("migrating domain '{}' to {dest_uri}", self.name),
                    &e,
                ))
            }
        })
    }
}

impl Migration {
    fn cancelled_error(&self, dest_uri: &str) -> MigrateError {
        MigrateError::Cancelled {
            name: self.name.clone(),
            from: self.source.clone(),
            destination: dest_uri.to_owned(),
        }
    }
}

/// The running job's progress; `None` while no job runs (before it starts, after it ends).
/// `virDomainGetJobInfo`, not the crate's `get_job_stats`: virt 0.4 builds a `Vec` from the
/// parameter array `virDomainGetJobStats` returns, which is NULL when no job runs, and that
/// aborts the whole process (seen in CI between a migration's end and the poller's last look).
fn job_progress(domain: &Domain) -> Option<Progress> {
    let stats = domain.get_job_info().ok()?;
    if stats.r#type == sys::VIR_DOMAIN_JOB_NONE as i32 {
        return None;
    }
    Some(Progress {
        processed: stats.data_processed.unwrap_or(0),
        remaining: stats.data_remaining.unwrap_or(0),
        total: stats.data_total.unwrap_or(0),
        elapsed_ms: stats.time_elapsed.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_libvirts_flags_and_parameters() {
        let plain = MigrateOptions::default();
        assert_eq!(plain.flags(), sys::VIR_MIGRATE_PEER2PEER);
        let all = MigrateOptions {
            live: true,
            persistent: true,
            undefine_source: true,
            migrate_uri: Some("tcp://10.0.0.2".into()),
            bandwidth_mib: Some(100),
        };
        assert_eq!(
            all.flags(),
            sys::VIR_MIGRATE_PEER2PEER
                | sys::VIR_MIGRATE_LIVE
                | sys::VIR_MIGRATE_PERSIST_DEST
                | sys::VIR_MIGRATE_UNDEFINE_SOURCE
        );
        let params = all.parameters();
        assert_eq!(params.uri.as_deref(), Some("tcp://10.0.0.2"));
        assert_eq!(params.bandwidth, Some(100));
    }

    #[test]
    fn progress_counts_what_is_done() {
        let p = Progress {
            processed: 10,
            remaining: 48 << 20,
            total: 64 << 20,
            elapsed_ms: 5,
        };
        assert_eq!(p.fraction(), 0.25);
        assert_eq!(p.describe(), "25 % (16.0 of 64.0 MiB)");
        assert_eq!(Progress::default().fraction(), 0.0);
    }

    #[test]
    fn the_test_driver_refuses_to_migrate_with_the_reason() {
        let conn = LibvirtConnection::open("test:///default").unwrap();
        let migration = Migration::new(&conn, "test").unwrap();
        let err = migration
            .migrate("test:///default", &MigrateOptions::default(), |_| {})
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("test:///default: migrating domain 'test' to test:///default"),
            "{text}"
        );
        assert!(matches!(err, MigrateError::Failed(_)), "{err:?}");
    }
}
