//! A typed libvirt `<cpu>` element (host or guest form) and its parser.

use super::error::CpuError;
use super::xml_tree::{self, Element};

macro_rules! keyword_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The libvirt XML keyword.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the libvirt XML keyword; the error names the bad value and the valid ones.
            pub fn parse(text: &str) -> Result<Self, CpuError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(CpuError::InvalidCpu(format!(
                        concat!("unknown ", $what, " '{}' (expected one of: {})"),
                        other,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

keyword_enum!(
    /// Whether a definition describes a real host CPU or a CPU asked for a guest.
    CpuKind, "CPU type" { Host = "host", Guest = "guest" }
);
keyword_enum!(
    /// How the guest CPU is chosen.
    CpuMode, "CPU mode" {
        Custom = "custom", HostModel = "host-model", HostPassthrough = "host-passthrough", Maximum = "maximum"
    }
);
keyword_enum!(
    /// How strictly the host must match a custom guest CPU.
    CpuMatch, "CPU match" { Minimum = "minimum", Exact = "exact", Strict = "strict" }
);
keyword_enum!(
    /// How thoroughly the hypervisor verifies the guest CPU it gives.
    CpuCheck, "CPU check" { None = "none", Partial = "partial", Full = "full" }
);
keyword_enum!(
    /// Whether another model may be substituted when the named one is unavailable.
    Fallback, "model fallback" { Allow = "allow", Forbid = "forbid" }
);
keyword_enum!(
    /// What a guest CPU feature element asks for.
    Policy, "feature policy" {
        Force = "force", Require = "require", Optional = "optional", Disable = "disable", Forbid = "forbid"
    }
);

/// CPUID family/model/stepping as shown in host CPU definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuSignature {
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

/// Guest CPU topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topology {
    pub sockets: u32,
    pub dies: u32,
    pub clusters: u32,
    pub cores: u32,
    pub threads: u32,
}

/// A `<feature>` of a CPU definition; `policy` is `None` in host definitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpuFeatureRef {
    pub name: String,
    pub policy: Option<Policy>,
}

/// A libvirt `<cpu>` element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpuDef {
    pub kind: CpuKind,
    pub mode: CpuMode,
    /// `None` when the XML omits it; custom guest CPUs then behave as `exact`.
    pub match_: Option<CpuMatch>,
    pub check: Option<CpuCheck>,
    pub arch: Option<String>,
    pub model: Option<String>,
    /// `None` when the XML omits it; libvirt's default is `allow`.
    pub fallback: Option<Fallback>,
    pub vendor: Option<String>,
    pub signature: Option<CpuSignature>,
    pub topology: Option<Topology>,
    pub features: Vec<CpuFeatureRef>,
}

impl CpuDef {
    /// An empty definition of the given kind (custom mode, no model).
    pub fn new(kind: CpuKind) -> CpuDef {
        CpuDef {
            kind,
            mode: CpuMode::Custom,
            match_: None,
            check: None,
            arch: None,
            model: None,
            fallback: None,
            vendor: None,
            signature: None,
            topology: None,
            features: Vec::new(),
        }
    }

    /// The effective match mode (libvirt's default for custom CPUs is `exact`).
    pub fn effective_match(&self) -> CpuMatch {
        self.match_.unwrap_or(CpuMatch::Exact)
    }

    /// Parses one `<cpu>` element. It is a host CPU when it has an `<arch>` child and no
    /// `mode`/`match` attribute (libvirt's rule), a guest CPU otherwise.
    pub fn from_xml(text: &str) -> Result<CpuDef, CpuError> {
        let root = xml_tree::parse(text).map_err(CpuError::InvalidXml)?;
        if root.name != "cpu" {
            return Err(CpuError::InvalidXml(format!(
                "expected a <cpu> element, found <{}>",
                root.name
            )));
        }
        from_element(&root)
    }

    /// Every CPU in a file, the way `virsh cpu-baseline` finds them: the text is read as a
    /// sequence of top-level elements (virsh wraps it in a `<container>`), and the CPUs are
    /// every top-level `<cpu>`, every `<domain>/<cpu>`, every `<capabilities>/<host>/<cpu>`
    /// and the supported host-model of `<domainCapabilities>/<cpu>` (its `<mode
    /// name='host-model' supported='yes'>` read as a `<cpu>` without attributes), in document
    /// order — libvirt's `vshExtractCPUDefXMLs`. Vireo also reads libvirt's test-suite form,
    /// `<cpuTest>/<cpu>`. CPUs anywhere else (a `<domain>` nested in another element, the
    /// `<mode>` lists of domcapabilities other than a supported host-model) are not inputs.
    pub fn all_from_xml(text: &str) -> Result<Vec<CpuDef>, CpuError> {
        let roots = xml_tree::parse_fragment(text).map_err(CpuError::InvalidXml)?;
        let mut out = Vec::new();
        for root in &roots {
            for cpu in cpu_elements(root) {
                out.push(from_element(&cpu)?);
            }
        }
        if out.is_empty() {
            return Err(CpuError::NoCpuFound);
        }
        Ok(out)
    }

