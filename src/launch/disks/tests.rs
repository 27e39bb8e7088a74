use super::*;
use crate::engine::block::BlockError;

/// A `<domain>` with these `<disk>` elements.
fn domain(disks: &str) -> Domain {
    Domain::parse(&format!(
        "<domain type='kvm'><name>m</name><memory unit='MiB'>64</memory>\
         <devices>{disks}</devices></domain>"
    ))
    .unwrap()
}

fn file_disk(path: &str, target: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{path}'/><target dev='{target}' bus='virtio'/></disk>"
    )
}

fn mapped(disks: &str) -> MappedDisks {
    domain_disks(&domain(disks)).unwrap_or_else(|p| panic!("{disks}: {p:?}"))
}

/// The one problem `disks` has, as text.
fn problem(disks: &str) -> String {
    let problems = domain_disks(&domain(disks)).expect_err(disks);
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems[0].to_string()
}

#[test]
fn target_names_follow_linux_order() {
    assert_eq!(target_index("vda"), Some(0));
    assert_eq!(target_index("vdz"), Some(25));
    assert_eq!(target_index("vdaa"), Some(26));
    assert_eq!(target_index("vdaz"), Some(51));
    assert_eq!(target_index("vdba"), Some(52));
    assert_eq!(target_index("sdb"), Some(1));
    assert_eq!(target_index("vd"), None);
    assert_eq!(target_index("vd1"), None);
    assert_eq!(target_index("nvme0n1"), None);
    for index in [0, 1, 25, 26, 27, 51, 52, 701, 702] {
        assert_eq!(target_index(&guest_name(index)), Some(index), "{index}");
    }
    assert_eq!(guest_name(26), "vdaa");
    assert_eq!(guest_name(702), "vdaaa");
}

#[test]
fn disks_are_sorted_by_target_not_document_order() {
    let targets = ["vdaa", "vdb", "vdz", "vda", "vdab", "vdc"];
    let xml: String = targets
        .iter()
        .map(|t| file_disk(&format!("/img/{t}.raw"), t))
        .collect();
    let got: Vec<String> = mapped(&xml).disks.into_iter().map(|d| d.target).collect();
    assert_eq!(got, ["vda", "vdb", "vdc", "vdz", "vdaa", "vdab"]);
}

#[test]
fn a_plain_disk_gets_libvirts_defaults() {
    let m = mapped(
        "<disk type='file' device='disk'><source file='/img/a.raw'/>\
         <target dev='vda' bus='virtio'/></disk>",
    );
    assert_eq!(
        m.disks,
        [DiskConfig {
            target: "vda".into(),
            path: "/img/a.raw".into(),
            format: DiskFormat::Raw,
            readonly: false,
            cache: CacheMode::Writeback,
            io: IoMode::Threads,
            discard: false,
            serial: None,
            cdrom: false,
        }]
    );
    assert!(m.warnings.is_empty());
}

#[test]
fn driver_settings_reach_the_config() {
    let m = mapped(
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' \
         io='native' discard='unmap'/><source file='/img/a.qcow2'/>\
         <target dev='vda' bus='virtio'/><readonly/><serial>WD-1234</serial></disk>\
         <disk type='block' device='disk'><driver type='raw' cache='default' io='default'/>\
         <source dev='/dev/sdz'/><target dev='vdb'/></disk>\
         <disk type='file'><driver cache='writethrough'/><source file='/img/c'/>\
         <target dev='vdc' bus='virtio'/></disk>\
         <disk type='file'><driver cache='unsafe' io='threads' discard='ignore'/>\
         <source file='/img/d'/><target dev='vdd' bus='virtio'/></disk>",
    );
    let [a, b, c, d] = &m.disks[..] else {
        panic!("{m:?}")
    };
    assert_eq!(a.format, DiskFormat::Qcow2);
    assert_eq!(a.cache, CacheMode::None);
    assert_eq!(a.io, IoMode::Native);
    assert!(a.discard && a.readonly && !a.cdrom);
    assert_eq!(a.serial.as_deref(), Some("WD-1234"));
    assert_eq!(
        b.path,
        Path::new("/dev/sdz"),
        "a block device is a raw image path"
    );
    assert_eq!(b.cache, CacheMode::Writeback, "default is writeback");
    assert_eq!(b.io, IoMode::Threads, "default is threads");
    assert!(!b.readonly);
    assert_eq!(c.cache, CacheMode::Writethrough);
    assert_eq!(d.cache, CacheMode::Unsafe);
    assert!(!d.discard);
}

