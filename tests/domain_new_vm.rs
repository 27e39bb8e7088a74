//! The new-VM builder writes DESIGN.md §2's `<cpu>` for each preference, on any host.

use std::path::PathBuf;

use vireo::cpu::{CpuMap, CpuidData};
use vireo::domain::cpu::{nearest_usable_model, no_64bit_model_reason};
use vireo::domain::new_vm::{Boot, NewVm, cpu_fallback_warning, resolve_cpu_mode};
use vireo::domain::{HostFacts, LifecycleEvent, Memory};
use vireo::prefs::{CpuModePref, Prefs};

fn kernel_vm() -> NewVm {
    NewVm {
        name: "tiny & fast".into(),
        memory_mib: 256,
        vcpus: 2,
        boot: Boot::Kernel {
            kernel: "/boot/vmlinuz".into(),
            initrd: Some("/boot/initrd.img".into()),
            cmdline: Some("console=ttyS0 quiet".into()),
        },
    }
}

fn prefs(mode: CpuModePref) -> Prefs {
    Prefs {
        new_vm_cpu_mode: mode,
        ..Prefs::default()
    }
}

fn host(hardware_kvm: bool, model: Option<&str>) -> HostFacts {
    HostFacts {
        mem_total_kib: Some(8 << 20),
        hardware_kvm,
        nearest_usable_model: model.map(str::to_owned),
        kvm_cpuid: None,
        ..HostFacts::default()
    }
}

#[test]
fn every_cpu_mode_writes_the_documented_cpu_element() {
    let h = host(true, Some("Skylake-Client"));
    let cpu = |mode| kernel_vm().build(&prefs(mode), &h).unwrap().cpu_xml();
    assert_eq!(cpu(CpuModePref::HvDefault), None);
    assert_eq!(
        cpu(CpuModePref::HostModelOnly).as_deref(),
        Some(
            "<cpu mode='custom' match='exact' check='partial'>\n    <model fallback='forbid'>Skylake-Client</model>\n  </cpu>"
        )
    );
    assert_eq!(
        cpu(CpuModePref::HostModel).as_deref(),
        Some("<cpu mode='host-model' check='partial'/>")
    );
    assert_eq!(
        cpu(CpuModePref::HostPassthrough).as_deref(),
        Some("<cpu mode='host-passthrough' check='none'/>")
    );
    assert_eq!(
        cpu(CpuModePref::AppDefault),
        cpu(CpuModePref::HostPassthrough)
    );
}

#[test]
fn app_default_follows_the_kind_of_kvm() {
    assert_eq!(
        resolve_cpu_mode(CpuModePref::AppDefault, &host(true, None)),
        CpuModePref::HostPassthrough
    );
    assert_eq!(
        resolve_cpu_mode(CpuModePref::AppDefault, &host(false, None)),
        CpuModePref::HostModel
    );
    assert_eq!(
        resolve_cpu_mode(CpuModePref::HvDefault, &host(true, None)),
        CpuModePref::HvDefault
    );
    let d = kernel_vm()
        .build(&prefs(CpuModePref::AppDefault), &host(false, None))
        .unwrap();
    assert_eq!(
        d.cpu_xml().as_deref(),
        Some("<cpu mode='host-model' check='partial'/>")
    );
}

#[test]
fn nearest_model_without_a_usable_model_falls_back_to_host_model_and_says_why() {
    let h = host(true, None);
    let d = kernel_vm()
        .build(&prefs(CpuModePref::HostModelOnly), &h)
        .unwrap();
    assert_eq!(
        d.cpu_xml().as_deref(),
        Some("<cpu mode='host-model' check='partial'/>")
    );
    assert_eq!(
        resolve_cpu_mode(CpuModePref::HostModelOnly, &h),
        CpuModePref::HostModel
    );
    let warning = cpu_fallback_warning(CpuModePref::HostModelOnly, &h).unwrap();
    assert!(
        warning.contains("long mode") && warning.contains("host-model"),
        "{warning}"
    );
    // Honoured choices say nothing.
    assert_eq!(cpu_fallback_warning(CpuModePref::HostModel, &h), None);
    let usable = host(true, Some("EPYC"));
    assert_eq!(
        cpu_fallback_warning(CpuModePref::HostModelOnly, &usable),
        None
    );
}

