//! One answer to "can this CPU run here": `start` (the engine config), `validate --host` and
//! the GUI's CPU page ask the same resolution, so `check=` and every feature policy count the
//! same everywhere. Before, validate and the GUI said "not usable" for a CPU with
//! `check='none'` that start runs, and said nothing of a `forbid`den feature start refuses.

mod engine_support;
mod require_env;

use std::path::Path;
use std::process::Command;

use vireo::cpu::guest::HostCpuFacts;
use vireo::cpu::{CpuMap, CpuidData, missing_features};
use vireo::launch::{
    HostFacts, cpu_host_problem, cpu_verdict, cpu_verdict_with, host_cpu_facts, prepare_domain,
    prepare_domain_with, refusal,
};

/// A PVM host's KVM-supported CPUID (AMD EPYC Milan), kept in the repository.
fn milan() -> CpuidData {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pvm-amd-epyc-milan-kvm.xml"
    ))
    .unwrap();
    CpuidData::from_xml(&text).unwrap()
}

fn domain(kernel: &Path, cpu: &str, name: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  {cpu}\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n    <cmdline>console=ttyS0 vireo.probe=q</cmdline>\n  </os>\n  <on_poweroff>destroy</on_poweroff>\n</domain>\n",
        kernel.display()
    )
}

/// A base model (no versions, no aliases) `kvm` lacks at least one feature of.
fn model_lacking_features(map: &CpuMap, kvm: &CpuidData) -> (String, Vec<String>) {
    map.models()
        .filter(|m| m.parent().is_none())
        .find_map(|m| {
            let missing = missing_features(map, m.name(), kvm).ok()?;
            (!missing.is_empty()).then(|| (m.name().to_string(), missing))
        })
        .expect("some model needs a feature this host lacks")
}

/// A feature `kvm` offers.
fn feature_present(map: &CpuMap, kvm: &CpuidData) -> String {
    let offered = vireo::cpu::features_in(map, kvm);
    ["sse2", "cx8", "fpu"]
        .into_iter()
        .find(|f| offered.iter().any(|o| o == f))
        .expect("the host offers sse2")
        .to_string()
}

/// The verdict of every path for `xml` on `host`: start (prepare_domain_with the whole map and
/// prepare_domain with the partial one), validate (cpu_verdict, cpu_host_problem) and the
/// GUI's (cpu_verdict_with the map the CPU page holds). All must agree.
fn verdicts(xml: &str, host: &HostCpuFacts, map: &CpuMap) -> Option<String> {
    let engine_host = HostFacts {
        kvm_supported: host.kvm_supported.clone(),
        cpuid_enforced: host.cpuid_enforced,
        max_vcpus: 64,
        ..HostFacts::default()
    };
    let start_whole = prepare_domain_with(xml, &engine_host, map).map(|p| p.cpu);
    let start_partial = prepare_domain(xml, &engine_host).map(|p| p.cpu);
    let validate = cpu_verdict(xml, host);
    let gui = cpu_verdict_with(xml, host, map);
    let answer = refusal(&start_whole);
    assert_eq!(refusal(&start_partial), answer, "start, partial map: {xml}");
    assert_eq!(refusal(&validate), answer, "validate --host: {xml}");
    assert_eq!(refusal(&gui), answer, "GUI: {xml}");
    assert_eq!(
        cpu_host_problem(&validate).is_some(),
        answer.is_some(),
        "validate's problem list: {xml}"
    );
    if let (Ok(a), Ok(b), Ok(c)) = (&start_whole, &validate, &gui) {
        assert_eq!((a, a), (b, c), "the same CPU everywhere: {xml}");
    }
    answer
}

#[test]
fn check_none_and_forbid_get_one_verdict_from_every_path() {
    let kernel = tempfile::NamedTempFile::new().unwrap();
    let map = CpuMap::load().unwrap();
    let kvm = milan();
    let host = host_cpu_facts(&kvm, false);
    let (model, lacking) = model_lacking_features(&map, &kvm);

    // check='none': start drops what KVM lacks and runs; so do validate and the GUI.
    let cpu = format!(
        "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>{model}</model></cpu>"
    );
    let xml = domain(kernel.path(), &cpu, "one-answer");
    assert_eq!(
        verdicts(&xml, &host, &map),
        None,
        "{model} lacks {lacking:?}"
    );
    // The same model under the default check refuses everywhere, naming what is missing.
    let partial = cpu.replace(" check='none'", "");
    let refused = verdicts(&domain(kernel.path(), &partial, "one-answer"), &host, &map)
        .expect("refused without check='none'");
    assert!(refused.contains(&lacking[0]), "{refused}");

    // forbid of a feature the host has: refused everywhere (before, validate said nothing).
    let present = feature_present(&map, &kvm);
    let forbid =
        format!("<cpu mode='host-passthrough'><feature policy='forbid' name='{present}'/></cpu>");
    let refused = verdicts(&domain(kernel.path(), &forbid, "one-answer"), &host, &map)
        .expect("a forbidden feature the host has is refused");
    assert!(
        refused.contains(&present) && refused.contains("forbid"),
        "{refused}"
    );
    // forbid of a feature the host lacks: runs everywhere.
    let absent = format!(
        "<cpu mode='host-passthrough'><feature policy='forbid' name='{}'/></cpu>",
        lacking[0]
    );
    assert_eq!(
        verdicts(&domain(kernel.path(), &absent, "one-answer"), &host, &map),
        None
    );

    // check='full' where KVM does not enforce CPUID: refused everywhere.
    let full = "<cpu mode='host-passthrough' check='full'/>";
    let refused = verdicts(&domain(kernel.path(), full, "one-answer"), &host, &map)
        .expect("check='full' on a host without enforcement");
    assert!(refused.contains("check='full'"), "{refused}");
}

fn vireoctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vireoctl"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent-vireo-test-config")
        .output()
        .expect("run vireoctl")
}

/// On this machine's KVM: `validate --host` passes exactly the CPUs `create --console` runs.
#[test]
fn vireoctl_validate_host_and_create_agree_on_this_host() {
    require_kvm!();
    let map = CpuMap::builtin().unwrap();
    let kvm = vireo::host::kvm::supported_cpuid().expect("KVM's CPUID");
    let (model, _) = model_lacking_features(&map, &kvm);
    let present = feature_present(&map, &kvm);
    let dir = tempfile::tempdir().unwrap();
    let probe = engine_support::probe_guest();
    let cases = [
        (
            format!(
                "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>{model}</model></cpu>"
            ),
            true,
        ),
        (
            format!(
                "<cpu mode='custom' match='exact'><model fallback='forbid'>{model}</model></cpu>"
            ),
            false,
        ),
        (
            format!(
                "<cpu mode='host-passthrough'><feature policy='forbid' name='{present}'/></cpu>"
            ),
            false,
        ),
        ("<cpu mode='host-passthrough'/>".to_string(), true),
    ];
    for (i, (cpu, runs)) in cases.iter().enumerate() {
        let name = format!("one-answer-{}-{i}", std::process::id());
        let file = dir.path().join(format!("{name}.xml"));
        std::fs::write(&file, domain(&probe, cpu, &name)).unwrap();
        let file = file.to_str().unwrap();
        let validate = vireoctl(&["validate", "--host", file]);
        let create = vireoctl(&["create", file, "--console"]);
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        assert_eq!(
            validate.status.success(),
            *runs,
            "validate --host, {cpu}: {}",
            text(&validate)
        );
        assert_eq!(
            create.status.success(),
            *runs,
            "create --console, {cpu}: {}",
            text(&create)
        );
    }
}
