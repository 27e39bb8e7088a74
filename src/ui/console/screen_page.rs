//! The console window's screen page and its tools: the guest's screen ([`ScreenView`]) with a
//! status page while it shows nothing, the "Send Key" menu, fullscreen, and saving a
//! screenshot as PNG.

use std::path::PathBuf;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::{gio, glib};
use relm4::{Component, ComponentController, ComponentSender, Controller, adw, gtk};

use super::{Console, ConsoleMsg};
use crate::launch::runner;
use crate::launch::viewer;
use crate::ui::display::{ScreenState, ScreenView};

/// The screen page's widgets.
pub struct ScreenPage {
    pub view: Controller<ScreenView>,
    /// "picture" while the guest's screen shows, "status" otherwise.
    pub stack: gtk::Stack,
    pub status: adw::StatusPage,
}

/// Builds the page for `name`; the view's news arrive as [`ConsoleMsg::Screen`].
pub fn build(name: &str, sender: &ComponentSender<Console>) -> ScreenPage {
    let view = ScreenView::builder()
        .launch(name.to_string())
        .forward(sender.input_sender(), ConsoleMsg::Screen);
    let status = adw::StatusPage::builder()
        .icon_name("video-display-symbolic")
        .title(gettext("Connecting to the screen…"))
        .build();
    let stack = gtk::Stack::new();
    stack.add_named(view.widget(), Some("picture"));
    stack.add_named(&status, Some("status"));
    stack.set_visible_child_name("status");
    ScreenPage {
        view,
        stack,
        status,
    }
}

/// Shows `state` on the page.
pub fn show_state(page: &ScreenPage, state: &ScreenState) {
    let (title, description) = match state {
        ScreenState::Showing => {
            page.stack.set_visible_child_name("picture");
            return;
        }
        ScreenState::Connecting => (gettext("Connecting to the screen…"), String::new()),
        ScreenState::Blank => (
            gettext("The guest shows nothing yet"),
            gettext(
                "The screen appears once the guest's virtio-gpu driver sets a mode. Until then the serial console may say more.",
            ),
        ),
        ScreenState::Unavailable(message) => {
            (gettext("The screen is not available"), message.clone())
        }
        ScreenState::NoDisplay(message) => (
            gettext("This virtual machine has no display"),
            message.clone(),
        ),
    };
    page.status.set_title(&title);
    page.status.set_description(Some(&description));
    page.stack.set_visible_child_name("status");
}

/// The header's screen tools: the Send Key menu, the screenshot button and the fullscreen
/// toggle (F11), with the window actions behind them.
pub fn tools(
    window: &adw::Window,
    header: &adw::HeaderBar,
    sender: &ComponentSender<Console>,
) -> Vec<gtk::Widget> {
    let combos = viewer::send_key_combos();
    let menu = gio::Menu::new();
    for (index, (label, _)) in combos.iter().enumerate() {
        let item = gio::MenuItem::new(Some(&key_label(label)), None);
        item.set_action_and_target_value(
            Some("console.send-key"),
            Some(&(index as i32).to_variant()),
        );
        menu.append_item(&item);
    }
    let actions = gio::SimpleActionGroup::new();
    let send_key = gio::SimpleAction::new("send-key", Some(glib::VariantTy::INT32));
    {
        let sender = sender.clone();
        send_key.connect_activate(move |_, target| {
            let Some(index) = target.and_then(|t| t.get::<i32>()) else {
                return;
            };
            if let Some((_, codes)) = combos.get(index as usize) {
                sender.input(ConsoleMsg::SendCombo(codes.clone()));
            }
        });
    }
    actions.add_action(&send_key);
    window.insert_action_group("console", Some(&actions));

    let keys = gtk::MenuButton::builder()
        .icon_name("input-keyboard-symbolic")
        .tooltip_text(gettext("Send Key"))
        .menu_model(&menu)
        .build();
    let shot = gtk::Button::builder()
        .icon_name("camera-photo-symbolic")
        .tooltip_text(gettext("Save a Screenshot…"))
        .build();
    {
        let sender = sender.clone();
        shot.connect_clicked(move |_| sender.input(ConsoleMsg::Screenshot));
    }
    let fullscreen = gtk::ToggleButton::builder()
        .icon_name("view-fullscreen-symbolic")
        .tooltip_text(gettext("Fullscreen (F11)"))
        .build();
    {
        let window = window.clone();
        fullscreen.connect_toggled(move |button| {
            if button.is_active() {
                window.fullscreen();
            } else {
                window.unfullscreen();
            }
        });
    }
    {
        let button = fullscreen.clone();
        window.connect_fullscreened_notify(move |w| button.set_active(w.is_fullscreen()));
    }
    let shortcuts = gtk::ShortcutController::new();
    shortcuts.set_scope(gtk::ShortcutScope::Managed);
    {
        let button = fullscreen.clone();
        shortcuts.add_shortcut(gtk::Shortcut::new(
            gtk::ShortcutTrigger::parse_string("F11"),
            Some(gtk::CallbackAction::new(move |_, _| {
                button.set_active(!button.is_active());
                glib::Propagation::Stop
            })),
        ));
    }
    window.add_controller(shortcuts);
    header.pack_end(&fullscreen);
    header.pack_end(&shot);
    header.pack_end(&keys);
    vec![keys.upcast(), shot.upcast(), fullscreen.upcast()]
}

/// A key combination's label with the key names in the user's language.
fn key_label(label: &str) -> String {
    label
        .split('+')
        .map(|key| match key {
            "Ctrl" => gettext("Ctrl"),
            "Alt" => gettext("Alt"),
            "Del" => gettext("Del"),
            "Backspace" => gettext("Backspace"),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// Asks where to save, then fetches the PNG from the runner and writes it there in a thread;
/// the outcome comes back as [`ConsoleMsg::Toast`].
pub fn save_screenshot(window: &adw::Window, name: &str, sender: &ComponentSender<Console>) {
    let name = name.to_string();
    let suggested = format!("{name}-screenshot.png");
    let input = sender.input_sender().clone();
    crate::ui::file_chooser::choose_save_file(
        Some(window.upcast_ref()),
        &gettext("Save a Screenshot"),
        &suggested,
        move |path: PathBuf| {
            let name = name.clone();
            let input = input.clone();
            std::thread::spawn(move || {
                let saved = runner::screenshot(&name)
                    .map_err(|e| e.to_string())
                    .and_then(|png| {
                        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))
                    });
                let text = match saved {
                    Ok(()) => gettext("Screenshot saved as {path}")
                        .replace("{path}", &path.display().to_string()),
                    Err(error) => {
                        gettext("The screenshot was not saved: {error}").replace("{error}", &error)
                    }
                };
                let _ = input.send(ConsoleMsg::Toast(text));
            });
        },
    );
}
