//! A minimal element tree over quick-xml, so the `<cpu>` and `<cpudata>` readers can walk
//! children by name instead of driving a pull parser by hand.
//!
//! Only what libvirt's CPU documents use is kept: element names, attributes and text.
//! Comments, processing instructions and the XML declaration are dropped.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One parsed XML element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Concatenated text content, trimmed.
    pub text: String,
    /// 1-based line where the element starts, for error messages.
    pub line: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Parses `text` into its root element; the message says what is wrong and on which line.
pub(crate) fn parse(text: &str) -> Result<Element, String> {
    let mut roots = parse_fragment(text)?;
    if roots.len() > 1 {
        return Err("malformed XML: more than one root element".into());
    }
    Ok(roots.remove(0))
}

/// Parses `text` as a sequence of top-level elements, as virsh does when it wraps a CPU file
/// in a container element (`<cpu/><cpu/>` is a valid input to `cpu-baseline`). At least one
/// element is required.
pub(crate) fn parse_fragment(text: &str) -> Result<Vec<Element>, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut roots: Vec<Element> = Vec::new();
    // Counts newlines incrementally (positions only grow), byte-based so a position inside a
    // multi-byte character cannot panic.
    let mut counted = (0usize, 1usize);
    let mut line_at = |pos: u64| {
        let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
        if end >= counted.0 {
            counted.1 += text.as_bytes()[counted.0..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted.0 = end;
            counted.1
        } else {
            text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        }
    };
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            format!(
                "malformed XML at line {}: {e}",
                line_at(reader.error_position())
            )
        })?;
        match event {
            Event::Start(start) => stack.push(open(&start, line_at(position))?),
            Event::Empty(start) => {
                let element = open(&start, line_at(position))?;
                close(&mut stack, &mut roots, element);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("malformed XML: unexpected closing tag")?;
                close(&mut stack, &mut roots, element);
            }
            Event::Text(t) => append_text(&mut stack, &t.xml10_content())?,
            Event::CData(t) => append_text(&mut stack, &t)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*r {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(format!("malformed XML: unknown entity &{other};")),
                    },
                };
                append_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(format!(
            "malformed XML: element <{}> is never closed",
            stack[stack.len() - 1].name
        ));
    }
    if roots.is_empty() {
        return Err("malformed XML: the document has no element".to_string());
    }
    Ok(roots)
}

fn open(start: &BytesStart<'_>, line: usize) -> Result<Element, String> {
    let name = start.name().as_ref().to_string();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("malformed XML at line {line}: {e}"))?;
        let key = attr.key.as_ref().to_string();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("malformed XML at line {line}: attribute {key}: {e}"))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        line,
        ..Element::default()
    })
}

fn close(stack: &mut [Element], roots: &mut Vec<Element>, mut element: Element) {
    element.text = element.text.trim().to_string();
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => roots.push(element),
    }
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("malformed XML: text outside the root element".into()),
    }
}

/// Escapes text for an attribute value or element content.
pub(crate) fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_attributes_and_text() {
        let root = parse("<!-- c -->\n<a x='1'>\n  <b>hi &amp; bye</b>\n  <c/>\n</a>").unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attr("x"), Some("1"));
        assert_eq!(root.child("b").unwrap().text, "hi & bye");
        assert_eq!(root.child("c").unwrap().line, 4);
    }

    #[test]
    fn rejects_unclosed_and_mismatched_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
    }

    #[test]
    fn a_fragment_may_hold_several_top_level_elements() {
        let roots = parse_fragment("<?xml version='1.0'?>\n<a/>\n<!-- c -->\n<b>x</b>\n").unwrap();
        let names: Vec<_> = roots.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(parse_fragment("  ").is_err());
        assert!(parse_fragment("<a/>text").is_err());
    }
}
