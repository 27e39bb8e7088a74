use super::*;

const HOST: HostLimits = HostLimits {
    memory_mib: 8192,
    cpus: 4,
};

#[test]
fn defaults_fit_the_host() {
    let small = NewVmForm::with_defaults(HostLimits {
        memory_mib: 512,
        cpus: 1,
    });
    assert_eq!((small.memory_mib, small.vcpus), (256, 1));
    let big = NewVmForm::with_defaults(HOST);
    assert_eq!((big.memory_mib, big.vcpus), (1024, 2));
    assert_eq!(big.problem(1, HOST, None), None);
}

#[test]
fn suggested_names_come_from_the_boot_file_and_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(dir.path().join("domains")).unwrap();
    let mut form = NewVmForm {
        kernel: "/boot/vmlinuz-6.1.0-13-amd64".into(),
        ..NewVmForm::default()
    };
    assert_eq!(form.suggest_name(Some(&store)), "linux-6.1.0-13-amd64");
    form.kernel = "/srv/probe.elf".into();
    assert_eq!(form.suggest_name(Some(&store)), "probe");
    form.boot = BootKind::DiskImage;
    form.boot_image = "/images/My Debian 12.qcow2".into();
    assert_eq!(form.suggest_name(None), "My-Debian-12");
    form.boot_image = String::new();
    assert_eq!(form.suggest_name(None), "vm");
    let xml = |name: &str| {
        format!(
            "<domain type='kvm'><name>{name}</name><memory unit='KiB'>65536</memory><os><type arch='x86_64'>hvm</type></os></domain>"
        )
    };
    store.define(&xml("vm")).unwrap();
    store.define(&xml("vm-2")).unwrap();
    assert_eq!(form.suggest_name(Some(&store)), "vm-3");
    form.name = form.suggest_name(Some(&store));
    assert!(
        form.problem(3, HOST, Some(&store)).is_none(),
        "the suggestion is valid"
    );
}

#[test]
fn each_step_names_what_is_missing() {
    let mut form = NewVmForm::with_defaults(HOST);
    assert_eq!(
        form.problem(0, HOST, None),
        Some(FormProblem::MissingFile(FileRole::Kernel))
    );
    form.kernel = "/definitely/not/here".into();
    assert!(
        form.problem(0, HOST, None)
            .unwrap()
            .to_string()
            .contains("/definitely/not/here")
    );
    form.kernel = "/etc/passwd".into();
    assert_eq!(
        form.problem(0, HOST, None),
        Some(FormProblem::Checking("/etc/passwd".into())),
        "a kernel is loaded before step 1 can be left"
    );
    let keys = form.boot_files_to_check(HOST);
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let error =
            crate::launch::boot_check::check_boot_files(Path::new(&key.0), None, key.2 << 20)
                .map_err(|e| e.to_string());
        form.boot_checks.insert(key, error);
    }
    assert!(
        matches!(form.problem(0, HOST, None), Some(FormProblem::BootFilesUnusable(e)) if e.contains("/etc/passwd")),
        "/etc/passwd is refused as a kernel"
    );
    form.boot_checks.clear();
    form.boot_checks
        .insert(("/etc/passwd".into(), String::new(), 8192), Ok(()));
    assert_eq!(form.problem(0, HOST, None), None);
    form.boot_checks
        .insert(("/etc/passwd".into(), String::new(), 1024), Ok(()));
    form.memory_mib = 9000;
    assert_eq!(
        form.problem(1, HOST, None),
        Some(FormProblem::MemoryOverHost { host_mib: 8192 })
    );
    form.memory_mib = 512;
    form.vcpus = 5;
    assert_eq!(
        form.problem(1, HOST, None),
        Some(FormProblem::VcpusOutOfRange { max: 4 })
    );
    form.storage = StorageKind::ExistingImage;
    assert!(form.problem(2, HOST, None).is_some());
    form.storage = StorageKind::NewImage;
    assert_eq!(form.problem(2, HOST, None), None);
    assert!(form.problem(3, HOST, None).is_some(), "empty name");
    form.name = "a/b".into();
    assert!(form.problem(3, HOST, None).is_some());
    form.name = "good-name".into();
    assert_eq!(form.problem(3, HOST, None), None);
}

