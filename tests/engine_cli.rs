//! `vireoctl create` and `host-validate` end to end, including the "this host cannot run that"
//! errors: each exits 2 and names the fix, and leaves nothing running.

mod engine_support;
mod require_env;

use std::path::Path;
use std::process::{Command, Output};

fn domain_xml(kernel: &Path, extra_os: &str, memory_mib: u64, vcpus: u32, mode: char) -> String {
    format!(
        "<domain type='kvm'>\n  <name>probe-cli</name>\n  <memory unit='MiB'>{memory_mib}</memory>\n  <vcpu>{vcpus}</vcpu>\n  <cpu mode='host-passthrough'/>\n  <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n    {extra_os}\n    <cmdline>console=ttyS0 vireo.probe={mode}</cmdline>\n  </os>\n  <on_poweroff>destroy</on_poweroff>\n</domain>\n",
        kernel.display()
    )
}

fn vireoctl_create(xml: &str, console: bool) -> Output {
    let dir = std::env::temp_dir().join("vireo-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    // Tests run in parallel: each call gets its own file.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("domain-{}-{n}.xml", std::process::id()));
    // Detached VMs share the runtime directory: give each call its own domain name.
    let xml = xml.replace(
        "<name>probe-cli</name>",
        &format!("<name>probe-cli-{}-{n}</name>", std::process::id()),
    );
    std::fs::write(&file, xml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vireoctl"));
    cmd.arg("create").arg(&file);
    if console {
        cmd.arg("--console");
    }
    let out = cmd.output().expect("run vireoctl");
    let _ = std::fs::remove_file(&file);
    out
}

#[test]
fn create_with_console_runs_the_probe_and_exits_0_on_poweroff() {
    require_kvm!();
    let out = vireoctl_create(
        &domain_xml(&engine_support::probe_guest(), "", 64, 2, 'p'),
        true,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VIREO-PROBE END"), "{stdout}");
}

#[test]
fn create_of_a_crashing_guest_exits_1_with_the_reason() {
    require_kvm!();
    let out = vireoctl_create(
        &domain_xml(&engine_support::probe_guest(), "", 64, 1, 't'),
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("crashed"));
}

fn assert_refused(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

#[test]
fn missing_kernel_is_refused_with_the_path_and_the_fix() {
    require_kvm!();
    let out = vireoctl_create(
        &domain_xml(Path::new("/nonexistent/vmlinuz"), "", 64, 1, 'p'),
        false,
    );
    assert_refused(&out, &["/nonexistent/vmlinuz", "<os><kernel>"]);
}

#[test]
fn memory_beyond_the_host_is_refused() {
    require_kvm!();
    let out = vireoctl_create(
        &domain_xml(&engine_support::probe_guest(), "", 1 << 30, 1, 'p'),
        false,
    );
    assert_refused(&out, &["<memory>", "lower <memory>"]);
}

#[test]
fn vcpus_beyond_kvm_are_refused() {
    require_kvm!();
    let out = vireoctl_create(
        &domain_xml(&engine_support::probe_guest(), "", 64, 100_000, 'p'),
        false,
    );
    assert_refused(&out, &["<vcpu>", "KVM allows at most"]);
}

#[test]
fn initrd_too_large_for_memory_is_refused() {
    require_kvm!();
    let initrd = std::env::temp_dir().join(format!("vireo-big-initrd-{}", std::process::id()));
    let file = std::fs::File::create(&initrd).unwrap();
    file.set_len(200 << 20).unwrap(); // sparse
    let extra = format!("<initrd>{}</initrd>", initrd.display());
    let out = vireoctl_create(
        &domain_xml(&engine_support::probe_guest(), &extra, 64, 1, 'p'),
        false,
    );
    std::fs::remove_file(&initrd).unwrap();
    assert_refused(&out, &["initrd", "too large", "raise <memory>"]);
}

#[test]
fn host_validate_prints_pass_warn_fail_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_vireoctl"))
        .arg("host-validate")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("/dev/kvm exists"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(": PASS") || l.contains(": WARN") || l.contains(": FAIL"))
    );
    let failed = stdout.contains(": FAIL");
    assert_eq!(out.status.code(), Some(if failed { 1 } else { 0 }));
}

#[test]
fn create_without_console_leaves_the_vm_running_in_a_runner() {
    require_kvm!();
    let out = vireoctl_create(
        &domain_xml(&engine_support::probe_guest(), "", 64, 1, 'h'),
        false,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = stdout
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no domain name in {stdout}"))
        .to_string();
    let vireoctl = |verb: &str| {
        Command::new(env!("CARGO_BIN_EXE_vireoctl"))
            .args([verb, &name])
            .output()
            .unwrap()
    };
    let info = String::from_utf8_lossy(&vireoctl("dominfo").stdout).into_owned();
    assert!(info.contains("State:          running"), "{info}");
    assert!(vireoctl("destroy").status.success());
    // A transient domain is gone once stopped.
    assert!(!vireoctl("dominfo").status.success());
}
