//! The checks a migration makes before anything moves: can the destination be reached, is it
//! another host, is the VM running, is its name free there, and can the destination's
//! hypervisor give the VM's CPU (`virConnectCompareHypervisorCPU`, through
//! [`cross_host::compare_on_connection`]), naming each feature it lacks.
//!
//! libvirt makes some of these checks itself, but only halfway through a migration and in
//! words about cookies and XML; asking first lets the app disable Migrate and say why.

use std::fmt;

use crate::domain::Domain;
use crate::launch::connections::cross_host::{self, HostAnswer};
use crate::launch::connections::{ConnectionError, DomainState, LibvirtConnection};

/// What stops a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The destination could not be opened; libvirt's reason with its fix.
    Unreachable(String),
    /// Source and destination are the same libvirt host (the same host UUID).
    SameHost { uuid: String },
    /// Only a running (or paused) VM can be migrated.
    NotRunning(DomainState),
    /// The destination has a different domain of that name, or this one already runs there.
    NameTaken { running: bool },
    /// The destination has this VM's UUID under another name.
    UuidTaken { other: String },
    /// The destination's hypervisor cannot give the VM's CPU: the features it lacks (empty
    /// when libvirt named another reason) and libvirt's sentence.
    Cpu { missing: Vec<String>, why: String },
}

/// The pre-flight's verdict for moving domain `name` from `source` to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub name: String,
    pub source: String,
    pub destination: String,
    /// The destination's answer for the VM's CPU; `None` when it was not asked (unreachable).
    pub cpu: Option<HostAnswer>,
    /// What stops the migration; empty when it may go.
    pub blockers: Vec<Blocker>,
    /// The disks the VM uses: migration does not copy them, so the destination must reach
    /// the same paths (shared storage).
    pub disks: Vec<String>,
}

impl Preflight {
    /// Whether nothing stops the migration.
    pub fn can_migrate(&self) -> bool {
        self.blockers.is_empty()
    }

    /// One line per blocker, each naming the thing and the fix (the CLI's and the error's text).
    pub fn blocker_lines(&self) -> Vec<String> {
        self.blockers.iter().map(|b| self.explain(b)).collect()
    }

    fn explain(&self, blocker: &Blocker) -> String {
        let (name, dest, source) = (&self.name, &self.destination, &self.source);
        match blocker {
            // The reason starts with the URI already.
            Blocker::Unreachable(why) => format!("the destination is unreachable: {why}"),
            Blocker::SameHost { uuid } => format!(
                "{dest} is the same host as {source} (host UUID {uuid}); choose another host \
                 (two daemons on one machine need their own host_uuid in libvirtd.conf)"
            ),
            Blocker::NotRunning(state) => format!(
                "'{name}' is {state} on {source}; only a running VM migrates: start it first"
            ),
            Blocker::NameTaken { running: true } => {
                format!("'{name}' already runs on {dest}; nothing to migrate")
            }
            Blocker::NameTaken { running: false } => format!(
                "{dest} already has another domain named '{name}'; rename or undefine one of them"
            ),
            Blocker::UuidTaken { other } => format!(
                "{dest} already has this VM's UUID as domain '{other}'; undefine that one there first"
            ),
            Blocker::Cpu { missing, why } if missing.is_empty() => {
                format!("{dest} cannot give the CPU of '{name}': {why}")
            }
            Blocker::Cpu { missing, .. } => format!(
                "{dest} cannot give the CPU of '{name}': it lacks {}; give the VM a CPU every \
                 host can run (`vireoctl hosts-cpu-baseline`) or choose another host",
                missing.join(", ")
            ),
        }
    }
}

impl fmt::Display for Preflight {
    /// The verdict as `vireoctl migrate` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Pre-flight for '{}' from {} to {}:",
            self.name, self.source, self.destination
        )?;
        let cpu = match &self.cpu {
            None => "not asked".to_owned(),
            Some(HostAnswer::CanRun(how)) => format!("the destination can give it ({how})"),
            Some(HostAnswer::FollowsHost(mode)) => {
                format!("CPU mode {mode} follows the host; not compared")
            }
            Some(HostAnswer::Cannot { missing, why }) if missing.is_empty() => {
                format!("the destination cannot give it: {why}")
            }
            Some(HostAnswer::Cannot { missing, .. }) => {
                format!("the destination lacks {}", missing.join(", "))
            }
            Some(HostAnswer::Unreachable(why)) => format!("could not be compared: {why}"),
        };
        writeln!(f, "  CPU: {cpu}")?;
        if !self.disks.is_empty() {
            writeln!(
                f,
                "  disks (not copied; the destination must reach them): {}",
                self.disks.join(", ")
            )?;
        }
        if self.can_migrate() {
            writeln!(f, "  verdict: can migrate")
        } else {
            writeln!(f, "  verdict: cannot migrate")?;
            for line in self.blocker_lines() {
                writeln!(f, "  - {line}")?;
            }
            Ok(())
        }
    }
}

