//! How much host space each VM's disks take, for the VM list ("3.1 GB of 20 GB"): the sum of
//! the images' allocated bytes and of their virtual sizes, read with `block::inspect`.

use std::collections::HashMap;
use std::path::Path;

use crate::domain::store::DomainStore;
use crate::engine::block;

/// One VM's disks together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes the images occupy on the host.
    pub allocated: u64,
    /// The sizes the guest sees, added up.
    pub virtual_size: u64,
    /// Disks whose image could not be inspected (missing, unreadable, not an image).
    pub unreadable: usize,
}

/// The disk usage of every readable definition in `store` that has disks (by VM name).
/// Reads every image's header: call it off the UI thread.
pub fn disk_usage(store: &DomainStore) -> HashMap<String, DiskUsage> {
    store
        .list()
        .into_iter()
        .flatten()
        .filter_map(|stored| {
            let sources: Vec<String> = stored
                .domain
                .disks()
                .into_iter()
                .filter_map(|d| d.source)
                .collect();
            if sources.is_empty() {
                return None;
            }
            let mut usage = DiskUsage::default();
            for source in sources {
                match block::inspect(Path::new(&source)) {
                    Ok(info) => {
                        usage.allocated += info.allocated;
                        usage.virtual_size += info.virtual_size;
                    }
                    Err(_) => usage.unreadable += 1,
                }
            }
            Some((stored.name, usage))
        })
        .collect()
}
