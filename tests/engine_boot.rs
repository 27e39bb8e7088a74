//! Boots the probe guest: lifecycle actions, crash handling, console and power paths.

mod engine_support;
mod require_env;

use std::time::Duration;

use vireo::cpu::guest::GuestTopology;
use vireo::engine::{LifecycleAction, StopReason, Vm, VmState};

use engine_support::{kvm_supported, parse_probe, probe_config, run_to_end};

#[test]
fn probe_guest_prints_cpuid_and_resets_with_on_reboot_destroy() {
    require_kvm!();
    let config = probe_config("probe-reset", kvm_supported(), GuestTopology::flat(1), 'r');
    let vm = Vm::start(config).expect("start");
    let (state, output) = run_to_end(&vm);
    assert_eq!(state, VmState::Shutoff(StopReason::GuestReset), "{output}");
    let leaves = parse_probe(&output);
    assert!(leaves.contains_key(&(0, 0)) && leaves.contains_key(&(0x8000_0001, 0)));
}

#[test]
fn probe_guest_powers_off_through_acpi_pm1() {
    require_kvm!();
    let vm = Vm::start(probe_config(
        "probe-off",
        kvm_supported(),
        GuestTopology::flat(1),
        'p',
    ))
    .expect("start");
    let (state, output) = run_to_end(&vm);
    assert_eq!(
        state,
        VmState::Shutoff(StopReason::GuestPoweroff),
        "{output}"
    );
}

#[test]
fn triple_fault_ends_crashed_and_the_process_lives_on() {
    require_kvm!();
    let vm = Vm::start(probe_config(
        "probe-tf",
        kvm_supported(),
        GuestTopology::flat(1),
        't',
    ))
    .expect("start");
    let (state, output) = run_to_end(&vm);
    match state {
        VmState::Crashed(message) => assert!(
            message.contains("triple fault") || message.contains("KVM"),
            "crash message: {message}"
        ),
        other => panic!("expected a crash, got {other}; console: {output}"),
    }
    // The process is fine: another VM starts and runs to completion.
    let again = Vm::start(probe_config(
        "probe-after",
        kvm_supported(),
        GuestTopology::flat(1),
        'p',
    ))
    .expect("start after crash");
    assert_eq!(
        run_to_end(&again).0,
        VmState::Shutoff(StopReason::GuestPoweroff)
    );
}

#[test]
fn on_crash_preserve_keeps_the_vm_until_forced_off() {
    require_kvm!();
    let mut config = probe_config(
        "probe-preserve",
        kvm_supported(),
        GuestTopology::flat(1),
        't',
    );
    config.on_crash = LifecycleAction::Preserve;
    let vm = Vm::start(config).expect("start");
    let events = vm.subscribe();
    let crashed = events
        .recv_timeout(Duration::from_secs(10))
        .expect("crash event");
    assert!(matches!(crashed, VmState::Crashed(_)), "{crashed}");
    assert!(
        vm.wait_timeout(Duration::from_millis(100)).is_some(),
        "crashed is final"
    );
    vm.force_off();
}

#[test]
fn on_reboot_restart_boots_the_guest_again() {
    require_kvm!();
    let mut config = probe_config(
        "probe-restart",
        kvm_supported(),
        GuestTopology::flat(1),
        'r',
    );
    config.on_reboot = LifecycleAction::Restart;
    let vm = Vm::start(config).expect("start");
    let events = vm.subscribe();
    for _ in 0..2 {
        let state = events
            .recv_timeout(Duration::from_secs(10))
            .expect("restart event");
        assert_eq!(state, VmState::Running);
    }
    vm.force_off();
    assert_eq!(
        vm.wait_timeout(Duration::from_secs(10)),
        Some(VmState::Shutoff(StopReason::Destroyed))
    );
    let output = engine_support::text(&vm);
    // Two restarts were announced, so at least the first two boots have printed everything.
    assert!(output.matches("VIREO-PROBE END").count() >= 2, "{output}");
}

#[test]
fn graceful_shutdown_presses_the_acpi_power_button() {
    require_kvm!();
    let vm = Vm::start(probe_config(
        "probe-button",
        kvm_supported(),
        GuestTopology::flat(1),
        'w',
    ))
    .expect("start");
    let reader = vm.console().attach();
    wait_for_text(&vm, &reader, "VIREO-PROBE END");
    vm.shutdown();
    let (state, output) = run_to_end(&vm);
    assert_eq!(
        state,
        VmState::Shutoff(StopReason::GuestPoweroff),
        "{output}"
    );
    assert!(output.contains("VIREO-PROBE POWER-BUTTON"), "{output}");
}

