//! Bad input to the CPU verbs: each is a specific message on stderr and exit code 2.

mod cpu_common;
mod require_env;

use cpu_common::{stderr, vireoctl};

/// Writes `content` to a fresh temp file and returns its path.
fn temp_file(name: &str, content: &str) -> String {
    let dir = std::env::temp_dir().join(format!("vireo-cpu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

const HOST: &str =
    "<cpu>\n  <arch>x86_64</arch>\n  <model>Penryn</model>\n  <vendor>Intel</vendor>\n</cpu>\n";

fn assert_error(args: &[&str], needle: &str) {
    let out = vireoctl(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert!(
        stderr(&out).contains(needle),
        "{args:?}: wanted {needle:?} in {}",
        stderr(&out)
    );
}

#[test]
fn malformed_xml_is_reported() {
    let bad = temp_file("bad.xml", "<cpudata arch='x86'><cpuid eax_in='0x0'");
    assert_error(&["cpu-decode", &bad], "malformed XML");
    let bad_cpu = temp_file("bad-cpu.xml", "<cpu><model>Penryn</cpu>");
    assert_error(&["cpu-baseline", &bad_cpu], "malformed XML");
}

#[test]
fn unknown_model_feature_and_policy_are_named() {
    let host = temp_file("host.xml", HOST);
    let model = temp_file(
        "model.xml",
        "<cpu match='exact'><model>NoSuchModel</model></cpu>",
    );
    assert_error(
        &["cpu-compare", "--host", &host, &model],
        "unknown CPU model 'NoSuchModel'",
    );
    let feature = temp_file(
        "feature.xml",
        "<cpu><model>Penryn</model><feature name='warp-drive'/></cpu>",
    );
    assert_error(
        &["cpu-compare", "--host", &host, &feature],
        "unknown CPU feature 'warp-drive' (see `vireoctl cpu-features`",
    );
    let policy = temp_file(
        "policy.xml",
        "<cpu><model>Penryn</model><feature name='vmx' policy='maybe'/></cpu>",
    );
    assert_error(
        &["cpu-compare", "--host", &host, &policy],
        "unknown feature policy 'maybe'",
    );
}

#[test]
fn vendor_mismatch_and_empty_baseline_are_errors() {
    let mixed = temp_file(
        "mixed.xml",
        "<cpuTest>\n<cpu><arch>x86_64</arch><model>Penryn</model><vendor>Intel</vendor></cpu>\n\
         <cpu><arch>x86_64</arch><model>Opteron_G3</model><vendor>AMD</vendor></cpu>\n</cpuTest>",
    );
    assert_error(&["cpu-baseline", &mixed], "CPU vendors do not match");
    let empty = temp_file("empty.xml", "<cpuTest></cpuTest>");
    assert_error(&["cpu-baseline", &empty], "no <cpu> element");
    assert_error(&["cpu-baseline"], "baseline needs at least one <cpu>");
}

#[test]
fn missing_file_is_named() {
    assert_error(
        &["cpu-decode", "/nonexistent/dump.xml"],
        "cannot read /nonexistent/dump.xml",
    );
}

/// The unknown-feature error points at `cpu-features`, which lists features (and their
/// aliases), while `cpu-models` lists models and accepts virsh's architecture argument.
#[test]
fn cpu_features_lists_the_features_an_unknown_one_is_checked_against() {
    let out = vireoctl(&["cpu-features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text.lines().collect();
    for known in ["lm", "pni", "avx2", "pdpe1gb", "invtsc"] {
        assert!(names.contains(&known), "{known} missing from cpu-features");
    }
    assert!(
        !names.contains(&"Penryn"),
        "cpu-features lists features, not models"
    );
    let details = vireoctl(&["cpu-features", "--details"]);
    let details = String::from_utf8(details.stdout).unwrap();
    let lm = details.lines().find(|l| l.starts_with("lm ")).unwrap();
    assert!(
        lm.contains("cpuid 0x80000001 edx 29") && lm.contains("i64"),
        "{lm}"
    );
    let models = vireoctl(&["cpu-models", "x86_64"]);
    assert!(models.status.success(), "{}", stderr(&models));
    assert!(
        String::from_utf8(models.stdout)
            .unwrap()
            .lines()
            .any(|l| l == "Penryn")
    );
    assert_error(&["cpu-models", "aarch64"], "use x86_64");
}
