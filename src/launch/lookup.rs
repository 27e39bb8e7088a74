//! Which domain the user means, and how it is: virsh accepts a name, an id or a UUID wherever
//! it asks for a domain, and answers `domstate`, `domid`, `domuuid`, `vcpuinfo`, `dommemstat`
//! and `domstats` from one view of the domain. Every `vireoctl` verb resolves its domain
//! argument through [`resolve`], so all of them accept the same three spellings.

use crate::domain::store::DomainStore;
use crate::launch::runner::{self, RunnerInfo};

/// Why a domain argument names no domain.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A UUID that neither a definition nor a running domain has.
    #[error("no domain with UUID '{0}'; `vireoctl list --all --uuid` lists the UUIDs Vireo knows")]
    NoSuchUuid(String),
}

/// The domain name `text` stands for: a defined or running domain of that name, else the
/// running domain with that id (`vireoctl list`'s Id column), else the defined or running
/// domain with that UUID. Anything else comes back unchanged, so the verb reports the unknown
/// name in its own words ("no domain named …"); only a UUID that matches nothing is an error
/// here.
pub fn resolve(store: &DomainStore, text: &str) -> Result<String, LookupError> {
    let defined = store.path_of(text).is_file();
    if defined || runner::is_running(text) {
        return Ok(text.to_string());
    }
    if let Ok(id) = text.parse::<u32>()
        && let Some(name) = runner::running_names()
            .into_iter()
            .find(|name| runner::info(name).is_ok_and(|info| info.id == id))
    {
        return Ok(name);
    }
    let Ok(uuid) = uuid::Uuid::parse_str(text) else {
        return Ok(text.to_string());
    };
    let same = |candidate: Option<String>| {
        candidate.and_then(|u| uuid::Uuid::parse_str(&u).ok()) == Some(uuid)
    };
    if let Some(stored) = store
        .list()
        .into_iter()
        .flatten()
        .find(|stored| same(stored.domain.uuid()))
    {
        return Ok(stored.name);
    }
    runner::running_names()
        .into_iter()
        .find(|name| same(live_domain(name).and_then(|d| d.uuid())))
        .ok_or_else(|| LookupError::NoSuchUuid(text.to_string()))
}

/// The running domain's live definition, parsed.
fn live_domain(name: &str) -> Option<crate::domain::Domain> {
    crate::domain::Domain::parse(&runner::live_xml(name)?).ok()
}

/// A domain's state as virsh names it, with the reason virsh gives in `domstate --reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainStatus {
    /// `running`, `paused` or `shut off`.
    pub state: &'static str,
    /// `booted`, `user`, `shutdown`, `destroyed`, `crashed` or `unknown`.
    pub reason: &'static str,
    /// What the runner says while the domain runs.
    pub info: Option<RunnerInfo>,
}

impl DomainStatus {
    /// libvirt's numbers for `domstats`' `state.state` (virDomainState).
    pub fn state_code(&self) -> u32 {
        match self.state {
            "running" => 1,
            "paused" => 3,
            _ => 5,
        }
    }

    /// libvirt's numbers for `state.reason` (the virDomain*Reason of that state).
    pub fn reason_code(&self) -> u32 {
        match self.reason {
            "booted" | "user" | "shutdown" => 1,
            "destroyed" => 2,
            "crashed" => 3,
            _ => 0,
        }
    }
}

/// How `name` is now: its runner's answer while it runs, else how its last run ended (the
/// runner records that), else shut off for an unknown reason (never started here).
pub fn status(name: &str) -> DomainStatus {
    if let Ok(info) = runner::info(name) {
        let (state, reason) = match info.state.as_str() {
            "paused" => ("paused", "user"),
            _ => ("running", "booted"),
        };
        return DomainStatus {
            state,
            reason,
            info: Some(info),
        };
    }
    let reason = match runner::exit_state(name) {
        Some(end) if end.starts_with("crashed") => "crashed",
        Some(end) if end.contains("destroyed") => "destroyed",
        Some(end) if end.starts_with("shut off") => "shutdown",
        _ => "unknown",
    };
    DomainStatus {
        state: "shut off",
        reason,
        info: None,
    }
}

/// The UUID of `name`: the stored definition's, else (a transient domain) the live one's.
pub fn uuid(store: &DomainStore, name: &str) -> Option<String> {
    match store.get(name) {
        Ok(stored) => stored.domain.uuid(),
        Err(_) => live_domain(name)?.uuid(),
    }
}

/// One vCPU thread of a running domain, as `vcpuinfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuThread {
    /// The vCPU's index.
    pub index: u32,
    /// The host CPU it last ran on.
    pub host_cpu: Option<usize>,
    /// CPU time it used, in clock ticks.
    pub ticks: u64,
    /// Host CPUs it may run on.
    pub affinity: Vec<usize>,
}

/// The vCPU threads of the runner process `pid` (the engine names them `vcpu0`, `vcpu1`, …),
/// read from /proc, in index order.
pub fn vcpu_threads(pid: u32) -> Vec<VcpuThread> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads: Vec<VcpuThread> = tasks
        .flatten()
        .filter_map(|task| {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            let index = comm.trim().strip_prefix("vcpu")?.parse().ok()?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields resume after the command name's last ')': state is field 3.
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            let affinity = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|list| super::parse_cpuset(list.trim()).ok())
                .unwrap_or_default();
            Some(VcpuThread {
                index,
                host_cpu: field(39).map(|c| c as usize),
                ticks: field(14).unwrap_or(0) + field(15).unwrap_or(0),
                affinity,
            })
        })
        .collect();
    threads.sort_by_key(|t| t.index);
    threads
}

/// Resident memory of process `pid` in KiB (`VmRSS`), what `dommemstat` reports as `rss`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_never_started_domain_is_shut_off_for_an_unknown_reason() {
        let status = status("no-such-vm-anywhere");
        assert_eq!((status.state, status.reason), ("shut off", "unknown"));
        assert_eq!((status.state_code(), status.reason_code()), (5, 0));
    }

    #[test]
    fn own_process_has_an_rss() {
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
