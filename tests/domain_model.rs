//! Typed views: getters read what libvirt wrote, setters change only what they touch.

use vireo::domain::{Domain, LifecycleEvent, Memory, OsText, Vcpu};

const XML: &str = r#"<domain type='kvm' xmlns:foo='urn:foo'>
  <name>demo</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <!-- keep me -->
  <memory unit='GiB'>2</memory>
  <currentMemory unit='MB'>1000</currentMemory>
  <vcpu placement='static' current='1'>2</vcpu>
  <cputune>
    <vcpupin vcpu='0' cpuset='1'/>
    <emulatorpin cpuset='2-3'/>
    <iothreadpin iothread='1' cpuset='4'/>
  </cputune>
  <numatune>
    <memory mode='strict' nodeset='0'/>
  </numatune>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/boot/vmlinuz</kernel>
    <cmdline>console=ttyS0</cmdline>
    <boot dev='hd'/>
    <boot dev='cdrom'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native'/>
      <source file='/var/lib/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:00:00:01'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/></source></hostdev>
    <graphics type='vnc' port='-1'/>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='virtio'/>
  </devices>
  <foo:extra a="b"/>
</domain>
"#;

#[test]
fn getters_read_every_section() {
    let d = Domain::parse(XML).unwrap();
    assert_eq!(d.name().as_deref(), Some("demo"));
    assert_eq!(d.memory().unwrap().unwrap().bytes(), Some(2 << 30));
    assert_eq!(d.current_memory().unwrap().unwrap().to_kib(), Some(976_563));
    let vcpu = d.vcpu().unwrap().unwrap();
    assert_eq!((vcpu.count, vcpu.current), (2, Some(1)));
    let os = d.os();
    assert_eq!(os.kernel.as_deref(), Some("/boot/vmlinuz"));
    assert_eq!(os.machine.as_deref(), Some("pc"));
    assert_eq!(os.boot_order, ["hd", "cdrom"]);
    assert_eq!(d.features(), ["acpi", "apic"]);
    assert_eq!(
        d.cpu_xml().as_deref(),
        Some("<cpu mode='host-passthrough'/>")
    );
    assert_eq!(
        d.lifecycle(LifecycleEvent::Reboot).as_deref(),
        Some("restart")
    );
    let tune = d.cputune().unwrap();
    assert_eq!(tune.vcpupin[0].cpuset, "1");
    assert_eq!(tune.emulatorpin.unwrap().cpuset, "2-3");
    assert_eq!(tune.iothreadpin[0].id, Some(1));
    assert_eq!(d.numatune().unwrap().mode.as_deref(), Some("strict"));
    let disk = &d.disks()[0];
    assert_eq!(disk.cache.as_deref(), Some("none"));
    assert_eq!(disk.io.as_deref(), Some("native"));
    assert_eq!(disk.source.as_deref(), Some("/var/lib/a.qcow2"));
    assert_eq!(disk.target_bus.as_deref(), Some("virtio"));
    assert_eq!(d.interfaces()[0].source.as_deref(), Some("default"));
    assert_eq!(d.char_devices().len(), 2);
    assert_eq!(d.memballoon_model().as_deref(), Some("virtio"));
    assert_eq!(d.rngs()[0].backend.as_deref(), Some("/dev/urandom"));
    assert_eq!(d.graphics()[0].graphics_type.as_deref(), Some("vnc"));
    assert!(d.hostdevs_xml()[0].contains("vendor id='0x1234'"));
    assert_eq!(d.to_xml(), XML, "parse + serialize must be byte-identical");
}

#[test]
fn setters_edit_in_place_and_keep_everything_else() {
    let mut d = Domain::parse(XML).unwrap();
    d.set_name("renamed");
    d.set_memory(Memory::mib(4096));
    d.set_vcpu(&Vcpu {
        count: 4,
        placement: Some("static".into()),
        current: None,
        cpuset: None,
    });
    d.set_os_text(OsText::Initrd, Some("/boot/initrd.img"));
    d.set_os_text(OsText::Cmdline, None);
    d.set_boot_order(&["network"]);
    d.set_feature("pae", true);
    d.set_feature("apic", false);
    d.set_cpu_xml(Some("<cpu mode='host-model'/>")).unwrap();
    d.set_lifecycle(LifecycleEvent::Crash, "preserve");
    d.set_vcpupin(1, "5");
    assert!(d.set_disk_driver("vda", Some("raw"), Some("writeback"), None));
    assert!(d.set_disk_source("vda", "/tmp/b.img"));
    d.set_iothreadpin(1, "6");
    d.set_iothreadpin(2, "7");
    d.set_emulator("/usr/libexec/vireo");
    assert!(d.set_interface_model("52:54:00:00:00:01", "e1000"));
    assert!(!d.set_interface_model("52:54:00:00:00:99", "e1000"));
    d.set_memballoon_model("none");
    d.remove_devices("graphics");
    let out = d.to_xml();
    let again = Domain::parse(&out).unwrap();
    assert_eq!(again.name().as_deref(), Some("renamed"));
    assert_eq!(again.memory().unwrap(), Some(Memory::mib(4096)));
    assert_eq!(again.vcpu().unwrap().unwrap().current, None);
    assert_eq!(again.os().initrd.as_deref(), Some("/boot/initrd.img"));
    assert_eq!(again.os().cmdline, None);
    assert_eq!(again.os().boot_order, ["network"]);
    assert_eq!(again.features(), ["acpi", "pae"]);
    assert_eq!(again.cputune().unwrap().vcpupin.len(), 2);
    let tune = again.cputune().unwrap();
    assert_eq!(tune.iothreadpin.len(), 2);
    assert_eq!(tune.iothreadpin[0].cpuset, "6");
    assert_eq!(again.emulator().as_deref(), Some("/usr/libexec/vireo"));
    assert_eq!(again.interfaces()[0].model.as_deref(), Some("e1000"));
    assert_eq!(again.memballoon_model().as_deref(), Some("none"));
    assert!(again.graphics().is_empty());
    let disk = &again.disks()[0];
    assert_eq!(disk.driver_type.as_deref(), Some("raw"));
    assert_eq!(disk.io, None);
    assert_eq!(disk.source.as_deref(), Some("/tmp/b.img"));
    // Untouched parts keep their exact text.
    for kept in [
        "  <!-- keep me -->\n",
        "<foo:extra a=\"b\"/>",
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/></source></hostdev>",
        "    <interface type='network'>\n      <mac address='52:54:00:00:00:01'/>",
        "  <currentMemory unit='MB'>1000</currentMemory>\n",
    ] {
        assert!(out.contains(kept), "lost {kept:?} in\n{out}");
    }
    assert!(
        out.contains("    <initrd>/boot/initrd.img</initrd>\n"),
        "{out}"
    );
}

#[test]
fn bad_values_name_the_element() {
    let d =
        Domain::parse("<domain><memory unit='KiBs'>1</memory><vcpu>two</vcpu></domain>").unwrap();
    let err = d.memory().unwrap_err().to_string();
    assert!(
        err.contains("<memory>") && err.contains("unknown unit 'KiBs'"),
        "{err}"
    );
    let err = d.vcpu().unwrap_err().to_string();
    assert!(err.contains("<vcpu>") && err.contains("'two'"), "{err}");
    let err = Domain::parse("<network/>").unwrap_err().to_string();
    assert!(err.contains("must be <domain>"), "{err}");
}
