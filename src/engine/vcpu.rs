//! One vCPU thread: KVM_RUN in a loop, port I/O to the devices, and every other exit turned
//! into a decision for the supervisor. A guest fault never panics: it becomes a `Crash` report
//! and the thread parks until the supervisor stops it.

use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use kvm_bindings::{KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::engine::devices::{DeviceManager, GuestRequest};
use crate::engine::run_control::{Desired, RunControl};

/// What a vCPU thread reports to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuReport {
    /// A device saw the guest ask for a reset or poweroff.
    Guest(GuestRequest),
    /// The guest cannot continue.
    Crash(String),
}

/// Everything a vCPU thread needs besides its own fd.
pub struct VcpuContext {
    /// The vCPU's index (0 is the boot CPU).
    pub index: u32,
    /// Shared devices.
    pub devices: Arc<DeviceManager>,
    /// Run/pause/stop requests.
    pub control: Arc<RunControl>,
    /// Where reports go.
    pub reports: Sender<VcpuReport>,
    /// Set on the first exit of any vCPU: the guest has executed instructions.
    pub first_exit: Arc<OnceLock<Instant>>,
    /// Host CPUs to pin this thread to.
    pub pin: Option<Vec<usize>>,
}

/// The vCPU thread's body.
pub fn run(mut vcpu: VcpuFd, ctx: VcpuContext) {
    let _exited = ctx.control.exit_guard();
    if let Some(cpus) = &ctx.pin
        && let Err(e) = crate::engine::pinning::pin_current_thread(cpus)
    {
        tracing::warn!(vcpu = ctx.index, "vcpupin not applied: {e}");
    }
    let mut last = LastExit::default();
    loop {
        match ctx.control.desired() {
            Desired::Run => {}
            Desired::Pause => {
                if ctx.control.park(false) == Desired::Stop {
                    return;
                }
                continue;
            }
            Desired::Stop => return,
        }
        let outcome = handle_exit(&mut vcpu, &ctx, &mut last);
        if let Some(message) = outcome {
            let _ = ctx.reports.send(VcpuReport::Crash(message));
            ctx.control.park(true);
            return;
        }
    }
}

/// A fatal exit, described once the exit's borrow of the vCPU has ended.
enum Fatal {
    /// A message that needs the guest's RIP appended.
    AtRip(String),
    /// KVM_EXIT_INTERNAL_ERROR: the detail is in the kvm_run area.
    Internal,
    /// A complete message.
    Plain(String),
}

/// The last exit a vCPU handled before the current one, kept for crash reports: on AMD hosts
/// KVM reinitialises a vCPU on a triple fault, so its registers then tell nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum LastExit {
    /// No exit handled yet.
    #[default]
    None,
    /// A port read.
    IoIn(u16),
    /// A port write.
    IoOut(u16),
    /// A read of an unmapped guest-physical address.
    MmioRead(u64),
    /// A write to an unmapped guest-physical address.
    MmioWrite(u64),
    /// An interrupted KVM_RUN (pause, stop).
    Interrupted,
}

impl std::fmt::Display for LastExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none (the fault came before the guest's first exit)"),
            Self::IoIn(p) => write!(f, "port read from {p:#x}"),
            Self::IoOut(p) => write!(f, "port write to {p:#x}"),
            Self::MmioRead(a) => write!(f, "MMIO read at {a:#x}"),
            Self::MmioWrite(a) => write!(f, "MMIO write at {a:#x}"),
            Self::Interrupted => f.write_str("an interrupted run (pause or kick)"),
        }
    }
}

/// Runs the vCPU once and handles the exit; `Some(message)` when the guest cannot continue.
fn handle_exit(vcpu: &mut VcpuFd, ctx: &VcpuContext, last: &mut LastExit) -> Option<String> {
    let fatal = run_once(vcpu, ctx, last)?;
    Some(match fatal {
        Fatal::AtRip(what) => with_rip(vcpu, ctx.index, &what, *last),
        Fatal::Internal => {
            let detail = internal_error_detail(vcpu);
            with_rip(
                vcpu,
                ctx.index,
                &format!("KVM internal error ({detail})"),
                *last,
            )
        }
        Fatal::Plain(message) => message,
    })
}

