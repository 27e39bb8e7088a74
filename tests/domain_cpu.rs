//! `<cpu>` through the CPU model API: typed access, map checks at define time, KVM usability on
//! the host, and the "Nearest CPU model" choice. KVM's supported CPUID is stood in for by real
//! CPUID dumps from the oracle, so the results do not depend on this machine.

use vireo::cpu::{CpuDef, CpuMap, CpuMode, CpuidData, Policy, missing_features};
use vireo::domain::cpu::nearest_usable_model;
use vireo::domain::new_vm::{Boot, NewVm};
use vireo::domain::{Domain, DomainStore, HostFacts};
use vireo::prefs::{CpuModePref, Prefs};

mod require_env;
mod store_support;
use store_support::snapshot;

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oracle/cputestdata");

fn dump(name: &str) -> Option<CpuidData> {
    let path = format!("{ORACLE}/x86_64-cpuid-{name}.xml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(CpuidData::from_xml(&text).unwrap()),
        Err(_) => {
            require_env::skip_or_fail(format!(
                "{path} is absent (the libvirt oracle is not on this machine)"
            ));
            None
        }
    }
}

fn with_cpu(cpu: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>c</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>2</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  {cpu}\n  <clock offset='utc'/>\n</domain>\n"
    )
}

#[test]
fn cpu_def_reads_and_set_cpu_writes_in_place() {
    let xml = with_cpu(
        "<cpu mode='custom' match='exact' check='partial'>\n    <model fallback='forbid'>Haswell</model>\n    <topology sockets='1' dies='1' clusters='1' cores='2' threads='1'/>\n    <feature policy='disable' name='rtm'/>\n  </cpu>",
    );
    let mut d = Domain::parse(&xml).unwrap();
    let mut cpu = d.cpu_def().unwrap().unwrap();
    assert_eq!(cpu.model.as_deref(), Some("Haswell"));
    assert_eq!(cpu.topology.unwrap().cores, 2);
    assert_eq!(cpu.features[0].policy, Some(Policy::Disable));
    cpu.model = Some("Broadwell".into());
    d.set_cpu(&cpu).unwrap();
    let out = d.to_xml();
    let again = Domain::parse(&out).unwrap().cpu_def().unwrap().unwrap();
    assert_eq!(again, cpu);
    assert!(
        out.ends_with("  <clock offset='utc'/>\n</domain>\n"),
        "{out}"
    );
    assert!(
        out.contains("<model fallback='forbid'>Broadwell</model>"),
        "{out}"
    );
    assert!(Domain::parse(&with_cpu("")).unwrap().cpu_def().is_none());
}