#[test]
fn existing_images_wait_for_inspection_and_must_match_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.qcow2");
    std::fs::write(&image, b"not qcow2").unwrap();
    let path = image.to_string_lossy().into_owned();
    let mut form = NewVmForm::with_defaults(HOST);
    form.storage = StorageKind::ExistingImage;
    form.existing_image = path.clone();
    assert_eq!(form.images_to_check(), std::slice::from_ref(&path));
    assert_eq!(
        form.problem(2, HOST, None),
        Some(FormProblem::Checking(path.clone()))
    );
    form.images.insert(path.clone(), Ok(DiskFormat::Raw));
    assert!(form.images_to_check().is_empty());
    assert_eq!(
        form.problem(2, HOST, None),
        Some(FormProblem::FormatMismatch {
            path: path.clone(),
            named: DiskFormat::Qcow2,
            found: DiskFormat::Raw
        })
    );
    form.images.insert(path.clone(), Err("broken".into()));
    assert_eq!(
        form.problem(2, HOST, None),
        Some(FormProblem::ImageUnusable("broken".into()))
    );
    form.images.insert(path, Ok(DiskFormat::Qcow2));
    assert_eq!(form.problem(2, HOST, None), None);
}

#[test]
fn the_boot_image_is_not_also_the_existing_disk() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    std::fs::write(&image, b"raw").unwrap();
    let path = image.to_string_lossy().into_owned();
    let mut form = NewVmForm::with_defaults(HOST);
    form.boot = BootKind::DiskImage;
    form.boot_image = path.clone();
    form.storage = StorageKind::ExistingImage;
    // Another spelling of the same file.
    form.existing_image = format!("{}/./disk.img", dir.path().display());
    form.images.insert(path.clone(), Ok(DiskFormat::Raw));
    form.images
        .insert(form.existing_image.clone(), Ok(DiskFormat::Raw));
    assert_eq!(
        form.problem(2, HOST, None),
        Some(FormProblem::SameImage(form.existing_image.clone()))
    );
}

#[test]
fn the_definition_has_each_disk_with_its_real_format() {
    use crate::domain::validate::HostFacts;
    let prefs = Prefs {
        new_vm_cpu_mode: CpuModePref::HvDefault,
        ..Prefs::default()
    };
    let host = HostFacts::default();
    let mut form = NewVmForm::with_defaults(HOST);
    form.name = "vm".into();
    form.boot = BootKind::DiskImage;
    form.boot_image = "/media/debian.iso".into();
    form.images
        .insert("/media/debian.iso".into(), Ok(DiskFormat::Raw));
    form.storage = StorageKind::NewImage;
    let new = Path::new("/data/images/vm.qcow2");
    let planned = form.planned_disks(Some(new));
    assert_eq!(planned.len(), 2);
    assert!(planned[0].cdrom && !planned[0].new);
    assert_eq!(planned[1].target, "vdb");
    assert_eq!(planned[1].format, DiskFormat::Qcow2);
    let domain = form.build(&prefs, &host, Some(new)).unwrap();
    let disks = domain.disks();
    assert_eq!(disks.len(), 2, "{}", domain.to_xml());
    assert_eq!(disks[0].device.as_deref(), Some("cdrom"));
    assert!(disks[0].readonly);
    assert_eq!(disks[0].target_dev.as_deref(), Some("vda"));
    assert_eq!(disks[1].driver_type.as_deref(), Some("qcow2"));
    assert_eq!(disks[1].source.as_deref(), Some("/data/images/vm.qcow2"));
    assert!(domain.to_xml().contains("<boot dev='cdrom'/>"));
    // A qcow2 image named .img is recorded as qcow2: the content decides, not the name.
    form.boot_image = "/images/old.img".into();
    form.images
        .insert("/images/old.img".into(), Ok(DiskFormat::Qcow2));
    form.storage = StorageKind::None;
    let domain = form.build(&prefs, &host, None).unwrap();
    let disks = domain.disks();
    assert_eq!(disks.len(), 1);
    assert_eq!(disks[0].driver_type.as_deref(), Some("qcow2"));
    assert_eq!(disks[0].device.as_deref(), Some("disk"));
    // A VM the wizard makes has never run: its details offer "Begin Installation".
    assert!(domain.awaits_first_start());
}

