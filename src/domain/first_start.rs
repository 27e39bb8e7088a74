//! The "never started" marker: a VM the create-VM wizard defined carries
//! `<metadata><vireo:first-start xmlns:vireo="https://vireo.dev/xmlns/domain/1"/></metadata>`
//! until its first successful start. Its details window then offers "Begin Installation"
//! (virt-manager's wording for a VM customized before its first start) rather than "Start".
//! The marker lives in the document, not in the app's memory, so it survives closing the app
//! and is seen the same by the GUI and `vireoctl`; libvirt keeps other namespaces' metadata,
//! so it also survives `virsh define`.

use super::Domain;
use super::xml::Element;

/// Vireo's namespace for its settings under `<metadata>` (DESIGN §3).
pub const VIREO_NS: &str = "https://vireo.dev/xmlns/domain/1";

/// The marker's local name.
const FIRST_START: &str = "first-start";

/// Whether `el` is the marker: local name `first-start` in Vireo's namespace, declared on the
/// element itself (libvirt writes each metadata child with its own declaration), whatever
/// the prefix.
fn is_marker(el: &Element) -> bool {
    let (prefix, local) = match el.name().split_once(':') {
        Some((prefix, local)) => (Some(prefix), local),
        None => (None, el.name()),
    };
    let declaration = match prefix {
        Some(prefix) => format!("xmlns:{prefix}"),
        None => "xmlns".to_string(),
    };
    local == FIRST_START && el.attr(&declaration) == Some(VIREO_NS)
}

impl Domain {
    /// Whether this VM was made by the wizard and has not started yet.
    pub fn awaits_first_start(&self) -> bool {
        self.document()
            .at(&["metadata"])
            .is_some_and(|metadata| metadata.elements().any(is_marker))
    }

    /// Sets or clears the "never started" marker (an empty `<metadata>` left behind is
    /// removed again, so a cleared document reads as it did before).
    pub fn set_awaits_first_start(&mut self, on: bool) {
        if on == self.awaits_first_start() {
            return;
        }
        let doc = self.document_mut();
        if on {
            let marker =
                Element::new(&format!("vireo:{FIRST_START}")).with_attr("xmlns:vireo", VIREO_NS);
            doc.ensure(&["metadata"]).append_child(marker, 1);
            return;
        }
        if let Some(metadata) = doc.at_mut(&["metadata"]) {
            metadata.remove_children_where(is_marker);
            if metadata.elements().next().is_none() && metadata.text().trim().is_empty() {
                doc.remove(&[], "metadata");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "<domain type='kvm'>\n  <name>a</name>\n</domain>";

    #[test]
    fn marker_is_set_read_and_cleared_back_to_the_original_text() {
        let mut domain = Domain::parse(PLAIN).unwrap();
        assert!(!domain.awaits_first_start());
        domain.set_awaits_first_start(true);
        assert!(domain.awaits_first_start());
        let xml = domain.to_xml();
        assert!(xml.contains(VIREO_NS), "{xml}");
        // Survives a save and load.
        let mut reread = Domain::parse(&xml).unwrap();
        assert!(reread.awaits_first_start());
        reread.set_awaits_first_start(false);
        assert!(!reread.awaits_first_start());
        assert_eq!(reread.to_xml(), PLAIN);
    }

    #[test]
    fn other_metadata_stays_and_any_prefix_is_recognised() {
        let xml = "<domain type='kvm'>\n  <name>a</name>\n  <metadata>\n    \
                   <app:x xmlns:app='urn:other'/>\n    \
                   <v:first-start xmlns:v='https://vireo.dev/xmlns/domain/1'/>\n  \
                   </metadata>\n</domain>";
        let mut domain = Domain::parse(xml).unwrap();
        assert!(domain.awaits_first_start());
        domain.set_awaits_first_start(false);
        let out = domain.to_xml();
        assert!(!domain.awaits_first_start());
        assert!(out.contains("<app:x xmlns:app='urn:other'/>"), "{out}");
    }

    #[test]
    fn a_foreign_first_start_element_is_not_the_marker() {
        let xml = "<domain type='kvm'><name>a</name><metadata>\
                   <x:first-start xmlns:x='urn:someone-else'/></metadata></domain>";
        assert!(!Domain::parse(xml).unwrap().awaits_first_start());
    }
}
