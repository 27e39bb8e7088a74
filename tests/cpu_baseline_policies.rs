//! Baseline of guest CPUs whose features carry policies, by libvirt's rules (src/cpu/cpu_x86.c,
//! `virCPUx86Baseline` as its test suite runs it on guest CPUs):
//!
//! - each input counts as model + `force`/`require` − `disable`/`forbid` (`optional` changes
//!   nothing) — `x86ModelFromCPU(cpu, map, -1)`;
//! - the inputs are intersected and decoded as a guest CPU: features beyond the model are
//!   `require`, model features missing from the intersection are `disable` (so one input
//!   disabling or forbidding a model feature is enough), features the model's definition
//!   dropped (`removed`) are appended as `disable` unless required — `x86DataToCPU` with
//!   `virCPUx86DisableRemovedFeatures`;
//! - a feature outside the model that not every input requires is simply absent.

mod cpu_common;
mod require_env;

use vireo::cpu::{BaselineFlags, CpuDef, CpuMap, baseline};

fn guest(model: &str, vendor: &str, features: &[(&str, &str)]) -> String {
    let mut xml =
        format!("<cpu mode='custom' match='exact'><model>{model}</model><vendor>{vendor}</vendor>");
    for (policy, name) in features {
        xml.push_str(&format!("<feature policy='{policy}' name='{name}'/>"));
    }
    xml + "</cpu>\n"
}

fn baseline_of(inputs: &[String], flags: BaselineFlags) -> String {
    let map = CpuMap::builtin().unwrap();
    let cpus = CpuDef::all_from_xml(&inputs.concat()).unwrap();
    baseline(&map, &cpus, flags).unwrap().to_xml()
}

fn expected(model: &str, vendor: &str, features: &[(&str, &str)]) -> String {
    let mut xml = format!(
        "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>{model}</model>\n  \
         <vendor>{vendor}</vendor>\n"
    );
    for (policy, name) in features {
        xml.push_str(&format!("  <feature policy='{policy}' name='{name}'/>\n"));
    }
    xml + "</cpu>\n"
}

#[test]
fn a_model_feature_disabled_by_every_input_stays_disabled() {
    let cpu = guest("Haswell", "Intel", &[("disable", "avx2")]);
    assert_eq!(
        baseline_of(&[cpu.clone(), cpu], BaselineFlags::default()),
        expected("Haswell", "Intel", &[("disable", "avx2")])
    );
}

#[test]
fn a_model_feature_disabled_by_some_inputs_is_disabled() {
    let inputs = [
        guest("Haswell", "Intel", &[("disable", "avx2")]),
        guest("Haswell", "Intel", &[]),
    ];
    assert_eq!(
        baseline_of(&inputs, BaselineFlags::default()),
        expected("Haswell", "Intel", &[("disable", "avx2")])
    );
}

#[test]
fn forbid_counts_as_disable() {
    let inputs = [
        guest("Haswell", "Intel", &[("forbid", "avx2"), ("forbid", "vmx")]),
        guest("Haswell", "Intel", &[("require", "vmx")]),
    ];
    // avx2 is in the model: disabled; vmx is not: forbidding it only keeps it out.
    assert_eq!(
        baseline_of(&inputs, BaselineFlags::default()),
        expected("Haswell", "Intel", &[("disable", "avx2")])
    );
}

#[test]
fn require_mixed_with_disable_outside_the_model_is_left_out() {
    let mixed = [
        guest("Haswell", "Intel", &[("require", "vmx")]),
        guest("Haswell", "Intel", &[("disable", "vmx")]),
    ];
    assert_eq!(
        baseline_of(&mixed, BaselineFlags::default()),
        expected("Haswell", "Intel", &[])
    );
    let all_disable = [
        guest("Haswell", "Intel", &[("disable", "vmx")]),
        guest("Haswell", "Intel", &[("disable", "vmx")]),
    ];
    assert_eq!(
        baseline_of(&all_disable, BaselineFlags::default()),
        expected("Haswell", "Intel", &[])
    );
    let all_require = [
        guest("Haswell", "Intel", &[("require", "vmx")]),
        guest("Haswell", "Intel", &[("require", "vmx")]),
    ];
    assert_eq!(
        baseline_of(&all_require, BaselineFlags::default()),
        expected("Haswell", "Intel", &[("require", "vmx")])
    );
}

#[test]
fn optional_changes_nothing() {
    let cpu = guest(
        "Haswell",
        "Intel",
        &[("optional", "avx2"), ("optional", "vmx")],
    );
    assert_eq!(
        baseline_of(&[cpu.clone(), cpu], BaselineFlags::default()),
        expected("Haswell", "Intel", &[])
    );
}

#[test]
fn a_removed_feature_every_input_disables_stays_disabled() {
    // EPYC's definition dropped `monitor`: libvirt lists it as disabled in guest CPUs.
    let cpu = guest("EPYC", "AMD", &[("disable", "monitor")]);
    assert_eq!(
        baseline_of(&[cpu.clone(), cpu], BaselineFlags::default()),
        expected("EPYC", "AMD", &[("disable", "monitor")])
    );
    // Skylake-Client dropped `mpx`: it is disabled whatever the inputs say of other features.
    let cpu = guest("Skylake-Client", "Intel", &[("disable", "avx2")]);
    assert_eq!(
        baseline_of(&[cpu.clone(), cpu], BaselineFlags::default()),
        expected(
            "Skylake-Client",
            "Intel",
            &[("disable", "avx2"), ("disable", "mpx")]
        )
    );
    // Required by every input it is an ordinary extra feature.
    let cpu = guest("EPYC", "AMD", &[("require", "monitor")]);
    assert_eq!(
        baseline_of(&[cpu.clone(), cpu], BaselineFlags::default()),
        expected("EPYC", "AMD", &[("require", "monitor")])
    );
}

#[test]
fn expanded_baseline_keeps_the_disabled_features() {
    let cpu = guest("Haswell", "Intel", &[("disable", "avx2")]);
    let out = baseline_of(
        &[cpu.clone(), cpu],
        BaselineFlags {
            expand_features: true,
            migratable: false,
        },
    );
    assert!(
        out.contains("<feature policy='disable' name='avx2'/>"),
        "{out}"
    );
    assert!(
        out.contains("<feature policy='require' name='avx'/>"),
        "{out}"
    );
}

/// libvirt's EPYC+Rome and Ryzen+Rome answers disable `monitor` (disabled in every input)
/// after the map-ordered list; the oracle holds the EPYC and Ryzen inputs, so their baseline
/// must do the same.
#[test]
fn oracle_amd_cpus_that_all_disable_monitor_keep_it_disabled() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let inputs: Vec<String> = ["EPYC-7601-32-Core", "Ryzen-7-1800X-Eight-Core"]
        .iter()
        .map(|name| {
            let path = cpu_common::cputestdata(&dir, &format!("cpuid-{name}-json"));
            std::fs::read_to_string(path).unwrap()
        })
        .collect();
    let out = baseline_of(&inputs, BaselineFlags::default());
    assert_eq!(
        out,
        expected(
            "EPYC",
            "AMD",
            &[
                ("require", "x2apic"),
                ("require", "tsc-deadline"),
                ("require", "hypervisor"),
                ("require", "tsc_adjust"),
                ("require", "cmp_legacy"),
                ("require", "npt"),
                ("require", "nrip-save"),
                ("disable", "sha-ni"),
                ("disable", "svm"),
                ("disable", "monitor"),
            ]
        )
    );
}