#[test]
fn free_targets_fill_gaps_in_linux_order() {
    let domain = Domain::parse(
        "<domain type='kvm'><name>d</name><devices><disk type='file'><target dev='vda' bus='virtio'/></disk><disk type='file'><target dev='sdc' bus='sata'/></disk></devices></domain>",
    )
    .unwrap();
    assert_eq!(free_target(&domain), "vdb");
    let empty = Domain::parse("<domain type='kvm'><name>e</name></domain>").unwrap();
    assert_eq!(free_target(&empty), "vda");
}

#[test]
fn the_network_choice_becomes_a_passt_card_or_none() {
    use crate::domain::validate::HostFacts;
    use crate::launch::nics::{domain_nics, parse_mac};
    let prefs = Prefs {
        new_vm_cpu_mode: CpuModePref::HvDefault,
        ..Prefs::default()
    };
    assert_eq!(NetworkChoice::default_for(true), NetworkChoice::User);
    assert_eq!(NetworkChoice::default_for(false), NetworkChoice::None);
    let mut form = NewVmForm::with_defaults(HOST);
    assert_eq!(form.network, NetworkChoice::User);
    form.name = "vm".into();
    form.kernel = "/boot/vmlinuz".into();
    let domain = form.build(&prefs, &HostFacts::default(), None).unwrap();
    let nics = domain.interfaces();
    assert_eq!(nics.len(), 1, "{}", domain.to_xml());
    assert_eq!(nics[0].if_type.as_deref(), Some("user"));
    assert_eq!(nics[0].backend.as_deref(), Some("passt"));
    assert_eq!(nics[0].model.as_deref(), Some("virtio"));
    let mac = nics[0].mac.clone().expect("the MAC is written down");
    assert_eq!(&parse_mac(&mac).unwrap()[..3], &[0x52, 0x54, 0x00]);
    let plans = domain_nics(&domain).expect("start takes the card");
    assert!(!plans[0].generated_mac);
    form.network = NetworkChoice::None;
    let domain = form.build(&prefs, &HostFacts::default(), None).unwrap();
    assert!(domain.interfaces().is_empty(), "{}", domain.to_xml());
}

#[test]
fn a_new_vm_gets_a_screen_keyboard_and_tablet_that_start_maps() {
    use crate::domain::validate::HostFacts;
    use crate::engine::config::InputKind;
    let prefs = Prefs {
        new_vm_cpu_mode: CpuModePref::HvDefault,
        ..Prefs::default()
    };
    let mut form = NewVmForm::with_defaults(HOST);
    form.name = "vm".into();
    form.kernel = "/boot/vmlinuz".into();
    let domain = form.build(&prefs, &HostFacts::default(), None).unwrap();
    let xml = domain.to_xml();
    assert!(xml.contains("<model type='virtio'/>"), "{xml}");
    let mapped = crate::launch::display::domain_display(&domain).expect("start takes them");
    assert!(mapped.display.is_some(), "{xml}");
    assert_eq!(mapped.inputs, [InputKind::Keyboard, InputKind::Tablet]);
    assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
    let problems = crate::domain::validate::document_problems(&domain);
    assert!(problems.is_empty(), "{problems:?}");
}

/// A VM for another host names that host's files: a path this computer cannot open is taken
/// (only an empty one is refused), and this computer's VM names do not count there.
#[test]
fn files_on_another_host_are_required_not_read() {
    let mut form = NewVmForm::with_defaults(HOST);
    form.kernel = "/srv/remote-only/vmlinuz".into();
    assert!(matches!(
        form.problem(0, HOST, None),
        Some(FormProblem::Unreadable { .. })
    ));
    form.files_elsewhere = true;
    assert_eq!(form.problem(0, HOST, None), None);
    // Nor is the kernel loaded here to check that it fits the memory.
    assert_eq!(form.problem(1, HOST, None), None);
    form.kernel = " ".into();
    assert!(matches!(
        form.problem(0, HOST, None),
        Some(FormProblem::MissingFile(_))
    ));
    form.storage = StorageKind::ExistingImage;
    form.existing_image = "/var/lib/libvirt/images/remote.qcow2".into();
    assert_eq!(form.problem(2, HOST, None), None);
}
