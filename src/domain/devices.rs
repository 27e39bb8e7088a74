//! Typed views over `<devices>`.
//!
//! Each device view is a snapshot of the attributes Vireo's engine and GUI use; the element itself
//! stays in the tree, so device details Vireo does not model (addresses, aliases, boot order, …)
//! are never lost. Devices Vireo does not touch at all (`<hostdev>`) are exposed as raw XML.

use crate::domain::model::Domain;
use crate::domain::xml::Element;

/// A `<disk>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disk {
    /// `type='file|block|network|…'`.
    pub disk_type: Option<String>,
    /// `device='disk|cdrom|floppy|lun'`.
    pub device: Option<String>,
    pub driver_name: Option<String>,
    /// `<driver type='raw|qcow2'>`.
    pub driver_type: Option<String>,
    pub cache: Option<String>,
    pub io: Option<String>,
    /// The source path: `file`, `dev`, `dir` or `name` of `<source>`.
    pub source: Option<String>,
    pub target_dev: Option<String>,
    pub target_bus: Option<String>,
    pub readonly: bool,
    /// `<driver discard='unmap|ignore'>`.
    pub discard: Option<String>,
    /// `<serial>`: the serial number the guest reads.
    pub serial: Option<String>,
}

/// What a new `<disk>` holds ([`Disk::new_element`]): `vireoctl attach-disk` and the GUI's
/// add-disk build the same element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDisk {
    /// The image path (absolute).
    pub path: String,
    /// `<driver type>`: `raw` or `qcow2`.
    pub driver_type: String,
    /// `<target dev>` (`vdb`).
    pub target_dev: String,
    /// `<target bus>` (`virtio`).
    pub bus: String,
    /// `device='disk|cdrom'`.
    pub device: String,
    /// `<readonly/>` (always written for a CD-ROM).
    pub readonly: bool,
    /// `<driver cache>`.
    pub cache: Option<String>,
    /// `<serial>`.
    pub serial: Option<String>,
}

/// An `<interface>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub if_type: Option<String>,
    pub mac: Option<String>,
    /// The `<source>` attribute naming what it connects to (network, bridge, dev).
    pub source: Option<String>,
    pub model: Option<String>,
    /// `<backend type>` (`passt` for user-mode networking through passt).
    pub backend: Option<String>,
    /// `<portForward>`s (host→guest forwarding of a user-mode interface), as written.
    pub port_forwards: Vec<PortForward>,
    /// `<link state>` (`up`, libvirt's default, or `down`: the card is there, unplugged).
    pub link_state: Option<String>,
}

/// One `<portForward proto=… address=…>` with its `<range>`s, attributes as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortForward {
    /// `tcp` (libvirt's default) or `udp`.
    pub proto: Option<String>,
    /// The host address to listen on (all when absent).
    pub address: Option<String>,
    pub ranges: Vec<PortRange>,
}

/// One `<range start=… end=… to=… exclude=…>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRange {
    pub start: Option<String>,
    pub end: Option<String>,
    pub to: Option<String>,
    pub exclude: Option<String>,
}

/// A character device (`<serial>`, `<console>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharDev {
    pub kind: String,
    pub dev_type: Option<String>,
    pub target_type: Option<String>,
    pub target_port: Option<String>,
}

/// `<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rng {
    pub model: Option<String>,
    pub backend_model: Option<String>,
    pub backend: Option<String>,
}

/// `<video><model type='virtio' heads='1'><resolution x='1280' y='800'/></model></video>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Video {
    /// `<model type>` (`virtio`, `vga`, `qxl`, `none`, …).
    pub model: Option<String>,
    /// `<model heads>`.
    pub heads: Option<String>,
    /// `<resolution x y>`, as written.
    pub resolution: Option<(String, String)>,
}

/// `<input type='keyboard|mouse|tablet|…' bus='virtio|ps2|usb|…'/>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub input_type: Option<String>,
    pub bus: Option<String>,
}

/// `<graphics type='vnc|spice|…'>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graphics {
    pub graphics_type: Option<String>,
    pub port: Option<String>,
    pub listen: Option<String>,
    /// `autoport='yes|no'`.
    pub autoport: Option<String>,
    /// `passwd` (VNC's 8-character password).
    pub passwd: Option<String>,
    /// The `<listen>` children, in order.
    pub listens: Vec<GraphicsListen>,
}

