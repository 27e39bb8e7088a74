//! Changing a stored VM's size, as `virsh setvcpus --config` and `setmem --config` do. The
//! built-in engine has neither vCPU hot-plug nor a memory balloon, so a running VM keeps its
//! size until its next start, and the size written is the one the guest gets: `<vcpu>` without
//! a smaller `current`, `<memory>` and `<currentMemory>` alike. The edited definition is checked
//! as `define` checks one (the store refuses an invalid save), so, e.g., a `<topology>` that no
//! longer matches the vCPU count is named with its fix.

use crate::domain::store::{DomainStore, StoreError};
use crate::domain::units::Memory;

/// Why a size change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SizeEditError {
    /// Zero vCPUs or zero memory.
    #[error("{0}")]
    Zero(String),
    /// The store refused (unknown VM, invalid result, a concurrent edit).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Gives the stored VM `name` `count` vCPUs from its next start.
pub fn set_vcpus(store: &DomainStore, name: &str, count: u32) -> Result<(), SizeEditError> {
    if count == 0 {
        return Err(SizeEditError::Zero(
            "a VM needs at least 1 vCPU; give a count of 1 or more".into(),
        ));
    }
    let mut stored = store.get(name)?;
    let mut vcpu = stored
        .domain
        .vcpu()
        .ok()
        .flatten()
        .unwrap_or(crate::domain::model::Vcpu {
            count,
            placement: None,
            current: None,
            cpuset: None,
        });
    vcpu.count = count;
    vcpu.current = None;
    stored.domain.set_vcpu(&vcpu);
    store.save(&mut stored)?;
    Ok(())
}

/// Gives the stored VM `name` `bytes` of memory from its next start (rounded up to whole KiB).
pub fn set_memory(store: &DomainStore, name: &str, bytes: u64) -> Result<(), SizeEditError> {
    let kib = bytes.div_ceil(1024);
    if kib == 0 {
        return Err(SizeEditError::Zero(
            "a VM needs memory; give a size such as 512M or 2G".into(),
        ));
    }
    let mut stored = store.get(name)?;
    stored.domain.set_memory(Memory::kib(kib));
    if stored.domain.current_memory().ok().flatten().is_some() {
        stored.domain.set_current_memory(Memory::kib(kib));
    }
    store.save(&mut stored)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(xml: &str) -> (tempfile::TempDir, DomainStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = DomainStore::open_at(dir.path().join("domains")).unwrap();
        store.define(xml).unwrap();
        (dir, store)
    }

    const VM: &str = "<domain type='kvm'><name>vm</name><memory unit='MiB'>64</memory>\
        <currentMemory unit='MiB'>32</currentMemory><vcpu current='1'>2</vcpu>\
        <os><type arch='x86_64'>hvm</type></os></domain>";

    #[test]
    fn sizes_are_written_as_the_guest_gets_them() {
        let (_dir, store) = store_with(VM);
        set_vcpus(&store, "vm", 4).unwrap();
        set_memory(&store, "vm", 1 << 30).unwrap();
        let d = store.get("vm").unwrap().domain;
        let vcpu = d.vcpu().unwrap().unwrap();
        assert_eq!((vcpu.count, vcpu.current), (4, None));
        assert_eq!(d.memory().unwrap().unwrap().bytes(), Some(1 << 30));
        assert_eq!(d.current_memory().unwrap().unwrap().bytes(), Some(1 << 30));
        assert!(matches!(
            set_vcpus(&store, "vm", 0),
            Err(SizeEditError::Zero(_))
        ));
        assert!(matches!(
            set_vcpus(&store, "nope", 1),
            Err(SizeEditError::Store(StoreError::NotFound(_)))
        ));
    }

    #[test]
    fn a_count_the_topology_contradicts_is_refused_with_the_fix() {
        let (_dir, store) = store_with(&VM.replace(
            "<os>",
            "<cpu><topology sockets='1' dies='1' cores='2' threads='1'/></cpu><os>",
        ));
        let err = set_vcpus(&store, "vm", 3).unwrap_err().to_string();
        assert!(err.contains("topology"), "{err}");
        assert_eq!(
            store
                .get("vm")
                .unwrap()
                .domain
                .vcpu()
                .unwrap()
                .unwrap()
                .count,
            2
        );
    }
}
