//! The CPU verbs of the built `vireoctl`, fed libvirt's original test files, must print
//! libvirt's answers byte for byte (decode, baseline) or the right verdict and exit code
//! (compare).

mod cpu_common;
mod require_env;

use cpu_common::{case_flags, cases, cputestdata, oracle_dir, stderr, stdout, vireoctl};
use vireo::cpu::{CpuMap, CpuidData, decode_guest};

fn path(dir: &std::path::Path, name: &str) -> String {
    cputestdata(dir, name).display().to_string()
}

#[test]
fn cpu_decode_prints_libvirts_host_and_guest_answers() {
    let Some(dir) = oracle_dir() else { return };
    let map = CpuMap::builtin().unwrap();
    let mut failures = Vec::new();
    for case in cases(&dir)["cpuid_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dump = path(&dir, &format!("cpuid-{name}"));
        let host = vireoctl(&["cpu-decode", &dump]);
        let want_host = std::fs::read_to_string(path(&dir, &format!("cpuid-{name}-host"))).unwrap();
        if !host.status.success() || stdout(&host) != want_host {
            failures.push(format!("{name} host: {}{}", stdout(&host), stderr(&host)));
        }
        let guest = vireoctl(&["cpu-decode", "--guest", &dump]);
        // libvirt's guest answer for some dumps is restricted to the models a QEMU build
        // offered (guest_hv_models); the CLI decodes against the whole map, so those are
        // checked against the library here and against libvirt in cpu_decode_lib.rs.
        let want_guest = if case["guest_hv_models"].is_null() {
            std::fs::read_to_string(path(&dir, &format!("cpuid-{name}-guest"))).unwrap()
        } else {
            let data = CpuidData::from_xml(&std::fs::read_to_string(&dump).unwrap()).unwrap();
            decode_guest(&map, &data).unwrap().to_xml()
        };
        if !guest.status.success() || stdout(&guest) != want_guest {
            failures.push(format!(
                "{name} guest: {}{}",
                stdout(&guest),
                stderr(&guest)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cpu_compare_gives_libvirts_verdicts_and_exit_codes() {
    let Some(dir) = oracle_dir() else { return };
    let mut failures = Vec::new();
    for case in cases(&dir)["compare_cases"].as_array().unwrap() {
        let host = path(&dir, case["host_name"].as_str().unwrap());
        let cpu = path(&dir, case["cpu_name"].as_str().unwrap());
        let out = vireoctl(&["cpu-compare", "--host", &host, &cpu]);
        let (want_prefix, want_code) = match case["expected"].as_str().unwrap() {
            "IDENTICAL" => ("identical\n", 0),
            "SUPERSET" => ("superset\n", 0),
            "INCOMPATIBLE" => ("incompatible:", 1),
            _ => ("", 2),
        };
        if out.status.code() != Some(want_code) || !stdout(&out).starts_with(want_prefix) {
            failures.push(format!(
                "{}: exit {:?}, {}{}",
                case["name"],
                out.status.code(),
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cpu_compare_names_the_missing_features() {
    let Some(dir) = oracle_dir() else { return };
    let out = vireoctl(&[
        "cpu-compare",
        "--host",
        &path(&dir, "host"),
        &path(&dir, "exact-require-extra"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("incompatible: ") && text.trim().len() > "incompatible:".len(),
        "{text}"
    );
}

#[test]
fn cpu_baseline_prints_libvirts_answers() {
    let Some(dir) = oracle_dir() else { return };
    let mut failures = Vec::new();
    for case in cases(&dir)["baseline_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let flags = case_flags(case);
        let mut args = vec!["cpu-baseline".to_string()];
        if flags.contains(&"expand_features") {
            args.push("--features".into());
        }
        if flags.contains(&"migratable") {
            args.push("--migratable".into());
        }
        let (inputs, expected) = cpu_common::baseline_files(case);
        let inputs = inputs.iter().map(|n| path(&dir, n));
        let expected = expected.map(|n| path(&dir, &n));
        args.extend(inputs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vireoctl(&args);
        match expected {
            None if out.status.code() == Some(2) => {}
            None => failures.push(format!(
                "{name}: expected exit 2, got {:?}",
                out.status.code()
            )),
            Some(file) => {
                let want = std::fs::read_to_string(&file).unwrap();
                if !out.status.success() || stdout(&out) != want {
                    failures.push(format!(
                        "{name} {flags:?}:\n{}{}",
                        stdout(&out),
                        stderr(&out)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
