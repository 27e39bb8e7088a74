//! The Boot page of a VM that boots from its disks (no `<os><kernel>`): which disks it boots
//! from and in what order, instead of empty direct-kernel fields.

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{adw, gtk};

use crate::domain::Domain;

/// The disks in boot order: those with `<boot order='N'/>` by N, then the others in the
/// definition's order (as libvirt's `<os><boot dev='hd'/>` tries them). Each is
/// (order shown, target, source, is a CD-ROM).
pub fn boot_order(domain: &Domain) -> Vec<(usize, String, String, bool)> {
    let orders: Vec<Option<usize>> = domain
        .document()
        .at(&["devices"])
        .into_iter()
        .flat_map(|d| d.children_named("disk"))
        .map(|disk| {
            disk.child("boot")
                .and_then(|b| b.attr("order"))
                .and_then(|o| o.parse().ok())
        })
        .collect();
    let mut disks: Vec<(Option<usize>, usize, String, String, bool)> = domain
        .disks()
        .into_iter()
        .enumerate()
        .map(|(index, disk)| {
            (
                orders.get(index).copied().flatten(),
                index,
                disk.target_dev.unwrap_or_else(|| "?".into()),
                disk.source.unwrap_or_default(),
                disk.device.as_deref() == Some("cdrom"),
            )
        })
        .collect();
    disks.sort_by_key(|(order, index, ..)| (order.is_none(), *order, *index));
    disks
        .into_iter()
        .enumerate()
        .map(|(place, (_, _, target, source, cdrom))| (place + 1, target, source, cdrom))
        .collect()
}

/// The "Boot from Disk" group, or `None` for a VM that boots a kernel directly.
pub fn disk_boot_group(domain: &Domain) -> Option<adw::PreferencesGroup> {
    if domain.os().kernel.is_some_and(|k| !k.is_empty()) {
        return None;
    }
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Boot from Disk"))
        .description(gettext("The firmware tries these disks in this order. Vireo's engine cannot boot from a disk yet (it has no firmware); libvirt runs this VM as it is."))
        .build();
    let order = boot_order(domain);
    for (place, target, source, cdrom) in &order {
        let kind = if *cdrom {
            gettext("CD-ROM {target}")
        } else {
            gettext("Disk {target}")
        }
        .replace("{target}", target);
        let row = adw::ActionRow::builder()
            .title(glib::markup_escape_text(&format!("{place}. {kind}")).as_str())
            .subtitle(glib::markup_escape_text(source).as_str())
            .build();
        row.add_prefix(&gtk::Image::from_icon_name(if *cdrom {
            "media-optical-symbolic"
        } else {
            "drive-harddisk-symbolic"
        }));
        group.add(&row);
    }
    if order.is_empty() {
        group.set_description(Some(&gettext(
            "No kernel and no disk: give a kernel in the XML (<os><kernel>) or add a disk on the Devices page",
        )));
    }
    Some(group)
}
