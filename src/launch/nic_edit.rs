//! Adding and removing network interfaces of a stored definition (`vireoctl attach-interface`
//! / `detach-interface`): the new interface must be one start can attach
//! ([`super::nics::map_nics`]), a MAC is chosen when none is given (and written, so it stays),
//! and the edit goes through the store (atomic, locked). Takes effect at the next start.

use crate::domain::devices::Interface;
use crate::domain::interfaces::user_element;
use crate::domain::store::{DomainStore, StoreError};
use crate::engine::config::format_mac;

use super::nics::{NicProblem, generated_mac, map_nics, parse_mac};

mod forwards;
mod input;

pub use forwards::{ListedForward, add_port_forward, list_forwards, remove_port_forward};
pub use input::{
    NewForward, NicInputProblem, PortField, check_forward, check_new_mac, forwarded_host_ports,
    suggested_port,
};

/// Why an interface cannot be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum NicEditError {
    /// Reading or writing the definition failed (not found, conflict, invalid, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Start would refuse the interface as described (type, model, MAC).
    #[error("{0}")]
    Unsupported(NicProblem),
    /// What was typed for a card or forward cannot be used.
    #[error(transparent)]
    Input(#[from] NicInputProblem),
    /// The forward to remove is not (any more) the one listed.
    #[error(
        "the port forwards of interface {mac} of domain '{domain}' changed since they were \
         shown; look at them again (vireoctl dumpxml {domain}) before removing one"
    )]
    ForwardChanged {
        /// The domain.
        domain: String,
        /// The card.
        mac: String,
    },
    /// No interface has this MAC.
    #[error("domain '{domain}' has no interface with MAC {mac}; its interfaces: {}", list_or_none(.macs))]
    NoSuchMac {
        /// The domain.
        domain: String,
        /// The MAC asked for.
        mac: String,
        /// The MACs it has.
        macs: Vec<String>,
    },
    /// Several interfaces match and no MAC says which.
    #[error(
        "domain '{domain}' has {count} interfaces of type '{if_type}'; say which with --mac \
         (see vireoctl domiflist {domain})"
    )]
    Ambiguous {
        /// The domain.
        domain: String,
        /// The type asked for.
        if_type: String,
        /// How many match.
        count: usize,
    },
}

fn list_or_none(macs: &[String]) -> String {
    if macs.is_empty() {
        "none".into()
    } else {
        macs.join(", ")
    }
}

/// An interface to add: what `attach-interface`'s arguments say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicToAttach {
    /// `user` (anything else is refused, as start would).
    pub if_type: String,
    /// The MAC; `None` picks one in `52:54:00` not used by the domain.
    pub mac: Option<String>,
    /// `virtio` when `None`.
    pub model: Option<String>,
}

/// The MAC a new card of `domain` gets when none is typed: in `52:54:00`, derived from the
/// UUID and the next position (as start would generate it), and used by no card yet.
pub fn proposed_mac(domain: &crate::domain::Domain) -> String {
    let existing = domain.interfaces();
    let taken: Vec<[u8; 6]> = existing
        .iter()
        .filter_map(|i| i.mac.as_deref().and_then(|m| parse_mac(m).ok()))
        .collect();
    let uuid = domain.uuid().unwrap_or_default();
    let mac = (existing.len()..)
        .map(|position| generated_mac(&uuid, position))
        .find(|mac| !taken.contains(mac))
        .unwrap_or_else(|| generated_mac(&uuid, usize::MAX));
    format_mac(&mac)
}

/// Adds `nic` to the stored definition of `name`; returns its MAC as written.
pub fn attach_interface(
    store: &DomainStore,
    name: &str,
    nic: &NicToAttach,
) -> Result<String, NicEditError> {
    let mut stored = store.get(name)?;
    let existing = stored.domain.interfaces();
    let mac = match &nic.mac {
        Some(mac) => mac.to_ascii_lowercase(),
        None => proposed_mac(&stored.domain),
    };
    let mut edited = stored.domain.clone();
    let mut element = user_element(&mac, nic.model.as_deref().unwrap_or("virtio"));
    element.set_attr("type", &nic.if_type);
    edited.add_device(element);
    let index = existing.len() + 1;
    if let Err(problems) = map_nics(&edited.interfaces(), &edited.uuid().unwrap_or_default())
        && let Some(problem) = problems.into_iter().find(|p| p.index == index)
    {
        return Err(NicEditError::Unsupported(problem));
    }
    stored.domain = edited;
    store.save(&mut stored)?;
    Ok(mac)
}

/// Removes the interface of type `if_type` with MAC `mac` (or the only one of that type when
/// `mac` is `None`) from the stored definition of `name`; returns the MAC removed.
pub fn detach_interface(
    store: &DomainStore,
    name: &str,
    if_type: &str,
    mac: Option<&str>,
) -> Result<String, NicEditError> {
    let mut stored = store.get(name)?;
    let interfaces = stored.domain.interfaces();
    let of_type: Vec<_> = interfaces
        .iter()
        .filter(|i| i.if_type.as_deref() == Some(if_type))
        .collect();
    let found = match mac {
        Some(mac) => of_type
            .iter()
            .find(|i| {
                i.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
            })
            .and_then(|i| i.mac.clone()),
        None if of_type.len() > 1 => {
            return Err(NicEditError::Ambiguous {
                domain: name.to_owned(),
                if_type: if_type.to_owned(),
                count: of_type.len(),
            });
        }
        None => of_type.first().and_then(|i| i.mac.clone()),
    };
    let Some(found) = found else {
        return Err(no_such_mac(name, mac.unwrap_or("(any)"), &interfaces));
    };
    stored.domain.remove_interface(&found);
    store.save(&mut stored)?;
    Ok(found)
}

/// Plugs (`up`) or unplugs the card with MAC `mac` in the stored definition of `name`
/// (`<link state>`, virsh's `domif-setlink --config`): an unplugged card is attached with its
/// link down and no passt runs for it.
pub fn set_link_state(
    store: &DomainStore,
    name: &str,
    mac: &str,
    up: bool,
) -> Result<(), NicEditError> {
    let mut stored = store.get(name)?;
    if !stored.domain.set_interface_link(mac, up) {
        return Err(no_such_mac(name, mac, &stored.domain.interfaces()));
    }
    store.save(&mut stored)?;
    Ok(())
}

/// The error for a MAC no card of `name` has, listing the cards it has.
fn no_such_mac(name: &str, mac: &str, interfaces: &[Interface]) -> NicEditError {
    NicEditError::NoSuchMac {
        domain: name.to_owned(),
        mac: mac.to_owned(),
        macs: interfaces
            .iter()
            .map(|i| {
                format!(
                    "{} ({})",
                    i.mac.as_deref().unwrap_or("no MAC"),
                    i.if_type.as_deref().unwrap_or("?")
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