/// Runs the pre-flight for migrating `name` from `source` to `dest_uri`. An error means the
/// VM itself could not be read on the source; everything about the destination is a verdict.
pub fn preflight(
    source: &LibvirtConnection,
    name: &str,
    dest_uri: &str,
) -> Result<Preflight, ConnectionError> {
    let name = source.domain_name(name)?;
    let (state, _) = source.domstate(&name)?;
    let running = matches!(state, DomainState::Running | DomainState::Paused);
    // The live XML while it runs: that is the CPU the guest has now and must keep.
    let xml = source.dumpxml(&name, !running)?;
    let uuid = source.dominfo(&name)?.row.uuid;
    let mut verdict = Preflight {
        name: name.clone(),
        source: source.uri().to_owned(),
        destination: dest_uri.to_owned(),
        cpu: None,
        blockers: Vec::new(),
        disks: disk_sources(&xml),
    };
    if !running {
        verdict.blockers.push(Blocker::NotRunning(state));
    }
    let dest = match LibvirtConnection::open(dest_uri) {
        Ok(dest) => dest,
        Err(e) => {
            verdict.blockers.push(Blocker::Unreachable(e.to_string()));
            return Ok(verdict);
        }
    };
    if let (Some(here), Some(there)) = (host_uuid(source), host_uuid(&dest))
        && here == there
    {
        // Every other answer would be about the VM itself.
        verdict.blockers.push(Blocker::SameHost { uuid: here });
        return Ok(verdict);
    }
    match dest.list_domains() {
        Ok(rows) => {
            if let Some(row) = rows.iter().find(|r| r.name == name) {
                let active = matches!(row.state, DomainState::Running | DomainState::Paused);
                // An inactive definition with the same UUID is this VM's own (a migration
                // with --persistent back and forth): libvirt migrates into it.
                if row.uuid != uuid || active {
                    verdict
                        .blockers
                        .push(Blocker::NameTaken { running: active });
                }
            } else if let Some(row) = rows.iter().find(|r| r.uuid == uuid) {
                verdict.blockers.push(Blocker::UuidTaken {
                    other: row.name.clone(),
                });
            }
        }
        Err(e) => verdict.blockers.push(Blocker::Unreachable(e.to_string())),
    }
    let cpu = cross_host::compare_on_connection(&xml, &dest)
        .unwrap_or_else(|e| HostAnswer::Unreachable(e.to_string()));
    if let HostAnswer::Cannot { missing, why } = &cpu {
        verdict.blockers.push(Blocker::Cpu {
            missing: missing.clone(),
            why: why.clone(),
        });
    }
    verdict.cpu = Some(cpu);
    Ok(verdict)
}

/// The host UUID in a connection's capabilities (`<host><uuid>`), libvirt's identity of a
/// host; `None` when the driver gives none (the test driver).
fn host_uuid(conn: &LibvirtConnection) -> Option<String> {
    let caps = conn.capabilities().ok()?;
    let host = &caps[caps.find("<host>")?..];
    let end = host.find("</host>").unwrap_or(host.len());
    let start = host[..end].find("<uuid>")? + "<uuid>".len();
    let len = host[start..end].find("</uuid>")?;
    Some(host[start..start + len].trim().to_owned())
}

/// The sources of the domain's disks (files, block devices, network names).
fn disk_sources(xml: &str) -> Vec<String> {
    Domain::parse(xml)
        .map(|d| d.disks().into_iter().filter_map(|d| d.source).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(blockers: Vec<Blocker>) -> Preflight {
        Preflight {
            name: "web".into(),
            source: "qemu+ssh://a/system".into(),
            destination: "qemu+ssh://b/system".into(),
            cpu: Some(HostAnswer::Cannot {
                missing: vec!["avx2".into(), "rdseed".into()],
                why: "lacks".into(),
            }),
            blockers,
            disks: vec!["/srv/web.qcow2".into()],
        }
    }

    #[test]
    fn each_blocker_names_the_thing_and_the_fix() {
        let v = verdict(vec![
            Blocker::Cpu {
                missing: vec!["avx2".into(), "rdseed".into()],
                why: "lacks".into(),
            },
            Blocker::NameTaken { running: false },
            Blocker::NotRunning(DomainState::ShutOff),
        ]);
        assert!(!v.can_migrate());
        let lines = v.blocker_lines();
        assert!(
            lines[0].starts_with(
                "qemu+ssh://b/system cannot give the CPU of 'web': it lacks avx2, rdseed;"
            ),
            "{lines:?}"
        );
        assert!(lines[1].contains("another domain named 'web'"), "{lines:?}");
        assert!(
            lines[2].contains("'web' is shut off on qemu+ssh://a/system")
                && lines[2].contains("start it"),
            "{lines:?}"
        );
        let text = v.to_string();
        assert!(
            text.contains("CPU: the destination lacks avx2, rdseed"),
            "{text}"
        );
        assert!(text.contains("verdict: cannot migrate"), "{text}");
        assert!(text.contains("/srv/web.qcow2"), "{text}");
        assert!(
            verdict(Vec::new())
                .to_string()
                .contains("verdict: can migrate")
        );
    }

    #[test]
    fn disks_are_listed_from_the_domain_xml() {
        let xml = "<domain type='kvm'><name>a</name><devices>\
                   <disk type='file' device='disk'><source file='/srv/a.qcow2'/>\
                   <target dev='vda'/></disk></devices></domain>";
        assert_eq!(disk_sources(xml), ["/srv/a.qcow2"]);
        assert!(disk_sources("<domain/>").is_empty());
    }
}
