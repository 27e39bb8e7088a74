//! Checks of what a user typed for a new network card or port forward, before anything is
//! saved: a MAC a card may have and no other card has, ports that are ports, no host port
//! forwarded twice, and no host port passt (which never runs as root) cannot listen on. Each
//! problem is a value the GUI words in the user's language; `Display` is the English text.

use crate::domain::Domain;
use crate::domain::devices::Interface;

use super::super::nics::parse_mac;

/// Which port field of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortField {
    /// The port on the host that passt listens on.
    Host,
    /// The port in the guest it forwards to.
    Guest,
}

/// Why typed input for a card or a forward cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NicInputProblem {
    /// Not six hex pairs separated by colons.
    #[error("MAC address '{0}' is not six hex pairs; write it like 52:54:00:12:34:56")]
    MacMalformed(String),
    /// A multicast or all-zero address, which no card may have.
    #[error(
        "MAC address '{0}' is a multicast or zero address; a card needs a unicast address such as 52:54:00:12:34:56"
    )]
    MacNotUnicast(String),
    /// Another card of the VM has it.
    #[error(
        "another network card of this VM has MAC address {0}; choose another or leave it empty to have one generated"
    )]
    MacTaken(String),
    /// A port field is empty, not a number, or outside 1–65535.
    #[error("{field:?} port '{text}' is not a port; use a number from 1 to 65535")]
    PortNotANumber {
        /// Which field.
        field: PortField,
        /// What was typed.
        text: String,
    },
    /// The host port is forwarded already (same protocol, any card of the VM).
    #[error("host port {port}/{} is forwarded already; each host port can be forwarded once", proto(*.udp))]
    PortDuplicate {
        /// The host port.
        port: u16,
        /// UDP rather than TCP.
        udp: bool,
    },
    /// The host port is privileged: passt runs unprivileged and could not listen on it.
    #[error("host port {port} is below {lowest}: only root may listen there, and passt never runs as root; forward from a port from {lowest} up (e.g. {suggestion})", suggestion = suggested_port(*.port, *.lowest))]
    PortPrivileged {
        /// The host port.
        port: u16,
        /// The lowest port an unprivileged program may listen on here.
        lowest: u16,
    },
}

/// `tcp` or `udp`.
pub fn proto(udp: bool) -> &'static str {
    if udp { "udp" } else { "tcp" }
}

/// A host port to offer instead of a privileged one: 8000 above it (22 → 8022, 80 → 8080),
/// as the usual convention goes, or `lowest` when that is still too low.
pub fn suggested_port(port: u16, lowest: u16) -> u16 {
    port.saturating_add(8000).max(lowest)
}

/// A checked host→guest forward, ready to be written as a `<portForward>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewForward {
    /// UDP rather than TCP.
    pub udp: bool,
    /// The host port passt listens on.
    pub host_port: u16,
    /// The guest port it forwards to.
    pub guest_port: u16,
}

/// The MAC typed for a new card of `domain`, lower-cased; `None` when left empty (one is then
/// generated).
pub fn check_new_mac(domain: &Domain, text: &str) -> Result<Option<String>, NicInputProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if parse_mac(text).is_err() {
        let six_pairs = text.split(':').count() == 6
            && text
                .split(':')
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        return Err(if six_pairs {
            NicInputProblem::MacNotUnicast(text.to_owned())
        } else {
            NicInputProblem::MacMalformed(text.to_owned())
        });
    }
    let mac = text.to_ascii_lowercase();
    let taken = domain.interfaces().iter().any(|i| {
        i.mac
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(&mac))
    });
    if taken {
        return Err(NicInputProblem::MacTaken(mac));
    }
    Ok(Some(mac))
}

fn port(field: PortField, text: &str) -> Result<u16, NicInputProblem> {
    match text.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(NicInputProblem::PortNotANumber {
            field,
            text: text.trim().to_owned(),
        }),
    }
}

/// The host ports (of protocol `udp`) that the forwards of `interfaces` listen on.
pub fn forwarded_host_ports(interfaces: &[Interface], udp: bool) -> Vec<u16> {
    let mut ports = Vec::new();
    for forward in interfaces.iter().flat_map(|i| &i.port_forwards) {
        if forward.is_udp().ok() != Some(udp) {
            continue;
        }
        let mut excluded = Vec::new();
        for ranges in forward.ranges.iter().filter_map(|r| r.ports().ok()) {
            if ranges.exclude {
                excluded.extend(ranges.start..=ranges.end);
            } else {
                ports.extend(ranges.start..=ranges.end);
            }
        }
        ports.retain(|p| !excluded.contains(p));
    }
    ports
}

/// Checks a forward typed for `domain`: both ports real, the host port not forwarded yet
/// (by any card: each passt listens on its own host ports) and not below `lowest`, the first
/// port an unprivileged program may listen on ([`crate::launch::passt::unprivileged_port_start`]).
pub fn check_forward(
    domain: &Domain,
    udp: bool,
    host: &str,
    guest: &str,
    lowest: u16,
) -> Result<NewForward, NicInputProblem> {
    let host_port = port(PortField::Host, host)?;
    let guest_port = port(PortField::Guest, guest)?;
    if forwarded_host_ports(&domain.interfaces(), udp).contains(&host_port) {
        return Err(NicInputProblem::PortDuplicate {
            port: host_port,
            udp,
        });
    }
    if host_port < lowest {
        return Err(NicInputProblem::PortPrivileged {
            port: host_port,
            lowest,
        });
    }
    Ok(NewForward {
        udp,
        host_port,
        guest_port,
    })
}
