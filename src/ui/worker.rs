//! Blocking work (files, sockets, KVM) runs here, on plain threads, never on the UI thread.
//! A panic in the work becomes an error message the window shows, not a dead window.

use std::time::Duration;

use gettextrs::gettext;

/// Runs `work` on a plain thread and awaits its result without blocking the UI. `what` names
/// the work for the message shown should it panic: "internal error in {what}: {panic}".
pub async fn run_blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    run(what, None, work).await
}

/// Like [`run_blocking`], but gives up waiting after `limit` (the thread is left to finish on
/// its own and its result is dropped), so a hung peer cannot keep the window waiting forever.
pub async fn run_blocking_timeout<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    run(what, Some(limit), work).await
}

async fn run<T: Send + 'static>(
    what: &str,
    limit: Option<Duration>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    // The worker sends its result, a timer (when there is a limit) sends `None`: first wins.
    let (tx, mut rx) = relm4::tokio::sync::mpsc::unbounded_channel();
    let worker_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("vireo-worker: {what}"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|payload| panic_text(payload.as_ref()));
            let _ = worker_tx.send(Some(result));
        });
    if let Err(err) = spawned {
        return Err(internal_error(what, &err.to_string()));
    }
    if let Some(limit) = limit {
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            let _ = tx.send(None);
        });
    } else {
        drop(tx);
    }
    match rx.recv().await {
        Some(Some(Ok(value))) => Ok(value),
        Some(Some(Err(panic))) => {
            tracing::error!(%what, %panic, "a worker panicked");
            Err(internal_error(what, &panic))
        }
        Some(None) => {
            let seconds = limit.unwrap_or_default().as_secs();
            tracing::warn!(%what, seconds, "a worker did not answer in time");
            Err(gettext("{what} did not answer within {seconds} seconds")
                .replace("{what}", what)
                .replace("{seconds}", &seconds.to_string()))
        }
        None => Err(internal_error(
            what,
            "the worker thread ended without an answer",
        )),
    }
}

/// The message shown for a worker that panicked.
pub fn internal_error(what: &str, panic: &str) -> String {
    gettext("internal error in {what}: {panic}")
        .replace("{what}", what)
        .replace("{panic}", panic)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// This host's facts (KVM capabilities, /proc), detected once per process.
static HOST_FACTS: std::sync::OnceLock<crate::domain::validate::HostFacts> =
    std::sync::OnceLock::new();

/// Starts detecting this host's facts on a worker thread (the main window calls it at start),
/// so the wizard and Preferences find them ready instead of doing KVM ioctls and reading /proc
/// on the UI thread.
pub fn detect_host_facts_early() {
    let spawned = std::thread::Builder::new()
        .name("vireo-worker: host facts".to_string())
        .spawn(|| {
            let _ = host_facts();
            let _ = cpuid_enforced();
        });
    if let Err(err) = spawned {
        tracing::warn!(%err, "cannot start the host-facts worker");
    }
}

/// Whether this host's KVM makes guests see the CPUID table they are given (`Some(false)` on
/// paravirtualized KVM such as PVM, where the guest sees the host CPU whatever model is
/// chosen); `None` without KVM. Measured once per process (a probe guest, cached per boot).
pub fn cpuid_enforced() -> Option<bool> {
    static ENFORCED: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    *ENFORCED.get_or_init(|| match crate::launch::cpuid_enforcement() {
        Ok(enforced) => Some(enforced),
        Err(err) => {
            tracing::info!(%err, "cannot tell whether KVM enforces guest CPUID");
            None
        }
    })
}

/// This host's facts as detected by [`detect_host_facts_early`]'s worker; waits for it only
/// when a window asks before it has finished (a few milliseconds after start).
pub fn host_facts() -> crate::domain::validate::HostFacts {
    HOST_FACTS
        .get_or_init(crate::domain::validate::HostFacts::detect)
        .clone()
}
