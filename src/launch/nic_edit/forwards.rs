//! Adding and removing one card's `<portForward>`s in the stored definition, and listing them
//! for people: `<portForward proto='tcp'><range start='2222' to='22'/></portForward>` as
//! libvirt writes it. Like the card edits, they take effect at the next start.

use crate::domain::Domain;
use crate::domain::devices::{Interface, PortForward};
use crate::domain::store::DomainStore;
use crate::domain::xml::Element;

use super::NicEditError;
use super::input::{NewForward, NicInputProblem, forwarded_host_ports, proto};

/// One `<portForward>` as a line for people: `2222 → 22`, `8080-8089 → 80-89`,
/// `127.0.0.1:2222 → 22`, with its protocol and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedForward {
    /// Its position among the card's `<portForward>`s (what removing it names).
    pub index: usize,
    /// UDP rather than TCP (a bad `proto` shows as TCP; `text` keeps the ports as written).
    pub udp: bool,
    /// The host ports → guest ports, in numbers and an arrow (the same in every language).
    pub text: String,
    /// The element as read, so a removal can tell it is still the one shown.
    pub seen: PortForward,
}

/// The forwards of `interface`, in document order.
pub fn list_forwards(interface: &Interface) -> Vec<ListedForward> {
    interface
        .port_forwards
        .iter()
        .enumerate()
        .map(|(index, forward)| {
            let ranges: Vec<String> = forward
                .ranges
                .iter()
                .map(|r| {
                    let start = r.start.clone().unwrap_or_else(|| "?".into());
                    let host = match &r.end {
                        Some(end) => format!("{start}-{end}"),
                        None => start.clone(),
                    };
                    if r.exclude.as_deref() == Some("yes") {
                        return format!("¬{host}");
                    }
                    let guest = match (&r.to, r.ports()) {
                        (Some(to), Ok(p)) if p.end > p.start => {
                            format!(
                                "{to}-{}",
                                u32::from(p.to.unwrap_or(p.start)) + u32::from(p.end - p.start)
                            )
                        }
                        (Some(to), _) => to.clone(),
                        (None, _) => host.clone(),
                    };
                    format!("{host} → {guest}")
                })
                .collect();
            let mut text = ranges.join(", ");
            if let Some(address) = &forward.address {
                text = format!("{address}: {text}");
            }
            ListedForward {
                index,
                udp: forward.is_udp().unwrap_or(false),
                text,
                seen: forward.clone(),
            }
        })
        .collect()
}

/// The `<interface>` element of `domain` with MAC `mac` (any case).
fn interface_mut<'a>(domain: &'a mut Domain, mac: &str) -> Option<&'a mut Element> {
    domain
        .document_mut()
        .at_mut(&["devices"])?
        .elements_mut()
        .find(|e| {
            e.name() == "interface"
                && e.child("mac")
                    .and_then(|m| m.attr("address"))
                    .is_some_and(|a| a.eq_ignore_ascii_case(mac))
        })
}

fn no_such_mac(domain: &Domain, name: &str, mac: &str) -> NicEditError {
    NicEditError::NoSuchMac {
        domain: name.to_owned(),
        mac: mac.to_owned(),
        macs: domain
            .interfaces()
            .iter()
            .filter_map(|i| i.mac.clone())
            .collect(),
    }
}

/// Adds `forward` to the card with MAC `mac` of `name`'s stored definition. The host port is
/// checked again against the definition as stored (another program may have added it).
pub fn add_port_forward(
    store: &DomainStore,
    name: &str,
    mac: &str,
    forward: &NewForward,
) -> Result<(), NicEditError> {
    let mut stored = store.get(name)?;
    let mut domain = stored.domain.clone();
    let Some(interface) = interface_mut(&mut domain, mac) else {
        return Err(no_such_mac(&stored.domain, name, mac));
    };
    if forwarded_host_ports(&stored.domain.interfaces(), forward.udp).contains(&forward.host_port) {
        return Err(NicEditError::Input(NicInputProblem::PortDuplicate {
            port: forward.host_port,
            udp: forward.udp,
        }));
    }
    let mut element = Element::new("portForward").with_attr("proto", proto(forward.udp));
    element.append_child(
        Element::new("range")
            .with_attr("start", &forward.host_port.to_string())
            .with_attr("to", &forward.guest_port.to_string()),
        3,
    );
    interface.append_child(element, 2);
    stored.domain = domain;
    store.save(&mut stored)?;
    Ok(())
}

/// Removes the forward listed as `listed` from the card with MAC `mac`; refused when the
/// definition no longer has that forward at that position (changed since it was listed).
pub fn remove_port_forward(
    store: &DomainStore,
    name: &str,
    mac: &str,
    listed: &ListedForward,
) -> Result<(), NicEditError> {
    let mut stored = store.get(name)?;
    let current = stored
        .domain
        .interfaces()
        .into_iter()
        .find(|i| {
            i.mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
        .ok_or_else(|| no_such_mac(&stored.domain, name, mac))?;
    if current.port_forwards.get(listed.index) != Some(&listed.seen) {
        return Err(NicEditError::ForwardChanged {
            domain: name.to_owned(),
            mac: mac.to_owned(),
        });
    }
    let mut domain = stored.domain.clone();
    let Some(interface) = interface_mut(&mut domain, mac) else {
        return Err(no_such_mac(&stored.domain, name, mac));
    };
    // The predicate is `Fn`: count the forwards seen in a cell.
    let position = std::cell::Cell::new(0);
    interface.remove_children_where(|e| {
        if e.name() != "portForward" {
            return false;
        }
        position.set(position.get() + 1);
        position.get() - 1 == listed.index
    });
    stored.domain = domain;
    store.save(&mut stored)?;
    Ok(())
}
