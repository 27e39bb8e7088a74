//! The console window of a VM: the guest's screen ([`screen_page`]) and its serial console one
//! click away. The serial console is a VTE terminal: scrollback, copy and paste, keyboard input
//! to the guest, a banner saying why the VM stopped, and reconnection when it runs again (after
//! a reboot, or a new start). The window opens on the serial console and turns to the screen
//! the first time the guest shows something there, so a guest that only prints to its serial
//! port is never hidden behind a black picture.

mod libvirt;
mod screen_page;
mod target;
mod terminal;

pub use target::{AttachResult, Attached, ConsoleTarget};
use terminal::{crlf, paste_into};

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use gettextrs::gettext;
use relm4::adw::prelude::*;
use relm4::gtk::{glib, pango};
use relm4::{Component, ComponentController, ComponentParts, ComponentSender, adw, gtk};
use vte4::prelude::*;

use crate::launch::runner;
use crate::ui::display::{ScreenMsg, ScreenOutput, ScreenState};
use screen_page::ScreenPage;

/// How long attaching may take before the console gives up on a runner that does not answer.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps at most this much of the guest's output for [`Console::transcript`].
const TRANSCRIPT_LIMIT: usize = 1 << 20;

pub struct Console {
    name: String,
    /// The libvirt connection of the VM (its serial console only); `None`: this computer.
    uri: Option<String>,
    /// Try attaching again on the timer (not while another client holds a libvirt console or
    /// the VM has none: that needs the user).
    retry: bool,
    /// Timer ticks since the last try (a libvirt console is tried less often: each try is a
    /// new connection, maybe over SSH).
    ticks: u32,
    /// The next libvirt attach takes the console over from its holder (Take Over).
    force: bool,
    /// The connection to the runner while attached.
    stream: Option<UnixStream>,
    /// Why the console is not attached (shown in the banner), `None` while attached.
    banner: Option<String>,
    /// Everything received, as fed to the terminal (bounded), for tests and diagnostics.
    transcript: Vec<u8>,
    /// A worker is connecting to the runner.
    attaching: bool,
    /// The screen page (this computer's VMs only).
    screen: Option<ScreenPage>,
    /// What the screen shows.
    screen_state: ScreenState,
    /// The keyboard goes to the guest's screen.
    grabbed: bool,
    /// Another client holds the libvirt console (Take Over is offered).
    busy: bool,
    /// The window turned to the screen once already (it does not turn again by itself).
    turned_to_screen: bool,
}

#[derive(Debug)]
pub enum ConsoleMsg {
    /// Output from the guest.
    Output(Vec<u8>),
    /// Keyboard input for the guest.
    Input(Vec<u8>),
    /// The runner closed the connection: the VM stopped.
    Detached,
    /// Try to attach (timer while detached).
    Reconnect,
    Copy,
    Paste,
    /// News from the screen view.
    Screen(ScreenOutput),
    /// Press these Linux keys together on the guest's keyboard (the Send Key menu).
    SendCombo(Vec<u16>),
    /// Save a screenshot (asks where).
    Screenshot,
    /// A short note for the user.
    Toast(String),
    /// Take a libvirt console over from the client that holds it.
    TakeOver,
}

pub struct ConsoleWidgets {
    pub window: adw::Window,
    pub title: adw::WindowTitle,
    pub terminal: vte4::Terminal,
    pub banner: gtk::Revealer,
    pub banner_label: gtk::Label,
    /// "Take Over", shown while another client holds a libvirt console.
    pub take_over: gtk::Button,
    /// "screen" and "serial".
    pub views: adw::ViewStack,
    /// Send Key, screenshot, fullscreen.
    pub screen_tools: Vec<gtk::Widget>,
    pub toasts: adw::ToastOverlay,
    /// Copy and paste, shown with the serial console.
    pub serial_tools: [gtk::Widget; 2],
}

impl Component for Console {
    type Init = ConsoleTarget;
    type Input = ConsoleMsg;
    type Output = ();
    type CommandOutput = AttachResult;
    type Root = adw::Window;
    type Widgets = ConsoleWidgets;

    fn init_root() -> adw::Window {
        adw::Window::builder()
            .default_width(1024)
            .default_height(720)
            .build()
    }

