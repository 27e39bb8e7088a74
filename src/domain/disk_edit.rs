//! Adding and removing `<disk>` elements: the wizard's and the details window's disk edits.
//! Targets follow libvirt's naming (`vda`, `vdb`, … `vdz`, `vdaa`), so the guest sees
//! `/dev/vdX` in target order.

use crate::domain::devices::Disk;
use crate::domain::model::Domain;
use crate::domain::xml::Element;

/// libvirt's name for the `index`-th disk with `prefix` (`vd`): 0 → `vda`, 25 → `vdz`,
/// 26 → `vdaa`.
pub fn target_name(prefix: &str, index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("{prefix}{}", String::from_utf8_lossy(&letters))
}

impl Disk {
    /// A new `<disk type='file'>` for an image file: `device='cdrom'` with `<readonly/>` when
    /// `cdrom` (the engine attaches it as a read-only virtio disk), `device='disk'` otherwise.
    pub fn image_element(path: &str, driver_type: &str, target_dev: &str, cdrom: bool) -> Element {
        let mut disk = Disk::file_element(path, driver_type, target_dev, "virtio");
        if cdrom {
            disk.set_attr("device", "cdrom");
            disk.append_child(Element::new("readonly"), 2);
        }
        disk
    }
}

impl Domain {
    /// The first `vdX` target no disk of this domain uses.
    pub fn next_disk_target(&self) -> String {
        let taken: Vec<String> = self
            .disks()
            .into_iter()
            .filter_map(|d| d.target_dev)
            .collect();
        (0..)
            .map(|i| target_name("vd", i))
            .find(|t| !taken.contains(t))
            .expect("an unbounded sequence of targets has a free one")
    }

    /// Removes the disk whose target is `target_dev`; returns what it was (`None` when absent).
    pub fn remove_disk(&mut self, target_dev: &str) -> Option<Disk> {
        let devices = self.document_mut().at_mut(&["devices"])?;
        let removed = devices.remove_child_where(|e| {
            e.name() == "disk" && e.child("target").and_then(|t| t.attr("dev")) == Some(target_dev)
        })?;
        Some(Disk::from_element(&removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_libvirt() {
        assert_eq!(target_name("vd", 0), "vda");
        assert_eq!(target_name("vd", 25), "vdz");
        assert_eq!(target_name("vd", 26), "vdaa");
        assert_eq!(target_name("vd", 27), "vdab");
    }

    #[test]
    fn disks_are_added_and_removed_in_place() {
        let mut domain = Domain::parse(
            "<domain type='kvm'>\n  <name>d</name>\n  <devices>\n    <disk type='file' device='disk'>\n      <source file='/a.img'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    <serial type='pty'/>\n  </devices>\n</domain>\n",
        )
        .unwrap();
        assert_eq!(domain.next_disk_target(), "vdb");
        domain.add_device(Disk::image_element("/b.iso", "raw", "vdb", true));
        let disks = domain.disks();
        assert_eq!(disks[1].device.as_deref(), Some("cdrom"));
        assert!(disks[1].readonly);
        assert_eq!(disks[1].driver_type.as_deref(), Some("raw"));
        let removed = domain.remove_disk("vda").unwrap();
        assert_eq!(removed.source.as_deref(), Some("/a.img"));
        assert_eq!(domain.disks().len(), 1);
        assert!(domain.remove_disk("vda").is_none());
        assert_eq!(domain.next_disk_target(), "vda");
        let xml = domain.to_xml();
        assert!(xml.contains("<serial type='pty'/>"), "{xml}");
        Domain::parse(&xml).unwrap();
    }
}