    /// The first CPU [`CpuDef::all_from_xml`] finds: what `virsh cpu-compare` compares.
    pub fn first_from_xml(text: &str) -> Result<CpuDef, CpuError> {
        let roots = xml_tree::parse_fragment(text).map_err(CpuError::InvalidXml)?;
        let first = roots
            .iter()
            .find_map(|root| cpu_elements(root).into_iter().next())
            .ok_or(CpuError::NoCpuFound)?;
        from_element(&first)
    }
}

/// The `<cpu>` elements a top-level element contributes (see [`CpuDef::all_from_xml`]).
fn cpu_elements(root: &Element) -> Vec<Element> {
    let children = |e: &Element, name: &str| -> Vec<Element> {
        e.children
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect()
    };
    match root.name.as_str() {
        "cpu" => vec![root.clone()],
        "domain" | "cpuTest" => children(root, "cpu"),
        "capabilities" => root
            .children
            .iter()
            .filter(|c| c.name == "host")
            .flat_map(|host| children(host, "cpu"))
            .collect(),
        "domainCapabilities" => root
            .children
            .iter()
            .filter(|c| c.name == "cpu")
            .flat_map(|cpu| children(cpu, "mode"))
            .filter(|mode| {
                mode.attr("name") == Some("host-model") && mode.attr("supported") == Some("yes")
            })
            .map(|mode| Element {
                name: "cpu".into(),
                attrs: Vec::new(),
                ..mode
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn at(element: &Element, message: impl std::fmt::Display) -> CpuError {
    CpuError::InvalidCpu(format!("line {}: {message}", element.line))
}

fn number_attr(element: &Element, name: &str) -> Result<Option<u32>, CpuError> {
    element
        .attr(name)
        .map(|v| {
            v.trim().parse().map_err(|_| {
                at(
                    element,
                    format!("<{}> {name}='{v}' is not a number", element.name),
                )
            })
        })
        .transpose()
}

fn from_element(cpu: &Element) -> Result<CpuDef, CpuError> {
    let guest_attrs = cpu.attr("mode").is_some() || cpu.attr("match").is_some();
    let kind = match cpu.attr("type") {
        Some(t) => CpuKind::parse(t)?,
        None if cpu.child("arch").is_some() && !guest_attrs => CpuKind::Host,
        None => CpuKind::Guest,
    };
    let mut def = CpuDef::new(kind);
    if let Some(mode) = cpu.attr("mode") {
        def.mode = CpuMode::parse(mode)?;
    }
    def.match_ = cpu.attr("match").map(CpuMatch::parse).transpose()?;
    def.check = cpu.attr("check").map(CpuCheck::parse).transpose()?;
    for child in &cpu.children {
        match child.name.as_str() {
            "arch" => def.arch = Some(child.text.clone()),
            "model" => {
                def.fallback = child.attr("fallback").map(Fallback::parse).transpose()?;
                if !child.text.is_empty() {
                    def.model = Some(child.text.clone());
                }
            }
            "vendor" => def.vendor = Some(child.text.clone()),
            "signature" => {
                let field = |name| number_attr(child, name).map(Option::unwrap_or_default);
                def.signature = Some(CpuSignature {
                    family: field("family")?,
                    model: field("model")?,
                    stepping: field("stepping")?,
                });
            }
            "topology" => {
                let field = |name| number_attr(child, name).map(|v| v.unwrap_or(1));
                def.topology = Some(Topology {
                    sockets: field("sockets")?,
                    dies: field("dies")?,
                    clusters: field("clusters")?,
                    cores: field("cores")?,
                    threads: field("threads")?,
                });
            }
            "feature" => {
                let name = child
                    .attr("name")
                    .ok_or_else(|| at(child, "<feature> lacks its name attribute"))?;
                let policy = match (child.attr("policy"), kind) {
                    (Some(p), _) => Some(Policy::parse(p)?),
                    (None, CpuKind::Guest) => Some(Policy::Require),
                    (None, CpuKind::Host) => None,
                };
                if def.features.iter().any(|f| f.name == name) {
                    return Err(at(child, format!("feature '{name}' is listed twice")));
                }
                def.features.push(CpuFeatureRef {
                    name: name.to_string(),
                    policy,
                });
            }
            // Elements that carry no CPU-model meaning here (cache, numa, maxphysaddr, …).
            _ => {}
        }
    }
    if def.model.is_none() && def.mode == CpuMode::Custom && !def.features.is_empty() {
        return Err(CpuError::InvalidCpu(
            "a feature list needs a CPU model".into(),
        ));
    }
    Ok(def)
}
