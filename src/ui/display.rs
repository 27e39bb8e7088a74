//! The guest's screen in a widget: the runner's screen channel
//! ([`crate::launch::runner::screen`]) drawn scaled to the widget with its aspect kept (GTK's
//! picture renders the texture at the device's scale, so HiDPI screens get every guest pixel),
//! redrawn only when an update arrives; keys, pointer and wheel go back to the guest's virtio
//! keyboard and tablet, and a settled widget size becomes the guest's preferred display size.
//!
//! The guest's pointer shape (virtio-gpu's cursor plane) becomes the widget's own cursor while
//! the host pointer is over the screen, as virt-viewer does through gtk-vnc and spice-gtk
//! with an absolute pointer: the host draws it where the user's hand is, without waiting for
//! the guest; the guest's pointer is there too, as the tablet is absolute. A hidden guest
//! pointer hides it over the screen. The shape keeps its size in guest pixels whatever the
//! screen's scale.
//!
//! Keyboard grab as in virt-manager: a click (or Tab) into the screen grabs the keyboard —
//! system shortcuts included, where the desktop allows — and Ctrl+Alt lets go; every key
//! still held then is released in the guest, so no modifier sticks there.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gettextrs::gettext;
use relm4::gtk::prelude::*;
use relm4::gtk::{gdk, glib};
use relm4::{Component, ComponentParts, ComponentSender, gtk};

use crate::launch::runner::RunnerError;
use crate::launch::runner::screen::{self, Changed, ScreenInput, ScreenSender};
use crate::launch::viewer::{self, HeldKeys, Placement, SizeDebounce};

/// How long a window size must stay the same before the guest is offered it.
const RESIZE_QUIET: Duration = Duration::from_millis(400);
/// How often the view checks its size (and, while detached, looks for the runner).
const TICK: Duration = Duration::from_millis(100);
/// Ticks between attempts to attach while the VM is not running.
const RETRY_TICKS: u32 = 8;
/// How long attaching may take before the view gives up on a runner that does not answer.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The newest screen the reader thread received, waiting for the UI thread.
type Slot = Arc<Mutex<Option<(u32, u32, Vec<u8>)>>>;

/// Where the view stands with the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenState {
    /// Looking for the runner.
    Connecting,
    /// The VM is not running.
    Unavailable(String),
    /// The VM runs without a display; the message says how to add one.
    NoDisplay(String),
    /// Attached; the guest shows nothing yet.
    Blank,
    /// Attached and showing the guest's screen.
    Showing,
}

pub struct ScreenView {
    name: String,
    state: ScreenState,
    input: Option<ScreenSender>,
    slot: Slot,
    held: HeldKeys,
    grabbed: bool,
    buttons: u8,
    debounce: SizeDebounce,
    attaching: bool,
    ticks: u32,
    /// The size of the image shown, in guest pixels.
    image_size: (u32, u32),
    /// Frames drawn, for tests and diagnostics.
    frames_shown: u64,
    /// The guest's pointer hot spot, `None` while it shows none (or no shape came yet).
    guest_cursor: Option<(u32, u32)>,
}

#[derive(Debug)]
pub enum ScreenMsg {
    /// The reader thread put a new screen in the slot.
    FrameReady,
    /// The guest shows nothing.
    Blank,
    /// The guest's pointer shape changed: hot spot and 64 × 64 RGBA (empty: hidden).
    Cursor(u32, u32, Vec<u8>),
    /// The runner hung up.
    Detached,
    /// A key went down (`true`) or up, by hardware key code.
    Key(u32, bool),
    /// The pointer is at (`x`, `y`) in the widget.
    Motion(f64, f64),
    /// Mouse button `n` (GDK numbering) went down or up at (`x`, `y`).
    Button(u32, bool, f64, f64),
    /// The wheel turned (positive: towards the user, as GDK reports it).
    Scroll(f64),
    /// The widget got or lost the keyboard focus.
    Focus(bool),
    /// Press these Linux keys together, then release them (the Send Key menu).
    SendCombo(Vec<u16>),
    Tick,
}

