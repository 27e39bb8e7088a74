//! The documents `cpu-baseline` and `cpu-compare` read, as virsh reads them
//! (`vshExtractCPUDefXMLs`): several top-level `<cpu>` elements, domain XML, host capabilities
//! and domain capabilities (its supported host-model), and a clear error for a file without
//! any CPU.

mod cpu_common;
mod require_env;

use cpu_common::{stderr, stdout, vireoctl};

/// Writes `content` to a fresh temp file and returns its path.
fn temp_file(name: &str, content: &str) -> String {
    let dir = std::env::temp_dir().join(format!("vireo-cpu-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

const PENRYN_VMX: &str = "<cpu>\n  <arch>x86_64</arch>\n  <model>Penryn</model>\n  \
     <vendor>Intel</vendor>\n  <feature name='vmx'/>\n</cpu>\n";
const PENRYN: &str =
    "<cpu>\n  <arch>x86_64</arch>\n  <model>Penryn</model>\n  <vendor>Intel</vendor>\n</cpu>\n";

fn ok_stdout(args: &[&str]) -> String {
    let out = vireoctl(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn baseline_reads_several_top_level_cpus_like_a_cpu_test_list() {
    let bare = temp_file("two-cpus.xml", &format!("{PENRYN_VMX}{PENRYN}"));
    let listed = temp_file(
        "two-cpus-listed.xml",
        &format!("<cpuTest>\n{PENRYN_VMX}{PENRYN}</cpuTest>\n"),
    );
    let with_decl = temp_file(
        "two-cpus-decl.xml",
        &format!("<?xml version='1.0'?>\n{PENRYN_VMX}<!-- second -->\n{PENRYN}"),
    );
    let expected = ok_stdout(&["cpu-baseline", &listed]);
    assert!(expected.contains("<model fallback='forbid'>Penryn</model>"));
    assert!(
        !expected.contains("vmx"),
        "vmx is on one CPU only: {expected}"
    );
    assert_eq!(ok_stdout(&["cpu-baseline", &bare]), expected);
    assert_eq!(ok_stdout(&["cpu-baseline", &with_decl]), expected);
}

#[test]
fn capabilities_documents_are_baseline_and_compare_inputs() {
    let caps = temp_file(
        "caps.xml",
        &format!(
            "<capabilities>\n  <host>\n    <uuid>00000000-0000-0000-0000-000000000000</uuid>\n\
             {PENRYN_VMX}    <power_management/>\n  </host>\n  <guest>\n    <os_type>hvm</os_type>\n\
             \x20 </guest>\n</capabilities>\n"
        ),
    );
    let host = temp_file("caps-host.xml", PENRYN_VMX);
    let baseline = ok_stdout(&["cpu-baseline", &caps]);
    assert!(baseline.contains("<model fallback='forbid'>Penryn</model>"));
    assert!(baseline.contains("name='vmx'"), "{baseline}");
    assert_eq!(
        ok_stdout(&["cpu-compare", "--host", &host, &caps]),
        "identical\n"
    );
    // The host side may be a capabilities document too.
    let smaller = temp_file(
        "caps-guest.xml",
        "<cpu match='exact'><model>Penryn</model></cpu>",
    );
    assert_eq!(
        ok_stdout(&["cpu-compare", "--host", &caps, &smaller]),
        "superset\n"
    );
}

#[test]
fn domain_documents_give_their_cpu() {
    let domain = temp_file(
        "domain.xml",
        "<domain type='kvm'>\n  <name>vm</name>\n  <memory unit='MiB'>64</memory>\n\
         \x20 <cpu mode='custom' match='exact'>\n    <model fallback='forbid'>Penryn</model>\n\
         \x20   <feature policy='require' name='vmx'/>\n  </cpu>\n  <devices/>\n</domain>\n",
    );
    let host = temp_file("domain-host.xml", PENRYN_VMX);
    let baseline = ok_stdout(&["cpu-baseline", &domain]);
    assert!(baseline.contains("<model fallback='forbid'>Penryn</model>"));
    assert!(baseline.contains("<feature policy='require' name='vmx'/>"));
    assert_eq!(
        ok_stdout(&["cpu-compare", "--host", &host, &domain]),
        "identical\n"
    );
}

#[test]
fn domain_capabilities_give_their_supported_host_model_only() {
    let domcaps = |supported: &str| {
        format!(
            "<domainCapabilities>\n  <domain>kvm</domain>\n  <cpu>\n\
             \x20   <mode name='host-passthrough' supported='yes'/>\n\
             \x20   <mode name='host-model' supported='{supported}'>\n\
             \x20     <model fallback='forbid'>Penryn</model>\n      <vendor>Intel</vendor>\n\
             \x20     <feature policy='require' name='vmx'/>\n    </mode>\n\
             \x20   <mode name='custom' supported='yes'>\n\
             \x20     <model usable='yes' vendor='AMD'>Opteron_G3</model>\n    </mode>\n\
             \x20 </cpu>\n</domainCapabilities>\n"
        )
    };
    let file = temp_file("domcaps.xml", &domcaps("yes"));
    let host = temp_file("domcaps-host.xml", PENRYN_VMX);
    let baseline = ok_stdout(&["cpu-baseline", &file]);
    assert!(
        baseline.contains("<model fallback='forbid'>Penryn</model>"),
        "{baseline}"
    );
    assert!(baseline.contains("<vendor>Intel</vendor>"), "{baseline}");
    assert!(baseline.contains("name='vmx'"), "{baseline}");
    assert_eq!(
        ok_stdout(&["cpu-compare", "--host", &host, &file]),
        "identical\n"
    );
    // An unsupported host-model is no CPU at all.
    let unsupported = temp_file("domcaps-unsupported.xml", &domcaps("no"));
    let out = vireoctl(&["cpu-baseline", &unsupported]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no <cpu> element"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_file_without_any_cpu_is_named_in_the_error() {
    let file = temp_file(
        "no-cpu.xml",
        "<domain type='kvm'>\n  <name>vm</name>\n</domain>\n",
    );
    for verb in ["cpu-baseline", "cpu-compare"] {
        let args: Vec<&str> = match verb {
            "cpu-compare" => vec![verb, "--host", &file, &file],
            _ => vec![verb, &file],
        };
        let out = vireoctl(&args);
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(&file), "{verb}: the file is named: {err}");
        assert!(err.contains("no <cpu> element"), "{verb}: {err}");
        assert!(
            err.contains("domain capabilities"),
            "{verb}: says what fits: {err}"
        );
    }
}
