//! The GPU's thread: takes commands off the control and cursor queues, runs them against the
//! resources and the scanout, and answers on the same chain.

use std::os::fd::AsRawFd;

use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestMemoryMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::protocol::{
    Command, HEADER_LEN, Header, MAX_MEM_ENTRIES, MEM_ENTRY_LEN, Malformed, Rect, display_info,
    kind,
};
use super::resources::Resources;
use super::scanout::{CURSOR_SIDE, Image, Mode, Scanout, to_rgba};
use crate::engine::devices::virtio::ActiveQueue;

const EVENT_CONTROL: u64 = 0;
const EVENT_CURSOR: u64 = 1;
const EVENT_STOP: u64 = 2;
/// The longest request read: ATTACH_BACKING with the most entries allowed.
const MAX_REQUEST: usize = HEADER_LEN + 8 + MAX_MEM_ENTRIES as usize * MEM_ENTRY_LEN;

/// The device's state while a driver runs it.
pub(super) struct Gpu {
    memory: GuestMemoryMmap,
    control: ActiveQueue,
    cursor: ActiveQueue,
    stop: EventFd,
    scanout: Scanout,
    resources: Resources,
    /// The resource on scanout 0 and the part of it shown.
    displayed: Option<(u32, Rect)>,
}

impl Gpu {
    pub(super) fn new(
        memory: GuestMemoryMmap,
        control: ActiveQueue,
        cursor: ActiveQueue,
        stop: EventFd,
        scanout: Scanout,
    ) -> Self {
        Self {
            memory,
            control,
            cursor,
            stop,
            scanout,
            resources: Resources::default(),
            displayed: None,
        }
    }

    /// Serves both queues until the stop eventfd is written.
    pub(super) fn run(mut self) {
        if let Err(e) = self.serve() {
            tracing::error!("the GPU's thread stopped: {e}");
        }
    }