/// What the view tells its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenOutput {
    /// The state changed.
    State(ScreenState),
    /// The keyboard is grabbed (`true`) or free.
    Grab(bool),
}

pub struct ScreenWidgets {
    pub picture: gtk::Picture,
}

/// The outcome of attaching, from a worker: the channel, or the state that says why not; the
/// outer error is a worker that timed out or panicked.
pub type AttachResult = Result<Result<(Reader, ScreenSender), ScreenState>, String>;

type Reader = screen::ScreenReader<std::io::BufReader<std::os::unix::net::UnixStream>>;

impl Component for ScreenView {
    type Init = String;
    type Input = ScreenMsg;
    type Output = ScreenOutput;
    type CommandOutput = AttachResult;
    type Root = gtk::Picture;
    type Widgets = ScreenWidgets;

    fn init_root() -> gtk::Picture {
        gtk::Picture::builder()
            .can_shrink(true)
            .content_fit(gtk::ContentFit::Contain)
            .focusable(true)
            .hexpand(true)
            .vexpand(true)
            .css_classes(["vireo-screen"])
            .build()
    }

    fn init(
        name: String,
        picture: gtk::Picture,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        picture.set_can_focus(true);
        picture.update_property(&[gtk::accessible::Property::Label(&gettext(
            "Screen of the virtual machine",
        ))]);
        connect_input(&picture, &sender);
        let mut model = ScreenView {
            name,
            state: ScreenState::Connecting,
            input: None,
            slot: Arc::new(Mutex::new(None)),
            held: HeldKeys::default(),
            grabbed: false,
            buttons: 0,
            debounce: SizeDebounce::new(RESIZE_QUIET),
            attaching: false,
            ticks: 0,
            image_size: (0, 0),
            frames_shown: 0,
            guest_cursor: None,
        };
        model.attach(&sender);
        let timer = sender.input_sender().clone();
        glib::timeout_add_local(TICK, move || match timer.send(ScreenMsg::Tick) {
            Ok(()) => glib::ControlFlow::Continue,
            Err(_) => glib::ControlFlow::Break,
        });
        ComponentParts {
            model,
            widgets: ScreenWidgets { picture },
        }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut ScreenWidgets,
        msg: ScreenMsg,
        sender: ComponentSender<Self>,
        _root: &gtk::Picture,
    ) {
        let picture = &widgets.picture;
        match msg {
            ScreenMsg::FrameReady => {
                let frame = self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some((width, height, rgba)) = frame {
                    let texture = gdk::MemoryTexture::new(
                        width as i32,
                        height as i32,
                        gdk::MemoryFormat::R8g8b8a8,
                        &glib::Bytes::from_owned(rgba),
                        width as usize * 4,
                    );
                    picture.set_paintable(Some(&texture));
                    self.image_size = (width, height);
                    self.frames_shown += 1;
                    self.set_state(ScreenState::Showing, &sender);
                }
            }
            ScreenMsg::Blank => {
                picture.set_paintable(None::<&gdk::Paintable>);
                self.image_size = (0, 0);
                self.set_state(ScreenState::Blank, &sender);
            }
            ScreenMsg::Cursor(hot_x, hot_y, rgba) => {
                let cursor = guest_cursor(hot_x, hot_y, rgba);
                self.guest_cursor = cursor.is_some().then_some((hot_x, hot_y));
                match cursor {
                    Some(cursor) => picture.set_cursor(Some(&cursor)),
                    None => picture.set_cursor_from_name(Some("none")),
                }
            }
            ScreenMsg::Detached => self.detach(picture, &sender),
            ScreenMsg::Key(keycode, pressed) => {
                let Some(code) = viewer::linux_key(keycode) else {
                    return;
                };
                if !pressed && !self.held.contains(code) {
                    // The release of a key pressed before the grab (the click's Ctrl, the
                    // chord's last key): the guest never saw it go down.
                    return;
                }
                let chord = self.held.record(code, pressed);
                self.send(&ScreenInput::Key { code, pressed }, picture, &sender);
                if chord {
                    self.release_grab(picture, &sender);
                }
            }
            ScreenMsg::Motion(x, y) => self.pointer(x, y, picture, &sender),
            ScreenMsg::Button(n, pressed, x, y) => {
                if pressed && !self.grabbed {
                    picture.grab_focus();
                }
                // GDK: 1 left, 2 middle, 3 right; the tablet: bit 0 left, 1 right, 2 middle.
                let bit = match n {
                    1 => 0,
                    3 => 1,
                    2 => 2,
                    _ => return,
                };
                if pressed {
                    self.buttons |= 1 << bit;
                } else {
                    self.buttons &= !(1 << bit);
                }
                self.pointer(x, y, picture, &sender);
            }
            ScreenMsg::Scroll(dy) => {
                let clicks = -(dy.round() as i32);
                if clicks != 0 {
                    self.send(&ScreenInput::Wheel { clicks }, picture, &sender);
                }
            }
            ScreenMsg::Focus(focused) => {
                if focused && !self.grabbed {
                    self.grabbed = true;
                    set_system_shortcuts_inhibited(picture, true);
                    picture.add_css_class("grabbed");
                    let _ = sender.output(ScreenOutput::Grab(true));
                } else if !focused && self.grabbed {
                    self.release_keys(picture, &sender);
                    self.grabbed = false;
                    set_system_shortcuts_inhibited(picture, false);
                    picture.remove_css_class("grabbed");
                    let _ = sender.output(ScreenOutput::Grab(false));
                }
            }
            ScreenMsg::SendCombo(codes) => {
                for code in &codes {
                    self.send(
                        &ScreenInput::Key {
                            code: *code,
                            pressed: true,
                        },
                        picture,
                        &sender,
                    );
                }
                for code in codes.iter().rev() {
                    self.send(
                        &ScreenInput::Key {
                            code: *code,
                            pressed: false,
                        },
                        picture,
                        &sender,
                    );
                }
            }
            ScreenMsg::Tick => {
                if matches!(self.state, ScreenState::NoDisplay(_)) {
                    // A display comes only with a new start, which a later attach finds.
                    self.ticks += 1;
                    if self.ticks % (RETRY_TICKS * 8) == 0 {
                        self.attach(&sender);
                    }
                } else if self.input.is_some() {
                    let scale = f64::from(picture.scale_factor());
                    let size = (
                        (f64::from(picture.width()) * scale) as u32,
                        (f64::from(picture.height()) * scale) as u32,
                    );
                    let now = Instant::now();
                    self.debounce.observe(size, now);
                    if let Some((width, height)) = self.debounce.due(now) {
                        self.send(&ScreenInput::Size { width, height }, picture, &sender);
                    }
                } else {
                    self.ticks += 1;
                    if self.ticks % RETRY_TICKS == 0 {
                        self.attach(&sender);
                    }
                }
            }
        }
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut ScreenWidgets,
        attached: AttachResult,
        sender: ComponentSender<Self>,
        _root: &gtk::Picture,
    ) {
        self.attaching = false;
        match attached {
            Ok(Ok((reader, input))) => {
                self.input = Some(input);
                // A new connection: the guest gets the current size again.
                self.debounce = SizeDebounce::new(RESIZE_QUIET);
                self.set_state(ScreenState::Blank, &sender);
                spawn_reader(reader, self.slot.clone(), &sender);
            }
            Ok(Err(state)) => {
                widgets.picture.set_paintable(None::<&gdk::Paintable>);
                self.set_state(state, &sender);
            }
            Err(message) => self.set_state(ScreenState::Unavailable(message), &sender),
        }
    }
}

