//! A canonical text form of an XML document, for deciding whether two documents say the same.
//!
//! Attribute order and whitespace-only text between elements carry no meaning in domain XML, so
//! the canonical form sorts attributes and drops such text; everything else (names, values, text,
//! comments, element order) must match. Used by the round-trip tests and by `edit` to tell
//! whether the user changed anything.

use std::fmt::Write as _;

use crate::domain::xml::{Document, Element, Node, XmlError};

/// The canonical form of `xml`.
pub fn canonicalize(xml: &str) -> Result<String, XmlError> {
    let doc = Document::parse(xml)?;
    let mut out = String::new();
    write_element(doc.root(), 0, &mut out);
    Ok(out)
}

fn write_element(el: &Element, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let mut attrs: Vec<_> = el.attrs().to_vec();
    attrs.sort();
    let _ = write!(out, "{indent}<{}", el.name());
    for (k, v) in attrs {
        let _ = write!(out, " {k}={v:?}");
    }
    out.push_str(">\n");
    let only_text = el.elements().next().is_none();
    for node in el.nodes() {
        match node {
            Node::Element(child) => write_element(child, depth + 1, out),
            Node::Text(_) | Node::CData(_) if only_text => {}
            Node::Text(raw) if raw.trim().is_empty() => {}
            Node::Text(raw) | Node::CData(raw) | Node::Markup(raw) => {
                let _ = writeln!(out, "{indent}  {}", raw.trim());
            }
        }
    }
    if only_text {
        let text = el.text();
        if !text.is_empty() {
            let _ = writeln!(out, "{indent}  text {text:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_order_and_indentation_do_not_matter() {
        let a = canonicalize("<a x='1' y=\"2\">\n  <b>t</b>\n</a>").unwrap();
        let b = canonicalize("<a y='2' x='1'><b>t</b></a>").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn values_and_text_do_matter() {
        let a = canonicalize("<a x='1'><b>t</b></a>").unwrap();
        assert_ne!(a, canonicalize("<a x='2'><b>t</b></a>").unwrap());
        assert_ne!(a, canonicalize("<a x='1'><b>u</b></a>").unwrap());
        assert_ne!(a, canonicalize("<a x='1'><c>t</c></a>").unwrap());
    }
}
