//! Boots Debian's cloud kernel with a busybox initramfs (built by `tools/build-test-guests
//! --linux`) and checks what Linux saw: CPU count, CPU flags, a clean ACPI poweroff.
//!
//! Runs only where `host-validate` reports hardware virtualization: on PVM hosts stock
//! distribution kernels do not boot (measured here: the boot vCPU spins in the host kernel
//! without ever writing to the serial port), so the test prints why it skips.

mod engine_support;

use std::time::Duration;

use vireo::engine::config::{HostFacts, prepare_domain};
use vireo::engine::{StopReason, Vm, VmState};
use vireo::host::validate::{self, Virtualization};

fn linux_guest() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    if validate::virtualization() != Virtualization::Hardware {
        return Err(format!(
            "host-validate reports {:?} virtualization, not hardware; stock Linux kernels need VT-x/AMD-V",
            validate::virtualization()
        ));
    }
    let cache = engine_support::guest_cache();
    let (kernel, initrd) = (cache.join("linux-vmlinuz"), cache.join("linux-initrd.gz"));
    if !kernel.exists() || !initrd.exists() {
        return Err(format!(
            "no Linux test guest in {}; run tools/build-test-guests --linux",
            cache.display()
        ));
    }
    Ok((kernel, initrd))
}

fn boot(cpu: &str) -> (VmState, String) {
    let (kernel, initrd) = linux_guest().expect("checked by the caller");
    let xml = format!(
        "<domain type='kvm'><name>linux-{}</name><memory unit='MiB'>512</memory><vcpu>2</vcpu>\
         {cpu}<os><type arch='x86_64'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>\
         <cmdline>console=ttyS0 reboot=k panic=-1</cmdline></os></domain>",
        cpu.len(),
        kernel.display(),
        initrd.display()
    );
    let host = HostFacts::probe().expect("host facts");
    let prepared = prepare_domain(&xml, &host).expect("prepare");
    let vm = Vm::start(prepared.config).expect("start");
    let state = vm.wait_timeout(Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "Linux still running after 60 s: {}",
            engine_support::text(&vm)
        )
    });
    (state, engine_support::text(&vm))
}

fn line<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in: {output}"))
        .trim()
}

#[test]
fn linux_sees_two_cpus_and_powers_off_cleanly() {
    if let Err(reason) = linux_guest() {
        eprintln!("skipping: {reason}");
        return;
    }
    let (state, output) =
        boot("<cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='1'/></cpu>");
    assert_eq!(
        state,
        VmState::Shutoff(StopReason::GuestPoweroff),
        "{output}"
    );
    assert_eq!(line(&output, "VIREO-LINUX NPROC"), "2");
    let flags: Vec<&str> = line(&output, "VIREO-LINUX FLAGS")
        .split_whitespace()
        .collect();
    assert!(
        flags.contains(&"lm") && flags.contains(&"sse2"),
        "{flags:?}"
    );
}

#[test]
fn linux_does_not_see_a_disabled_feature() {
    if let Err(reason) = linux_guest() {
        eprintln!("skipping: {reason}");
        return;
    }
    let (_, output) =
        boot("<cpu mode='host-passthrough'><feature policy='disable' name='avx2'/></cpu>");
    let flags: Vec<&str> = line(&output, "VIREO-LINUX FLAGS")
        .split_whitespace()
        .collect();
    assert!(!flags.contains(&"avx2"), "{flags:?}");
}
