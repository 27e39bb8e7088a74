//! Define-time and host validation: each error names the element and the fix, and a refused
//! define leaves the store exactly as it was.

use std::fs;

mod store_support;
use store_support::snapshot;
use vireo::domain::validate::{document_problems, host_problems};
use vireo::domain::{Domain, DomainStore, HostFacts};

const BASE: &str = "<domain type='kvm'>\n  <name>v</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>2</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n  </devices>\n</domain>\n";

/// Defines `xml` into a store that already holds one domain; asserts it is refused with a message
/// containing every `expected` fragment and that no file changed.
fn assert_refused(xml: &str, expected: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    store.define(&BASE.replace(">v<", ">existing<")).unwrap();
    let before = snapshot(tmp.path());
    let err = store.define(xml).expect_err("must be refused").to_string();
    for fragment in expected {
        assert!(err.contains(fragment), "{fragment:?} not in: {err}");
    }
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "a refused define changed the store"
    );
}

#[test]
fn the_base_document_is_valid() {
    assert!(document_problems(&Domain::parse(BASE).unwrap()).is_empty());
}

#[test]
fn malformed_xml_reports_line_and_column() {
    assert_refused(
        &BASE.replace("<vcpu>2</vcpu>", "<vcpu>2</cpu>"),
        &["malformed XML at line 4, column", "vcpu"],
    );
}

#[test]
fn missing_name() {
    assert_refused(
        &BASE.replace("  <name>v</name>\n", ""),
        &["<name>: missing", "add <name>"],
    );
}

#[test]
fn unusable_name() {
    assert_refused(
        &BASE.replace(">v<", ">a/b<"),
        &["<name>", "'a/b' cannot be used", "'/'"],
    );
}

#[test]
fn bad_uuid() {
    assert_refused(
        &BASE.replace("</name>", "</name>\n  <uuid>not-a-uuid</uuid>"),
        &[
            "<uuid>",
            "'not-a-uuid' is not a valid UUID",
            "remove <uuid>",
        ],
    );
}

#[test]
fn bad_unit() {
    assert_refused(
        &BASE.replace("unit='MiB'", "unit='MiBs'"),
        &["<memory>", "unknown unit 'MiBs'", "use one of", "KiB"],
    );
}

#[test]
fn bad_memory_number() {
    assert_refused(
        &BASE.replace(">64<", ">lots<"),
        &["<memory>", "'lots' is not a valid number"],
    );
}

#[test]
fn memory_zero() {
    assert_refused(
        &BASE.replace(">64<", ">0<"),
        &["<memory>: is 0", "give the guest some memory"],
    );
}

#[test]
fn memory_missing() {
    assert_refused(
        &BASE.replace("  <memory unit='MiB'>64</memory>\n", ""),
        &["<memory>: missing"],
    );
}

#[test]
fn vcpus_vs_topology() {
    let xml = BASE.replace(
        "</os>",
        "</os>\n  <cpu>\n    <topology sockets='1' dies='1' clusters='1' cores='2' threads='2'/>\n  </cpu>",
    );
    assert_refused(
        &xml,
        &["<cpu><topology>", "= 4 but <vcpu> is 2", "make them equal"],
    );
}

#[test]
fn vcpu_zero_and_current_too_high() {
    assert_refused(&BASE.replace("<vcpu>2<", "<vcpu>0<"), &["<vcpu>: is 0"]);
    assert_refused(
        &BASE.replace("<vcpu>2<", "<vcpu current='3'>2<"),
        &["<vcpu current>", "between 1 and the maximum 2"],
    );
}

#[test]
fn duplicate_disk_targets() {
    let disk = "<disk type='file' device='disk'><source file='/x'/><target dev='vda' bus='virtio'/></disk>";
    let xml = BASE.replace(
        "<devices>\n",
        &format!("<devices>\n    {disk}\n    {disk}\n"),
    );
    assert_refused(
        &xml,
        &["<disk><target>", "dev='vda' is used by more than one disk"],
    );
}

#[test]
fn not_a_domain() {
    assert_refused("<network><name>x</name></network>", &["must be <domain>"]);
}

#[test]
fn host_memory_limit() {
    let d = Domain::parse(&BASE.replace(">64<", ">4096<")).unwrap();
    let host = HostFacts {
        mem_total_kib: Some(1024 * 1024),
        ..HostFacts::default()
    };
    let problems: Vec<String> = host_problems(&d, &host)
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("<memory>: 4096 MiB is more than this host's 1024 MiB"),
        "{problems:?}"
    );
    let roomy = HostFacts {
        mem_total_kib: Some(8 * 1024 * 1024),
        ..HostFacts::default()
    };
    assert!(host_problems(&d, &roomy).is_empty());
}

#[test]
fn host_missing_and_unreadable_files() {
    let tmp = tempfile::tempdir().unwrap();
    let kernel = tmp.path().join("vmlinuz");
    fs::write(&kernel, b"k").unwrap();
    let disk = tmp.path().join("disk.img");
    let xml = BASE
        .replace(
            "</type>",
            &format!(
                "</type>\n    <kernel>{}</kernel>\n    <initrd>/nonexistent/initrd</initrd>",
                kernel.display()
            ),
        )
        .replace(
            "<devices>\n",
            &format!(
                "<devices>\n    <disk type='file'><source file='{}'/><target dev='vda'/></disk>\n",
                disk.display()
            ),
        );
    let d = Domain::parse(&xml).unwrap();
    let problems: Vec<String> = host_problems(&d, &HostFacts::default())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("<os><initrd>: '/nonexistent/initrd' cannot be opened"),
        "{problems:?}"
    );
    assert!(problems[0].contains("create it or point the element at an existing file"));
    assert!(problems[1].starts_with("<disk><source>:"), "{problems:?}");
}
