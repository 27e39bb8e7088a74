//! How the VM's supervisor tells vCPU threads to run, pause or stop, and learns they obeyed.
//!
//! A vCPU blocked inside KVM_RUN (a halted guest, say) only notices a request when a signal
//! interrupts the ioctl. A signal sent just before the thread enters KVM_RUN would be lost, so
//! the supervisor keeps kicking until every vCPU has acknowledged by parking.

use std::os::unix::thread::JoinHandleExt;
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

/// What the supervisor wants the vCPUs to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// Run the guest.
    Run,
    /// Stay out of KVM_RUN until told otherwise.
    Pause,
    /// Leave the thread.
    Stop,
}

struct Shared {
    desired: Desired,
    /// vCPU threads currently parked (paused, stopped, or halted after a fatal exit).
    parked: usize,
    /// vCPU threads that have left their loop (announced by [`VcpuExitGuard`]), so a stop
    /// returns as soon as the last one leaves instead of at the next kick interval.
    exited: usize,
}

/// Held by a vCPU thread for its whole body: dropping it (on every return, and on a panic)
/// tells the supervisor the thread is done.
pub struct VcpuExitGuard<'a>(&'a RunControl);

impl Drop for VcpuExitGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().exited += 1;
        self.0.changed.notify_all();
    }
}

/// Shared between the supervisor and every vCPU thread of one machine.
pub struct RunControl {
    shared: Mutex<Shared>,
    changed: Condvar,
}

/// The signal that kicks a vCPU thread out of KVM_RUN.
fn kick_signal() -> i32 {
    SIGRTMIN()
}

extern "C" fn ignore_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the no-op handler once per process, so the kick signal interrupts KVM_RUN (EINTR)
/// instead of killing the process.
pub fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = register_signal_handler(kick_signal(), ignore_kick) {
            tracing::error!("cannot install the vCPU kick handler: {e}");
        }
    });
}

impl RunControl {
    /// Starts in `Run`.
    pub fn new() -> Self {
        Self {
            shared: Mutex::new(Shared {
                desired: Desired::Run,
                parked: 0,
                exited: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called at the top of a vCPU thread's body; see [`VcpuExitGuard`].
    pub fn exit_guard(&self) -> VcpuExitGuard<'_> {
        VcpuExitGuard(self)
    }

    /// The current request (read by vCPUs before each KVM_RUN).
    pub fn desired(&self) -> Desired {
        self.lock().desired
    }

    /// Called by a vCPU thread that must not run: parks until the request is `Run` again
    /// (returns `Run`) or `Stop` (returns `Stop`). With `until_stop`, only `Stop` releases it
    /// (a vCPU whose guest state is unusable after a fatal exit).
    pub fn park(&self, until_stop: bool) -> Desired {
        let mut shared = self.lock();
        shared.parked += 1;
        self.changed.notify_all();
        loop {
            match shared.desired {
                Desired::Stop => break,
                Desired::Run if !until_stop => break,
                _ => shared = self.changed.wait(shared).unwrap_or_else(|p| p.into_inner()),
            }
        }
        shared.parked -= 1;
        self.changed.notify_all();
        shared.desired
    }

    /// Sets the request, and for `Pause`/`Stop` kicks `threads` until `threads.len()` vCPUs are
    /// parked (or, for `Stop`, have exited).
    pub fn request(&self, desired: Desired, threads: &[JoinHandle<()>]) {
        let mut shared = self.lock();
        shared.desired = desired;
        self.changed.notify_all();
        if desired == Desired::Run {
            return;
        }
        loop {
            let live: Vec<&JoinHandle<()>> = threads.iter().filter(|t| !t.is_finished()).collect();
            if shared.parked >= live.len() && desired == Desired::Pause {
                return;
            }
            if live.is_empty() || (desired == Desired::Stop && shared.exited >= threads.len()) {
                return;
            }
            for thread in &live {
                // SAFETY: the pthread_t comes from a JoinHandle we hold, so the thread has not
                // been joined/detached and the id is valid; the signal only interrupts KVM_RUN.
                unsafe {
                    libc::pthread_kill(thread.as_pthread_t(), kick_signal());
                }
            }
            shared = self
                .changed
                .wait_timeout(shared, Duration::from_millis(2))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
