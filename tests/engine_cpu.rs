//! The CPU pipeline end to end on this host's KVM: for every mode and policy, the table KVM
//! holds (KVM_GET_CPUID2) equals the resolution, and — where KVM enforces guest CPUID — the
//! probe guest sees exactly that table.

mod engine_support;
mod require_env;

use vireo::cpu::guest::{
    CheckMode, CpuCatalog, CpuMode, GuestCpuSpec, GuestCpuid, GuestTopology, HostCpuFacts,
    MatchMode, Policy, ResolveError, resolve,
};
use vireo::engine::{Vm, cpuid_for_vcpu};

use engine_support::{kvm_supported, parse_probe, probe_config, run_to_end};
use vireo::cpu::map::CpuMap;

/// Vireo's built-in CPU map: the catalog real domains are resolved with.
fn catalog() -> &'static CpuMap {
    static MAP: std::sync::OnceLock<CpuMap> = std::sync::OnceLock::new();
    MAP.get_or_init(|| CpuMap::builtin().expect("built-in CPU map"))
}

fn host_facts() -> HostCpuFacts {
    HostCpuFacts {
        kvm_supported: kvm_supported(),
        cpuid_enforced: vireo::engine::cpuid_probe::cpuid_is_enforced()
            .expect("CPUID enforcement test"),
    }
}

/// Boots the probe with `table` and `topology`. Asserts that KVM holds exactly the computed
/// table where KVM enforces CPUID (on PVM it substitutes the host's feature bits: printed), and
/// everywhere that the guest sees what KVM holds. Returns what the boot CPU's guest saw.
fn boot_and_compare(
    name: &str,
    table: GuestCpuid,
    topology: GuestTopology,
    enforced: bool,
) -> GuestCpuid {
    let config = probe_config(name, table, topology, 'p');
    let vm = Vm::start(config.clone()).expect("start");
    let (_, output) = run_to_end(&vm);
    let programmed = vm.programmed_cpuid();
    assert_eq!(programmed.len(), topology.vcpus() as usize);
    for (index, held) in programmed.iter().enumerate() {
        let expected = cpuid_for_vcpu(&config, index as u32);
        if enforced {
            assert_eq!(*held, expected, "{name}: vCPU {index} KVM table");
        } else if *held != expected && index == 0 {
            let changed: Vec<String> = held
                .entries()
                .iter()
                .filter(|e| expected.get(e.leaf, e.subleaf) != Some(*e))
                .map(|e| format!("{:#x}.{}", e.leaf, e.subleaf))
                .collect();
            eprintln!(
                "{name}: KVM table not compared with the resolution: this KVM does not enforce guest CPUID and rewrote leaves {}",
                changed.join(" ")
            );
        }
        // Topology leaves are honoured even there.
        for leaf in [0xb, 0x1f] {
            for sub in 0..4 {
                assert_eq!(
                    held.get(leaf, sub),
                    expected.get(leaf, sub),
                    "{name}: vCPU {index} leaf {leaf:#x}.{sub}"
                );
            }
        }
    }
    let seen = parse_probe(&output);
    for ((leaf, subleaf), regs) in &seen {
        let want = programmed[0]
            .get(*leaf, *subleaf)
            .map(|e| [e.eax, e.ebx, e.ecx, e.edx])
            .unwrap_or([0; 4]);
        assert_eq!(
            *regs, want,
            "{name}: guest-visible leaf {leaf:#x}.{subleaf} vs KVM's table"
        );
    }
    GuestCpuid::from_entries(seen.iter().map(|((leaf, subleaf), r)| {
        vireo::cpu::guest::GuestCpuidEntry {
            leaf: *leaf,
            subleaf: *subleaf,
            index_significant: true,
            eax: r[0],
            ebx: r[1],
            ecx: r[2],
            edx: r[3],
        }
    }))
}

fn feature_seen(seen: &GuestCpuid, name: &str) -> bool {
    let b = catalog().feature_bit(name).expect("known feature");
    seen.bit(b.leaf, b.subleaf, b.reg, b.bit)
}

#[test]
fn every_mode_programs_exactly_its_resolution() {
    require_kvm!();
    let host = host_facts();
    let modes = [
        ("default", GuestCpuSpec::mode(CpuMode::HypervisorDefault)),
        (
            "host-model",
            GuestCpuSpec {
                check: Some(CheckMode::None),
                ..GuestCpuSpec::mode(CpuMode::HostModel)
            },
        ),
        (
            "host-passthrough",
            GuestCpuSpec::mode(CpuMode::HostPassthrough),
        ),
        ("maximum", GuestCpuSpec::mode(CpuMode::Maximum)),
        (
            "custom-none",
            GuestCpuSpec {
                check: Some(CheckMode::None),
                ..GuestCpuSpec::custom("qemu64")
            },
        ),
        (
            "custom-minimum",
            GuestCpuSpec {
                check: Some(CheckMode::None),
                match_mode: MatchMode::Minimum,
                ..GuestCpuSpec::custom("qemu64")
            },
        ),
    ];
    for (name, spec) in modes {
        let resolved = resolve(catalog(), &spec, &host).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = resolve(catalog(), &spec, &host).unwrap();
        assert_eq!(resolved, again, "{name}: resolution is deterministic");
        let seen = boot_and_compare(
            name,
            resolved.table.clone(),
            GuestTopology::flat(1),
            host.cpuid_enforced,
        );
        if host.cpuid_enforced {
            for f in catalog().feature_names() {
                assert_eq!(
                    feature_seen(&seen, &f),
                    resolved.features.contains(&f),
                    "{name}: guest sees {f}"
                );
            }
        }
    }
}