    fn init(
        ConsoleTarget { name, uri }: ConsoleTarget,
        window: adw::Window,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let title = adw::WindowTitle::new(&name, &gettext("Serial console"));
        window.set_title(Some(&gettext("{name} — Console").replace("{name}", &name)));
        let header = adw::HeaderBar::builder().title_widget(&title).build();
        let copy = gtk::Button::builder()
            .icon_name("edit-copy-symbolic")
            .tooltip_text(gettext("Copy (Ctrl+Shift+C)"))
            .build();
        let paste = gtk::Button::builder()
            .icon_name("edit-paste-symbolic")
            .tooltip_text(gettext("Paste (Ctrl+Shift+V)"))
            .build();
        header.pack_end(&paste);
        header.pack_end(&copy);
        let serial_tools = [copy.clone().upcast::<gtk::Widget>(), paste.clone().upcast()];
        {
            let sender = sender.clone();
            copy.connect_clicked(move |_| sender.input(ConsoleMsg::Copy));
        }
        {
            let sender = sender.clone();
            paste.connect_clicked(move |_| sender.input(ConsoleMsg::Paste));
        }

        let terminal = vte4::Terminal::builder()
            .vexpand(true)
            .hexpand(true)
            .scrollback_lines(10_000)
            .build();
        let prefs = crate::prefs::live::current();
        terminal.set_font(Some(&pango::FontDescription::from_string(&format!(
            "Monospace {}",
            prefs.console_font_size
        ))));
        {
            let sender = sender.clone();
            terminal.connect_commit(move |_, text, _| {
                sender.input(ConsoleMsg::Input(text.as_bytes().to_vec()));
            });
        }
        let shortcuts = gtk::ShortcutController::new();
        for (accel, msg) in [("<Control><Shift>c", true), ("<Control><Shift>v", false)] {
            let sender = sender.clone();
            let action = gtk::CallbackAction::new(move |_, _| {
                sender.input(if msg {
                    ConsoleMsg::Copy
                } else {
                    ConsoleMsg::Paste
                });
                glib::Propagation::Stop
            });
            shortcuts.add_shortcut(gtk::Shortcut::new(
                gtk::ShortcutTrigger::parse_string(accel),
                Some(action),
            ));
        }
        terminal.add_controller(shortcuts);

        let banner_label = gtk::Label::builder()
            .wrap(true)
            .margin_top(8)
            .margin_bottom(8)
            .margin_start(12)
            .margin_end(12)
            .build();
        let banner_box = gtk::Box::builder().css_classes(["osd", "toolbar"]).build();
        banner_box.append(&banner_label);
        let take_over = gtk::Button::builder()
            .label(gettext("Take Over"))
            .tooltip_text(gettext(
                "Disconnect the other client and use the console here",
            ))
            .valign(gtk::Align::Center)
            .visible(false)
            .build();
        {
            let sender = sender.clone();
            take_over.connect_clicked(move |_| sender.input(ConsoleMsg::TakeOver));
        }
        banner_box.append(&take_over);
        let banner = gtk::Revealer::builder().child(&banner_box).build();

        let scroller = gtk::ScrolledWindow::builder()
            .child(&terminal)
            .vexpand(true)
            .build();
        // A libvirt VM's screen is not shown here (its serial console is); a screen view by
        // name would look for this computer's VM of that name.
        let screen = uri.is_none().then(|| screen_page::build(&name, &sender));
        let views = adw::ViewStack::new();
        if let Some(screen) = &screen {
            views
                .add_titled(&screen.stack, Some("screen"), &gettext("Screen"))
                .set_icon_name(Some("video-display-symbolic"));
        }
        views
            .add_titled(&scroller, Some("serial"), &gettext("Serial Console"))
            .set_icon_name(Some("utilities-terminal-symbolic"));
        views.set_visible_child_name("serial");
        let switcher = adw::ViewSwitcher::builder()
            .stack(&views)
            .policy(adw::ViewSwitcherPolicy::Wide)
            .build();
        header.pack_start(&switcher);
        let screen_tools = screen_page::tools(&window, &header, &sender);
        {
            let sender = sender.clone();
            views.connect_visible_child_name_notify(move |_| sender.input(ConsoleMsg::Reconnect));
        }
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&header);
        content.append(&banner);
        content.append(&views);
        let toasts = adw::ToastOverlay::new();
        toasts.set_child(Some(&content));
        window.set_content(Some(&toasts));

