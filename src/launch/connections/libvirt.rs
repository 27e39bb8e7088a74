//! One open libvirt connection and virsh's domain verbs over it.

use std::fmt;
use std::sync::Once;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error as VirtError;
use virt::sys;

use super::ConnectionError;
use super::hypervisor_cpu::{self, Comparison, HypervisorSpec};

/// A domain's state, virsh's words for libvirt's virDomainState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainState {
    NoState,
    Running,
    Blocked,
    Paused,
    ShuttingDown,
    ShutOff,
    Crashed,
    PmSuspended,
}

impl DomainState {
    fn from_raw(state: sys::virDomainState) -> DomainState {
        match state {
            sys::VIR_DOMAIN_RUNNING => DomainState::Running,
            sys::VIR_DOMAIN_BLOCKED => DomainState::Blocked,
            sys::VIR_DOMAIN_PAUSED => DomainState::Paused,
            sys::VIR_DOMAIN_SHUTDOWN => DomainState::ShuttingDown,
            sys::VIR_DOMAIN_SHUTOFF => DomainState::ShutOff,
            sys::VIR_DOMAIN_CRASHED => DomainState::Crashed,
            sys::VIR_DOMAIN_PMSUSPENDED => DomainState::PmSuspended,
            _ => DomainState::NoState,
        }
    }

    /// virsh's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::NoState => "no state",
            DomainState::Running => "running",
            DomainState::Blocked => "idle",
            DomainState::Paused => "paused",
            DomainState::ShuttingDown => "in shutdown",
            DomainState::ShutOff => "shut off",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
        }
    }

    /// virsh's word for the reason libvirt gives with the state (`domstate --reason`).
    fn reason(self, reason: i32) -> &'static str {
        const RUNNING: [&str; 11] = [
            "unknown",
            "booted",
            "migrated",
            "restored",
            "from snapshot",
            "unpaused",
            "migration canceled",
            "save canceled",
            "event wakeup",
            "crashed",
            "post-copy",
        ];
        const PAUSED: [&str; 13] = [
            "unknown",
            "user",
            "migrating",
            "saving",
            "dumping",
            "I/O error",
            "watchdog",
            "from snapshot",
            "shutting down",
            "creating snapshot",
            "starting up",
            "post-copy",
            "post-copy failed",
        ];
        const SHUTOFF: [&str; 9] = [
            "unknown",
            "shutdown",
            "destroyed",
            "crashed",
            "migrated",
            "saved",
            "failed",
            "from snapshot",
            "daemon",
        ];
        let table: &[&'static str] = match self {
            DomainState::Running => &RUNNING,
            DomainState::Paused => &PAUSED,
            DomainState::ShutOff => &SHUTOFF,
            DomainState::ShuttingDown => &["unknown", "user"],
            DomainState::Crashed => &["unknown", "panicked"],
            _ => &["unknown"],
        };
        usize::try_from(reason)
            .ok()
            .and_then(|i| table.get(i).copied())
            .unwrap_or("unknown")
    }
}

impl fmt::Display for DomainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`LibvirtConnection::control`] does to a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Ask the guest to shut down.
    Shutdown,
    /// Ask the guest to reboot.
    Reboot,
    /// Force it off.
    Destroy,
    /// Pause its vCPUs.
    Suspend,
    /// Let a paused domain run on.
    Resume,
}

impl Lifecycle {
    /// The action in an error message.
    pub(crate) fn doing(self) -> &'static str {
        match self {
            Lifecycle::Shutdown => "shutting down",
            Lifecycle::Reboot => "rebooting",
            Lifecycle::Destroy => "destroying",
            Lifecycle::Suspend => "suspending",
            Lifecycle::Resume => "resuming",
        }
    }

    /// virsh's report once done: "Domain 'web' {done}".
    pub fn done(self) -> &'static str {
        match self {
            Lifecycle::Shutdown => "is being shutdown",
            Lifecycle::Reboot => "is being rebooted",
            Lifecycle::Destroy => "destroyed",
            Lifecycle::Suspend => "suspended",
            Lifecycle::Resume => "resumed",
        }
    }
}

