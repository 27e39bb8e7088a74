//! Typed views over the parts of a domain document Vireo understands.
//!
//! Getters read the tree; setters edit it in place (see [`crate::domain::xml`]), so everything a
//! setter does not touch keeps its exact formatting. Values that cannot be parsed are reported as
//! [`DomainError`]s naming the element, rather than being silently replaced.

use crate::domain::DomainError;
use crate::domain::units::{MemUnit, Memory};
use crate::domain::xml::{Document, Element};

/// A libvirt domain document.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    doc: Document,
}

/// `<vcpu placement='…' current='…'>N</vcpu>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vcpu {
    pub count: u32,
    pub placement: Option<String>,
    pub current: Option<u32>,
    pub cpuset: Option<String>,
}

/// `<os>`: what to boot and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Os {
    pub os_type: Option<String>,
    pub arch: Option<String>,
    pub machine: Option<String>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    /// `<boot dev='…'/>` in order.
    pub boot_order: Vec<String>,
}

/// A `<vcpupin>`/`<iothreadpin>` entry, or `<emulatorpin>` (with `id` None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub id: Option<u32>,
    pub cpuset: String,
}

/// `<cputune>`'s pinning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuTune {
    pub vcpupin: Vec<Pin>,
    pub emulatorpin: Option<Pin>,
    pub iothreadpin: Vec<Pin>,
}

/// `<numatune><memory mode nodeset/></numatune>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaTune {
    pub mode: Option<String>,
    pub nodeset: Option<String>,
    pub placement: Option<String>,
}

/// Which lifecycle action element (`on_poweroff`, `on_reboot`, `on_crash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    Poweroff,
    Reboot,
    Crash,
}

impl LifecycleEvent {
    pub fn element(self) -> &'static str {
        match self {
            LifecycleEvent::Poweroff => "on_poweroff",
            LifecycleEvent::Reboot => "on_reboot",
            LifecycleEvent::Crash => "on_crash",
        }
    }
}

pub(crate) fn parse_num<T: std::str::FromStr>(
    value: &str,
    element: &str,
    fix: &str,
) -> Result<T, DomainError> {
    value.trim().parse().map_err(|_| DomainError::Invalid {
        element: element.to_owned(),
        message: format!("'{value}' is not a valid number; {fix}"),
    })
}

impl Domain {
    /// Parses a document whose root must be `<domain>`.
    pub fn parse(xml: &str) -> Result<Domain, DomainError> {
        let doc = Document::parse(xml)?;
        if doc.root().name() != "domain" {
            return Err(DomainError::Invalid {
                element: format!("<{}>", doc.root().name()),
                message: "the root element must be <domain>; this is not a domain definition"
                    .into(),
            });
        }
        Ok(Domain { doc })
    }

    pub fn to_xml(&self) -> String {
        self.doc.to_xml()
    }

    pub fn document(&self) -> &Document {
        &self.doc
    }

    pub fn document_mut(&mut self) -> &mut Document {
        &mut self.doc
    }

    fn text_at(&self, path: &[&str]) -> Option<String> {
        self.doc.at(path).map(|e| e.text().trim().to_owned())
    }

    fn set_text_at(&mut self, path: &[&str], value: &str) {
        self.doc.ensure(path).set_text(value);
    }

    /// `<domain type='…'>` (kvm, qemu, …).
    pub fn hypervisor_type(&self) -> Option<&str> {
        self.doc.root().attr("type")
    }

    pub fn set_hypervisor_type(&mut self, value: &str) {
        self.doc.root_mut().set_attr("type", value);
    }

    pub fn name(&self) -> Option<String> {
        self.text_at(&["name"])
    }

    pub fn set_name(&mut self, name: &str) {
        self.set_text_at(&["name"], name);
    }

    pub fn uuid(&self) -> Option<String> {
        self.text_at(&["uuid"])
    }

    pub fn set_uuid(&mut self, uuid: &uuid::Uuid) {
        self.set_text_at(&["uuid"], &uuid.hyphenated().to_string());
    }

    pub fn title(&self) -> Option<String> {
        self.doc.at(&["title"]).map(Element::text)
    }

    pub fn set_title(&mut self, title: &str) {
        self.set_text_at(&["title"], title);
    }

    pub fn description(&self) -> Option<String> {
        self.doc.at(&["description"]).map(Element::text)
    }

    pub fn set_description(&mut self, text: &str) {
        self.set_text_at(&["description"], text);
    }

    fn memory_at(&self, element: &str) -> Result<Option<Memory>, DomainError> {
        let Some(el) = self.doc.at(&[element]) else {
            return Ok(None);
        };
        let tag = format!("<{element}>");
        let unit = match el.attr("unit") {
            None => MemUnit::KIB,
            Some(u) => MemUnit::parse(u).ok_or_else(|| DomainError::Invalid {
                element: tag.clone(),
                message: format!("unknown unit '{u}'; use one of {}", MemUnit::all_names()),
            })?,
        };
        let amount = parse_num(&el.text(), &tag, "write a whole number such as 2048")?;
        Ok(Some(Memory { amount, unit }))
    }