#[test]
fn a_cdrom_is_a_read_only_virtio_disk_with_a_warning() {
    let m = mapped(&format!(
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>\
         <source file='/iso/debian.iso'/><target dev='sda' bus='sata'/><readonly/></disk>\
         {}<disk type='file' device='cdrom'><target dev='sdb' bus='sata'/></disk>",
        file_disk("/img/root.raw", "vda")
    ));
    assert_eq!(m.disks.len(), 2, "the empty drive is skipped: {m:?}");
    assert_eq!(m.disks[0].target, "vda", "virtio disks first");
    let cd = &m.disks[1];
    assert!(cd.cdrom && cd.readonly);
    assert_eq!(cd.target, "sda");
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("disk sda (/iso/debian.iso)")
            && m.warnings[0].contains("/dev/vdb")
            && m.warnings[0].contains("not as a CD drive"),
        "{}",
        m.warnings[0]
    );
}

#[test]
fn a_cdrom_without_readonly_is_still_read_only() {
    let m = mapped(
        "<disk type='file' device='cdrom'><source file='/iso/x.iso'/>\
         <target dev='vda' bus='virtio'/></disk>",
    );
    assert!(m.disks[0].readonly);
    assert!(m.warnings[0].contains("/dev/vda"), "{:?}", m.warnings);
}

#[test]
fn disks_on_other_buses_are_refused_with_the_fix() {
    for bus in ["sata", "scsi", "ide", "usb"] {
        let p = problem(&format!(
            "<disk type='file' device='disk'><source file='/img/a.raw'/>\
             <target dev='sda' bus='{bus}'/></disk>"
        ));
        assert!(p.starts_with("disk sda (/img/a.raw): "), "{p}");
        assert!(
            p.contains(&format!("bus '{bus}'"))
                && p.contains(
                    "Vireo attaches disks on virtio only: set <target dev='vdX' bus='virtio'/>"
                ),
            "{p}"
        );
    }
    let p = problem(
        "<disk type='file' device='disk'><source file='/img/a.raw'/><target dev='sda'/></disk>",
    );
    assert!(p.contains("virtio only"), "no bus and not vdX: {p}");
}