/// One domain of [`LibvirtConnection::list_domains`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    pub name: String,
    /// The id while it runs.
    pub id: Option<u32>,
    pub state: DomainState,
    pub uuid: String,
    /// Defined (persistent) rather than only running from XML (transient).
    pub persistent: bool,
    pub autostart: bool,
}

/// A running domain's CPU time so far, as [`LibvirtConnection::cpu_times`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTime {
    pub name: String,
    /// Nanoseconds of CPU used by all its vCPUs since it started.
    pub cpu_time_ns: u64,
    pub vcpus: u32,
}

/// What `dominfo` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDetails {
    pub row: DomainRow,
    pub os_type: String,
    pub vcpus: u32,
    pub max_memory_kib: u64,
    pub used_memory_kib: u64,
    pub cpu_time_ns: u64,
}

impl DomainDetails {
    /// virsh's `dominfo` layout.
    pub fn to_dominfo(&self) -> String {
        let row = &self.row;
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut out = format!(
            "Id:             {}\nName:           {}\nUUID:           {}\nOS Type:        {}\n\
             State:          {}\nCPU(s):         {}\n",
            row.id.map_or("-".to_owned(), |id| id.to_string()),
            row.name,
            row.uuid,
            self.os_type,
            row.state,
            self.vcpus,
        );
        if row.id.is_some() {
            out += &format!("CPU time:       {:.1}s\n", self.cpu_time_ns as f64 / 1e9);
        }
        out += &format!(
            "Max memory:     {} KiB\nUsed memory:    {} KiB\nPersistent:     {}\nAutostart:      {}\n",
            self.max_memory_kib,
            self.used_memory_kib,
            yes_no(row.persistent),
            if row.autostart { "enable" } else { "disable" },
        );
        out
    }
}

/// An open libvirt connection; closed when dropped.
pub struct LibvirtConnection {
    uri: String,
    conn: Connect,
}

impl fmt::Debug for LibvirtConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibvirtConnection")
            .field("uri", &self.uri)
            .finish()
    }
}

impl Drop for LibvirtConnection {
    fn drop(&mut self) {
        if let Err(err) = self.conn.close() {
            tracing::warn!(uri = %self.uri, "closing the libvirt connection: {err}");
        }
    }
}

/// libvirt prints every error on stderr by default; Vireo reports them itself, once, with
/// the fix, so that handler is turned off before the first call.
fn quiet_libvirt() {
    static ONCE: Once = Once::new();
    ONCE.call_once(virt::error::clear_error_callback);
}

impl LibvirtConnection {
    /// Connects to `uri` (read-write).
    pub fn open(uri: &str) -> Result<LibvirtConnection, ConnectionError> {
        super::uri::check_scheme(uri)?;
        quiet_libvirt();
        let conn = Connect::open(Some(uri))
            .map_err(|e| ConnectionError::from_virt(uri, "cannot connect", &e))?;
        tracing::debug!(uri, "connected to libvirt");
        Ok(LibvirtConnection {
            uri: uri.to_owned(),
            conn,
        })
    }

    /// The URI it was opened with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The underlying `virt` connection, for calls not wrapped here.
    pub fn raw(&self) -> &Connect {
        &self.conn
    }

