//! What an `<interface>` must be as a document, whatever runs it (libvirt refuses the same at
//! define): a well-formed unicast `<mac address>`, one MAC per interface, and `<portForward>`
//! ranges of real ports. Which interface types a host can run is `crate::launch::nics`'s
//! question, asked at start.

use super::devices::{PortForward, PortRange};
use super::xml::Element;
use super::{Domain, DomainError};

/// A new `<interface type='user'>` for a virtio card with this MAC, user-mode networking
/// through passt, as libvirt writes it.
pub fn user_element(mac: &str, model: &str) -> Element {
    let mut interface = Element::new("interface").with_attr("type", "user");
    for child in [
        Element::new("mac").with_attr("address", mac),
        Element::new("model").with_attr("type", model),
        Element::new("backend").with_attr("type", "passt"),
    ] {
        interface.append_child(child, 2);
    }
    interface
}

impl Domain {
    /// Removes the interface with this MAC address (any case); false when there is none.
    pub fn remove_interface(&mut self, mac: &str) -> bool {
        let Some(devices) = self.document_mut().at_mut(&["devices"]) else {
            return false;
        };
        devices.remove_children_where(|e| {
            e.name() == "interface"
                && e.child("mac")
                    .and_then(|m| m.attr("address"))
                    .is_some_and(|a| a.eq_ignore_ascii_case(mac))
        }) > 0
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` and refuses multicast (and all-zero) addresses, which no card
/// may have.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| {
            (part.len() == 2)
                .then(|| u8::from_str_radix(part, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()
        .unwrap_or_default();
    let Ok(mac) = <[u8; 6]>::try_from(bytes) else {
        return Err(format!(
            "MAC address '{text}' is not six hex pairs; write it like 52:54:00:12:34:56"
        ));
    };
    if mac[0] & 1 != 0 {
        return Err(format!(
            "MAC address '{text}' is a multicast address (the first byte is odd); a card needs \
             a unicast address such as 52:54:00:12:34:56"
        ));
    }
    if mac == [0; 6] {
        return Err(
            "MAC address 00:00:00:00:00:00 is not valid; use e.g. 52:54:00:12:34:56".into(),
        );
    }
    Ok(mac)
}

/// One `<range>` with its numbers checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// First host port.
    pub start: u16,
    /// Last host port (`start` when no `end`).
    pub end: u16,
    /// The guest port `start` maps to, if not the same.
    pub to: Option<u16>,
    /// `exclude='yes'`: these host ports are not forwarded.
    pub exclude: bool,
}

fn port(value: Option<&str>, what: &str) -> Result<Option<u16>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        _ => Err(format!(
            "<portForward> <range {what}='{value}'> is not a port; use a number from 1 to 65535"
        )),
    }
}

impl PortRange {
    /// The range's ports, or what is wrong with them.
    pub fn ports(&self) -> Result<Ports, String> {
        let Some(start) = port(self.start.as_deref(), "start")? else {
            return Err("<portForward> has a <range> without start='PORT'".into());
        };
        let end = port(self.end.as_deref(), "end")?.unwrap_or(start);
        if end < start {
            return Err(format!(
                "<portForward> <range start='{start}' end='{end}'> ends before it starts"
            ));
        }
        let exclude = match self.exclude.as_deref() {
            None | Some("no") => false,
            Some("yes") => true,
            Some(other) => return Err(format!("<range exclude='{other}'> must be 'yes' or 'no'")),
        };
        let to = port(self.to.as_deref(), "to")?;
        if let Some(to) = to
            && u32::from(to) + u32::from(end - start) > 65535
        {
            return Err(format!(
                "<portForward> <range start='{start}' end='{end}' to='{to}'> maps past port \
                 65535; lower 'to' or shorten the range"
            ));
        }
        Ok(Ports {
            start,
            end,
            to,
            exclude,
        })
    }
}

impl PortForward {
    /// Whether it forwards UDP (else TCP), or what is wrong with `proto`.
    pub fn is_udp(&self) -> Result<bool, String> {
        match self.proto.as_deref() {
            None | Some("tcp") => Ok(false),
            Some("udp") => Ok(true),
            Some(other) => Err(format!(
                "<portForward proto='{other}'> is not a protocol that can be forwarded; use \
                 'tcp' or 'udp'"
            )),
        }
    }
}

/// The document problems of every `<interface>`. Two cards sharing a MAC are not one of them:
/// libvirt defines such domains (its own test data has them), so start refuses them instead
/// ([`crate::launch`]'s NIC mapping), where they would clash on one network.
pub fn check_interfaces(domain: &Domain, problems: &mut Vec<DomainError>) {
    let mut push = |message: String| {
        problems.push(DomainError::Invalid {
            element: "<interface>".into(),
            message,
        })
    };
    for (i, interface) in domain.interfaces().iter().enumerate() {
        let index = i + 1;
        if let Some(text) = interface.mac.as_deref() {
            if let Err(e) = parse_mac(text) {
                push(format!("interface {index}: {e}"));
            }
        }
        for forward in &interface.port_forwards {
            let checked = forward
                .is_udp()
                .and_then(|_| forward.ranges.iter().try_for_each(|r| r.ports().map(drop)));
            if let Err(e) = checked {
                push(format!("interface {index}: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::Domain;
    use crate::domain::validate::document_problems;

    fn problems(interfaces: &str) -> String {
        let domain = Domain::parse(&format!(
            "<domain type='kvm'><name>n</name><memory>65536</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><devices>{interfaces}</devices></domain>"
        ))
        .unwrap();
        document_problems(&domain)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn define_refuses_bad_macs_and_bad_ports_but_not_shared_macs_or_other_types() {
        assert_eq!(
            problems(
                "<interface type='network'><mac address='52:54:00:00:00:01'/></interface>\
                 <interface type='user'><portForward><range start='2222' to='22'/>\
                 </portForward></interface>"
            ),
            "",
            "a network interface is the engine's business at start, not define's"
        );
        let text =
            problems("<interface type='user'><mac address='03:00:00:00:00:01'/></interface>");
        assert!(
            text.contains("<interface>") && text.contains("multicast"),
            "{text}"
        );
        let text = problems(
            "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
             <interface type='user'><mac address='52:54:00:00:00:01'/></interface>",
        );
        assert_eq!(text, "", "libvirt defines shared MACs; start refuses them");
        let text = problems(
            "<interface type='user'><portForward proto='tcp'><range start='65536'/>\
             </portForward></interface>",
        );
        assert!(
            text.contains("start='65536'") && text.contains("1 to 65535"),
            "{text}"
        );
    }
}