#[test]
fn passthrough_is_kvm_supported_cpuid_as_is() {
    require_kvm!();
    let host = host_facts();
    let r = resolve(
        catalog(),
        &GuestCpuSpec::mode(CpuMode::HostPassthrough),
        &host,
    )
    .unwrap();
    assert_eq!(r.table, host.kvm_supported);
}

#[test]
fn every_policy_programs_exactly_its_resolution() {
    require_kvm!();
    let host = host_facts();
    let offered = catalog().features_in(&host.kvm_supported);
    let lacking: Vec<String> = catalog()
        .feature_names()
        .into_iter()
        .filter(|f| !offered.contains(f) && f != "hypervisor")
        .collect();
    let have = offered
        .iter()
        .find(|f| *f != "hypervisor")
        .cloned()
        .expect("KVM offers some feature");
    for policy in [
        Policy::Force,
        Policy::Require,
        Policy::Optional,
        Policy::Disable,
        Policy::Forbid,
    ] {
        for feature in [Some(&have), lacking.first()].into_iter().flatten() {
            let spec = GuestCpuSpec {
                features: vec![(feature.clone(), policy)],
                ..GuestCpuSpec::mode(CpuMode::HostPassthrough)
            };
            let name = format!("{policy:?}-{feature}");
            match resolve(catalog(), &spec, &host) {
                Ok(resolved) => {
                    let on = resolved.features.contains(feature);
                    let expect_on = match policy {
                        Policy::Force => true,
                        Policy::Require | Policy::Optional => offered.contains(feature),
                        Policy::Disable | Policy::Forbid => false,
                    };
                    assert_eq!(on, expect_on, "{name}");
                    boot_and_compare(
                        &name,
                        resolved.table,
                        GuestTopology::flat(1),
                        host.cpuid_enforced,
                    );
                }
                Err(ResolveError::Forbidden(f)) => {
                    assert_eq!(
                        (policy, &f),
                        (Policy::Forbid, &vec![feature.clone()]),
                        "{name}"
                    )
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}

#[test]
fn disable_hides_a_feature_from_the_guest() {
    require_kvm!();
    let host = host_facts();
    let offered = catalog().features_in(&host.kvm_supported);
    let victim = ["avx2", "sse2", "fpu"]
        .into_iter()
        .find(|f| offered.iter().any(|o| o == f))
        .unwrap();
    let spec = GuestCpuSpec {
        features: vec![(victim.into(), Policy::Disable)],
        ..GuestCpuSpec::mode(CpuMode::HostPassthrough)
    };
    let resolved = resolve(catalog(), &spec, &host).unwrap();
    assert!(!resolved.features.iter().any(|f| f == victim));
    let seen = boot_and_compare(
        "disable",
        resolved.table,
        GuestTopology::flat(1),
        host.cpuid_enforced,
    );
    if host.cpuid_enforced {
        assert!(!feature_seen(&seen, victim), "guest still sees {victim}");
    }
}

#[test]
fn custom_model_needing_a_feature_kvm_lacks_is_refused_by_name() {
    require_kvm!();
    let host = host_facts();
    let offered = catalog().features_in(&host.kvm_supported);
    let Some(lacking) = catalog()
        .feature_names()
        .into_iter()
        .find(|f| !offered.contains(f) && f != "hypervisor")
    else {
        // Not a missing environment (so no skip_or_fail): a KVM that lacks nothing the catalog
        // names is a property of the host, and no test environment can supply the lack.
        eprintln!("skipping: this KVM offers every feature the built-in catalog knows");
        return;
    };
    let spec = GuestCpuSpec {
        features: vec![(lacking.clone(), Policy::Require)],
        ..GuestCpuSpec::custom("qemu64")
    };
    let err = resolve(catalog(), &spec, &host).unwrap_err();
    assert!(err.to_string().contains(&lacking), "{err}");
}

#[test]
fn topology_two_sockets_two_cores_two_threads_is_in_leaf_0xb() {
    require_kvm!();
    let host = host_facts();
    let topo = GuestTopology {
        sockets: 2,
        dies: 1,
        cores: 2,
        threads: 2,
    };
    let resolved = resolve(
        catalog(),
        &GuestCpuSpec::mode(CpuMode::HostPassthrough),
        &host,
    )
    .unwrap();
    let config = probe_config("topo", resolved.table.clone(), topo, 'p');
    let seen = boot_and_compare("topology", resolved.table, topo, host.cpuid_enforced);
    let vm_tables: Vec<GuestCpuid> = (0..8).map(|i| cpuid_for_vcpu(&config, i)).collect();
    for (index, t) in vm_tables.iter().enumerate() {
        let smt = t.get(0xb, 0).unwrap();
        let core = t.get(0xb, 1).unwrap();
        assert_eq!((smt.eax, smt.ebx, smt.ecx >> 8), (1, 2, 1));
        assert_eq!((core.eax, core.ebx, core.ecx >> 8), (2, 4, 2));
        assert_eq!(smt.edx, index as u32, "x2APIC ID of vCPU {index}");
    }
    if host.cpuid_enforced {
        let smt = seen.get(0xb, 0).unwrap();
        assert_eq!((smt.eax, smt.ebx), (1, 2), "guest-visible SMT level");
        let core = seen.get(0xb, 1).unwrap();
        assert_eq!((core.eax, core.ebx), (2, 4), "guest-visible core level");
    }
}