#[test]
fn unsupported_types_devices_and_formats_say_so() {
    let cases = [
        (
            "<disk type='network' device='disk'><source protocol='nbd' name='x'/>\
             <target dev='vda' bus='virtio'/></disk>",
            "type='network' disks are not supported yet",
        ),
        (
            "<disk type='volume' device='disk'><source pool='p' volume='v'/>\
             <target dev='vda' bus='virtio'/></disk>",
            "type='volume' disks are not supported yet",
        ),
        (
            "<disk type='dir' device='disk'><source dir='/srv'/>\
             <target dev='vda' bus='virtio'/></disk>",
            "type='dir' disks are not supported yet",
        ),
        (
            "<disk type='file' device='floppy'><source file='/img/f.img'/>\
             <target dev='fda' bus='fdc'/></disk>",
            "device='floppy' is not supported",
        ),
        (
            "<disk type='block' device='lun'><source dev='/dev/sdb'/>\
             <target dev='sda' bus='scsi'/></disk>",
            "device='lun' is not supported",
        ),
        (
            "<disk type='file' device='disk'><driver type='vmdk'/><source file='/img/a.vmdk'/>\
             <target dev='vda' bus='virtio'/></disk>",
            "<driver type='vmdk'> is not supported: Vireo opens raw and qcow2 images",
        ),
        (
            "<disk type='file' device='disk'><driver type='vdi'/><source file='/img/a.vdi'/>\
             <target dev='vda' bus='virtio'/></disk>",
            "<driver type='vdi'> is not supported",
        ),
        (
            "<disk type='file' device='disk'><driver cache='directsync'/>\
             <source file='/img/a'/><target dev='vda' bus='virtio'/></disk>",
            "cache='directsync'> is not supported yet: use cache='none'",
        ),
        (
            "<disk type='file' device='disk'><driver cache='fast'/>\
             <source file='/img/a'/><target dev='vda' bus='virtio'/></disk>",
            "cache='fast'> is not a cache mode",
        ),
        (
            "<disk type='file' device='disk'><driver io='aio'/>\
             <source file='/img/a'/><target dev='vda' bus='virtio'/></disk>",
            "io='aio'> is not an I/O mode",
        ),
        (
            "<disk type='file' device='disk'><driver discard='trim'/>\
             <source file='/img/a'/><target dev='vda' bus='virtio'/></disk>",
            "discard='trim'> is not a discard mode",
        ),
    ];
    for (xml, expected) in cases {
        let p = problem(xml);
        assert!(p.contains(expected), "{xml}\n{p}");
        assert!(p.starts_with("disk "), "{p}");
    }
}

#[test]
fn sources_must_be_present_and_absolute() {
    let p = problem("<disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>");
    assert!(
        p.starts_with("disk vda (no source): no <source>; add <source file="),
        "{p}"
    );
    let p = problem(&file_disk("images/a.raw", "vdb"));
    assert!(
        p.contains("disk vdb (images/a.raw)") && p.contains("relative") && p.contains("absolute"),
        "{p}"
    );
    let p = problem("<disk type='file' device='disk'><source file='/img/a'/></disk>");
    assert!(p.contains("disk ? (/img/a): no <target dev>"), "{p}");
}

#[test]
fn a_target_used_twice_names_both_disks() {
    let p = problem(&format!(
        "{}{}",
        file_disk("/img/one.raw", "vda"),
        file_disk("/img/two.raw", "vda")
    ));
    assert!(
        p.contains("disk vda (/img/two.raw)") && p.contains("/img/one.raw"),
        "{p}"
    );
}

#[test]
fn one_image_on_two_disks_only_when_both_are_read_only() {
    let p = problem(&format!(
        "{}{}",
        file_disk("/img/same.raw", "vda"),
        file_disk("/img/same.raw", "vdb")
    ));
    assert!(
        p.starts_with("disk vdb (/img/same.raw): the image is also disk vda's"),
        "{p}"
    );
    let cdrom = "<disk type='file' device='cdrom'><source file='/img/same.raw'/>\
                 <target dev='vdc' bus='virtio'/></disk>";
    let p = problem(&format!("{}{cdrom}", file_disk("/img/same.raw", "vda")));
    assert!(p.contains("disk vdc") && p.contains("disk vda's"), "{p}");
    let readonly = file_disk("/img/same.raw", "vda").replace("</disk>", "<readonly/></disk>");
    assert_eq!(mapped(&format!("{readonly}{cdrom}")).disks.len(), 2);
}

#[test]
fn virtio_targets_must_be_vd_names() {
    let p = problem(
        "<disk type='file' device='disk'><source file='/img/a'/>\
         <target dev='sda' bus='virtio'/></disk>",
    );
    assert!(p.contains("not a virtio disk name; name it vda"), "{p}");
}

