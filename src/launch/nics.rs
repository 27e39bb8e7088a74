//! A domain's `<interface>` elements as the network cards the built-in engine attaches: the one
//! place that decides which interfaces Vireo can run (user-mode networking through passt, as a
//! virtio card) and says why not for the rest. Start ([`super::prepare`]), `vireoctl
//! domiflist` and the interface edits all read interfaces through here.
//!
//! A card without `<mac>` gets one derived from the domain's UUID and the card's position, so
//! it keeps its address (and the guest its DHCP lease and interface name) from start to start,
//! like libvirt's generated addresses in QEMU's `52:54:00` range.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::domain::devices::{Interface, PortForward};
use crate::domain::interfaces::Ports;
use crate::domain::{Domain, DomainError};
use crate::engine::config::format_mac;

/// One card the engine attaches, before its backend runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicPlan {
    /// `net0`, `net1`, … in document order (how logs name the card).
    pub id: String,
    /// The MAC address (from `<mac>`, or generated).
    pub mac: [u8; 6],
    /// Whether the MAC was generated (not written in the definition).
    pub generated_mac: bool,
    /// Host→guest forwards for passt.
    pub forwards: Vec<Forward>,
    /// `<link state='down'/>`: the guest sees the card with its cable out, and no passt runs
    /// for it (so a VM starts where passt is missing, once the user has said so this way).
    pub link_down: bool,
}

/// One `<portForward>` as a passt option: `-t SPEC` or `-u SPEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// UDP (`-u`) rather than TCP (`-t`).
    pub udp: bool,
    /// passt's port specification, e.g. `2222:22` or `127.0.0.1/8080-8089:80-89`.
    pub spec: String,
    /// The host ports it listens on (for the "already in use" check), with exclusions removed.
    pub host_ports: Vec<u16>,
}

/// One `<interface>` Vireo cannot attach, worded for the user: which one and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network interface {index} ({what}): {message}")]
pub struct NicProblem {
    /// Its position among the domain's interfaces, from 1.
    pub index: usize,
    /// Its MAC address or type, whichever names it best.
    pub what: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl NicProblem {
    /// The problem as `validate` lists problems (on `<interface>`).
    pub fn to_domain_error(&self) -> DomainError {
        DomainError::Invalid {
            element: "<interface>".into(),
            message: format!("this host cannot start the VM with it: {self}"),
        }
    }
}

/// `validate --host`'s view: every interface start would refuse, as a [`DomainError`].
pub fn nic_host_problems(domain: &Domain) -> Vec<DomainError> {
    match domain_nics(domain) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(NicProblem::to_domain_error).collect(),
    }
}

/// The cards of `domain`, in document order, or every problem found.
pub fn domain_nics(domain: &Domain) -> Result<Vec<NicPlan>, Vec<NicProblem>> {
    map_nics(&domain.interfaces(), &domain.uuid().unwrap_or_default())
}

/// [`domain_nics`] over interfaces already read; `uuid` seeds generated MACs.
pub fn map_nics(interfaces: &[Interface], uuid: &str) -> Result<Vec<NicPlan>, Vec<NicProblem>> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<[u8; 6], usize> = HashMap::new();
    for (i, interface) in interfaces.iter().enumerate() {
        let index = i + 1;
        let what = interface
            .mac
            .clone()
            .unwrap_or_else(|| format!("type '{}'", interface.if_type.as_deref().unwrap_or("?")));
        let mut problem = |message: String| {
            problems.push(NicProblem {
                index,
                what: what.clone(),
                message,
            })
        };
        match map_one(interface, uuid, i) {
            Ok(plan) => {
                if let Some(first) = seen.insert(plan.mac, index) {
                    problem(format!(
                        "MAC address {} is also interface {first}'s; give each interface its own \
                         <mac address> (or remove <mac> to have one generated)",
                        format_mac(&plan.mac)
                    ));
                } else {
                    plans.push(plan);
                }
            }
            Err(message) => problem(message),
        }
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(problems)
    }
}

