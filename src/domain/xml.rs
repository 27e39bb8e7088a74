//! A lossless XML tree over quick-xml.
//!
//! Domain XML comes from users and from `virsh dumpxml`; Vireo must hand back every byte it did not
//! mean to change. So each node keeps the exact source text it was parsed from, and only the parts
//! a setter touched are re-serialized. Comments, CDATA, processing instructions, foreign namespaces
//! (prefixes are kept verbatim in names) and whitespace all survive load → edit → save.

use std::fmt::Write as _;

use quick_xml::Reader;
use quick_xml::escape::unescape;
use quick_xml::events::Event;

/// A malformed document, with the 1-based line and column where the parser gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at line {line}, column {column}: {message}")]
pub struct XmlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Element(Element),
    /// Character data, kept escaped exactly as in the source (entity references included).
    Text(String),
    /// `<![CDATA[...]]>`, kept as its full source text.
    CData(String),
    /// Comments, processing instructions, the XML declaration and DOCTYPE, kept verbatim.
    Markup(String),
}

/// An element. `raw_start`/`raw_end` hold the exact source of its tags until something changes
/// the tag, after which the tag is regenerated in libvirt's style (single-quoted attributes).
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    pub(crate) children: Vec<Node>,
    raw_start: Option<String>,
    raw_end: Option<String>,
    self_closing: bool,
}

/// A whole document: the prolog/epilog nodes and exactly one root element among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    nodes: Vec<Node>,
}

impl Element {
    /// A new element with no attributes or children (serialized as `<name/>`).
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
            raw_start: None,
            raw_end: None,
            self_closing: true,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Attributes in document order, values unescaped.
    pub fn attrs(&self) -> &[(String, String)] {
        &self.attrs
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, keeping its position if it exists, appending it otherwise.
    pub fn set_attr(&mut self, name: &str, value: &str) {
        if self.attr(name) == Some(value) {
            return;
        }
        self.raw_start = None;
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.attrs.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn remove_attr(&mut self, name: &str) {
        if self.attr(name).is_some() {
            self.raw_start = None;
            self.attrs.retain(|(k, _)| k != name);
        }
    }

    /// Builder-style attribute setter for freshly made elements.
    pub fn with_attr(mut self, name: &str, value: &str) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder-style text setter for freshly made elements.
    pub fn with_text(mut self, text: &str) -> Self {
        self.set_text(text);
        self
    }

    /// All child nodes (elements, text, comments…).
    pub fn nodes(&self) -> &[Node] {
        &self.children
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// The element at a path of child names below this one (first match at each step).
    pub fn descendant(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |el, name| el.child(name))
    }

    /// The text content: text and CDATA children concatenated, entities resolved.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            match node {
                Node::Text(raw) => out.push_str(&unescape(raw).unwrap_or_else(|_| raw.into())),
                Node::CData(raw) => {
                    out.push_str(raw.trim_start_matches("<![CDATA[").trim_end_matches("]]>"))
                }
                _ => {}
            }
        }
        out
    }

    /// Replaces all children with one text node.
    pub fn set_text(&mut self, text: &str) {
        if self.elements().next().is_none() && self.text() == text {
            return;
        }
        self.children = vec![Node::Text(escape_text(text))];
        if self.self_closing {
            self.self_closing = false;
            self.raw_start = None;
        }
    }

    /// Removes every child element with this name, with the whitespace that indented it.
    pub fn remove_children(&mut self, name: &str) {
        self.remove_children_where(|e| e.name == name);
    }

    /// Removes every child element `doomed` picks, with the whitespace that indented it;
    /// returns how many went.
    pub fn remove_children_where(&mut self, doomed: impl Fn(&Element) -> bool) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.children.len() {
            if matches!(&self.children[i], Node::Element(e) if doomed(e)) {
                self.children.remove(i);
                removed += 1;
                if i > 0 && is_whitespace_text(&self.children[i - 1]) {
                    self.children.remove(i - 1);
                    i -= 1;
                }
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Appends a child element, indenting it like its siblings (or, for a first child,
    /// `depth + 1` levels of two spaces, where `depth` is this element's own nesting depth).
    pub fn append_child(&mut self, child: Element, depth: usize) -> &mut Element {
        let child_indent = self.child_indent(depth);
        let closing_indent = format!("\n{}", "  ".repeat(depth));
        if self.self_closing {
            self.self_closing = false;
            self.raw_start = None;
        }
        // Keep the whitespace before the closing tag where it is: insert ahead of it.
        let trailing_ws = self.children.last().is_some_and(is_whitespace_text);
        let at = if trailing_ws {
            self.children.len() - 1
        } else {
            self.children.push(Node::Text(closing_indent));
            self.children.len() - 1
        };
        self.children.insert(at, Node::Element(child));
        self.children.insert(at, Node::Text(child_indent));
        match &mut self.children[at + 1] {
            Node::Element(e) => e,
            _ => unreachable!("just inserted an element here"),
        }
    }

    /// The child with this name, created (appended) when missing.
    pub fn ensure_child(&mut self, name: &str, depth: usize) -> &mut Element {
        if self.child(name).is_some() {
            return self.child_mut(name).expect("checked above");
        }
        self.append_child(Element::new(name), depth)
    }

    fn child_indent(&self, depth: usize) -> String {
        self.children
            .iter()
            .zip(self.children.iter().skip(1))
            .find_map(|(a, b)| match (a, b) {
                (Node::Text(t), Node::Element(_)) if t.trim().is_empty() => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("\n{}", "  ".repeat(depth + 1)))
    }

    /// Serializes this element (and its subtree) into `out`.
    pub fn write_to(&self, out: &mut String) {
        // Every change that alters the tag's shape (attributes, empty ↔ with content) drops
        // `raw_start`, so a present raw tag is always still accurate.
        if self.self_closing && self.children.is_empty() {
            match &self.raw_start {
                Some(raw) => out.push_str(raw),
                None => self.write_start_tag(out, true),
            }
            return;
        }
        match &self.raw_start {
            Some(raw) => out.push_str(raw),
            None => self.write_start_tag(out, false),
        }
        for node in &self.children {
            node.write_to(out);
        }
        match &self.raw_end {
            Some(raw) if !self.self_closing => out.push_str(raw),
            _ => {
                let _ = write!(out, "</{}>", self.name);
            }
        }
    }

    fn write_start_tag(&self, out: &mut String, empty: bool) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}='{}'", escape_attr(v));
        }
        out.push_str(if empty { "/>" } else { ">" });
    }

    /// This element as an XML string.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }
}