#[test]
fn serials_longer_than_twenty_bytes_are_refused() {
    let serial = |s: &str| {
        format!(
            "<disk type='file' device='disk'><source file='/img/a'/>\
             <target dev='vda' bus='virtio'/><serial>{s}</serial></disk>"
        )
    };
    let twenty = "A".repeat(20);
    assert_eq!(
        mapped(&serial(&twenty)).disks[0].serial.as_deref(),
        Some(twenty.as_str())
    );
    let p = problem(&serial(&"B".repeat(21)));
    assert!(p.contains("is 21 bytes") && p.contains("at most 20"), "{p}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let problems = domain_disks(&domain(&format!(
        "{}{}<disk type='network'><target dev='vdc' bus='virtio'/></disk>",
        file_disk("rel.raw", "vda"),
        file_disk("/img/ok.raw", "vdb")
    )))
    .unwrap_err();
    let targets: Vec<&str> = problems.iter().map(|p| p.target.as_str()).collect();
    assert_eq!(targets, ["vda", "vdc"]);
    let (errors, warnings) = disk_host_problems(&domain(&file_disk("rel.raw", "vda")));
    assert_eq!(errors.len(), 1);
    assert!(warnings.is_empty());
    assert!(
        errors[0].to_string().starts_with("<disk>: "),
        "{}",
        errors[0]
    );
}

#[test]
fn an_in_use_error_names_the_vm_holding_the_image() {
    #[derive(Debug, thiserror::Error)]
    #[error("start failed")]
    struct Wrapper(#[source] BlockError);
    let locked = |target: Option<&str>, write: bool| BlockError::InUse {
        target: target.map(str::to_owned),
        path: "/img/x.qcow2".into(),
        write,
    };
    let web1 = |path: &Path| (path == Path::new("/img/x.qcow2")).then(|| "web1".to_string());
    let wrapped = Wrapper(locked(Some("vda"), true));
    assert_eq!(
        in_use::explain_in_use_with(&wrapped, web1).as_deref(),
        Some(
            "disk vda (/img/x.qcow2) is in use by the running VM 'web1'; stop it first or \
             attach the image read-only"
        )
    );
    let reader = in_use::explain_in_use_with(&locked(Some("vdb"), false), web1).unwrap();
    assert!(
        reader.contains("disk vdb (/img/x.qcow2) is being written by the running VM 'web1'")
            && !reader.contains("read-only"),
        "{reader}"
    );
    let resize = in_use::explain_in_use_with(&locked(None, true), web1).unwrap();
    assert!(
        resize.starts_with("/img/x.qcow2 is in use by the running VM 'web1'"),
        "{resize}"
    );
    assert_eq!(
        in_use::explain_in_use_with(&locked(Some("vda"), true), |_| None),
        None,
        "no holder found: the engine's own words stand"
    );
    // As the engine's start carries it (transparently).
    let engine = crate::engine::EngineError::Block(locked(Some("vda"), true));
    let started = in_use::explain_start_error_with(&engine, web1).unwrap();
    assert!(
        started.starts_with("disk vda (/img/x.qcow2) is in use by the running VM 'web1'"),
        "{started}"
    );
    let kernel = crate::engine::EngineError::Cmdline("too long".into());
    assert_eq!(in_use::explain_start_error_with(&kernel, web1), None);
    let other = BlockError::Image {
        path: "/img/x.qcow2".into(),
        problem: "p".into(),
    };
    assert_eq!(in_use::explain_in_use_with(&other, web1), None);
}

#[test]
fn the_holder_is_the_vm_whose_disk_is_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.qcow2");
    std::fs::write(&image, b"").unwrap();
    let link = dir.path().join("link.qcow2");
    std::os::unix::fs::symlink(&image, &link).unwrap();
    let via_link = domain(&file_disk(&link.display().to_string(), "vdb"));
    let other = domain(&file_disk("/img/other.raw", "vda"));
    let running = || {
        vec![
            ("db".to_string(), other.clone()),
            ("web1".to_string(), via_link.clone()),
        ]
    };
    assert_eq!(
        in_use::holder_among(&image, running()).as_deref(),
        Some("web1")
    );
    let dotted = dir.path().join(".").join("disk.qcow2");
    assert_eq!(
        in_use::holder_among(&dotted, running()).as_deref(),
        Some("web1")
    );
    assert_eq!(
        in_use::holder_among(&dir.path().join("none.qcow2"), running()),
        None
    );
}
