//! The few elements of a typed [`Domain`] the engine needs (name, memory, vcpu, cpu, os
//! kernel/initrd/cmdline, on_*, cputune, kvm hidden), by path. It reads, never writes, and never
//! parses: the domain module owns the lossless document and its one parser; this only extracts
//! facts from it.

use std::collections::BTreeMap;

use crate::domain::Domain;

/// One element of interest: its attributes and its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Attribute name → value.
    pub attrs: BTreeMap<String, String>,
    /// The element's own text, trimmed.
    pub text: String,
}

impl Element {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
}

/// Every element found, keyed by its path from `domain` (e.g. `domain/os/kernel`), in document
/// order for repeated ones (features, vcpupins).
#[derive(Debug, Default)]
pub struct DomainFacts {
    elements: BTreeMap<String, Vec<Element>>,
}

impl DomainFacts {
    /// The first element at `path`.
    pub fn first(&self, path: &str) -> Option<&Element> {
        self.elements.get(path).and_then(|v| v.first())
    }

    /// All elements at `path`.
    pub fn all(&self, path: &str) -> &[Element] {
        self.elements.get(path).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The trimmed text of the first element at `path`, if present and non-empty.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.first(path)
            .map(|e| e.text.as_str())
            .filter(|t| !t.is_empty())
    }
}

/// The paths read; everything else is skipped.
const WANTED: &[&str] = &[
    "domain/name",
    "domain/memory",
    "domain/vcpu",
    "domain/cpu",
    "domain/cpu/model",
    "domain/cpu/feature",
    "domain/cpu/topology",
    "domain/os/kernel",
    "domain/os/initrd",
    "domain/os/cmdline",
    "domain/on_poweroff",
    "domain/on_reboot",
    "domain/on_crash",
    "domain/cputune/vcpupin",
    "domain/cputune/emulatorpin",
    "domain/features/kvm/hidden",
];

/// Reads the wanted elements of a domain document, parsed by the one domain parser
/// ([`Domain::parse`], as `define` parses it), so a run path accepts exactly the documents
/// `define` accepts.
pub fn read(xml: &str) -> Result<DomainFacts, String> {
    Domain::parse(xml)
        .map(|domain| from_domain(&domain))
        .map_err(|e| e.to_string())
}

/// The wanted elements of a typed domain.
pub fn from_domain(domain: &Domain) -> DomainFacts {
    let mut facts = DomainFacts::default();
    let mut path = vec!["domain".to_string()];
    collect(domain.document().root(), &mut path, &mut facts);
    facts
}

fn collect(element: &crate::domain::xml::Element, path: &mut Vec<String>, facts: &mut DomainFacts) {
    let key = path.join("/");
    if WANTED.contains(&key.as_str()) {
        facts
            .elements
            .entry(key.clone())
            .or_default()
            .push(Element {
                attrs: element
                    .attrs()
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
                text: element.text().trim().to_string(),
            });
    }
    // Only descend where a wanted path continues.
    for child in element.elements() {
        path.push(child.name().to_string());
        let prefix = format!("{}/", path.join("/"));
        if WANTED
            .iter()
            .any(|w| *w == path.join("/") || w.starts_with(&prefix))
        {
            collect(child, path, facts);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wanted_elements_and_skips_the_rest() {
        let facts = read(
            "<domain type='kvm'><name>a&amp;b</name><memory unit='MiB'>64</memory>\
             <devices><disk><name>x</name></disk></devices>\
             <cpu mode='custom'><model>qemu64</model><feature policy='disable' name='svm'/>\
             <feature policy='require' name='lm'/></cpu></domain>",
        )
        .unwrap();
        assert_eq!(facts.text("domain/name"), Some("a&b"));
        assert_eq!(
            facts.first("domain/memory").unwrap().attr("unit"),
            Some("MiB")
        );
        assert_eq!(facts.all("domain/cpu/feature").len(), 2);
        assert_eq!(facts.text("domain/cpu/model"), Some("qemu64"));
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(read("<domain><name>x</domain>").is_err());
        assert!(read("<capabilities/>").is_err(), "not a domain");
    }
}