/// `<graphics><listen type='address|socket|network|none' address='…' socket='…'/>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphicsListen {
    pub listen_type: Option<String>,
    pub address: Option<String>,
    pub socket: Option<String>,
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

impl Disk {
    fn from_element(el: &Element) -> Disk {
        let driver = el.child("driver");
        let source = el.child("source").and_then(|s| {
            ["file", "dev", "dir", "name", "volume"]
                .iter()
                .find_map(|a| s.attr(a))
        });
        let target = el.child("target");
        Disk {
            disk_type: owned(el.attr("type")),
            device: owned(el.attr("device")),
            driver_name: owned(driver.and_then(|d| d.attr("name"))),
            driver_type: owned(driver.and_then(|d| d.attr("type"))),
            cache: owned(driver.and_then(|d| d.attr("cache"))),
            io: owned(driver.and_then(|d| d.attr("io"))),
            source: owned(source),
            target_dev: owned(target.and_then(|t| t.attr("dev"))),
            target_bus: owned(target.and_then(|t| t.attr("bus"))),
            readonly: el.child("readonly").is_some(),
            discard: owned(driver.and_then(|d| d.attr("discard"))),
            serial: el
                .child("serial")
                .map(|s| s.text().trim().to_owned())
                .filter(|s| !s.is_empty()),
        }
    }

    /// A new `<disk type='file'>` element, children in libvirt's order (driver, source,
    /// target, readonly, serial) so `virt-xml-validate` accepts it.
    pub fn new_element(spec: &NewDisk) -> Element {
        let mut disk = Element::new("disk")
            .with_attr("type", "file")
            .with_attr("device", &spec.device);
        let mut driver = Element::new("driver")
            .with_attr("name", "qemu")
            .with_attr("type", &spec.driver_type);
        if let Some(cache) = &spec.cache {
            driver = driver.with_attr("cache", cache);
        }
        let mut children = vec![
            driver,
            Element::new("source").with_attr("file", &spec.path),
            Element::new("target")
                .with_attr("dev", &spec.target_dev)
                .with_attr("bus", &spec.bus),
        ];
        if spec.readonly || spec.device == "cdrom" {
            children.push(Element::new("readonly"));
        }
        if let Some(serial) = &spec.serial {
            children.push(Element::new("serial").with_text(serial));
        }
        for child in children {
            disk.append_child(child, 2);
        }
        disk
    }

    /// A new `<disk type='file' device='disk'>` element for a disk image.
    pub fn file_element(path: &str, driver_type: &str, target_dev: &str, bus: &str) -> Element {
        let mut disk = Element::new("disk")
            .with_attr("type", "file")
            .with_attr("device", "disk");
        let children = [
            Element::new("driver")
                .with_attr("name", "qemu")
                .with_attr("type", driver_type),
            Element::new("source").with_attr("file", path),
            Element::new("target")
                .with_attr("dev", target_dev)
                .with_attr("bus", bus),
        ];
        for child in children {
            disk.append_child(child, 2);
        }
        disk
    }
}

