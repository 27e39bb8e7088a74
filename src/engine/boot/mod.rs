//! Getting a guest to its first instruction: memory tables, kernel loading, boot registers,
//! and the ACPI tables that describe the machine.

pub mod acpi;
pub mod cpu_state;
pub mod kernel;
