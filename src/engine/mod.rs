//! The in-process KVM engine: builds and runs a VM from a plain [`VmConfig`].
//!
//! The engine never reads XML and knows nothing of domains: [`crate::launch`] is the one bridge
//! from a domain document to a `VmConfig`, and the one place "this host cannot run that" errors
//! are raised.
//! A running VM is driven through its [`Vm`] handle; every call returns at once.

pub mod block;
pub(crate) mod boot;
pub mod config;
pub mod console;
pub mod cpuid_probe;
mod devices;
pub mod display;
mod error;
pub(crate) mod layout;
pub(crate) mod machine;
pub mod pinning;
mod run_control;
mod vcpu;
pub mod vm;

pub use config::{BootSource, LifecycleAction, VcpuPin, VmConfig};
pub use console::{Console, ConsoleReader};
pub use error::EngineError;
pub use machine::cpuid_for_vcpu;
pub use vm::{StartTimings, StopReason, Vm, VmController, VmState};