        let screen_state = match uri {
            None => ScreenState::Connecting,
            Some(_) => ScreenState::NoDisplay(String::new()),
        };
        if let Some(uri) = &uri {
            title.set_title(
                &gettext("{name} on {host}")
                    .replace("{name}", &name)
                    .replace("{host}", uri),
            );
        }
        let mut model = Console {
            name,
            uri,
            retry: true,
            ticks: 0,
            force: false,
            stream: None,
            banner: None,
            transcript: Vec::new(),
            attaching: false,
            screen,
            screen_state,
            grabbed: false,
            busy: false,
            turned_to_screen: false,
        };
        model.attach(&sender);
        // While detached, look for the VM to run again about once a second.
        let timer = sender.input_sender().clone();
        glib::timeout_add_local(Duration::from_millis(750), move || {
            // Stop once the console window's component is gone.
            match timer.send(ConsoleMsg::Reconnect) {
                Ok(()) => glib::ControlFlow::Continue,
                Err(_) => glib::ControlFlow::Break,
            }
        });
        let widgets = ConsoleWidgets {
            window,
            title,
            terminal,
            banner,
            banner_label,
            take_over,
            views,
            screen_tools,
            toasts,
            serial_tools,
        };
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut ConsoleWidgets,
        msg: ConsoleMsg,
        sender: ComponentSender<Self>,
        _root: &adw::Window,
    ) {
        match msg {
            ConsoleMsg::Output(bytes) => {
                // Like a serial terminal's "implicit CR on LF": guests that print bare LF
                // (firmware, early boot, our probe) would otherwise draw a staircase.
                let shown = crlf(&bytes, self.transcript.last().copied());
                widgets.terminal.feed(&shown);
                self.transcript.extend_from_slice(&bytes);
                if self.transcript.len() > TRANSCRIPT_LIMIT {
                    let excess = self.transcript.len() - TRANSCRIPT_LIMIT;
                    self.transcript.drain(..excess);
                }
            }
            ConsoleMsg::Input(bytes) => {
                if let Some(stream) = &mut self.stream
                    && stream.write_all(&bytes).is_err()
                {
                    self.detach(&sender);
                }
            }
            ConsoleMsg::Detached => self.detach(&sender),
            ConsoleMsg::Reconnect => {
                self.ticks += 1;
                // A libvirt try opens a connection: about every 3 s rather than each tick.
                let due = self.uri.is_none() || self.ticks >= 4;
                if self.stream.is_none() && self.retry && due {
                    self.attach(&sender);
                }
            }
            ConsoleMsg::TakeOver => {
                self.force = true;
                self.retry = true;
                self.attach(&sender);
            }
            ConsoleMsg::Copy => widgets.terminal.copy_clipboard_format(vte4::Format::Text),
            ConsoleMsg::Paste => paste_into(&widgets.terminal),
            ConsoleMsg::Screen(ScreenOutput::State(state)) => {
                if let Some(screen) = &self.screen {
                    screen_page::show_state(screen, &state);
                }
                if state == ScreenState::Showing && !self.turned_to_screen {
                    self.turned_to_screen = true;
                    widgets.views.set_visible_child_name("screen");
                }
                self.screen_state = state;
            }
            ConsoleMsg::Screen(ScreenOutput::Grab(grabbed)) => self.grabbed = grabbed,
            ConsoleMsg::SendCombo(codes) => {
                if let Some(screen) = &self.screen {
                    screen.view.emit(ScreenMsg::SendCombo(codes));
                }
            }
            ConsoleMsg::Screenshot => {
                screen_page::save_screenshot(&widgets.window, &self.name, &sender)
            }
            ConsoleMsg::Toast(text) => widgets.toasts.add_toast(adw::Toast::new(&text)),
        }
        self.update_view(widgets, sender);
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut ConsoleWidgets,
        attached: AttachResult,
        sender: ComponentSender<Self>,
        _root: &adw::Window,
    ) {
        self.attaching = false;
        self.busy = false;
        match attached {
            Ok(Attached::Stream(stream)) => self.attached(stream, &sender),
            // Read each time: the runner records how the VM ended just after it hangs up.
            Ok(Attached::Stopped(exit_state)) => {
                self.banner = Some(stopped_banner(exit_state.as_deref()))
            }
            Ok(Attached::Refused {
                message,
                busy,
                retry,
            }) => {
                self.banner = Some(message);
                self.busy = busy;
                self.retry = retry;
            }
            Err(error) => self.banner = Some(error),
        }
        self.update_view(widgets, sender);
    }

    fn update_view(&self, widgets: &mut ConsoleWidgets, _sender: ComponentSender<Self>) {
        widgets.banner.set_reveal_child(self.banner.is_some());
        widgets
            .take_over
            .set_visible(self.busy && self.stream.is_none());
        if let Some(text) = &self.banner {
            widgets.banner_label.set_text(text);
        }
        let on_screen = widgets.views.visible_child_name().as_deref() == Some("screen");
        let has_display = !matches!(self.screen_state, ScreenState::NoDisplay(_));
        if let Some(page) = widgets.views.child_by_name("screen") {
            widgets.views.page(&page).set_visible(has_display);
        }
        for tool in &widgets.screen_tools {
            tool.set_visible(has_display);
        }
        for tool in &widgets.serial_tools {
            tool.set_visible(!on_screen);
        }
        widgets.title.set_subtitle(&if on_screen && self.grabbed {
            gettext("Ctrl+Alt releases the keyboard")
        } else if on_screen && self.screen_state == ScreenState::Showing {
            gettext("Click to control the guest")
        } else if on_screen {
            gettext("Screen")
        } else if self.stream.is_some() {
            gettext("Serial console — connected")
        } else {
            gettext("Serial console — not connected")
        });
    }
}