    fn serve(&mut self) -> std::io::Result<()> {
        let epoll = Epoll::new()?;
        for (fd, tag) in [
            (self.control.notify.as_raw_fd(), EVENT_CONTROL),
            (self.cursor.notify.as_raw_fd(), EVENT_CURSOR),
            (self.stop.as_raw_fd(), EVENT_STOP),
        ] {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, tag),
            )?;
        }
        // Kicks before the thread started are in the eventfds already.
        self.drain(false);
        self.drain(true);
        let mut events = [EpollEvent::default(); 3];
        loop {
            let n = match epoll.wait(-1, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for event in &events[..n] {
                match event.data() {
                    EVENT_STOP => return Ok(()),
                    EVENT_CONTROL => {
                        let _ = self.control.notify.read();
                        self.drain(false);
                    }
                    _ => {
                        let _ = self.cursor.notify.read();
                        self.drain(true);
                    }
                }
            }
        }
    }

    /// Runs every waiting command of one queue.
    fn drain(&mut self, cursor_queue: bool) {
        let memory = self.memory.clone();
        let mut completed = false;
        loop {
            let queue = if cursor_queue {
                &mut self.cursor.queue
            } else {
                &mut self.control.queue
            };
            let Some(chain) = queue.pop_descriptor_chain(&memory) else {
                break;
            };
            let head = chain.head_index();
            let mut request = Vec::new();
            let mut answer_to = Vec::new();
            for d in chain {
                if d.is_write_only() {
                    answer_to.push((d.addr(), d.len() as usize));
                } else if request.len() < MAX_REQUEST {
                    let take = (d.len() as usize).min(MAX_REQUEST - request.len());
                    let at = request.len();
                    request.resize(at + take, 0);
                    if memory.read_slice(&mut request[at..], d.addr()).is_err() {
                        request.truncate(at);
                    }
                }
            }
            let response = self.answer(&request);
            let mut written = 0usize;
            for (addr, len) in answer_to {
                let take = len.min(response.len() - written);
                if take == 0
                    || memory
                        .write_slice(&response[written..written + take], addr)
                        .is_err()
                {
                    break;
                }
                written += take;
            }
            let queue = if cursor_queue {
                &mut self.cursor.queue
            } else {
                &mut self.control.queue
            };
            if let Err(e) = queue.add_used(&memory, head, written as u32) {
                tracing::warn!("virtio-gpu used ring: {e}");
            }
            completed = true;
        }
        if completed {
            if cursor_queue {
                self.cursor.interrupt.trigger();
            } else {
                self.control.interrupt.trigger();
            }
        }
    }

    /// The response to one request (header included).
    fn answer(&mut self, request: &[u8]) -> Vec<u8> {
        let header = match Header::parse(request) {
            Ok(h) => h,
            Err(Malformed(kind)) => return Header::default().response(kind).to_vec(),
        };
        let result = Command::parse(&header, request).and_then(|c| self.execute(&header, c));
        match result {
            Ok(response) => response,
            Err(Malformed(error)) => {
                tracing::debug!(
                    command = header.kind,
                    error,
                    "virtio-gpu: refused a malformed request"
                );
                header.response(error).to_vec()
            }
        }
    }

    fn execute(&mut self, header: &Header, command: Command) -> Result<Vec<u8>, Malformed> {
        let ok = header.response(kind::OK_NODATA).to_vec();
        match command {
            Command::GetDisplayInfo => {
                let (width, height) = self.scanout.preferred_size();
                return Ok(display_info(header, width, height));
            }
            Command::ResourceCreate2d {
                resource_id,
                format,
                width,
                height,
            } => self.resources.create(resource_id, format, width, height)?,
            Command::ResourceUnref { resource_id } => {
                self.resources.unref(resource_id)?;
                if self.displayed.is_some_and(|(id, _)| id == resource_id) {
                    self.displayed = None;
                    self.scanout.set_mode(None);
                }
            }
            Command::SetScanout {
                rect,
                scanout_id,
                resource_id,
            } => self.set_scanout(rect, scanout_id, resource_id)?,
            Command::ResourceFlush { rect, resource_id } => self.flush(rect, resource_id)?,
            Command::TransferToHost2d {
                rect,
                offset,
                resource_id,
            } => self
                .resources
                .transfer(&self.memory, resource_id, rect, offset)?,
            Command::AttachBacking {
                resource_id,
                entries,
            } => self.resources.attach(&self.memory, resource_id, &entries)?,
            Command::DetachBacking { resource_id } => self.resources.detach(resource_id)?,
            Command::Cursor {
                update,
                scanout_id,
                x,
                y,
                resource_id,
                hot_x,
                hot_y,
            } => {
                if scanout_id == 0 {
                    if update {
                        let image = self.cursor_image(resource_id);
                        self.scanout.set_cursor_image(image, hot_x, hot_y);
                    }
                    self.scanout.move_cursor(x, y);
                }
            }
            Command::Unsupported(_) => return Err(Malformed(kind::ERR_UNSPEC)),
        }
        Ok(ok)
    }

    fn set_scanout(
        &mut self,
        rect: Rect,
        scanout_id: u32,
        resource_id: u32,
    ) -> Result<(), Malformed> {
        if scanout_id != 0 {
            return Err(Malformed(kind::ERR_INVALID_SCANOUT_ID));
        }
        if resource_id == 0 {
            self.displayed = None;
            self.scanout.set_mode(None);
            return Ok(());
        }
        let resource = self.resources.get(resource_id)?;
        if rect.width == 0 || rect.height == 0 || !rect.fits(resource.width, resource.height) {
            return Err(Malformed(kind::ERR_INVALID_PARAMETER));
        }
        self.scanout.set_mode(Some(Mode {
            width: rect.width,
            height: rect.height,
            format: resource.format,
        }));
        self.displayed = Some((resource_id, rect));
        let whole = Rect {
            x: 0,
            y: 0,
            width: rect.width,
            height: rect.height,
        };
        self.scanout
            .blit(whole, &resource.pixels, resource.stride(), (rect.x, rect.y));
        Ok(())
    }

    fn flush(&mut self, rect: Rect, resource_id: u32) -> Result<(), Malformed> {
        let resource = self.resources.get(resource_id)?;
        if !rect.fits(resource.width, resource.height) {
            return Err(Malformed(kind::ERR_INVALID_PARAMETER));
        }
        let Some((shown, shown_rect)) = self.displayed else {
            return Ok(());
        };
        if shown != resource_id {
            return Ok(());
        }
        if let Some(overlap) = rect.intersect(&shown_rect) {
            let area = Rect {
                x: overlap.x - shown_rect.x,
                y: overlap.y - shown_rect.y,
                ..overlap
            };
            self.scanout.blit(
                area,
                &resource.pixels,
                resource.stride(),
                (shown_rect.x, shown_rect.y),
            );
        }
        Ok(())
    }

    /// The top-left 64 × 64 of `resource_id` as the cursor; `None` hides it.
    fn cursor_image(&self, resource_id: u32) -> Option<Image> {
        if resource_id == 0 {
            return None;
        }
        let Ok(resource) = self.resources.get(resource_id) else {
            tracing::debug!(resource_id, "virtio-gpu: cursor from an unknown resource");
            return None;
        };
        let side = CURSOR_SIDE as usize;
        let mut rgba = vec![0u8; side * side * 4];
        let width = (resource.width as usize).min(side);
        for row in 0..(resource.height as usize).min(side) {
            let from = row * resource.stride();
            let line = to_rgba(
                resource.format,
                &resource.pixels[from..from + width * 4],
                false,
            );
            rgba[row * side * 4..row * side * 4 + width * 4].copy_from_slice(&line);
        }
        Some(Image {
            width: CURSOR_SIDE,
            height: CURSOR_SIDE,
            rgba,
        })
    }
}