fn pvm_kvm_dump() -> CpuidData {
    let path = format!(
        "{}/tests/data/pvm-amd-epyc-milan-kvm.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    CpuidData::from_xml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// This build machine's KVM (PVM) lacks SSE3, so every 64-bit model is blocked and only
/// 486 … pentium3 are usable; "Nearest CPU model" once picked pentium3, which has no long
/// mode, and a 64-bit kernel could not boot.
#[test]
fn the_nearest_model_has_long_mode_or_there_is_none() {
    let map = CpuMap::builtin().unwrap();
    let kvm = pvm_kvm_dump();
    assert_eq!(nearest_usable_model(&map, &kvm), None);
    let reason = no_64bit_model_reason(&map, &kvm).unwrap();
    assert!(reason.contains("pni"), "{reason}");
    // With SSE3 a 64-bit model qualifies, and whichever it is has long mode.
    let mut with_sse3 = kvm.clone();
    vireo::cpu::set_feature(&map, &mut with_sse3, "pni", true).unwrap();
    let model = nearest_usable_model(&map, &with_sse3).expect("a 64-bit model");
    assert!(
        map.model(&model)
            .unwrap()
            .features()
            .iter()
            .any(|f| f == "lm"),
        "{model} has no long mode"
    );
    assert_eq!(no_64bit_model_reason(&map, &with_sse3), None);
}

#[test]
fn kernel_boot_document_is_complete() {
    let d = kernel_vm()
        .build(&prefs(CpuModePref::HvDefault), &host(true, None))
        .unwrap();
    assert_eq!(d.name().as_deref(), Some("tiny & fast"));
    assert!(uuid::Uuid::parse_str(&d.uuid().unwrap()).is_ok());
    assert_eq!(d.memory().unwrap(), Some(Memory::kib(256 * 1024)));
    assert_eq!(d.vcpu().unwrap().unwrap().count, 2);
    let os = d.os();
    assert_eq!(
        (os.os_type.as_deref(), os.arch.as_deref()),
        (Some("hvm"), Some("x86_64"))
    );
    assert_eq!(os.kernel.as_deref(), Some("/boot/vmlinuz"));
    assert_eq!(os.initrd.as_deref(), Some("/boot/initrd.img"));
    assert_eq!(os.cmdline.as_deref(), Some("console=ttyS0 quiet"));
    assert_eq!(
        d.lifecycle(LifecycleEvent::Poweroff).as_deref(),
        Some("destroy")
    );
    assert_eq!(
        d.lifecycle(LifecycleEvent::Reboot).as_deref(),
        Some("restart")
    );
    assert_eq!(
        d.lifecycle(LifecycleEvent::Crash).as_deref(),
        Some("destroy")
    );
    let chars = d.char_devices();
    assert_eq!(chars.len(), 2);
    assert_eq!(chars[1].target_type.as_deref(), Some("serial"));
    assert!(d.disks().is_empty());
}

#[test]
fn disk_boot_attaches_the_image() {
    let vm = NewVm {
        boot: Boot::Disk(PathBuf::from("/images/it's.qcow2")),
        ..kernel_vm()
    };
    let d = vm
        .build(&prefs(CpuModePref::HostModel), &host(true, None))
        .unwrap();
    let disk = &d.disks()[0];
    assert_eq!(disk.source.as_deref(), Some("/images/it's.qcow2"));
    assert_eq!(disk.driver_type.as_deref(), Some("qcow2"));
    assert_eq!(disk.target_dev.as_deref(), Some("vda"));
    assert_eq!(d.os().boot_order, ["hd"]);
    assert_eq!(d.os().kernel, None);
}

#[test]
fn invalid_answers_are_refused() {
    let vm = NewVm {
        vcpus: 0,
        ..kernel_vm()
    };
    let err = vm
        .build(&prefs(CpuModePref::HvDefault), &host(true, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("<vcpu>: is 0"), "{err}");
}
