//! A new VM defined on a libvirt host rather than this computer: the hypervisor type and CPU
//! come from *that* host (its capabilities and domain capabilities), not from this computer's
//! KVM. The wizard builds the domain as for this computer, then [`HostPlan::adapt`] makes it
//! fit the host.

use crate::domain::Domain;
use crate::domain::xml::{Document, Element};

use super::{ConnectionError, HypervisorSpec, LibvirtConnection};

/// What a host offers a new VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// `<domain type='…'>`: `kvm` where the host has it, else `qemu` (TCG), else the first
    /// type its capabilities list (the test driver's `test`).
    pub virt_type: String,
    /// Whether the host offers `host-model` / `host-passthrough` for that type.
    pub host_model: bool,
    pub host_passthrough: bool,
    /// The host's named CPU models and whether each is usable there (empty when the host does
    /// not report its domain capabilities).
    pub models: Vec<(String, bool)>,
    /// The model the host's host-model CPU is based on, if it says.
    pub host_model_name: Option<String>,
}

impl HostPlan {
    /// Asks `conn` what it offers. A host without domain capabilities (the test driver, an old
    /// libvirt) still gets a type from its capabilities and no CPU claims.
    pub fn of(conn: &LibvirtConnection) -> Result<HostPlan, ConnectionError> {
        let types = virt_types(&conn.capabilities()?);
        let virt_type = ["kvm", "qemu"]
            .into_iter()
            .find(|t| types.iter().any(|have| have == t))
            .map(str::to_owned)
            .or_else(|| types.first().cloned())
            .unwrap_or_else(|| "qemu".to_owned());
        let spec = HypervisorSpec {
            virttype: Some(virt_type.clone()),
            ..HypervisorSpec::default()
        };
        let domcaps = conn.domcapabilities(&spec).ok();
        Ok(HostPlan::from_parts(virt_type, domcaps.as_deref()))
    }

    /// The plan from the chosen type and the host's domain capabilities XML, if any.
    pub fn from_parts(virt_type: String, domcaps: Option<&str>) -> HostPlan {
        let mut plan = HostPlan {
            virt_type,
            host_model: false,
            host_passthrough: false,
            models: Vec::new(),
            host_model_name: None,
        };
        let Some(doc) = domcaps.and_then(|x| Document::parse(x).ok()) else {
            return plan;
        };
        let Some(cpu) = doc.root().child("cpu") else {
            return plan;
        };
        for mode in cpu.children_named("mode") {
            let supported = mode.attr("supported") == Some("yes");
            match mode.attr("name") {
                Some("host-passthrough") => plan.host_passthrough = supported,
                Some("host-model") => {
                    plan.host_model = supported;
                    plan.host_model_name = mode.child("model").map(text);
                }
                Some("custom") if supported => {
                    plan.models = mode
                        .children_named("model")
                        .map(|m| (text(m), m.attr("usable") == Some("yes")))
                        .collect();
                }
                _ => {}
            }
        }
        plan
    }

    /// How many of the host's models it can run, and how many it lists.
    pub fn usable_count(&self) -> (usize, usize) {
        let usable = self.models.iter().filter(|(_, ok)| *ok).count();
        (usable, self.models.len())
    }

    /// Whether the host can run model `name` (`None`: it does not say).
    pub fn usable(&self, name: &str) -> Option<bool> {
        self.models
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, ok)| *ok)
    }

    /// The `<cpu>` this host gives a VM that asked for `wanted` (its current `<cpu>` mode and
    /// model): kept when the host can give it, else host-model, else a usable named model, else
    /// none (the hypervisor's default). Returns the element's XML, or `None` for none.
    pub fn cpu_for(&self, wanted: Option<(&str, Option<&str>)>) -> Option<String> {
        let fits = match wanted {
            None => return None,
            Some(("host-passthrough", _)) => self.host_passthrough,
            Some(("host-model", _)) => self.host_model,
            Some((_, Some(model))) => self.usable(model) == Some(true),
            Some(_) => false,
        };
        match wanted {
            Some((mode, model)) if fits => Some(match model {
                Some(model) if mode != "host-model" && mode != "host-passthrough" => format!(
                    "<cpu mode='custom' match='exact'><model fallback='forbid'>{}</model></cpu>",
                    crate::domain::xml::escape_text(model)
                ),
                _ => format!("<cpu mode='{mode}'/>"),
            }),
            _ if self.host_model => Some("<cpu mode='host-model'/>".into()),
            _ => self
                .host_model_name
                .as_deref()
                .filter(|m| self.usable(m) == Some(true))
                .or_else(|| self.models.iter().rev().find(|(_, ok)| *ok).map(|(m, _)| m.as_str()))
                .map(|model| {
                    format!(
                        "<cpu mode='custom' match='exact'><model fallback='forbid'>{}</model></cpu>",
                        crate::domain::xml::escape_text(model)
                    )
                }),
        }
    }

    /// `xml` (a domain built for this computer) made to fit the host: its type, its CPU per
    /// [`HostPlan::cpu_for`], and user-mode network cards without Vireo's passt backend
    /// (libvirt before 9.x refuses `<backend type='passt'/>`; without it the host uses its
    /// own user-mode networking).
    pub fn adapt(&self, xml: &str) -> Result<String, crate::domain::DomainError> {
        let mut domain = Domain::parse(xml)?;
        let root = domain.document_mut().root_mut();
        root.set_attr("type", &self.virt_type);
        if let Some(devices) = root.child_mut("devices") {
            for nic in devices.elements_mut() {
                if nic.name() == "interface" && nic.attr("type") == Some("user") {
                    nic.remove_children("backend");
                }
            }
        }
        let wanted = domain.document().at(&["cpu"]).map(|cpu| {
            (
                cpu.attr("mode").unwrap_or("custom").to_owned(),
                cpu.child("model").map(text),
            )
        });
        let cpu = self.cpu_for(
            wanted
                .as_ref()
                .map(|(mode, model)| (mode.as_str(), model.as_deref())),
        );
        domain.set_cpu_xml(cpu.as_deref())?;
        Ok(domain.to_xml())
    }
}