    fn set_memory_at(&mut self, element: &str, memory: Memory) {
        let el = self.doc.ensure(&[element]);
        el.set_attr("unit", memory.unit.name);
        el.set_text(&memory.amount.to_string());
    }

    /// `<memory>`: the maximum memory at boot.
    pub fn memory(&self) -> Result<Option<Memory>, DomainError> {
        self.memory_at("memory")
    }

    pub fn set_memory(&mut self, memory: Memory) {
        self.set_memory_at("memory", memory);
    }

    /// `<currentMemory>`: the memory actually given (balloon target).
    pub fn current_memory(&self) -> Result<Option<Memory>, DomainError> {
        self.memory_at("currentMemory")
    }

    pub fn set_current_memory(&mut self, memory: Memory) {
        self.set_memory_at("currentMemory", memory);
    }

    pub fn vcpu(&self) -> Result<Option<Vcpu>, DomainError> {
        let Some(el) = self.doc.at(&["vcpu"]) else {
            return Ok(None);
        };
        let fix = "write a whole number of virtual CPUs such as 2";
        Ok(Some(Vcpu {
            count: parse_num(&el.text(), "<vcpu>", fix)?,
            placement: el.attr("placement").map(str::to_owned),
            current: el
                .attr("current")
                .map(|c| parse_num(c, "<vcpu current>", fix))
                .transpose()?,
            cpuset: el.attr("cpuset").map(str::to_owned),
        }))
    }

    pub fn set_vcpu(&mut self, vcpu: &Vcpu) {
        let el = self.doc.ensure(&["vcpu"]);
        for (name, value) in [
            ("placement", vcpu.placement.clone()),
            ("cpuset", vcpu.cpuset.clone()),
            ("current", vcpu.current.map(|c| c.to_string())),
        ] {
            match value {
                Some(v) => el.set_attr(name, &v),
                None => el.remove_attr(name),
            }
        }
        el.set_text(&vcpu.count.to_string());
    }

    pub fn os(&self) -> Os {
        let Some(os) = self.doc.at(&["os"]) else {
            return Os::default();
        };
        let ty = os.child("type");
        let text = |name: &str| os.child(name).map(|e| e.text().trim().to_owned());
        Os {
            os_type: ty.map(|t| t.text().trim().to_owned()),
            arch: ty.and_then(|t| t.attr("arch")).map(str::to_owned),
            machine: ty.and_then(|t| t.attr("machine")).map(str::to_owned),
            kernel: text("kernel"),
            initrd: text("initrd"),
            cmdline: text("cmdline"),
            boot_order: os
                .children_named("boot")
                .filter_map(|b| b.attr("dev").map(str::to_owned))
                .collect(),
        }
    }

    /// Sets `<os><type arch machine>`.
    pub fn set_os_type(&mut self, os_type: &str, arch: Option<&str>, machine: Option<&str>) {
        let el = self.doc.ensure(&["os", "type"]);
        for (name, value) in [("arch", arch), ("machine", machine)] {
            match value {
                Some(v) => el.set_attr(name, v),
                None => el.remove_attr(name),
            }
        }
        el.set_text(os_type);
    }

    /// Sets or removes (`None`) `<os><kernel>`, `<initrd>` or `<cmdline>`.
    pub fn set_os_text(&mut self, element: OsText, value: Option<&str>) {
        let name = element.element();
        match value {
            Some(v) => self.set_text_at(&["os", name], v),
            None => self.doc.remove(&["os"], name),
        }
    }

    /// Replaces the `<boot dev>` list.
    pub fn set_boot_order(&mut self, devs: &[&str]) {
        self.doc.remove(&["os"], "boot");
        let os = self.doc.ensure(&["os"]);
        for dev in devs {
            os.append_child(Element::new("boot").with_attr("dev", dev), 1);
        }
    }

    /// Names of the `<features>` children that are switched on (e.g. `acpi`, `apic`, `pae`).
    pub fn features(&self) -> Vec<String> {
        self.doc
            .at(&["features"])
            .map(|f| f.elements().map(|e| e.name().to_owned()).collect())
            .unwrap_or_default()
    }

    /// Adds (`<acpi/>`) or removes a feature flag.
    pub fn set_feature(&mut self, name: &str, on: bool) {
        if on {
            self.doc.ensure(&["features", name]);
        } else {
            self.doc.remove(&["features"], name);
        }
    }

    /// The `<cpu>` subtree as XML text, exactly as stored.
    pub fn cpu_xml(&self) -> Option<String> {
        self.doc.at(&["cpu"]).map(Element::to_xml)
    }

