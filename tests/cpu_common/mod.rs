//! Helpers shared by the CPU test files: locating libvirt's oracle data and running vireoctl.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

/// `../shared/oracle`, or `None` when this checkout has no oracle data (after
/// [`skip_or_fail`](crate::require_env::skip_or_fail): printing why, or failing under
/// `VIREO_REQUIRE_ENV=1`). The test crate declares `mod require_env;`.
pub fn oracle_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oracle"));
    if dir.join("cpu-cases.json").is_file() {
        Some(dir)
    } else {
        crate::require_env::skip_or_fail(format!(
            "libvirt oracle data not found at {}",
            dir.display()
        ));
        None
    }
}

/// The parsed `cpu-cases.json`.
pub fn cases(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("cpu-cases.json")).expect("read cpu-cases.json");
    serde_json::from_str(&text).expect("parse cpu-cases.json")
}

pub fn cputestdata(dir: &std::path::Path, name: &str) -> PathBuf {
    dir.join("cputestdata").join(format!("x86_64-{name}.xml"))
}

/// Runs the built `vireoctl` with `args` (and an empty overlay dir so the user's map is ignored).
pub fn vireoctl(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vireoctl"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent-vireo-test-config")
        .output()
        .expect("run vireoctl")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The flags of a baseline case (`expand_features`, `migratable`).
pub fn case_flags(case: &serde_json::Value) -> Vec<&str> {
    case["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

/// The files a baseline case reads and the file holding libvirt's answer.
pub fn baseline_files(case: &serde_json::Value) -> (Vec<String>, Option<String>) {
    let name = case["name"].as_str().unwrap();
    let flags = case_flags(case);
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