impl Domain {
    fn devices_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.document()
            .at(&["devices"])
            .into_iter()
            .flat_map(move |d| d.children_named(name))
    }

    /// `<devices><emulator>`.
    pub fn emulator(&self) -> Option<String> {
        self.document()
            .at(&["devices", "emulator"])
            .map(|e| e.text().trim().to_owned())
    }

    /// Sets `<devices><emulator>`.
    pub fn set_emulator(&mut self, path: &str) {
        self.document_mut()
            .ensure(&["devices", "emulator"])
            .set_text(path);
    }

    /// Removes every device of one kind (`"graphics"`, `"rng"`, …) from `<devices>`.
    pub fn remove_devices(&mut self, kind: &str) {
        self.document_mut().remove(&["devices"], kind);
    }

    pub fn disks(&self) -> Vec<Disk> {
        self.devices_named("disk").map(Disk::from_element).collect()
    }

    /// Edits the `<driver>` of the disk whose target is `target_dev`: `cache`, `io` and `type`
    /// (`None` removes the attribute). Returns false when no such disk exists.
    pub fn set_disk_driver(
        &mut self,
        target_dev: &str,
        driver_type: Option<&str>,
        cache: Option<&str>,
        io: Option<&str>,
    ) -> bool {
        let Some(disk) = self.disk_mut(target_dev) else {
            return false;
        };
        let driver = disk.ensure_child("driver", 3);
        for (name, value) in [("type", driver_type), ("cache", cache), ("io", io)] {
            match value {
                Some(v) => driver.set_attr(name, v),
                None => driver.remove_attr(name),
            }
        }
        true
    }

    /// Points the disk whose target is `target_dev` at another file. Returns false when absent.
    pub fn set_disk_source(&mut self, target_dev: &str, path: &str) -> bool {
        let Some(disk) = self.disk_mut(target_dev) else {
            return false;
        };
        let attr = if disk.attr("type") == Some("block") {
            "dev"
        } else {
            "file"
        };
        disk.ensure_child("source", 3).set_attr(attr, path);
        true
    }

    fn disk_mut(&mut self, target_dev: &str) -> Option<&mut Element> {
        self.document_mut()
            .at_mut(&["devices"])?
            .elements_mut()
            .find(|e| {
                e.name() == "disk"
                    && e.child("target").and_then(|t| t.attr("dev")) == Some(target_dev)
            })
    }

    /// Removes the disk whose target is `target_dev`; false when there is none.
    pub fn remove_disk(&mut self, target_dev: &str) -> bool {
        let Some(devices) = self.document_mut().at_mut(&["devices"]) else {
            return false;
        };
        devices.remove_children_where(|e| {
            e.name() == "disk" && e.child("target").and_then(|t| t.attr("dev")) == Some(target_dev)
        }) > 0
    }

    /// Appends a device element (e.g. from [`Disk::file_element`]) to `<devices>`.
    pub fn add_device(&mut self, device: Element) {
        self.document_mut()
            .ensure(&["devices"])
            .append_child(device, 1);
    }

    pub fn interfaces(&self) -> Vec<Interface> {
        self.devices_named("interface")
            .map(|el| {
                let source = el.child("source").and_then(|s| {
                    ["network", "bridge", "dev", "path"]
                        .iter()
                        .find_map(|a| s.attr(a))
                });
                Interface {
                    if_type: owned(el.attr("type")),
                    mac: owned(el.child("mac").and_then(|m| m.attr("address"))),
                    source: owned(source),
                    model: owned(el.child("model").and_then(|m| m.attr("type"))),
                    backend: owned(el.child("backend").and_then(|b| b.attr("type"))),
                    port_forwards: el
                        .children_named("portForward")
                        .map(|p| PortForward {
                            proto: owned(p.attr("proto")),
                            address: owned(p.attr("address")),
                            ranges: p
                                .children_named("range")
                                .map(|r| PortRange {
                                    start: owned(r.attr("start")),
                                    end: owned(r.attr("end")),
                                    to: owned(r.attr("to")),
                                    exclude: owned(r.attr("exclude")),
                                })
                                .collect(),
                        })
                        .collect(),
                    link_state: owned(el.child("link").and_then(|l| l.attr("state"))),
                }
            })
            .collect()
    }

    /// Sets the `<model type>` of the interface with this MAC address; false when absent.
    pub fn set_interface_model(&mut self, mac: &str, model: &str) -> bool {
        let Some(devices) = self.document_mut().at_mut(&["devices"]) else {
            return false;
        };
        let interface = devices.elements_mut().find(|e| {
            e.name() == "interface"
                && e.child("mac")
                    .and_then(|m| m.attr("address"))
                    .is_some_and(|a| a.eq_ignore_ascii_case(mac))
        });
        match interface {
            Some(el) => {
                el.ensure_child("model", 3).set_attr("type", model);
                true
            }
            None => false,
        }
    }

    /// Sets the `<link state>` (up or down) of the interface with this MAC address; false when
    /// absent.
    pub fn set_interface_link(&mut self, mac: &str, up: bool) -> bool {
        let Some(devices) = self.document_mut().at_mut(&["devices"]) else {
            return false;
        };
        let interface = devices.elements_mut().find(|e| {
            e.name() == "interface"
                && e.child("mac")
                    .and_then(|m| m.attr("address"))
                    .is_some_and(|a| a.eq_ignore_ascii_case(mac))
        });
        match interface {
            Some(el) => {
                el.ensure_child("link", 3)
                    .set_attr("state", if up { "up" } else { "down" });
                true
            }
            None => false,
        }
    }

    /// `<serial>` and `<console>` devices in document order.
    pub fn char_devices(&self) -> Vec<CharDev> {
        let Some(devices) = self.document().at(&["devices"]) else {
            return Vec::new();
        };
        devices
            .elements()
            .filter(|e| matches!(e.name(), "serial" | "console"))
            .map(|el| {
                let target = el.child("target");
                CharDev {
                    kind: el.name().to_owned(),
                    dev_type: owned(el.attr("type")),
                    target_type: owned(target.and_then(|t| t.attr("type"))),
                    target_port: owned(target.and_then(|t| t.attr("port"))),
                }
            })
            .collect()
    }

    /// `<memballoon model='…'>` (`none` means no balloon).
    pub fn memballoon_model(&self) -> Option<String> {
        owned(self.devices_named("memballoon").next()?.attr("model"))
    }

    /// Sets the first `<memballoon>`'s model (`virtio`, `none`), adding one if missing.
    pub fn set_memballoon_model(&mut self, model: &str) {
        self.document_mut()
            .ensure(&["devices", "memballoon"])
            .set_attr("model", model);
    }

    pub fn rngs(&self) -> Vec<Rng> {
        self.devices_named("rng")
            .map(|el| {
                let backend = el.child("backend");
                Rng {
                    model: owned(el.attr("model")),
                    backend_model: owned(backend.and_then(|b| b.attr("model"))),
                    backend: backend
                        .map(|b| b.text().trim().to_owned())
                        .filter(|t| !t.is_empty()),
                }
            })
            .collect()
    }

    pub fn graphics(&self) -> Vec<Graphics> {
        self.devices_named("graphics")
            .map(|el| Graphics {
                graphics_type: owned(el.attr("type")),
                port: owned(el.attr("port")),
                listen: owned(el.attr("listen")),
                autoport: owned(el.attr("autoport")),
                passwd: owned(el.attr("passwd")),
                listens: el
                    .children_named("listen")
                    .map(|l| GraphicsListen {
                        listen_type: owned(l.attr("type")),
                        address: owned(l.attr("address")),
                        socket: owned(l.attr("socket")),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Sets attributes of the `index`th `<graphics>` (the live XML records the port a VNC
    /// server got); false when there is no such element.
    pub fn set_graphics_attrs(&mut self, index: usize, attrs: &[(&str, &str)]) -> bool {
        let Some(devices) = self.document_mut().at_mut(&["devices"]) else {
            return false;
        };
        let Some(graphics) = devices
            .elements_mut()
            .filter(|e| e.name() == "graphics")
            .nth(index)
        else {
            return false;
        };
        for (name, value) in attrs {
            graphics.set_attr(name, value);
        }
        true
    }

    pub fn videos(&self) -> Vec<Video> {
        self.devices_named("video")
            .map(|el| {
                let model = el.child("model");
                let resolution = model.and_then(|m| m.child("resolution"));
                Video {
                    model: owned(model.and_then(|m| m.attr("type"))),
                    heads: owned(model.and_then(|m| m.attr("heads"))),
                    resolution: resolution
                        .and_then(|r| Some((r.attr("x")?.to_owned(), r.attr("y")?.to_owned()))),
                }
            })
            .collect()
    }

    pub fn inputs(&self) -> Vec<Input> {
        self.devices_named("input")
            .map(|el| Input {
                input_type: owned(el.attr("type")),
                bus: owned(el.attr("bus")),
            })
            .collect()
    }

    /// `<hostdev>` elements, untouched, as XML text.
    pub fn hostdevs_xml(&self) -> Vec<String> {
        self.devices_named("hostdev").map(Element::to_xml).collect()
    }
}