    /// Replaces (or, with `None`, removes) `<cpu>` with the given XML.
    pub fn set_cpu_xml(&mut self, xml: Option<&str>) -> Result<(), DomainError> {
        let new = xml.map(Document::parse).transpose()?;
        let root = self.doc.root_mut();
        match new {
            None => root.remove_children("cpu"),
            Some(doc) => {
                let new_cpu = doc.root().clone();
                match root.child_mut("cpu") {
                    Some(old) => *old = new_cpu,
                    None => {
                        root.append_child(new_cpu, 0);
                    }
                }
            }
        }
        Ok(())
    }

    /// `<clock offset='…'>`.
    pub fn clock_offset(&self) -> Option<String> {
        self.doc
            .at(&["clock"])
            .and_then(|c| c.attr("offset"))
            .map(str::to_owned)
    }

    pub fn set_clock_offset(&mut self, offset: &str) {
        self.doc.ensure(&["clock"]).set_attr("offset", offset);
    }

    /// The action for `on_poweroff`/`on_reboot`/`on_crash` (destroy, restart, preserve, …).
    pub fn lifecycle(&self, event: LifecycleEvent) -> Option<String> {
        self.text_at(&[event.element()])
    }

    pub fn set_lifecycle(&mut self, event: LifecycleEvent, action: &str) {
        self.set_text_at(&[event.element()], action);
    }

    pub fn cputune(&self) -> Result<CpuTune, DomainError> {
        let Some(tune) = self.doc.at(&["cputune"]) else {
            return Ok(CpuTune::default());
        };
        let pins = |element: &str, id_attr: &str| -> Result<Vec<Pin>, DomainError> {
            tune.children_named(element)
                .map(|p| {
                    Ok(Pin {
                        id: p
                            .attr(id_attr)
                            .map(|v| {
                                parse_num(v, &format!("<{element} {id_attr}>"), "use an index")
                            })
                            .transpose()?,
                        cpuset: p.attr("cpuset").unwrap_or_default().to_owned(),
                    })
                })
                .collect()
        };
        Ok(CpuTune {
            vcpupin: pins("vcpupin", "vcpu")?,
            emulatorpin: tune.child("emulatorpin").map(|p| Pin {
                id: None,
                cpuset: p.attr("cpuset").unwrap_or_default().to_owned(),
            }),
            iothreadpin: pins("iothreadpin", "iothread")?,
        })
    }

    /// Pins vCPU `vcpu` to host CPUs `cpuset` (replacing an existing pin for that vCPU).
    pub fn set_vcpupin(&mut self, vcpu: u32, cpuset: &str) {
        self.set_pin("vcpupin", "vcpu", vcpu, cpuset);
    }

    /// Pins I/O thread `iothread` to host CPUs `cpuset` (replacing an existing pin for it).
    pub fn set_iothreadpin(&mut self, iothread: u32, cpuset: &str) {
        self.set_pin("iothreadpin", "iothread", iothread, cpuset);
    }

    fn set_pin(&mut self, element: &str, id_attr: &str, id: u32, cpuset: &str) {
        let id = id.to_string();
        let tune = self.doc.ensure(&["cputune"]);
        let existing = tune
            .elements_mut()
            .find(|e| e.name() == element && e.attr(id_attr) == Some(id.as_str()));
        match existing {
            Some(pin) => pin.set_attr("cpuset", cpuset),
            None => {
                let pin = Element::new(element)
                    .with_attr(id_attr, &id)
                    .with_attr("cpuset", cpuset);
                tune.append_child(pin, 1);
            }
        }
    }

    pub fn set_emulatorpin(&mut self, cpuset: &str) {
        self.doc
            .ensure(&["cputune", "emulatorpin"])
            .set_attr("cpuset", cpuset);
    }

    pub fn numatune(&self) -> Option<NumaTune> {
        self.doc.at(&["numatune", "memory"]).map(|m| NumaTune {
            mode: m.attr("mode").map(str::to_owned),
            nodeset: m.attr("nodeset").map(str::to_owned),
            placement: m.attr("placement").map(str::to_owned),
        })
    }

    pub fn set_numatune(&mut self, mode: &str, nodeset: &str) {
        let m = self.doc.ensure(&["numatune", "memory"]);
        m.set_attr("mode", mode);
        m.set_attr("nodeset", nodeset);
    }
}

/// The text-valued children of `<os>` that [`Domain::set_os_text`] edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsText {
    Kernel,
    Initrd,
    Cmdline,
}

impl OsText {
    pub fn element(self) -> &'static str {
        match self {
            OsText::Kernel => "kernel",
            OsText::Initrd => "initrd",
            OsText::Cmdline => "cmdline",
        }
    }
}
