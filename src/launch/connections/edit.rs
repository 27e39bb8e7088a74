//! Editing a domain's definition on a connection without losing someone else's changes: the
//! editor keeps the XML it loaded, and saving first reads the definition again; if another
//! client (virsh edit, virt-manager, another Vireo) changed it in between, nothing is written
//! and the caller is told to reload — libvirt itself would silently take the last define.
//!
//! Also the CPU edits the details window offers for a libvirt VM ([`CpuEdit`]), applied to
//! the document in place so everything else keeps its exact text.

use crate::domain::Domain;
use crate::domain::model::Vcpu;

use super::{Connection, ConnectionError};

/// A definition as loaded for editing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub name: String,
    /// The inactive XML as the host gave it when loaded.
    pub xml: String,
}

/// Why a save wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The definition on the host is not the one the editor loaded.
    #[error(
        "{uri}: domain '{name}' was changed on the host since it was opened here (by virsh, \
         virt-manager or another window); nothing was saved. Reload to see the host's version, \
         then make the change again"
    )]
    ChangedOnHost { uri: String, name: String },
    /// The edited XML names another domain (libvirt would define a second one).
    #[error(
        "the edited XML names domain '{found}', not '{name}'; renaming is not done by editing \
         here — put <name>{name}</name> back"
    )]
    Renamed { name: String, found: String },
    /// The edited XML is not a domain definition.
    #[error("the edited XML cannot be read: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl SaveError {
    /// Whether reloading is the way out.
    pub fn changed_on_host(&self) -> bool {
        matches!(self, SaveError::ChangedOnHost { .. })
    }
}

/// Reads `name`'s inactive definition for editing.
pub fn load(conn: &Connection, name: &str) -> Result<Loaded, ConnectionError> {
    Ok(Loaded {
        name: name.to_owned(),
        xml: conn.dumpxml(name, true)?,
    })
}

/// Defines `edited` in place of `loaded` unless the host's definition changed since it was
/// loaded; returns the definition as the host now has it (to load as the new base).
pub fn save(conn: &Connection, loaded: &Loaded, edited: &str) -> Result<Loaded, SaveError> {
    let domain = Domain::parse(edited).map_err(|e| SaveError::Unreadable(e.to_string()))?;
    let found = domain.name().unwrap_or_default();
    if found != loaded.name {
        return Err(SaveError::Renamed {
            name: loaded.name.clone(),
            found,
        });
    }
    let now = conn.dumpxml(&loaded.name, true)?;
    if now != loaded.xml {
        tracing::info!(uri = conn.uri(), name = %loaded.name, "changed on the host; not saved");
        return Err(SaveError::ChangedOnHost {
            uri: conn.uri().to_owned(),
            name: loaded.name.clone(),
        });
    }
    conn.define(edited)?;
    Ok(load(conn, &loaded.name)?)
}

/// The CPU choices the details window offers for a libvirt VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuMode {
    /// The host's CPU exactly (`host-passthrough`).
    HostPassthrough,
    /// The closest named model with the host's features (`host-model`).
    HostModel,
    /// A named model (`custom`).
    Custom(String),
}

/// A VM's CPU as the details window edits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuEdit {
    pub vcpus: u32,
    /// `None`: no `<cpu>` element (the hypervisor's default CPU).
    pub mode: Option<CpuMode>,
}

impl CpuEdit {
    /// What `xml` says now.
    pub fn read(xml: &str) -> Result<CpuEdit, SaveError> {
        let domain = Domain::parse(xml).map_err(|e| SaveError::Unreadable(e.to_string()))?;
        let vcpus = domain
            .vcpu()
            .map_err(|e| SaveError::Unreadable(e.to_string()))?
            .map_or(1, |v| v.count);
        let cpu = domain.document().at(&["cpu"]);
        let mode = cpu.map(|cpu| match cpu.attr("mode").unwrap_or("custom") {
            "host-passthrough" | "maximum" => CpuMode::HostPassthrough,
            "host-model" => CpuMode::HostModel,
            _ => CpuMode::Custom(
                cpu.child("model")
                    .map(|m| m.text().trim().to_owned())
                    .unwrap_or_default(),
            ),
        });
        Ok(CpuEdit { vcpus, mode })
    }