fn run_once(vcpu: &mut VcpuFd, ctx: &VcpuContext, last: &mut LastExit) -> Option<Fatal> {
    let exit = vcpu.run();
    if !matches!(exit, Err(ref e) if e.errno() == libc::EINTR) {
        let _ = ctx.first_exit.set(Instant::now());
    }
    let previous = *last;
    *last = match &exit {
        Ok(VcpuExit::IoOut(port, _)) => LastExit::IoOut(*port),
        Ok(VcpuExit::IoIn(port, _)) => LastExit::IoIn(*port),
        Ok(VcpuExit::MmioRead(addr, _)) => LastExit::MmioRead(*addr),
        Ok(VcpuExit::MmioWrite(addr, _)) => LastExit::MmioWrite(*addr),
        Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => LastExit::Interrupted,
        // A fatal exit: the report names the exit before it.
        _ => previous,
    };
    let report = |r: VcpuReport| {
        let _ = ctx.reports.send(r);
    };
    match exit {
        Ok(VcpuExit::IoOut(port, data)) => {
            if let Some(request) = ctx.devices.pio_write(port, data) {
                report(VcpuReport::Guest(request));
            }
            None
        }
        Ok(VcpuExit::IoIn(port, data)) => {
            ctx.devices.pio_read(port, data);
            None
        }
        Ok(VcpuExit::MmioRead(addr, data)) => {
            if !ctx.devices.mmio_read(addr, data) {
                tracing::debug!(addr, "MMIO read of an unmapped address");
                data.fill(0xff);
            }
            None
        }
        Ok(VcpuExit::MmioWrite(addr, data)) => {
            if !ctx.devices.mmio_write(addr, data) {
                tracing::debug!(addr, "MMIO write to an unmapped address");
            }
            None
        }
        Ok(VcpuExit::Hlt) => {
            // Only without an in-kernel irqchip; ours has one, so a HLT exit means a guest that
            // halted for good (a plain poweroff without ACPI).
            report(VcpuReport::Guest(GuestRequest::PowerOff));
            ctx.control.park(true);
            None
        }
        Ok(VcpuExit::Shutdown) => Some(Fatal::AtRip(
            "triple fault (the guest hit an exception it could not handle)".into(),
        )),
        Ok(VcpuExit::SystemEvent(kind, _)) => match kind {
            KVM_SYSTEM_EVENT_SHUTDOWN => {
                report(VcpuReport::Guest(GuestRequest::PowerOff));
                None
            }
            KVM_SYSTEM_EVENT_RESET => {
                report(VcpuReport::Guest(GuestRequest::Reset));
                None
            }
            KVM_SYSTEM_EVENT_CRASH => Some(Fatal::Plain(format!(
                "vCPU {}: the guest reported a crash",
                ctx.index
            ))),
            other => Some(Fatal::Plain(format!(
                "vCPU {}: unknown system event {other}",
                ctx.index
            ))),
        },
        Ok(VcpuExit::InternalError) => Some(Fatal::Internal),
        Ok(VcpuExit::FailEntry(reason, cpu)) => Some(Fatal::Plain(format!(
            "vCPU {}: KVM could not enter the guest (hardware reason {reason:#x} on host CPU {cpu})",
            ctx.index
        ))),
        Ok(other) => Some(Fatal::AtRip(format!("unhandled exit {other:?}"))),
        Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => None,
        Err(e) => Some(Fatal::Plain(format!(
            "vCPU {}: KVM_RUN failed: {e}",
            ctx.index
        ))),
    }
}

fn internal_error_detail(vcpu: &mut VcpuFd) -> String {
    // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so the `internal` member of the
    // kvm_run union is the one KVM filled in.
    let internal = unsafe { vcpu.get_kvm_run().__bindgen_anon_1.internal };
    let name = match internal.suberror {
        kvm_bindings::KVM_INTERNAL_ERROR_EMULATION => "instruction emulation failed",
        kvm_bindings::KVM_INTERNAL_ERROR_SIMUL_EX => "exception while delivering an exception",
        kvm_bindings::KVM_INTERNAL_ERROR_DELIVERY_EV => "event delivery failed",
        kvm_bindings::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "unexpected exit reason",
        _ => "unknown suberror",
    };
    format!("suberror {}: {name}", internal.suberror)
}

/// The reset vector's RIP and CS base: where a vCPU stands after KVM reinitialised it.
const RESET_RIP: u64 = 0xfff0;
const RESET_CS_BASE: u64 = 0xffff_0000;

/// `what`, with where the guest was: its RIP when the registers still hold the faulting state,
/// else (KVM on AMD reinitialises a vCPU on a triple fault) the last exit handled before it.
fn with_rip(vcpu: &VcpuFd, index: u32, what: &str, last: LastExit) -> String {
    let regs = vcpu.get_regs().ok();
    let cs_base = vcpu.get_sregs().ok().map(|s| s.cs.base);
    describe_fault(index, what, regs.map(|r| r.rip), cs_base, last)
}

fn describe_fault(
    index: u32,
    what: &str,
    rip: Option<u64>,
    cs_base: Option<u64>,
    last: LastExit,
) -> String {
    match (rip, cs_base) {
        (Some(RESET_RIP), Some(RESET_CS_BASE)) => format!(
            "vCPU {index}: {what}; KVM reset the vCPU, so the faulting address is unknown \
             (the last exit before it: {last})"
        ),
        (Some(rip), _) => format!("vCPU {index}: {what} at rip={rip:#x} (last exit: {last})"),
        (None, _) => format!("vCPU {index}: {what} (last exit: {last})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_vcpu_is_never_reported_at_the_reset_vector() {
        let m = describe_fault(
            1,
            "triple fault",
            Some(RESET_RIP),
            Some(RESET_CS_BASE),
            LastExit::IoOut(0x3f8),
        );
        assert!(!m.contains("0xfff0"), "{m}");
        assert!(m.contains("faulting address is unknown"), "{m}");
        assert!(m.contains("port write to 0x3f8"), "{m}");
    }

    #[test]
    fn a_meaningful_rip_is_reported() {
        let m = describe_fault(
            0,
            "triple fault",
            Some(0xffff_ffff_8100_0000),
            Some(0),
            LastExit::None,
        );
        assert!(m.contains("rip=0xffffffff81000000"), "{m}");
    }
}
