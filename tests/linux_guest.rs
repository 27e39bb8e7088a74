//! Real Linux guests: Debian's stock kernel with the test bed's busybox initramfs
//! (`tools/testbed-guest/init`), booted by Vireo's engine, checked from inside the guest.
//!
//! These tests need hardware virtualization, which this project's build machines (PVM) lack, so
//! they are `#[ignore]`d in a plain `cargo test` and run by `tools/testbed test`: directly where
//! the host has VT-x/AMD-V, else inside the nested test bed's L1 (QEMU TCG with an emulated SVM
//! CPU). When they run they never skip: a missing guest image or KVM is a failure.

mod linux_support;
mod vnc_support;

use std::time::Duration;

use linux_support::{Guest, boot, cpu_flags, disk, line, lines, usable_64bit_models};
use vireo::engine::{StopReason, VmState};

pub(crate) const BOOT: Duration = Duration::from_secs(180);

/// The CPU-model promise of the whole project: for every CPU mode the guest boots, and the CPUID
/// instruction inside Linux returns exactly the table Vireo resolved (apart from the bits the CPU
/// itself derives at run time, which `linux_support::compare_cpuid` lists).
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn every_cpu_mode_boots_and_the_guest_sees_the_resolved_cpuid() {
    let mut cpus: Vec<(String, String)> = vec![
        ("hypervisor default".into(), String::new()),
        ("host-model".into(), "<cpu mode='host-model'/>".into()),
        (
            "host-passthrough".into(),
            "<cpu mode='host-passthrough'/>".into(),
        ),
    ];
    for model in usable_64bit_models() {
        cpus.push((
            model.clone(),
            format!(
                "<cpu mode='custom' match='exact'><model fallback='forbid'>{model}</model></cpu>"
            ),
        ));
    }
    // Modes a previous attempt in a stalled L1 already proved (tools/testbed passes them on).
    let done = std::env::var("VIREO_MODES_DONE").unwrap_or_default();
    let done: Vec<&str> = done.split(',').filter(|m| !m.is_empty()).collect();
    let mut failures = Vec::new();
    for (what, cpu) in &cpus {
        let key = what.replace(' ', "-");
        if done.contains(&key.as_str()) {
            eprintln!("{what:<24} proved by an earlier attempt");
            continue;
        }
        let guest = boot(&Guest::new("report").cpu(cpu), BOOT);
        let outcome = if guest.state != VmState::Shutoff(StopReason::GuestPoweroff) {
            Err(format!("ended {}", guest.state))
        } else {
            guest.compare_cpuid(0)
        };
        match &outcome {
            Ok(()) => {
                eprintln!("{what:<24} boots; guest CPUID = resolved table");
                println!("VIREO-PROGRESS mode={key}");
            }
            Err(e) => eprintln!("{what:<24} FAILED: {e}"),
        }
        if let Err(e) = outcome {
            failures.push(format!("{what}: {e}\n--- console ---\n{}", guest.tail(40)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} CPU modes failed:\n{}",
        failures.len(),
        cpus.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_disabled_feature_is_hidden_inside_linux() {
    let on = boot(
        &Guest::new("report").cpu("<cpu mode='host-passthrough'/>"),
        BOOT,
    );
    let flags = cpu_flags(&on.output);
    let victim = ["avx2", "aes", "sse4_2", "popcnt", "ssse3", "sse3"]
        .into_iter()
        .find(|f| flags.iter().any(|g| g == f))
        .unwrap_or_else(|| panic!("none of the candidate features in {flags:?}"));
    // libvirt's name for Linux's `sse3` flag is `pni`'s alias; both spellings are in the map.
    let off = boot(
        &Guest::new("report").cpu(&format!(
            "<cpu mode='host-passthrough'><feature policy='disable' name='{victim}'/></cpu>"
        )),
        BOOT,
    );
    let flags_off = cpu_flags(&off.output);
    assert!(
        !flags_off.iter().any(|f| f == victim),
        "{victim} still in the guest's flags: {flags_off:?}"
    );
    off.compare_cpuid(0).unwrap();
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn two_sockets_two_cores_two_threads_show_in_lscpu() {
    // An AMD guest reads threads per core from CPUID 0x8000001E only with `topoext`, which
    // the test bed's emulated EPYC lacks (QEMU's TCG does not offer it): force it there, as
    // Vireo's start warning tells a user to.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let amd = cpuinfo.contains("AuthenticAMD") || cpuinfo.contains("HygonGenuine");
    let topoext = if amd {
        "<feature policy='force' name='topoext'/>"
    } else {
        ""
    };
    let guest = boot(
        &Guest::new("report").vcpus(8).cpu(&format!(
            "<cpu mode='host-passthrough'><topology sockets='2' cores='2' threads='2'/>{topoext}</cpu>"
        )),
        BOOT,
    );
    assert_eq!(
        guest.state,
        VmState::Shutoff(StopReason::GuestPoweroff),
        "{}",
        guest.tail(40)
    );
    assert_eq!(line(&guest.output, "VIREO-L2 NPROC"), "8");
    let lscpu = lines(&guest.output, "VIREO-L2 LSCPU");
    let field = |name: &str| {
        lscpu
            .iter()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in lscpu: {lscpu:#?}\n{}", guest.tail(60)))
    };
    assert_eq!(field("Socket(s):"), "2");
    assert_eq!(field("Core(s) per socket:"), "2");
    assert_eq!(field("Thread(s) per core:"), "2");
    for vcpu in 0..8 {
        guest.compare_cpuid_topology(vcpu).unwrap();
    }
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn smp_guests_with_two_and_four_vcpus_bring_up_every_cpu() {
    for vcpus in [2u32, 4] {
        let guest = boot(
            &Guest::new("report")
                .vcpus(vcpus)
                .cpu("<cpu mode='host-model'/>"),
            BOOT,
        );
        assert_eq!(
            guest.state,
            VmState::Shutoff(StopReason::GuestPoweroff),
            "{vcpus} vCPUs: {}",
            guest.tail(40)
        );
        assert_eq!(line(&guest.output, "VIREO-L2 NPROC"), vcpus.to_string());
    }
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn the_acpi_power_button_powers_linux_off_cleanly() {
    let guest = Guest::new("powerbutton").start();
    guest.wait_for("VIREO-L2 WAITING-FOR-POWER-BUTTON", BOOT);
    guest.vm.shutdown();
    let done = guest.finish(Duration::from_secs(60));
    assert!(
        done.output.contains("VIREO-L2 POWER-BUTTON-PRESSED"),
        "{}",
        done.tail(30)
    );
    assert_eq!(done.state, VmState::Shutoff(StopReason::GuestPoweroff));
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_guest_reboot_follows_on_reboot() {
    let destroyed = boot(&Guest::new("reboot").on_reboot("destroy"), BOOT);
    assert_eq!(
        destroyed.state,
        VmState::Shutoff(StopReason::GuestReset),
        "{}",
        destroyed.tail(30)
    );
    let restarted = Guest::new("reboot").on_reboot("restart").start();
    restarted.wait_for_count("VIREO-L2 UP", 2, BOOT);
    assert_eq!(restarted.vm.state(), VmState::Running);
    restarted.vm.force_off();
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn pause_stops_the_guest_and_resume_continues_it() {
    let guest = Guest::new("ticks").start();
    guest.wait_for("VIREO-L2 TICK 3", BOOT);
    guest.vm.pause();
    assert!(
        guest
            .vm
            .wait_for_state(&VmState::Paused, Duration::from_secs(10))
    );
    let ticks = |g: &linux_support::Running| lines(&g.text(), "VIREO-L2 TICK").len();
    let paused_at = ticks(&guest);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ticks(&guest), paused_at, "the guest ran while paused");
    guest.vm.resume();
    guest.wait_for(&format!("VIREO-L2 TICK {}", paused_at + 3), BOOT);
    guest.vm.force_off();
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn an_interactive_shell_answers_on_the_serial_console() {
    let guest = Guest::new("shell").start();
    guest.wait_for("VIREO-L2 SHELL", BOOT);
    std::thread::sleep(Duration::from_millis(500));
    guest.vm.send_input(b"echo answer-$((6 * 7))\n");
    guest.wait_for("answer-42", Duration::from_secs(60));
    guest.vm.send_input(b"poweroff -f\n");
    let done = guest.finish(Duration::from_secs(60));
    assert_eq!(done.state, VmState::Shutoff(StopReason::GuestPoweroff));
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_kernel_panic_ends_the_vm_as_crashed() {
    let guest = boot(&Guest::new("panic"), BOOT);
    assert!(
        guest.output.contains("VIREO-L2 PVPANIC loaded"),
        "pvpanic did not bind: {}",
        guest.tail(30)
    );
    match &guest.state {
        VmState::Crashed(why) => assert!(why.contains("panicked"), "{why}"),
        other => panic!("ended {other}, not crashed: {}", guest.tail(30)),
    }
}

/// The platform a stock kernel expects: its boot log warns of nothing that a QEMU q35 boot of
/// the same kernel and initramfs on the same KVM does not warn of too, and host-passthrough
/// shows the guest the CPU flags QEMU's `-cpu host` shows.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn the_boot_log_warns_of_nothing_a_qemu_q35_boot_does_not() {
    // A platform defect warns on every boot. A busy nested host can make one boot's timing
    // checks complain ("clocksource: Long readout interval" when the vCPU was descheduled
    // between two clock reads), so a warning seen under Vireo only is confirmed by a second
    // pair of boots before it counts.
    let mut suspects: Option<std::collections::BTreeSet<String>> = None;
    let mut last = None;
    for attempt in 1..=2 {
        let vireo = boot(
            &Guest::new("bootlog")
                .cpu("<cpu mode='host-passthrough'/>")
                .paravirt(true),
            BOOT,
        );
        let qemu = linux_support::boot_qemu_q35("bootlog");
        assert!(
            qemu.contains("VIREO-L2 END"),
            "QEMU's boot did not finish: {}",
            linux_support::tail(&qemu, 30)
        );
        let ours = linux_support::boot_warnings(&vireo.output);
        let theirs = linux_support::boot_warnings(&qemu);
        eprintln!(
            "boot pair {attempt}: warnings: Vireo {}, QEMU q35 {}",
            ours.len(),
            theirs.len()
        );
        let extra: std::collections::BTreeSet<String> = ours.difference(&theirs).cloned().collect();
        let confirmed = match suspects.take() {
            None => extra,
            Some(first) => first.intersection(&extra).cloned().collect(),
        };
        let done = confirmed.is_empty() || attempt == 2;
        if !done {
            eprintln!("under Vireo only, to be confirmed: {confirmed:?}");
        }
        suspects = Some(confirmed);
        last = Some((vireo, qemu, theirs));
        if done {
            break;
        }
    }
    let (vireo, qemu, theirs) = last.expect("at least one boot pair");
    let extra = suspects.unwrap_or_default();
    assert!(
        extra.is_empty(),
        "warnings under Vireo only, in both boot pairs:\n{}\n(QEMU's: {theirs:#?})",
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // host-passthrough offers what QEMU's `-cpu host` offers, KVM's capabilities included
    // (without the TSC-deadline timer, which KVM announces as a capability rather than in
    // KVM_GET_SUPPORTED_CPUID, the guest calibrated its APIC timer and, under load, disabled it).
    // QEMU alone adds AMD's machine-check recovery bits for its MCE emulation; Vireo sets up no
    // machine-check banks, so it does not claim them.
    let flags = |output: &str| -> std::collections::BTreeSet<String> {
        line(output, "VIREO-L2 FLAGS")
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let (ours, theirs) = (flags(&vireo.output), flags(&qemu));
    let only_qemu: Vec<&String> = theirs
        .difference(&ours)
        .filter(|f| !["overflow_recov", "succor"].contains(&f.as_str()))
        .collect();
    let only_vireo: Vec<&String> = ours.difference(&theirs).collect();
    assert!(
        only_qemu.is_empty() && only_vireo.is_empty(),
        "host-passthrough differs from QEMU's -cpu host: only QEMU's guest has {only_qemu:?}, \
         only Vireo's has {only_vireo:?}"
    );
    assert!(
        vireo.output.contains("VIREO-L2 CLOCKSOURCE kvm-clock"),
        "the guest does not use kvm-clock: {}",
        line(&vireo.output, "VIREO-L2 CLOCKSOURCE")
    );
}

/// Boots that never flake or hang: `VIREO_BOOT_RUNS=N,M` boots 1-vCPU guests N times and 2- and
/// 4-vCPU guests M times each (default 3,2; `tools/testbed stress` runs 50,20). Every boot must
/// reach userspace and power off; the first failure is reported with its console.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn repeated_boots_never_hang_or_crash() {
    let runs = std::env::var("VIREO_BOOT_RUNS").unwrap_or_else(|_| "3,2".into());
    let (single, smp) = runs
        .split_once(',')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .expect("VIREO_BOOT_RUNS is N,M");
    let mut tally = Vec::new();
    for (vcpus, count) in [(1u32, single), (2, smp), (4, smp)] {
        let mut passed = 0;
        let started = std::time::Instant::now();
        for run in 1..=count {
            let guest = boot(
                &Guest::new("up")
                    .vcpus(vcpus)
                    .cpu("<cpu mode='host-model'/>"),
                BOOT,
            );
            assert_eq!(
                guest.state,
                VmState::Shutoff(StopReason::GuestPoweroff),
                "{vcpus} vCPUs, boot {run} of {count}: {}",
                guest.tail(40)
            );
            passed += 1;
        }
        tally.push(format!(
            "{vcpus} vCPU: {passed}/{count} boots, {:.1} s each",
            started.elapsed().as_secs_f64() / f64::from(count.max(1))
        ));
    }
    eprintln!("{}", tally.join("; "));
}

// ---- Networks: virtio-net with passt (tests/linux_guest/network.rs) ----

#[path = "linux_guest/network.rs"]
mod network;

// ---- Disks: virtio-blk over virtio-pci, raw and qcow2 images (tests/linux_support/disk.rs) ----

/// A token the guest writes to its root disk, unique to this test process.
fn token(tag: &str) -> String {
    format!("vireo-{tag}-{}", std::process::id())
}

/// The initramfs mounts `/dev/vda` (ext4, rw) and switch_roots into it; the disk's init reports.
fn disk_root_guest(token: &str) -> Guest {
    Guest::new("diskroot").cmdline(&format!("root=/dev/vda vireo.token={token}"))
}

/// Boots a `diskroot` guest and checks what every root-disk boot must show: the root mounted
/// from /dev/vda as ext4, the token written, a clean power-off.
fn boot_disk_root(guest: &Guest, token: &str) -> linux_support::Finished {
    let done = boot(guest, BOOT);
    assert_eq!(
        done.state,
        VmState::Shutoff(StopReason::GuestPoweroff),
        "{}",
        done.tail(40)
    );
    let root = line(&done.output, "VIREO-L2 ROOT");
    assert!(
        root.starts_with("/dev/vda ext4 rw"),
        "root mount: {root}\n{}",
        done.tail(40)
    );
    assert_eq!(line(&done.output, "VIREO-L2 WROTE"), token);
    assert!(
        !done.output.contains("REMOUNT-RO-FAILED"),
        "{}",
        done.tail(40)
    );
    done
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn linux_boots_from_a_raw_ext4_disk_and_its_write_reaches_the_image() {
    let scratch = disk::Scratch::new("raw-root");
    let image = scratch.path("root.raw");
    disk::ext4_root_image(&image, 64);
    let token = token("raw");
    boot_disk_root(
        &disk_root_guest(&token).device(&disk::disk_xml(&image, "raw", "none", "vda", "")),
        &token,
    );
    assert_eq!(disk::ext4_cat(&image, "/hello").trim(), token);
    disk::assert_ext4_clean(&image);
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn linux_boots_from_a_qcow2_overlay_and_the_backing_file_stays_unchanged() {
    let scratch = disk::Scratch::new("qcow2-root");
    let base = scratch.path("base.raw");
    disk::ext4_root_image(&base, 64);
    let base_hash = disk::sha256(&base);
    let overlay = scratch.path("overlay.qcow2");
    disk::qcow2_overlay(&overlay, &base, "raw");
    let token = token("qcow2");
    boot_disk_root(
        &disk_root_guest(&token).device(&disk::disk_xml(&overlay, "qcow2", "writeback", "vda", "")),
        &token,
    );
    disk::assert_qcow2_clean(&overlay);
    let flat = scratch.path("flat.raw");
    disk::convert_to_raw(&overlay, &flat);
    assert_eq!(disk::ext4_cat(&flat, "/hello").trim(), token);
    disk::assert_ext4_clean(&flat);
    assert_eq!(
        disk::sha256(&base),
        base_hash,
        "the backing file {} changed",
        base.display()
    );
    assert_eq!(
        disk::ext4_cat(&base, "/hello").trim(),
        "",
        "the token reached the backing file"
    );
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn disks_appear_in_target_order_with_size_read_only_flag_and_serial() {
    let scratch = disk::Scratch::new("order");
    let root = scratch.path("root.raw");
    disk::ext4_root_image(&root, 64);
    let data = scratch.path("data.raw");
    disk::raw_image(&data, 64 << 20);
    let data_hash = disk::sha256(&data);
    let token = token("order");
    // Declared out of order: the targets, not the document, decide /dev/vdX.
    let done = boot_disk_root(
        &disk_root_guest(&token)
            .device(&disk::disk_xml(
                &data,
                "raw",
                "none",
                "vdb",
                "<readonly/><serial>VIREO-SER-1</serial>",
            ))
            .device(&disk::disk_xml(&root, "raw", "none", "vda", "")),
        &token,
    );
    let disks = lines(&done.output, "VIREO-L2 DISK");
    assert_eq!(disks.len(), 2, "{disks:?}");
    assert!(disks[0].starts_with("vda size=131072 ro=0"), "{disks:?}");
    assert_eq!(disks[1], "vdb size=131072 ro=1 serial=VIREO-SER-1");
    assert_eq!(line(&done.output, "VIREO-L2 RO-WRITE vdb"), "refused");
    assert_eq!(
        disk::sha256(&data),
        data_hash,
        "the read-only disk's image changed"
    );
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn an_iso_cdrom_mounts_as_iso9660_in_the_guest() {
    let scratch = disk::Scratch::new("cdrom");
    let root = scratch.path("root.raw");
    disk::ext4_root_image(&root, 64);
    let iso = scratch.path("cd.iso");
    disk::iso_image(&iso, "vireo-iso-content");
    let token = token("cdrom");
    let done = boot_disk_root(
        &disk_root_guest(&token)
            .device(&disk::disk_xml(&root, "raw", "none", "vda", ""))
            .device(&disk::cdrom_xml(&iso, "vdb")),
        &token,
    );
    assert_eq!(line(&done.output, "VIREO-L2 RO-WRITE vdb"), "refused");
    assert_eq!(line(&done.output, "VIREO-L2 ISO vdb"), "vireo-iso-content");
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_second_vm_cannot_open_an_image_a_running_vm_holds() {
    let scratch = disk::Scratch::new("lock");
    let image = scratch.path("shared.raw");
    disk::raw_image(&image, 16 << 20);
    let ctl = disk::Vireoctl::new(&scratch);
    let xml = |name: &str| {
        Guest::new("ticks")
            .name(name)
            .device(&disk::disk_xml(&image, "raw", "none", "vda", ""))
            .write_xml(&scratch.dir)
    };
    let (a, b) = ("disk-holder-a", "disk-latecomer-b");
    let started = ctl.create(&xml(a));
    assert!(started.status.success(), "starting {a}: {started:?}");
    let console = ctl.console(a);
    console.wait_for("VIREO-L2 TICK 1", BOOT);
    let refused = ctl.create(&xml(b));
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    let b_ran = ctl.is_running(b);
    ctl.destroy(b);
    assert!(
        !refused.status.success() && !b_ran,
        "{b} started on an image {a} holds: {refused:?}"
    );
    assert!(
        message.contains(a),
        "the refusal does not name {a}: {message}"
    );
    assert!(
        message.contains("vda"),
        "the refusal does not name the disk: {message}"
    );
    ctl.destroy(a);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ctl.is_running(a) {
        assert!(std::time::Instant::now() < deadline, "{a} did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = ctl.create(&xml(b));
    assert!(
        second.status.success(),
        "{b} could not start after {a} stopped: {second:?}"
    );
    ctl.destroy(b);
}

/// Power cuts: the VMM process is killed (SIGKILL) while the guest writes and fsyncs records
/// with O_DIRECT on a cache='none' disk; every record whose fsync had returned (the guest said
/// SYNCED) must be in the image, and a qcow2 image must stay consistent. Trials alternate raw
/// and qcow2; `VIREO_POWERCUT_TRIALS` sets their number (default 5).
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn every_fsynced_write_survives_a_killed_vmm() {
    let trials: u32 = std::env::var("VIREO_POWERCUT_TRIALS")
        .ok()
        .map(|v| v.parse().expect("VIREO_POWERCUT_TRIALS is a number"))
        .unwrap_or(5);
    let scratch = disk::Scratch::new("powercut");
    let ctl = disk::Vireoctl::new(&scratch);
    let mut total = 0;
    for trial in 1..=trials {
        let format = if trial % 2 == 1 { "raw" } else { "qcow2" };
        let image = scratch.path(&format!("cut-{trial}.{format}"));
        if format == "raw" {
            disk::raw_image(&image, 64 << 20);
        } else {
            disk::qcow2_image(&image, 64 << 20);
        }
        let name = format!("powercut-{trial}");
        let xml = Guest::new("fsync-loop")
            .name(&name)
            .device(&disk::disk_xml(&image, format, "none", "vda", ""))
            .write_xml(&scratch.dir);
        let started = ctl.create(&xml);
        assert!(started.status.success(), "starting {name}: {started:?}");
        let pid = ctl.runner_pid(&name);
        let console = ctl.console(&name);
        console.wait_for("VIREO-L2 SYNCED 1", BOOT);
        // 2–8 s of writing, varied from trial to trial.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::thread::sleep(Duration::from_millis(2000 + u64::from(nanos % 6000)));
        disk::kill_hard(pid);
        // What the console had received when the VMM died: nothing can arrive after that.
        std::thread::sleep(Duration::from_millis(200));
        let text = console.text();
        drop(console);
        let synced = lines(&text, "VIREO-L2 SYNCED")
            .iter()
            .filter_map(|n| n.parse::<u64>().ok())
            .max()
            .unwrap_or_else(|| panic!("trial {trial}: no SYNCED line:\n{text}"));
        let raw = if format == "qcow2" {
            disk::assert_qcow2_clean(&image);
            let flat = scratch.path(&format!("cut-{trial}.flat"));
            disk::convert_to_raw(&image, &flat);
            flat
        } else {
            image.clone()
        };
        let missing = disk::missing_records(&raw, synced);
        assert!(
            missing.is_empty(),
            "trial {trial} ({format}): {} of {synced} fsynced records lost, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        eprintln!("power cut {trial}/{trials} ({format}): all {synced} fsynced records present");
        total += synced;
        let _ = std::fs::remove_file(&image);
        let _ = std::fs::remove_file(&raw);
    }
    eprintln!("power cuts: {trials} trials, {total} fsynced records, none lost");
}

#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn the_new_qcow2_disk_the_wizard_makes_is_seen_in_the_guest() {
    use vireo::engine::config::DiskFormat;
    use vireo::launch::new_vm_form::{HostLimits, NewVmForm, StorageKind};
    // The wizard's path: its form with a new 1 GiB qcow2 image, the image made as Create makes
    // it, the definition the form builds; the guest then lists its disks.
    let scratch = disk::Scratch::new("wizard-disk");
    let image = scratch.path("wizard-disk.qcow2");
    let form = NewVmForm {
        name: "wizard-disk".into(),
        storage: StorageKind::NewImage,
        new_image_gib: 1,
        new_image_format: DiskFormat::Qcow2,
        ..NewVmForm::with_defaults(HostLimits::of(linux_support::host()))
    };
    vireo::engine::block::create(&image, DiskFormat::Qcow2, 1 << 30, &mut |_| {})
        .expect("creating the image as the wizard does");
    let domain = form
        .build(
            &vireo::prefs::Prefs::default(),
            linux_support::host(),
            Some(&image),
        )
        .expect("the wizard's definition");
    let xml = domain.to_xml();
    let start = xml.find("<disk").expect("the definition has a disk");
    let end = xml[start..].find("</disk>").expect("a closed <disk>") + start + "</disk>".len();
    let disk_xml = &xml[start..end];
    assert!(
        disk_xml.contains("type='qcow2'") || disk_xml.contains("type=\"qcow2\""),
        "{disk_xml}"
    );
    let done = boot(&Guest::new("disks").device(disk_xml), BOOT);
    assert_eq!(
        done.state,
        VmState::Shutoff(StopReason::GuestPoweroff),
        "{}",
        done.tail(40)
    );
    assert_eq!(
        line(&done.output, "VIREO-L2 DISK"),
        "vda size=2097152 ro=0",
        "{}",
        done.tail(40)
    );
}

// ---- The screen, keyboard and tablet: virtio-gpu and virtio-input, through the runner's
// screenshot, send-key, VNC and screen-channel paths (tests/linux_guest/display.rs) ----

#[path = "linux_guest/display.rs"]
mod display;
