//! Host validation and CPUID-enforcement detection, cross-checked with the probe guest.

mod engine_support;
mod require_env;

use vireo::cpu::guest::GuestTopology;
use vireo::engine::Vm;
use vireo::host::kvm_caps;
use vireo::host::validate::{self, Status};

use engine_support::{kvm_supported, parse_probe, probe_config, run_to_end};

#[test]
fn host_validate_reports_every_check_with_a_fix_for_each_problem() {
    let checks = validate::run_checks(vireo::engine::cpuid_probe::cpuid_is_enforced);
    for check in &checks {
        eprintln!("{check}");
        if check.status != Status::Pass {
            assert!(check.fix.is_some(), "{} has no fix", check.name);
        }
    }
    assert!(checks.iter().any(|c| c.name == "hardware virtualization"));
    assert!(checks.iter().any(|c| c.name.starts_with("cgroup")));
}

#[test]
fn enforcement_detection_agrees_with_what_the_probe_guest_sees() {
    require_kvm!();
    let enforced =
        vireo::engine::cpuid_probe::cpuid_is_enforced().expect("run the CPUID test guest");
    // Program a vendor word no CPU reports and a leaf 1 with only the hypervisor bit, and see
    // whether the probe guest gets exactly that.
    let mut table = kvm_supported();
    table.get_mut(0, 0).expect("leaf 0").ebx = u32::from_le_bytes(*b"Test");
    table.get_mut(1, 0).expect("leaf 1").ecx = 1 << 31;
    let vm = Vm::start(probe_config(
        "probe-enforce",
        table,
        GuestTopology::flat(1),
        'p',
    ))
    .expect("start");
    let (_, output) = run_to_end(&vm);
    let seen = parse_probe(&output);
    let (vendor, leaf1_ecx) = (seen[&(0, 0)][1], seen[&(1, 0)][2]);
    let guest_got_table = vendor == u32::from_le_bytes(*b"Test") && leaf1_ecx == 1 << 31;
    assert_eq!(
        guest_got_table, enforced,
        "probe saw vendor word {vendor:#x}, leaf 1 ECX {leaf1_ecx:#x}"
    );
    if kvm_caps::is_pvm() {
        eprintln!("PVM host: CPUID enforced = {enforced}");
    }
}
