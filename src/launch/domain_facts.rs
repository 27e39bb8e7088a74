//! A narrow reader for the few domain-XML elements the engine needs (name, memory, vcpu, cpu,
//! os kernel/initrd/cmdline, on_*, cputune). It reads, never writes: the domain module owns the
//! lossless document; this only extracts facts from it.

use std::collections::BTreeMap;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

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

/// Reads the wanted elements of a domain document.
pub fn read(xml: &str) -> Result<DomainFacts, String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut facts = DomainFacts::default();
    // Index of the element whose text is being collected, if it is wanted.
    let mut open: Vec<Option<(String, usize)>> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            )
        })?;
        match event {
            Event::Start(start) => {
                let entry = enter(&mut path, &start, &mut facts)?;
                open.push(entry);
            }
            Event::Empty(start) => {
                enter(&mut path, &start, &mut facts)?;
                path.pop();
            }
            Event::End(_) => {
                if let Some(Some((key, index))) = open.pop()
                    && let Some(e) = facts.elements.get_mut(&key).and_then(|v| v.get_mut(index))
                {
                    e.text = e.text.trim().to_string();
                }
                path.pop();
            }
            Event::Text(text) => append_text(&open, &mut facts, &text.xml10_content()),
            Event::CData(text) => append_text(&open, &mut facts, &text.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*reference.xml10_content() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                append_text(&open, &mut facts, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if facts.elements.is_empty() && !xml.contains("<domain") {
        return Err("the document has no <domain> element".into());
    }
    Ok(facts)
}

fn enter(
    path: &mut Vec<String>,
    start: &BytesStart<'_>,
    facts: &mut DomainFacts,
) -> Result<Option<(String, usize)>, String> {
    path.push(AsRef::<str>::as_ref(&start.local_name()).to_string());
    let key = path.join("/");
    if !WANTED.contains(&key.as_str()) {
        return Ok(None);
    }
    let mut element = Element::default();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("bad attribute in <{key}>: {e}"))?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("bad attribute value in <{key}>: {e}"))?;
        element.attrs.insert(
            AsRef::<str>::as_ref(&attr.key.local_name()).to_string(),
            value.into_owned(),
        );
    }
    let list = facts.elements.entry(key.clone()).or_default();
    list.push(element);
    Ok(Some((key, list.len() - 1)))
}

fn append_text(open: &[Option<(String, usize)>], facts: &mut DomainFacts, text: &str) {
    if let Some(Some((key, index))) = open.last()
        && let Some(e) = facts.elements.get_mut(key).and_then(|v| v.get_mut(*index))
    {
        e.text.push_str(text);
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
    }
}