fn map_one(interface: &Interface, uuid: &str, position: usize) -> Result<NicPlan, String> {
    match interface.if_type.as_deref() {
        Some("user") => {}
        Some(other) => {
            return Err(format!(
                "type '{other}' is not supported by the built-in engine yet; use \
                 <interface type='user'> with <backend type='passt'/> (user-mode networking, no \
                 root needed), or run the VM on a libvirt connection"
            ));
        }
        None => return Err("<interface> has no type; write <interface type='user'>".into()),
    }
    match interface.backend.as_deref() {
        None | Some("passt") => {}
        Some(other) => {
            return Err(format!(
                "backend '{other}' is not available: the built-in engine does user-mode \
                 networking through passt only; write <backend type='passt'/> or remove <backend>"
            ));
        }
    }
    match interface.model.as_deref() {
        None | Some("virtio") => {}
        Some(other) => {
            return Err(format!(
                "model '{other}' is not available: the built-in engine has virtio network cards \
                 only; write <model type='virtio'/>"
            ));
        }
    }
    let (mac, generated_mac) = match interface.mac.as_deref() {
        Some(text) => (parse_mac(text)?, false),
        None => (generated_mac(uuid, position), true),
    };
    let forwards = interface
        .port_forwards
        .iter()
        .map(forward)
        .collect::<Result<Vec<_>, _>>()?;
    let link_down = match interface.link_state.as_deref() {
        None | Some("up") => false,
        Some("down") => true,
        Some(other) => {
            return Err(format!(
                "<link state='{other}'> is not a link state; write 'up' or 'down'"
            ));
        }
    };
    Ok(NicPlan {
        id: format!("net{position}"),
        mac,
        generated_mac,
        forwards,
        link_down,
    })
}

pub use crate::domain::interfaces::parse_mac;

/// A MAC in QEMU's `52:54:00` range derived from the domain's UUID and the card's position
/// (FNV-1a: stable across builds and platforms, unlike std's hasher).
pub fn generated_mac(uuid: &str, position: usize) -> [u8; 6] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in uuid
        .to_ascii_lowercase()
        .bytes()
        .chain((position as u32).to_le_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let h = hash.to_le_bytes();
    [0x52, 0x54, 0x00, h[0], h[1], h[2]]
}

/// One `<portForward>` as passt's `-t`/`-u` specification.
fn forward(pf: &PortForward) -> Result<Forward, String> {
    let udp = pf.is_udp()?;
    let mut parts = Vec::new();
    let mut host_ports = Vec::new();
    let mut excluded = Vec::new();
    for range in &pf.ranges {
        let Ports {
            start,
            end,
            to,
            exclude,
        } = range.ports()?;
        let host = if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        };
        if exclude {
            parts.push(format!("~{host}"));
            excluded.extend(start..=end);
            continue;
        }
        let mut spec = host;
        if let Some(to) = to {
            if end == start {
                spec.push_str(&format!(":{to}"));
            } else {
                spec.push_str(&format!(":{to}-{}", to + (end - start)));
            }
        }
        parts.push(spec);
        host_ports.extend(start..=end);
    }
    if host_ports.is_empty() {
        return Err(
            "<portForward> forwards no port; add <range start='HOSTPORT' to='GUESTPORT'/>".into(),
        );
    }
    host_ports.retain(|p| !excluded.contains(p));
    let mut spec = parts.join(",");
    if let Some(address) = pf.address.as_deref() {
        let ip: IpAddr = address.parse().map_err(|_| {
            format!("<portForward address='{address}'> is not an IP address; write e.g. 127.0.0.1")
        })?;
        spec = format!("{ip}/{spec}");
    }
    Ok(Forward {
        udp,
        spec,
        host_ports,
    })
}

#[cfg(test)]
mod tests;