impl ScreenView {
    /// Where the view stands.
    pub fn state(&self) -> &ScreenState {
        &self.state
    }

    /// Whether the keyboard goes to the guest.
    pub fn is_grabbed(&self) -> bool {
        self.grabbed
    }

    /// How many frames the view has drawn.
    pub fn frames_shown(&self) -> u64 {
        self.frames_shown
    }

    /// The guest's pointer hot spot as the widget's cursor shows it; `None` while none shows.
    pub fn guest_cursor(&self) -> Option<(u32, u32)> {
        self.guest_cursor
    }

    /// The guest's screen size as shown, in guest pixels; (0, 0) while blank.
    pub fn image_size(&self) -> (u32, u32) {
        self.image_size
    }

    /// Where the picture sits in a widget of `width` × `height`.
    pub fn placement(&self, width: f64, height: f64) -> Option<Placement> {
        viewer::fit((width, height), self.image_size)
    }

    fn set_state(&mut self, state: ScreenState, sender: &ComponentSender<Self>) {
        if self.state != state {
            self.state = state.clone();
            let _ = sender.output(ScreenOutput::State(state));
        }
    }

    fn pointer(&mut self, x: f64, y: f64, picture: &gtk::Picture, sender: &ComponentSender<Self>) {
        let Some(placed) = self.placement(f64::from(picture.width()), f64::from(picture.height()))
        else {
            return;
        };
        let (x, y) = viewer::tablet_position(placed, x, y);
        let buttons = self.buttons;
        self.send(&ScreenInput::Pointer { x, y, buttons }, picture, sender);
    }

