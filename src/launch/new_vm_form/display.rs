//! The new VM's screen: every VM the wizard creates gets a virtio-gpu display with a virtio
//! keyboard and tablet, so its console window shows the guest's screen and takes keys and an
//! absolute pointer (a tablet follows the host's pointer exactly; a relative mouse would need
//! a pointer grab). A guest without a virtio_gpu driver keeps its serial console; the unused
//! devices cost it nothing.

use crate::domain::Domain;
use crate::domain::xml::Element;

/// Adds `<input type='keyboard' bus='virtio'/>`, `<input type='tablet' bus='virtio'/>` and
/// `<video><model type='virtio'/></video>` to `domain`.
pub fn add_display(domain: &mut Domain) {
    for kind in ["keyboard", "tablet"] {
        domain.add_device(
            Element::new("input")
                .with_attr("type", kind)
                .with_attr("bus", "virtio"),
        );
    }
    let mut video = Element::new("video");
    video.append_child(Element::new("model").with_attr("type", "virtio"), 2);
    domain.add_device(video);
}
