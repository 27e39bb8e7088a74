//! The in-process KVM engine: builds and runs a VM from a plain `VmConfig`.
