//! The store: define, list, get, save, rename, undefine, broken files, conflicts, generation.

use std::fs;

mod store_support;
use store_support::snapshot;
use vireo::domain::{DomainStore, Memory, StoreError};

const MINI: &str = "<domain type='kvm'>\n  <name>NAME</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n</domain>\n";

fn mini(name: &str) -> String {
    MINI.replace("NAME", name)
}

#[test]
fn define_generates_a_uuid_and_get_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    let defined = store.define(&mini("a")).unwrap();
    let uuid = defined.domain.uuid().expect("a UUID is generated");
    assert!(uuid::Uuid::parse_str(&uuid).is_ok());
    let got = store.get("a").unwrap();
    assert_eq!(got.domain.uuid(), Some(uuid.clone()));
    assert!(
        fs::read_to_string(tmp.path().join("a.xml"))
            .unwrap()
            .contains(&uuid)
    );
    // Redefining without a UUID keeps the existing one.
    let again = store.define(&mini("a").replace("64", "128")).unwrap();
    assert_eq!(again.domain.uuid(), Some(uuid));
    assert_eq!(
        store.get("a").unwrap().domain.memory().unwrap(),
        Some(Memory::mib(128))
    );
}

#[test]
fn name_and_uuid_clashes_are_refused_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    let a = store.define(&mini("a")).unwrap();
    let uuid = a.domain.uuid().unwrap();
    let before = snapshot(tmp.path());
    let other_uuid = mini("a").replace(
        "</name>",
        "</name>\n  <uuid>00000000-0000-4000-8000-000000000001</uuid>",
    );
    let err = store.define(&other_uuid).unwrap_err();
    assert!(matches!(err, StoreError::NameTaken { .. }), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    let same_uuid = mini("b").replace("</name>", &format!("</name>\n  <uuid>{uuid}</uuid>"));
    let err = store.define(&same_uuid).unwrap_err();
    assert!(
        err.to_string().contains("already belongs to domain 'a'"),
        "{err}"
    );
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn broken_files_are_listed_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    store.define(&mini("good")).unwrap();
    fs::write(tmp.path().join("bad.xml"), "<domain><name>bad</name>").unwrap();
    let listed = store.list();
    assert_eq!(listed.len(), 2);
    let broken = listed[0].as_ref().unwrap_err();
    assert_eq!(broken.name, "bad");
    assert!(broken.error.contains("never closed"), "{}", broken.error);
    assert_eq!(listed[1].as_ref().unwrap().name, "good");
    let before = snapshot(tmp.path());
    let err = store.define(&mini("bad")).unwrap_err();
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn concurrent_edits_are_detected_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    store.define(&mini("a")).unwrap();
    let mut gui = store.get("a").unwrap();
    let mut cli = store.get("a").unwrap();
    cli.domain.set_memory(Memory::mib(256));
    store.save(&mut cli).unwrap();
    gui.domain.set_memory(Memory::mib(512));
    let before = snapshot(tmp.path());
    let err = store.save(&mut gui).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(snapshot(tmp.path()), before);
    // The saver can keep editing its own copy.
    cli.domain.set_memory(Memory::mib(300));
    store.save(&mut cli).unwrap();
    assert_eq!(
        store.get("a").unwrap().domain.memory().unwrap(),
        Some(Memory::mib(300))
    );
}

#[test]
fn rename_moves_the_file_and_the_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    let uuid = store.define(&mini("old")).unwrap().domain.uuid();
    store.define(&mini("taken")).unwrap();
    let err = store.rename("old", "taken").unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let renamed = store.rename("old", "new").unwrap();
    assert_eq!(renamed.domain.name().as_deref(), Some("new"));
    assert!(!tmp.path().join("old.xml").exists());
    assert_eq!(store.get("new").unwrap().domain.uuid(), uuid);
    assert!(matches!(store.get("old"), Err(StoreError::NotFound(_))));
}

#[test]
fn undefine_keeps_disks_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path().join("domains")).unwrap();
    let disk = tmp.path().join("disk.img");
    let iso = tmp.path().join("cd.iso");
    fs::write(&disk, b"data").unwrap();
    fs::write(&iso, b"iso").unwrap();
    let devices = format!(
        "<devices>\n    <disk type='file' device='disk'><source file='{}'/><target dev='vda'/></disk>\n    <disk type='file' device='cdrom'><source file='{}'/><target dev='hdc'/></disk>\n  </devices>\n</domain>",
        disk.display(),
        iso.display()
    );
    let xml = |n: &str| mini(n).replace("</domain>", &devices);
    store.define(&xml("keep")).unwrap();
    assert_eq!(
        store.undefine("keep", false).unwrap(),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(disk.exists());
    store.define(&xml("drop")).unwrap();
    assert_eq!(store.undefine("drop", true).unwrap(), vec![disk.clone()]);
    assert!(!disk.exists());
    assert!(iso.exists(), "CD-ROM images are never deleted");
    assert!(store.list().is_empty());
    assert!(matches!(
        store.undefine("drop", false),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn generation_changes_on_every_write() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    let g0 = store.generation();
    assert_eq!(g0, store.generation());
    store.define(&mini("a")).unwrap();
    let g1 = store.generation();
    assert_ne!(g0, g1);
    let mut a = store.get("a").unwrap();
    a.domain.set_memory(Memory::mib(99));
    store.save(&mut a).unwrap();
    let g2 = store.generation();
    assert_ne!(g1, g2);
    store.undefine("a", false).unwrap();
    assert_ne!(g2, store.generation());
}
