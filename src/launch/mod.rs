//! Launching domains: where a stored definition, this host's facts and the engine meet.
//!
//! The engine runs a plain [`crate::engine::VmConfig`] and reads no XML; `domain` knows documents
//! and nothing of KVM. This layer is the one bridge between them ([`prepare`]), the one answer to
//! "can this CPU run here" ([`cpu_verdict`]) and "which disks does it get" ([`disks`]) and
//! network cards ([`nics`], with their passt processes in [`passt`]), the
//! per-VM runner process and its client ([`runner`]), the connections to libvirt hosts
//! ([`connections`]), and the GTK-free logic the GUI and
//! `vireoctl` share: the list of machines with their states ([`machines`]) and CPU editing
//! ([`cpu_edit`]).

pub mod autostart;
pub mod boot_check;
pub mod connections;
pub mod cpu_edit;
pub mod cpu_verdict;
pub mod cpuid_enforcement;
pub mod cpuset;
pub mod disk_edit;
pub mod disk_usage;
pub mod disks;
pub mod display;
mod domain_facts;
pub mod keys;
pub mod lookup;
pub mod machines;
pub mod new_vm_form;
pub mod nic_edit;
pub mod nics;
pub mod passt;
pub mod prepare;
pub mod problems;
pub mod runner;
pub mod size_edit;
pub mod viewer;
pub mod vnc;

pub use cpu_verdict::{
    cpu_host_problem, cpu_verdict, cpu_verdict_with, host_cpu_facts, missing_features, refusal,
};
pub use cpuid_enforcement::{cpuid_enforcement, cpuid_is_enforced_cached};
pub use cpuset::parse_cpuset;
pub use prepare::{
    ConfigError, HostFacts, PreparedDomain, from_domain_xml, map_for, prepare, prepare_domain,
    prepare_domain_with,
};