impl Console {
    /// Everything the guest printed while this console was open (bounded to 1 MiB).
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.transcript).into_owned()
    }

    /// What the screen page shows.
    pub fn screen_state(&self) -> &ScreenState {
        &self.screen_state
    }

    /// Whether the keyboard goes to the guest's screen.
    pub fn is_grabbed(&self) -> bool {
        self.grabbed
    }

    /// The screen view (for tests: its frames and placement); `None` for a libvirt VM.
    pub fn screen_view(&self) -> Option<&relm4::Controller<crate::ui::display::ScreenView>> {
        self.screen.as_ref().map(|s| &s.view)
    }

    /// Whether another client holds the (libvirt) console, so Take Over is offered.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Whether the console is attached to a running VM.
    pub fn is_attached(&self) -> bool {
        self.stream.is_some()
    }

    /// The banner text, while the VM is not running.
    pub fn banner(&self) -> Option<&str> {
        self.banner.as_deref()
    }

    /// Connects to the runner in a worker, with a timeout, so a hung runner cannot freeze the
    /// window; the result arrives as the command output.
    fn attach(&mut self, sender: &ComponentSender<Self>) {
        if self.attaching {
            return;
        }
        self.attaching = true;
        self.ticks = 0;
        let name = self.name.clone();
        let what = gettext("attaching the console of {name}").replace("{name}", &name);
        if let Some(uri) = self.uri.clone() {
            let force = std::mem::take(&mut self.force);
            sender.oneshot_command(async move {
                super::worker::run_blocking_timeout(&what, libvirt::ATTACH_TIMEOUT, move || {
                    libvirt::attach(&uri, &name, force)
                })
                .await
            });
            return;
        }
        sender.oneshot_command(async move {
            super::worker::run_blocking_timeout(&what, ATTACH_TIMEOUT, move || {
                match runner::attach_console(&name) {
                    Ok(stream) => Attached::Stream(stream),
                    Err(err) => {
                        tracing::debug!(%name, %err, "console not attached");
                        Attached::Stopped(runner::exit_state(&name))
                    }
                }
            })
            .await
        });
    }

    /// Starts reading the guest's output from a fresh connection.
    fn attached(&mut self, stream: UnixStream, sender: &ComponentSender<Self>) {
        let Ok(mut reader) = stream.try_clone() else {
            return;
        };
        self.stream = Some(stream);
        self.banner = None;
        let input = sender.input_sender().clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if input.send(ConsoleMsg::Output(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = input.send(ConsoleMsg::Detached);
        });
    }

    /// The stream ended: says so at once, then (from a worker, as the command output) how the
    /// VM ended, which the runner records in a file just after it hangs up.
    fn detach(&mut self, sender: &ComponentSender<Self>) {
        if self.uri.is_some() {
            if self.stream.take().is_some() {
                self.banner = Some(libvirt::closed_banner());
            }
            return;
        }
        if self.stream.take().is_some() {
            self.banner = Some(stopped_banner(None));
            let name = self.name.clone();
            let what = gettext("reading how {name} ended").replace("{name}", &name);
            sender.oneshot_command(async move {
                super::worker::run_blocking(&what, move || {
                    Attached::Stopped(runner::exit_state(&name))
                })
                .await
            });
        }
    }
}

/// Why the console is not attached, from the runner's exit state.
fn stopped_banner(exit_state: Option<&str>) -> String {
    match exit_state {
        Some(state) if state.starts_with("crashed") => {
            gettext("The virtual machine crashed: {reason}").replace("{reason}", state.trim_start_matches("crashed: "))
        }
        Some(state) => gettext("The virtual machine is not running ({state}). The console reconnects when it starts again.")
            .replace("{state}", state.trim()),
        None => gettext("The virtual machine is not running. The console reconnects when it starts."),
    }
}