    /// Lets go of the keyboard: keys still down are released in the guest first.
    fn release_grab(&mut self, picture: &gtk::Picture, sender: &ComponentSender<Self>) {
        self.release_keys(picture, sender);
        if let Some(window) = picture.root().and_downcast::<gtk::Window>() {
            gtk::prelude::GtkWindowExt::set_focus(&window, None::<&gtk::Widget>);
        }
    }

    fn release_keys(&mut self, picture: &gtk::Picture, sender: &ComponentSender<Self>) {
        for code in self.held.release_all() {
            self.send(
                &ScreenInput::Key {
                    code,
                    pressed: false,
                },
                picture,
                sender,
            );
        }
    }

    fn send(
        &mut self,
        input: &ScreenInput,
        picture: &gtk::Picture,
        sender: &ComponentSender<Self>,
    ) {
        if let Some(channel) = &mut self.input
            && channel.send(input).is_err()
        {
            self.detach(picture, sender);
        }
    }

    fn attach(&mut self, sender: &ComponentSender<Self>) {
        if self.attaching || self.input.is_some() {
            return;
        }
        self.attaching = true;
        let name = self.name.clone();
        let what = gettext("attaching the screen of {name}").replace("{name}", &name);
        sender.oneshot_command(async move {
            super::worker::run_blocking_timeout(&what, ATTACH_TIMEOUT, move || {
                screen::attach_screen(&name).map_err(|err| match err {
                    // The runner answered, but has no screen to give (or is from a version
                    // without the screen channel).
                    RunnerError::Refused(message) => ScreenState::NoDisplay(message),
                    RunnerError::NotRunning(_) => {
                        ScreenState::Unavailable(gettext("The virtual machine is not running."))
                    }
                    other => ScreenState::Unavailable(other.to_string()),
                })
            })
            .await
        });
    }

    fn detach(&mut self, picture: &gtk::Picture, sender: &ComponentSender<Self>) {
        if self.input.take().is_some() {
            self.held.release_all();
            self.buttons = 0;
            picture.set_paintable(None::<&gdk::Paintable>);
            picture.set_cursor(None);
            self.guest_cursor = None;
            self.image_size = (0, 0);
            self.set_state(
                ScreenState::Unavailable(gettext("The virtual machine is not running.")),
                sender,
            );
        }
    }
}

/// Reads updates in a thread; the newest screen waits in `slot` and the UI thread is told once
/// per filling, so a slow UI skips frames instead of queueing them.
fn spawn_reader(mut reader: Reader, slot: Slot, sender: &ComponentSender<ScreenView>) {
    let input = sender.input_sender().clone();
    std::thread::spawn(move || {
        let mut shape_sent: Option<(u32, u32, Vec<u8>)> = None;
        while let Ok(Some(changed)) = reader.next_update() {
            if changed == Changed::Cursor {
                // Moves come with every pointer motion; only a new shape matters here.
                let c = reader.cursor();
                let shape = (c.hot_x, c.hot_y, c.rgba.clone());
                if shape_sent.as_ref() != Some(&shape) {
                    shape_sent = Some(shape.clone());
                    if input
                        .send(ScreenMsg::Cursor(shape.0, shape.1, shape.2))
                        .is_err()
                    {
                        return;
                    }
                }
                continue;
            }
            let frame = reader.frame();
            if frame.rgba.is_empty() {
                slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                if input.send(ScreenMsg::Blank).is_err() {
                    return;
                }
                continue;
            }
            let was_empty = slot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace((frame.width, frame.height, frame.rgba.clone()))
                .is_none();
            if was_empty && input.send(ScreenMsg::FrameReady).is_err() {
                return;
            }
        }
        let _ = input.send(ScreenMsg::Detached);
    });
}