impl Node {
    fn write_to(&self, out: &mut String) {
        match self {
            Node::Element(e) => e.write_to(out),
            Node::Text(raw) | Node::CData(raw) | Node::Markup(raw) => out.push_str(raw),
        }
    }
}

fn is_whitespace_text(node: &Node) -> bool {
    matches!(node, Node::Text(t) if t.trim().is_empty())
}

/// Escapes text content the way libvirt writes it.
pub fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escapes an attribute value for single-quoted output.
pub fn escape_attr(value: &str) -> String {
    escape_text(value)
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

impl Document {
    /// Parses a document, keeping every byte of its source.
    pub fn parse(src: &str) -> Result<Document, XmlError> {
        Parser::new(src).run()
    }

    pub fn root(&self) -> &Element {
        self.nodes
            .iter()
            .find_map(|n| match n {
                Node::Element(e) => Some(e),
                _ => None,
            })
            .expect("a parsed document always has a root element")
    }

    pub fn root_mut(&mut self) -> &mut Element {
        self.nodes
            .iter_mut()
            .find_map(|n| match n {
                Node::Element(e) => Some(e),
                _ => None,
            })
            .expect("a parsed document always has a root element")
    }

    /// The document as text; byte-identical to the source where nothing was changed.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            node.write_to(&mut out);
        }
        out
    }

    /// The element at a path of child names below the root.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        self.root().descendant(path)
    }

    pub fn at_mut(&mut self, path: &[&str]) -> Option<&mut Element> {
        path.iter()
            .try_fold(self.root_mut(), |el, name| el.child_mut(name))
    }

    /// The element at a path below the root, creating missing steps with proper indentation.
    pub fn ensure(&mut self, path: &[&str]) -> &mut Element {
        let mut el = self.root_mut();
        for (depth, name) in path.iter().enumerate() {
            el = el.ensure_child(name, depth);
        }
        el
    }

    /// Removes every element named `name` under the element at `parent` (if that exists).
    pub fn remove(&mut self, parent: &[&str], name: &str) {
        if let Some(el) = self.at_mut(parent) {
            el.remove_children(name);
        }
    }
}