    /// `xml` with this CPU: the vCPU count set in place; the `<cpu>` element replaced only
    /// when the mode or model differs (so its topology and features stay otherwise).
    pub fn apply(&self, xml: &str) -> Result<String, SaveError> {
        let unreadable = |e: crate::domain::DomainError| SaveError::Unreadable(e.to_string());
        let before = CpuEdit::read(xml)?;
        let mut domain = Domain::parse(xml).map_err(unreadable)?;
        if before.vcpus != self.vcpus {
            let mut vcpu = domain.vcpu().map_err(unreadable)?.unwrap_or(Vcpu {
                count: 1,
                placement: None,
                current: None,
                cpuset: None,
            });
            vcpu.count = self.vcpus;
            vcpu.current = vcpu.current.map(|c| c.min(self.vcpus));
            domain.set_vcpu(&vcpu);
        }
        if before.mode != self.mode {
            let cpu = match &self.mode {
                None => None,
                Some(CpuMode::HostPassthrough) => Some("<cpu mode='host-passthrough'/>".into()),
                Some(CpuMode::HostModel) => Some("<cpu mode='host-model'/>".into()),
                Some(CpuMode::Custom(model)) => Some(format!(
                    "<cpu mode='custom' match='exact'><model fallback='forbid'>{}</model></cpu>",
                    crate::domain::xml::escape_text(model)
                )),
            };
            domain.set_cpu_xml(cpu.as_deref()).map_err(unreadable)?;
        }
        Ok(domain.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::connections::Target;

    const XML: &str = "<domain type='test'><name>edited</name><memory unit='MiB'>64</memory>\
                       <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>";

    #[test]
    fn a_save_over_a_change_made_elsewhere_is_refused_and_reload_sees_it() {
        let conn = Connection::open(&Target::Libvirt("test:///default".into())).unwrap();
        conn.define(XML).unwrap();
        let loaded = load(&conn, "edited").unwrap();
        let mut mine = CpuEdit::read(&loaded.xml).unwrap();
        assert_eq!((mine.vcpus, &mine.mode), (1, &None));
        mine.vcpus = 2;
        mine.mode = Some(CpuMode::Custom("Haswell".into()));
        let edited = mine.apply(&loaded.xml).unwrap();
        let saved = save(&conn, &loaded, &edited).unwrap();
        assert_eq!(CpuEdit::read(&saved.xml).unwrap(), mine);
        assert_eq!(saved.xml, conn.dumpxml("edited", true).unwrap());

        // Another client redefines it (3 vCPUs) behind this editor's back.
        let other = Connection::open(&Target::Libvirt("test:///default".into())).unwrap();
        other
            .define(&saved.xml.replace(">2</vcpu>", ">3</vcpu>"))
            .unwrap();
        let mut late = CpuEdit::read(&saved.xml).unwrap();
        late.vcpus = 4;
        let err = save(&conn, &saved, &late.apply(&saved.xml).unwrap()).unwrap_err();
        assert!(err.changed_on_host(), "{err}");
        assert!(err.to_string().contains("Reload"), "{err}");
        // Nothing was written: the other client's change stands.
        let reloaded = load(&conn, "edited").unwrap();
        assert_eq!(CpuEdit::read(&reloaded.xml).unwrap().vcpus, 3);

        // A renamed document is refused rather than defining a second domain.
        let renamed = reloaded
            .xml
            .replace("<name>edited</name>", "<name>other</name>");
        let err = save(&conn, &reloaded, &renamed).unwrap_err();
        assert!(matches!(err, SaveError::Renamed { .. }), "{err}");
        conn.undefine("edited").unwrap();
    }
}
