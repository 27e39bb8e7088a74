//! Errors from building or controlling a VM. Each names the thing that failed and, where there is
//! one, the fix.

use std::path::PathBuf;

/// Why the engine could not build, start or control a VM.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// /dev/kvm could not be opened, or a question to the host's KVM failed.
    #[error(transparent)]
    Host(#[from] crate::host::kvm::HostError),
    /// A KVM ioctl failed.
    #[error("KVM {op} failed: {cause}")]
    Kvm {
        /// The operation, e.g. "KVM_CREATE_VCPU".
        op: &'static str,
        /// The errno from KVM.
        cause: kvm_ioctls::Error,
    },
    /// Guest memory could not be reserved.
    #[error(
        "cannot allocate {bytes} bytes of guest memory: {reason}; lower the VM's memory or free host memory"
    )]
    Memory {
        /// Requested size.
        bytes: u64,
        /// Why.
        reason: String,
    },
    /// The kernel image is missing, unreadable or not a kernel.
    #[error("kernel {path}: {reason}")]
    Kernel {
        /// The kernel path.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The initrd is missing, unreadable or does not fit.
    #[error("initrd {path}: {reason}")]
    Initrd {
        /// The initrd path.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A disk image cannot be used (missing, wrong format, locked by another VM, …).
    #[error(transparent)]
    Block(#[from] crate::engine::block::BlockError),
    /// The kernel command line is unusable.
    #[error("kernel command line: {0}")]
    Cmdline(String),
    /// The configuration asks for something the engine cannot build.
    #[error("invalid VM configuration: {0}")]
    Config(String),
    /// Writing boot structures into guest memory failed (a layout bug or a too-small VM).
    #[error("setting up guest boot state: {0}")]
    Boot(String),
    /// An engine thread could not be started.
    #[error("cannot start the {what} thread: {cause}")]
    Thread {
        /// Which thread.
        what: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The VM is not in a state that allows the request.
    #[error("the VM is {state}; cannot {action}")]
    WrongState {
        /// The current state.
        state: String,
        /// The refused request.
        action: &'static str,
    },
}

impl EngineError {
    /// Wraps a failed KVM ioctl with the name of the operation.
    pub(crate) fn kvm(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |cause| Self::Kvm { op, cause }
    }
}