fn text(element: &Element) -> String {
    element.text().trim().to_owned()
}

/// The `<domain type>`s a host's capabilities XML offers for hvm guests.
fn virt_types(capabilities: &str) -> Vec<String> {
    let Ok(doc) = Document::parse(capabilities) else {
        return Vec::new();
    };
    let mut types = Vec::new();
    for guest in doc.root().children_named("guest") {
        for arch in guest.children_named("arch") {
            for domain in arch.children_named("domain") {
                if let Some(t) = domain.attr("type")
                    && !types.iter().any(|have| have == t)
                {
                    types.push(t.to_owned());
                }
            }
        }
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMCAPS: &str = "<domainCapabilities><domain>kvm</domain><cpu>\
        <mode name='host-passthrough' supported='yes'/>\
        <mode name='host-model' supported='yes'><model fallback='forbid'>Skylake-Client-IBRS</model></mode>\
        <mode name='custom' supported='yes'><model usable='yes'>qemu64</model>\
        <model usable='yes'>Skylake-Client-IBRS</model><model usable='no'>Icelake-Server</model>\
        </mode></cpu></domainCapabilities>";

    #[test]
    fn the_cpu_fits_the_host_or_falls_back_to_what_it_offers() {
        let plan = HostPlan::from_parts("kvm".into(), Some(DOMCAPS));
        assert_eq!(plan.usable_count(), (2, 3));
        assert_eq!(plan.usable("Icelake-Server"), Some(false));
        assert_eq!(
            plan.cpu_for(Some(("custom", Some("qemu64")))).unwrap(),
            "<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>"
        );
        // A model the host cannot run becomes host-model there.
        assert_eq!(
            plan.cpu_for(Some(("custom", Some("Icelake-Server"))))
                .unwrap(),
            "<cpu mode='host-model'/>"
        );
        assert_eq!(
            plan.cpu_for(Some(("host-passthrough", None))).unwrap(),
            "<cpu mode='host-passthrough'/>"
        );
        // A TCG host without host-model: its host-model's base model, when usable.
        let tcg = HostPlan {
            host_model: false,
            host_passthrough: false,
            ..plan.clone()
        };
        assert!(
            tcg.cpu_for(Some(("host-passthrough", None)))
                .unwrap()
                .contains(">Skylake-Client-IBRS</model>")
        );
        let xml = "<domain type='kvm'><name>n</name><cpu mode='custom' match='exact'>\
                   <model>Icelake-Server</model></cpu><devices><interface type='user'>\
                   <backend type='passt'/></interface></devices></domain>";
        let adapted = HostPlan::from_parts("qemu".into(), Some(DOMCAPS))
            .adapt(xml)
            .unwrap();
        assert!(adapted.starts_with("<domain type='qemu'>"), "{adapted}");
        assert!(adapted.contains("<cpu mode='host-model'/>"), "{adapted}");
        assert!(!adapted.contains("passt"), "{adapted}");
        // No domain capabilities: no CPU claims, the CPU left to the hypervisor.
        let blind = HostPlan::from_parts("test".into(), None);
        assert_eq!(blind.cpu_for(Some(("host-model", None))), None);
        assert!(!blind.adapt(xml).unwrap().contains("<cpu"));
    }

    #[test]
    fn the_test_driver_gets_its_own_type() {
        let conn = LibvirtConnection::open("test:///default").unwrap();
        let plan = HostPlan::of(&conn).unwrap();
        assert_eq!(plan.virt_type, "test");
        assert!(plan.models.is_empty());
    }
}