/// Builds the tree from quick-xml events, slicing the source between event positions so each
/// node keeps its exact text.
struct Parser<'a> {
    src: &'a str,
    reader: Reader<&'a [u8]>,
    stack: Vec<Element>,
    top: Vec<Node>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let mut reader = Reader::from_str(src);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.trim_text(false);
        config.expand_empty_elements = false;
        Parser {
            src,
            reader,
            stack: Vec::new(),
            top: Vec::new(),
        }
    }

    fn error_at(&self, pos: usize, message: String) -> XmlError {
        let before = &self.src[..pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        XmlError {
            line,
            column,
            message,
        }
    }

    fn push(&mut self, node: Node) {
        let target = match self.stack.last_mut() {
            Some(parent) => &mut parent.children,
            None => &mut self.top,
        };
        // Entity references arrive as their own events; fold them into the surrounding text.
        if let (Node::Text(new), Some(Node::Text(prev))) = (&node, target.last_mut()) {
            prev.push_str(new);
            return;
        }
        target.push(node);
    }

    fn run(mut self) -> Result<Document, XmlError> {
        let mut roots = 0;
        loop {
            let start = self.reader.buffer_position() as usize;
            let event = match self.reader.read_event() {
                Ok(ev) => ev,
                Err(err) => {
                    let pos = self.reader.error_position() as usize;
                    return Err(self.error_at(pos, err.to_string()));
                }
            };
            let end = self.reader.buffer_position() as usize;
            let raw = &self.src[start..end];
            match event {
                Event::Start(tag) | Event::Empty(tag) => {
                    let self_closing = raw.ends_with("/>");
                    if self.stack.is_empty() {
                        roots += 1;
                        if roots > 1 {
                            return Err(self.error_at(
                                start,
                                "more than one root element; a document has exactly one".into(),
                            ));
                        }
                    }
                    let el = self.element(&tag, raw, self_closing, start)?;
                    if self_closing {
                        self.push(Node::Element(el));
                    } else {
                        self.stack.push(el);
                    }
                }
                Event::End(_) => {
                    let mut el = self.stack.pop().ok_or_else(|| {
                        self.error_at(start, "closing tag without an opening tag".into())
                    })?;
                    el.raw_end = Some(raw.to_owned());
                    self.push(Node::Element(el));
                }
                Event::Text(_) | Event::GeneralRef(_) => {
                    if self.stack.is_empty() && !raw.trim().is_empty() {
                        return Err(self.error_at(start, "text outside the root element".into()));
                    }
                    self.push(Node::Text(raw.to_owned()));
                }
                Event::CData(_) => self.push(Node::CData(raw.to_owned())),
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                    self.push(Node::Markup(raw.to_owned()))
                }
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let msg = format!("element <{}> is never closed", open.name);
            return Err(self.error_at(self.src.len(), msg));
        }
        if roots == 0 {
            return Err(self.error_at(0, "no root element".into()));
        }
        Ok(Document { nodes: self.top })
    }

    fn element(
        &self,
        tag: &quick_xml::events::BytesStart<'_>,
        raw: &str,
        self_closing: bool,
        start: usize,
    ) -> Result<Element, XmlError> {
        let name = tag.name().as_ref().to_owned();
        let mut attrs = Vec::new();
        for attr in tag.attributes().with_checks(true) {
            let attr = attr.map_err(|e| self.error_at(start, format!("in <{name}>: {e}")))?;
            let key = attr.key.as_ref().to_owned();
            let raw_value = attr.value.into_owned();
            let value = unescape(&raw_value)
                .map_err(|e| self.error_at(start, format!("in attribute {key} of <{name}>: {e}")))?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name,
            attrs,
            children: Vec::new(),
            raw_start: Some(raw.to_owned()),
            raw_end: None,
            self_closing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "<?xml version='1.0'?>\n<!-- top -->\n<domain type=\"kvm\"  xmlns:q='urn:q'>\n  <name>a &amp; b</name>\n  <q:x  q:y='1'/><![CDATA[<raw>]]>\n  <?pi data?>\n</domain>\n";

    #[test]
    fn untouched_document_is_byte_identical() {
        let doc = Document::parse(SAMPLE).unwrap();
        assert_eq!(doc.to_xml(), SAMPLE);
        assert_eq!(doc.at(&["name"]).unwrap().text(), "a & b");
    }

    #[test]
    fn setting_one_attribute_keeps_the_rest_verbatim() {
        let mut doc = Document::parse(SAMPLE).unwrap();
        doc.root_mut().set_attr("type", "qemu");
        let out = doc.to_xml();
        assert!(
            out.contains("<domain type='qemu' xmlns:q='urn:q'>"),
            "{out}"
        );
        assert!(out.contains("<q:x  q:y='1'/><![CDATA[<raw>]]>"), "{out}");
    }

    #[test]
    fn new_children_are_indented_like_siblings() {
        let mut doc = Document::parse("<domain>\n  <name>x</name>\n</domain>").unwrap();
        doc.ensure(&["os", "type"]).set_text("hvm");
        assert_eq!(
            doc.to_xml(),
            "<domain>\n  <name>x</name>\n  <os>\n    <type>hvm</type>\n  </os>\n</domain>"
        );
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = Document::parse("<a>\n  <b></c>\n</a>").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = Document::parse("<a>\n  <b>").unwrap_err();
        assert!(err.message.contains("<b>"), "{err}");
    }
}