fn assert_define_refused(xml: &str, expected: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    store
        .define(&with_cpu("").replace(">c<", ">other<"))
        .unwrap();
    let before = snapshot(tmp.path());
    let err = store.define(xml).expect_err("must be refused").to_string();
    for fragment in expected {
        assert!(err.contains(fragment), "{fragment:?} not in: {err}");
    }
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn unknown_model_is_refused_at_define() {
    assert_define_refused(
        &with_cpu("<cpu mode='custom'><model>Pentium-9000</model></cpu>"),
        &[
            "<cpu><model>",
            "unknown CPU model 'Pentium-9000'",
            "vireoctl cpu-models",
        ],
    );
}

#[test]
fn unknown_feature_is_refused_at_define() {
    assert_define_refused(
        &with_cpu(
            "<cpu mode='custom'><model>Haswell</model><feature policy='require' name='warp-drive'/></cpu>",
        ),
        &[
            "<cpu><feature name='warp-drive'>",
            "unknown CPU feature 'warp-drive'",
            "check its spelling",
        ],
    );
}

#[test]
fn bad_cpu_attribute_is_refused_at_define() {
    assert_define_refused(
        &with_cpu("<cpu mode='turbo'/>"),
        &["<cpu>:", "unknown CPU mode 'turbo'"],
    );
}

/// `validate --host`'s CPU problem: start's own resolution on this KVM, as a `<cpu>` problem.
fn cpu_host_problems(domain: &Domain, map: &CpuMap, kvm: &CpuidData) -> Vec<String> {
    let host = vireo::launch::host_cpu_facts(kvm, true);
    let verdict = vireo::launch::cpu_verdict_with(&domain.to_xml(), &host, map);
    vireo::launch::cpu_host_problem(&verdict)
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn model_the_kvm_cannot_give_is_reported_with_its_missing_features() {
    let Some(core2) = dump("Core2-E6850") else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let too_new = Domain::parse(&with_cpu(
        "<cpu mode='custom' match='exact'><model fallback='forbid'>Haswell</model></cpu>",
    ))
    .unwrap();
    let problems = cpu_host_problems(&too_new, &map, &core2);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("<cpu>: this host cannot start the VM with this CPU"),
        "{problems:?}"
    );
    assert!(
        problems[0].contains("the model Haswell needs") && problems[0].contains("avx2"),
        "{problems:?}"
    );

    let fits = Domain::parse(&with_cpu("<cpu mode='custom'><model>Conroe</model></cpu>")).unwrap();
    assert!(cpu_host_problems(&fits, &map, &core2).is_empty());
    let required = Domain::parse(&with_cpu(
        "<cpu mode='custom'><model>Conroe</model><feature policy='require' name='avx'/></cpu>",
    ))
    .unwrap();
    let problems = cpu_host_problems(&required, &map, &core2);
    assert!(problems[0].contains("needs: avx;"), "{problems:?}");
    let passthrough = Domain::parse(&with_cpu("<cpu mode='host-passthrough'/>")).unwrap();
    assert!(cpu_host_problems(&passthrough, &map, &core2).is_empty());
}

#[test]
fn nearest_usable_model_is_usable_and_the_richest_of_its_vendor() {
    let map = CpuMap::builtin().unwrap();
    for name in ["Core2-E6850", "EPYC-7601-32-Core", "Xeon-E3-1245-v5"] {
        let Some(cpuid) = dump(name) else {
            continue;
        };
        let nearest = nearest_usable_model(&map, &cpuid).expect("some model is usable");
        assert!(
            missing_features(&map, &nearest, &cpuid).unwrap().is_empty(),
            "{name}: {nearest}"
        );
        let chosen = map.model(&nearest).unwrap();
        for model in map.models().filter(|m| m.vendor() == chosen.vendor()) {
            if missing_features(&map, model.name(), &cpuid)
                .unwrap()
                .is_empty()
            {
                assert!(
                    model.features().len() <= chosen.features().len(),
                    "{name}: {} beats {nearest}",
                    model.name()
                );
            }
        }
        eprintln!("{name}: nearest usable model {nearest}");
    }
}

#[test]
fn new_vm_with_nearest_model_writes_a_usable_model_on_the_given_kvm() {
    let Some(cpuid) = dump("Core2-E6850") else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let host = HostFacts {
        mem_total_kib: Some(4 << 20),
        hardware_kvm: true,
        nearest_usable_model: nearest_usable_model(&map, &cpuid),
        kvm_cpuid: Some(cpuid.clone()),
        ..HostFacts::default()
    };
    let vm = NewVm {
        name: "n".into(),
        memory_mib: 128,
        vcpus: 1,
        boot: Boot::Disk("/img.raw".into()),
    };
    let prefs = Prefs {
        new_vm_cpu_mode: CpuModePref::HostModelOnly,
        ..Prefs::default()
    };
    let d = vm.build(&prefs, &host).unwrap();
    let cpu: CpuDef = d.cpu_def().unwrap().unwrap();
    assert_eq!(cpu.mode, CpuMode::Custom);
    assert!(cpu.features.is_empty());
    assert!(cpu_host_problems(&d, &map, &cpuid).is_empty());
}