#[test]
fn pause_resume_and_force_off_a_running_guest() {
    require_kvm!();
    let vm = Vm::start(probe_config(
        "probe-halt",
        kvm_supported(),
        GuestTopology::flat(2),
        'h',
    ))
    .expect("start");
    let reader = vm.console().attach();
    wait_for_text(&vm, &reader, "VIREO-PROBE END");
    vm.pause();
    assert!(vm.wait_for_state(&VmState::Paused, Duration::from_secs(5)));
    // A reset while paused (a guest's reboot racing the pause, or the user's) keeps the VM
    // paused: the rebuilt machine waits for resume.
    let banners = |text: &str| text.matches("VIREO-PROBE END").count();
    let before = banners(&String::from_utf8_lossy(&vm.console().attach().scrollback));
    vm.reboot();
    assert!(
        !vm.wait_for_state(&VmState::Running, Duration::from_secs(2)),
        "a reset undid the pause"
    );
    assert_eq!(vm.state(), VmState::Paused);
    vm.resume();
    assert!(vm.wait_for_state(&VmState::Running, Duration::from_secs(5)));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while banners(&String::from_utf8_lossy(&vm.console().attach().scrollback)) <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the reset guest never ran again after resume"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    vm.force_off();
    assert_eq!(
        vm.wait_timeout(Duration::from_secs(5)),
        Some(VmState::Shutoff(StopReason::Destroyed))
    );
    // Once the buffered chunks are read, the stream reports that the VM is gone.
    let mut ended = false;
    for _ in 0..10_000 {
        if reader.recv_timeout(Duration::from_secs(1)).is_err() {
            ended = true;
            break;
        }
    }
    assert!(ended, "console stream ended");
}

#[test]
fn console_input_reaches_the_guest_and_two_readers_see_the_echo() {
    require_kvm!();
    let vm = Vm::start(probe_config(
        "probe-echo",
        kvm_supported(),
        GuestTopology::flat(1),
        'e',
    ))
    .expect("start");
    let first = vm.console().attach();
    wait_for_text(&vm, &first, "VIREO-PROBE ECHO");
    let second = vm.console().attach();
    assert!(String::from_utf8_lossy(&second.scrollback).contains("VIREO-PROBE ECHO"));
    vm.send_input(b"hello, guest; a line longer than the sixteen-byte UART FIFO q");
    let (state, output) = run_to_end(&vm);
    assert_eq!(state, VmState::Shutoff(StopReason::GuestPoweroff));
    assert!(
        output.contains("hello, guest; a line longer than the sixteen-byte UART FIFO "),
        "{output}"
    );
    let mut seen = Vec::new();
    while let Some(chunk) = second.recv() {
        seen.extend(chunk);
    }
    assert!(String::from_utf8_lossy(&seen).contains("hello, guest"));
}

/// Reads `reader` until `needle` has appeared in the VM's console output.
fn wait_for_text(vm: &Vm, reader: &vireo::engine::ConsoleReader, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !engine_support::text(vm).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in: {}",
            engine_support::text(vm)
        );
        let _ = reader.recv_timeout(Duration::from_millis(50));
    }
}

#[test]
fn vcpupin_and_emulatorpin_restrict_the_engine_threads() {
    require_kvm!();
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let target = host_cpus - 1;
    let mut config = probe_config("probe-pin", kvm_supported(), GuestTopology::flat(2), 'h');
    config.vcpu_pins = vec![vireo::engine::VcpuPin {
        vcpu: 1,
        host_cpus: vec![target],
    }];
    config.emulator_pin = Some(vec![0]);
    let vm = Vm::start(config).expect("start");
    let reader = vm.console().attach();
    wait_for_text(&vm, &reader, "VIREO-PROBE END");
    // Every thread of that name in this process: the other tests' VMs run beside this one
    // (their vCPU threads are also called vcpu1, unpinned).
    let allowed = |thread: &str| -> Vec<String> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == thread {
                let status = std::fs::read_to_string(task.path().join("status")).unwrap();
                found.extend(
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                        .map(|v| v.trim().to_string()),
                );
            }
        }
        found
    };
    let vcpu1 = allowed("vcpu1");
    assert!(vcpu1.contains(&target.to_string()), "{vcpu1:?}");
    assert_eq!(allowed("vm-probe-pin"), vec!["0".to_string()]);
    vm.force_off();
    vm.wait();
}
