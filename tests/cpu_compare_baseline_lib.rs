//! Compare and baseline cases of libvirt's test data, through the library.

mod cpu_common;

use vireo::cpu::{BaselineFlags, CompareOutcome, CpuDef, CpuMap, baseline, compare};

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(cpu_common::cputestdata(dir, name)).unwrap()
}

#[test]
fn every_compare_case_matches_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let cases = cpu_common::cases(&dir);
    let mut failures = Vec::new();
    for case in cases["compare_cases"].as_array().unwrap() {
        let host = CpuDef::from_xml(&read(&dir, case["host_name"].as_str().unwrap())).unwrap();
        let cpu = CpuDef::from_xml(&read(&dir, case["cpu_name"].as_str().unwrap())).unwrap();
        let got = match compare(&map, &host, &cpu) {
            Ok(CompareOutcome::Identical) => "IDENTICAL",
            Ok(CompareOutcome::Superset) => "SUPERSET",
            Ok(CompareOutcome::Incompatible { .. }) => "INCOMPATIBLE",
            Err(_) => "ERROR",
        };
        if got != case["expected"].as_str().unwrap() {
            failures.push(format!(
                "{}: expected {}, got {got}",
                case["name"], case["expected"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The files a baseline case reads and the file holding libvirt's answer.
pub fn baseline_files(case: &serde_json::Value) -> (Vec<String>, Option<String>) {
    let name = case["name"].as_str().unwrap();
    let flags: Vec<&str> = case["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    if case["kind"] == "cpuid" {
        let inputs = case["input_cpuid_cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("cpuid-{}-json", c.as_str().unwrap()))
            .collect();
        (inputs, Some(format!("cpuid-baseline-{name}")))
    } else {
        let suffix = if flags.contains(&"expand_features") {
            "expanded"
        } else if flags.contains(&"migratable") {
            "migratable"
        } else {
            "result"
        };
        let expected =
            (!case["expect_error"].as_bool().unwrap()).then(|| format!("baseline-{name}-{suffix}"));
        (vec![format!("baseline-{name}")], expected)
    }
}

#[test]
fn every_baseline_case_matches_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let cases = cpu_common::cases(&dir);
    let mut failures = Vec::new();
    for case in cases["baseline_cases"].as_array().unwrap() {
        let (inputs, expected) = baseline_files(case);
        let flags_json = case["flags"].as_array().unwrap();
        let flags = BaselineFlags {
            expand_features: flags_json.iter().any(|f| f == "expand_features"),
            migratable: flags_json.iter().any(|f| f == "migratable"),
        };
        let cpus: Vec<CpuDef> = inputs
            .iter()
            .flat_map(|name| CpuDef::all_from_xml(&read(&dir, name)).unwrap())
            .collect();
        let got = baseline(&map, &cpus, flags);
        match (expected, got) {
            (None, Err(_)) => {}
            (None, Ok(cpu)) => failures.push(format!(
                "{}: expected an error, got\n{}",
                case["name"],
                cpu.to_xml()
            )),
            (Some(_), Err(e)) => failures.push(format!("{}: unexpected error {e}", case["name"])),
            (Some(file), Ok(cpu)) => {
                let want = read(&dir, &file);
                if cpu.to_xml() != want {
                    failures.push(format!(
                        "{} ({file}):\n--- expected\n{want}--- got\n{}",
                        case["name"],
                        cpu.to_xml()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_has_feature_case_matches_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let cases = cpu_common::cases(&dir);
    for case in cases["hasfeature_cases"].as_array().unwrap() {
        let cpu = CpuDef::from_xml(&read(&dir, case["host"].as_str().unwrap())).unwrap();
        let got = match vireo::cpu::has_feature(&map, &cpu, case["feature"].as_str().unwrap()) {
            Ok(true) => "YES",
            Ok(false) => "NO",
            Err(_) => "FAIL",
        };
        assert_eq!(got, case["expected"].as_str().unwrap(), "{case}");
    }
}