    fn fail(&self, action: impl Into<String>) -> impl FnOnce(VirtError) -> ConnectionError + '_ {
        let action = action.into();
        move |e| ConnectionError::from_virt(&self.uri, action, &e)
    }

    /// The host's name as libvirt reports it.
    pub fn hostname(&self) -> Result<String, ConnectionError> {
        self.conn
            .get_hostname()
            .map_err(self.fail("reading the host name"))
    }

    /// Every domain, running ones first by id, then the others by name.
    pub fn list_domains(&self) -> Result<Vec<DomainRow>, ConnectionError> {
        let domains = self
            .conn
            .list_all_domains(0)
            .map_err(self.fail("listing domains"))?;
        let mut rows = Vec::with_capacity(domains.len());
        for domain in &domains {
            match self.row(domain) {
                Ok(row) => rows.push(row),
                // Gone between the listing and the reading (migrated away, a transient one
                // stopped): not an error of the listing.
                Err(e) if e.code() == Some(virt::error::ErrorNumber::NoDomain) => {}
                Err(e) => return Err(e),
            }
        }
        rows.sort_by(|a, b| (a.id.is_none(), a.id, &a.name).cmp(&(b.id.is_none(), b.id, &b.name)));
        Ok(rows)
    }

    /// Each running domain's CPU time so far (ns, all vCPUs together) and vCPU count, for the
    /// list's CPU-use sparkline (virt-manager's "CPU usage" column reads the same
    /// `virDomainGetInfo`). A domain gone between listing and reading is left out.
    pub fn cpu_times(&self) -> Result<Vec<CpuTime>, ConnectionError> {
        let domains = self
            .conn
            .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            .map_err(self.fail("listing running domains"))?;
        let mut times = Vec::with_capacity(domains.len());
        for domain in &domains {
            let (Ok(name), Ok(info)) = (domain.get_name(), domain.get_info()) else {
                continue;
            };
            times.push(CpuTime {
                name,
                cpu_time_ns: info.cpu_time,
                vcpus: info.nr_virt_cpu,
            });
        }
        Ok(times)
    }

    fn row(&self, domain: &Domain) -> Result<DomainRow, ConnectionError> {
        let name = domain
            .get_name()
            .map_err(self.fail("reading a domain's name"))?;
        let what = |verb: &str| format!("reading the {verb} of domain '{name}'");
        let (state, _) = domain.get_state().map_err(self.fail(what("state")))?;
        Ok(DomainRow {
            id: domain.get_id(),
            state: DomainState::from_raw(state),
            uuid: domain.get_uuid_string().map_err(self.fail(what("UUID")))?,
            persistent: domain
                .is_persistent()
                .map_err(self.fail(what("persistence")))?,
            autostart: domain
                .get_autostart()
                .map_err(self.fail(what("autostart flag")))?,
            name,
        })
    }

    /// The domain `name_or_id` names: a name, a UUID or an id, as virsh looks them up.
    pub(crate) fn domain(&self, name_or_id: &str) -> Result<Domain, ConnectionError> {
        if let Ok(domain) = Domain::lookup_by_name(&self.conn, name_or_id) {
            return Ok(domain);
        }
        if let Ok(domain) = Domain::lookup_by_uuid_string(&self.conn, name_or_id) {
            return Ok(domain);
        }
        if let Ok(id) = name_or_id.parse::<u32>()
            && let Ok(domain) = Domain::lookup_by_id(&self.conn, id)
        {
            return Ok(domain);
        }
        Err(ConnectionError::NoDomain {
            uri: self.uri.clone(),
            name: name_or_id.to_owned(),
        })
    }

    /// The domain's own name (for messages when it was given by id or UUID).
    pub fn domain_name(&self, name_or_id: &str) -> Result<String, ConnectionError> {
        let domain = self.domain(name_or_id)?;
        domain
            .get_name()
            .map_err(self.fail("reading a domain's name"))
    }

    fn no_nul<'a>(&self, what: &str, text: &'a str) -> Result<&'a str, ConnectionError> {
        if text.contains('\0') {
            return Err(ConnectionError::BadAnswer {
                uri: self.uri.clone(),
                what: format!("{what} contains a NUL byte, which XML cannot hold"),
            });
        }
        Ok(text)
    }

    /// Defines (or redefines) a domain from its XML; returns its name.
    pub fn define(&self, xml: &str) -> Result<String, ConnectionError> {
        let xml = self.no_nul("the domain XML", xml)?;
        let domain = Domain::define_xml(&self.conn, xml).map_err(self.fail("defining a domain"))?;
        domain
            .get_name()
            .map_err(self.fail("reading a domain's name"))
    }

    /// Removes a domain's definition (a running domain keeps running, as a transient one).
    pub fn undefine(&self, name: &str) -> Result<(), ConnectionError> {
        let domain = self.domain(name)?;
        domain
            .undefine()
            .map_err(self.fail(format!("undefining domain '{name}'")))
    }

    /// Starts a defined domain, with its vCPUs paused if `paused`.
    pub fn start(&self, name: &str, paused: bool) -> Result<(), ConnectionError> {
        let domain = self.domain(name)?;
        let flags = if paused {
            sys::VIR_DOMAIN_START_PAUSED
        } else {
            0
        };
        domain
            .create_with_flags(flags)
            .map(drop)
            .map_err(self.fail(format!("starting domain '{name}'")))
    }

    /// Shuts down, reboots, forces off, pauses or resumes the domain.
    pub fn control(&self, name: &str, action: Lifecycle) -> Result<(), ConnectionError> {
        let domain = self.domain(name)?;
        let result = match action {
            Lifecycle::Shutdown => domain.shutdown().map(drop),
            Lifecycle::Reboot => domain.reboot(0),
            Lifecycle::Destroy => domain.destroy(),
            Lifecycle::Suspend => domain.suspend().map(drop),
            Lifecycle::Resume => domain.resume().map(drop),
        };
        result.map_err(self.fail(format!("{} domain '{name}'", action.doing())))
    }

    /// The domain's XML: the live one while it runs unless `inactive`.
    pub fn dumpxml(&self, name: &str, inactive: bool) -> Result<String, ConnectionError> {
        let domain = self.domain(name)?;
        let flags = if inactive {
            sys::VIR_DOMAIN_XML_INACTIVE
        } else {
            0
        };
        domain
            .get_xml_desc(flags)
            .map_err(self.fail(format!("reading the XML of domain '{name}'")))
    }

    /// The domain's state and virsh's word for its reason.
    pub fn domstate(&self, name: &str) -> Result<(DomainState, &'static str), ConnectionError> {
        let domain = self.domain(name)?;
        let (state, reason) = domain
            .get_state()
            .map_err(self.fail(format!("reading the state of domain '{name}'")))?;
        let state = DomainState::from_raw(state);
        Ok((state, state.reason(reason)))
    }

    /// What `dominfo` shows.
    pub fn dominfo(&self, name: &str) -> Result<DomainDetails, ConnectionError> {
        let domain = self.domain(name)?;
        let row = self.row(&domain)?;
        let what = format!("reading the facts of domain '{}'", row.name);
        let info = domain.get_info().map_err(self.fail(what.clone()))?;
        Ok(DomainDetails {
            os_type: domain.get_os_type().map_err(self.fail(what))?,
            vcpus: info.nr_virt_cpu,
            max_memory_kib: info.max_mem,
            used_memory_kib: info.memory,
            cpu_time_ns: info.cpu_time,
            row,
        })
    }

    /// The host's capabilities XML.
    pub fn capabilities(&self) -> Result<String, ConnectionError> {
        self.conn
            .get_capabilities()
            .map_err(self.fail("reading the host capabilities"))
    }

    /// What a guest can get from the given hypervisor (libvirt's domain capabilities XML).
    pub fn domcapabilities(&self, spec: &HypervisorSpec) -> Result<String, ConnectionError> {
        self.conn
            .get_domain_capabilities(
                spec.emulator.as_deref(),
                spec.arch.as_deref(),
                spec.machine.as_deref(),
                spec.virttype.as_deref(),
                0,
            )
            .map_err(self.fail("reading the domain capabilities"))
    }

    /// Whether the hypervisor can give a guest `cpu_xml` (a `<cpu>` element), naming the
    /// features it lacks.
    pub fn compare_cpu(
        &self,
        spec: &HypervisorSpec,
        cpu_xml: &str,
    ) -> Result<Comparison, ConnectionError> {
        let cpu_xml = self.no_nul("the CPU XML", cpu_xml)?;
        hypervisor_cpu::compare(&self.conn, spec, cpu_xml)
            .map_err(self.fail("comparing a CPU with the hypervisor's"))
    }

    /// The CPU the hypervisor can give that all of `cpu_xmls` can run (a `<cpu>` element).
    pub fn baseline_cpu(
        &self,
        spec: &HypervisorSpec,
        cpu_xmls: &[String],
        migratable: bool,
        expand: bool,
    ) -> Result<String, ConnectionError> {
        for xml in cpu_xmls {
            self.no_nul("a CPU XML", xml)?;
        }
        hypervisor_cpu::baseline(&self.conn, spec, cpu_xmls, migratable, expand)
            .map_err(self.fail("computing the baseline CPU"))
    }
}