/// The guest's pointer as a cursor: its 64 × 64 RGBA with the hot spot; `None` when the guest
/// hides it (empty) or sent a shape of the wrong size.
fn guest_cursor(hot_x: u32, hot_y: u32, rgba: Vec<u8>) -> Option<gdk::Cursor> {
    let side = screen::CURSOR_SIDE;
    if rgba.len() != (side * side * 4) as usize {
        return None;
    }
    let texture = gdk::MemoryTexture::new(
        side as i32,
        side as i32,
        gdk::MemoryFormat::R8g8b8a8,
        &glib::Bytes::from_owned(rgba),
        side as usize * 4,
    );
    Some(gdk::Cursor::from_texture(
        &texture,
        hot_x.min(side - 1) as i32,
        hot_y.min(side - 1) as i32,
        None,
    ))
}

/// Keys, pointer, buttons, wheel and focus of `picture` become messages.
fn connect_input(picture: &gtk::Picture, sender: &ComponentSender<ScreenView>) {
    let keys = gtk::EventControllerKey::new();
    {
        let s = sender.clone();
        keys.connect_key_pressed(move |_, _, keycode, _| {
            s.input(ScreenMsg::Key(keycode, true));
            glib::Propagation::Stop
        });
    }
    {
        let s = sender.clone();
        keys.connect_key_released(move |_, _, keycode, _| s.input(ScreenMsg::Key(keycode, false)));
    }
    picture.add_controller(keys);

    let motion = gtk::EventControllerMotion::new();
    {
        let s = sender.clone();
        motion.connect_motion(move |_, x, y| s.input(ScreenMsg::Motion(x, y)));
    }
    picture.add_controller(motion);

    let click = gtk::GestureClick::builder().button(0).build();
    {
        let s = sender.clone();
        click.connect_pressed(move |g, _, x, y| {
            s.input(ScreenMsg::Button(g.current_button(), true, x, y))
        });
    }
    {
        let s = sender.clone();
        click.connect_released(move |g, _, x, y| {
            s.input(ScreenMsg::Button(g.current_button(), false, x, y))
        });
    }
    picture.add_controller(click);

    let scroll = gtk::EventControllerScroll::new(
        gtk::EventControllerScrollFlags::VERTICAL | gtk::EventControllerScrollFlags::DISCRETE,
    );
    {
        let s = sender.clone();
        scroll.connect_scroll(move |_, _, dy| {
            s.input(ScreenMsg::Scroll(dy));
            glib::Propagation::Stop
        });
    }
    picture.add_controller(scroll);

    let focus = gtk::EventControllerFocus::new();
    {
        let s = sender.clone();
        focus.connect_enter(move |_| s.input(ScreenMsg::Focus(true)));
    }
    {
        let s = sender.clone();
        focus.connect_leave(move |_| s.input(ScreenMsg::Focus(false)));
    }
    picture.add_controller(focus);
}

/// Asks the desktop to pass system shortcuts (Alt+Tab, Super) to the guest while grabbed.
fn set_system_shortcuts_inhibited(picture: &gtk::Picture, inhibited: bool) {
    let Some(toplevel) = picture
        .native()
        .and_then(|n| n.surface())
        .and_downcast::<gdk::Toplevel>()
    else {
        return;
    };
    if inhibited {
        toplevel.inhibit_system_shortcuts(None::<&gdk::Event>);
    } else {
        toplevel.restore_system_shortcuts();
    }
}
