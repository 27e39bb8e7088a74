//! The Devices page's display (graphics and video), as the definition lists them: each row
//! says what the device is (its model and type), so no row is a bare "—". Network cards have
//! their own section ([`super::nics`]).

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::glib;
use relm4::{adw, gtk};

use crate::domain::Domain;

/// The display: each `<graphics>` (VNC, SPICE…) and `<video>` model.
pub fn display_group(domain: &Domain) -> adw::PreferencesGroup {
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Display"))
        .build();
    let mut rows = 0;
    for graphics in domain.graphics() {
        let kind = graphics.graphics_type.unwrap_or_default().to_uppercase();
        let mut details = Vec::new();
        if let Some(listen) = graphics.listen {
            details.push(gettext("listens on {address}").replace("{address}", &listen));
        }
        if let Some(port) = graphics.port {
            details.push(gettext("port {port}").replace("{port}", &port));
        }
        let row = adw::ActionRow::builder()
            .title(
                glib::markup_escape_text(&gettext("{kind} graphics").replace("{kind}", &kind))
                    .as_str(),
            )
            .subtitle(glib::markup_escape_text(&details.join(" · ")).as_str())
            .build();
        row.add_prefix(&gtk::Image::from_icon_name("video-display-symbolic"));
        group.add(&row);
        rows += 1;
    }
    let videos = domain
        .document()
        .at(&["devices"])
        .into_iter()
        .flat_map(|d| d.children_named("video"))
        .filter_map(|v| {
            v.child("model")
                .and_then(|m| m.attr("type"))
                .map(str::to_owned)
        })
        .collect::<Vec<_>>();
    for model in videos {
        let row = adw::ActionRow::builder()
            .title(
                glib::markup_escape_text(&gettext("{model} video card").replace("{model}", &model))
                    .as_str(),
            )
            .build();
        row.add_prefix(&gtk::Image::from_icon_name("video-display-symbolic"));
        group.add(&row);
        rows += 1;
    }
    if rows == 0 {
        group.set_description(Some(&gettext(
            "No graphics or video: the guest has its serial console only",
        )));
    }
    group
}
