//! Every XML Vireo generates passes libvirt's own schema check (`virt-xml-validate`, Debian
//! package libvirt-clients, which needs xmllint from libxml2-utils).

use std::process::Command;

use vireo::domain::devices::Disk;
use vireo::domain::new_vm::{Boot, NewVm};
use vireo::domain::{Domain, HostFacts, LifecycleEvent, Memory, OsText, Vcpu};
use vireo::prefs::{CpuModePref, Prefs};

mod require_env;
use require_env::skip_or_fail;

fn tool_missing() -> Option<String> {
    for tool in ["virt-xml-validate", "xmllint"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} is not installed (apt-get install libvirt-clients libxml2-utils)"
            ));
        }
    }
    None
}

/// Runs virt-xml-validate; Ok or the tool's complaint.
fn schema_check(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("domain.xml");
    std::fs::write(&path, xml).unwrap();
    let out = Command::new("virt-xml-validate")
        .arg(&path)
        .arg("domain")
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn assert_schema_valid(label: &str, xml: &str) {
    if let Err(complaint) = schema_check(xml) {
        panic!("{label}: virt-xml-validate rejected\n{xml}\n{complaint}");
    }
}

fn generated() -> Vec<(String, Domain)> {
    let host = HostFacts {
        mem_total_kib: Some(16 << 20),
        hardware_kvm: true,
        nearest_usable_model: Some("Skylake-Client-noTSX-IBRS".into()),
        kvm_cpuid: None,
        ..HostFacts::default()
    };
    let boots = [
        Boot::Kernel {
            kernel: "/boot/vmlinuz".into(),
            initrd: Some("/boot/initrd.img".into()),
            cmdline: Some("console=ttyS0 root=/dev/vda".into()),
        },
        Boot::Disk("/var/lib/images/disk & more.qcow2".into()),
    ];
    let mut out = Vec::new();
    for mode in CpuModePref::ALL {
        for (i, boot) in boots.iter().enumerate() {
            let vm = NewVm {
                name: format!("vm-{mode}-{i}"),
                memory_mib: 512,
                vcpus: 2,
                boot: boot.clone(),
            };
            let prefs = Prefs {
                new_vm_cpu_mode: mode,
                ..Prefs::default()
            };
            out.push((
                format!("new VM, {mode}, boot {i}"),
                vm.build(&prefs, &host).unwrap(),
            ));
        }
    }
    out
}

/// Applies every setter the GUI uses.
fn edit(mut d: Domain) -> Domain {
    d.set_title("A title");
    d.set_description("Edited <by> Vireo & tests");
    d.set_memory(Memory::mib(1024));
    d.set_current_memory(Memory::mib(768));
    d.set_vcpu(&Vcpu {
        count: 4,
        placement: Some("static".into()),
        current: Some(2),
        cpuset: None,
    });
    d.set_os_text(OsText::Cmdline, Some("console=ttyS0 quiet"));
    d.set_feature("pae", true);
    d.set_clock_offset("localtime");
    d.set_lifecycle(LifecycleEvent::Crash, "restart");
    d.set_vcpupin(0, "0-1");
    d.set_emulatorpin("2");
    d.set_numatune("strict", "0");
    d.add_device(Disk::file_element(
        "/var/lib/images/data.img",
        "raw",
        "vdb",
        "virtio",
    ));
    d.set_disk_driver("vdb", Some("raw"), Some("none"), Some("native"));
    d
}

#[test]
fn generated_and_edited_xml_passes_virt_xml_validate() {
    if let Some(reason) = tool_missing() {
        return skip_or_fail(reason);
    }
    let mut checked = 0;
    for (label, domain) in generated() {
        assert_schema_valid(&label, &domain.to_xml());
        let edited = edit(domain);
        assert_schema_valid(&format!("{label}, edited"), &edited.to_xml());
        checked += 2;
    }
    eprintln!("virt-xml-validate accepted {checked} generated documents");
}

#[test]
fn edited_oracle_documents_still_pass_virt_xml_validate() {
    if let Some(reason) = tool_missing() {
        return skip_or_fail(reason);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oracle/domains");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return skip_or_fail(format!(
            "{dir} is absent (the libvirt oracle is not on this machine)"
        ));
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    // Every 10th document keeps the test quick while covering many shapes.
    let (mut checked, mut newer) = (0, 0);
    for file in files.iter().step_by(10) {
        let original = std::fs::read_to_string(file).unwrap();
        // The oracle is libvirt 11; Debian's schema may predate some of its elements.
        if schema_check(&original).is_err() {
            newer += 1;
            continue;
        }
        let mut d = Domain::parse(&original).unwrap();
        d.set_title("Edited by Vireo");
        d.set_description("with <markup> & entities");
        d.set_memory(Memory::mib(2048));
        d.set_lifecycle(LifecycleEvent::Poweroff, "destroy");
        d.set_feature("acpi", true);
        assert_schema_valid(&file.display().to_string(), &d.to_xml());
        checked += 1;
    }
    eprintln!(
        "virt-xml-validate accepted {checked} edited oracle documents ({newer} skipped: the \
         installed schema rejects the unedited original too)"
    );
    assert!(checked > 0 || files.is_empty());
}
