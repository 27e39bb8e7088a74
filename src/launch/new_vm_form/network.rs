//! The new VM's network (virt-manager's "Network selection" on its last step): user-mode
//! networking through passt (NAT: the guest reaches out, nothing reaches in unless forwarded;
//! no root, bridge or tap), or none. User-mode is the default where passt is installed: a VM
//! without network surprises more people than one with it, and start would refuse the card
//! without passt.

use crate::domain::Domain;
use crate::domain::interfaces::user_element;
use crate::engine::config::format_mac;
use crate::launch::nics::generated_mac;

/// Which network card a new VM gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkChoice {
    /// No network card.
    #[default]
    None,
    /// One virtio card with user-mode networking through passt.
    User,
}

impl NetworkChoice {
    /// The wizard's default on a host where passt is (or is not) installed.
    pub fn default_for(passt_installed: bool) -> NetworkChoice {
        if passt_installed {
            NetworkChoice::User
        } else {
            NetworkChoice::None
        }
    }

    /// Adds the card to a new VM's `domain`: `<interface type='user'>` with a MAC derived from
    /// the domain's UUID (the one start would generate for the first card, written down so it
    /// stays when cards are added or removed later), virtio, backend passt.
    pub fn add_to(self, domain: &mut Domain) {
        if self == NetworkChoice::User {
            let mac = generated_mac(&domain.uuid().unwrap_or_default(), 0);
            domain.add_device(user_element(&format_mac(&mac), "virtio"));
        }
    }
}
