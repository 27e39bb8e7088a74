//! Compare and baseline cases of libvirt's test data, through the library.

mod cpu_common;
mod require_env;

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

#[test]
fn every_baseline_case_matches_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let cases = cpu_common::cases(&dir);
    let mut failures = Vec::new();
    for case in cases["baseline_cases"].as_array().unwrap() {
        let (inputs, expected) = cpu_common::baseline_files(case);
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

/// Builds a CpuDef from the JSON form of cpu-cases.json (type, mode, match, model, …).
fn cpu_from_json(v: &serde_json::Value) -> CpuDef {
    use vireo::cpu::{CpuFeatureRef, CpuKind, CpuMatch, CpuMode, Fallback, Policy};
    let text = |k: &str| v[k].as_str().map(str::to_string);
    let mut cpu = CpuDef::new(CpuKind::parse(v["type"].as_str().unwrap()).unwrap());
    cpu.mode = text("mode")
        .map(|m| CpuMode::parse(&m).unwrap())
        .unwrap_or(CpuMode::Custom);
    cpu.match_ = text("match").map(|m| CpuMatch::parse(&m).unwrap());
    cpu.fallback = text("fallback").map(|m| Fallback::parse(&m).unwrap());
    cpu.model = text("model");
    cpu.vendor = text("vendor");
    cpu.arch = text("arch");
    cpu.features = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| CpuFeatureRef {
            name: f["name"].as_str().unwrap().to_string(),
            policy: f["policy"].as_str().map(|p| Policy::parse(p).unwrap()),
        })
        .collect();
    cpu
}

/// A failure message when `cpu` does not print as the case's `expected` CPU.
fn differs_from_expected(case: &serde_json::Value, cpu: &CpuDef) -> Option<String> {
    let mut want = cpu_from_json(&case["expected"]);
    // The JSON leaves defaults out; compare what libvirt would print.
    want.match_ = want.match_.or(cpu.match_);
    (cpu.to_xml() != want.to_xml()).then(|| {
        format!(
            "{}:\n--- expected\n{}--- got\n{}",
            case["name"],
            want.to_xml(),
            cpu.to_xml()
        )
    })
}

#[test]
fn every_update_case_matches_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let cases = cpu_common::cases(&dir);
    let mut failures = Vec::new();
    for case in cases["update_cases"].as_array().unwrap() {
        let host = vireo::cpu::copy_migratable(&map, &cpu_from_json(&case["host"]));
        let mut cpu = cpu_from_json(&case["cpu"]);
        vireo::cpu::update(&map, &mut cpu, &host).unwrap();
        failures.extend(differs_from_expected(case, &cpu));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// libvirt's guest CPU preparation: compare, update against the host, then (when the case
/// gives a hypervisor's model list) translate to one of those models.
#[test]
fn every_guest_cpu_case_matches_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let map = CpuMap::builtin().unwrap();
    let cases = cpu_common::cases(&dir);
    let mut failures = Vec::new();
    for case in cases["guestcpu_cases"].as_array().unwrap() {
        let host = cpu_from_json(&case["host"]);
        let mut cpu = cpu_from_json(&case["cpu"]);
        let result = compare(&map, &host, &cpu)
            .and_then(|_| vireo::cpu::update(&map, &mut cpu, &host))
            .and_then(|()| match case["hv_models"].as_array() {
                Some(list) => {
                    let names: Vec<&str> = list.iter().map(|m| m.as_str().unwrap()).collect();
                    vireo::cpu::translate(&map, &mut cpu, &names)
                }
                None => Ok(()),
            });
        match (case["expect_error"].as_bool().unwrap(), result) {
            (true, Err(_)) => {}
            (true, Ok(())) => failures.push(format!(
                "{}: expected an error, got\n{}",
                case["name"],
                cpu.to_xml()
            )),
            (false, Err(e)) => failures.push(format!("{}: unexpected error {e}", case["name"])),
            (false, Ok(())) => failures.extend(differs_from_expected(case, &cpu)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
