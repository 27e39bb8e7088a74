//! A domain's `<video>`, `<graphics>` and `<input>` elements as the engine's display and input
//! devices: the one place that decides what the built-in engine shows and which input devices
//! it attaches, and says why not for the rest.
//!
//! - `<video><model type='virtio'/>` is a virtio-gpu (a `<resolution>` is its first size);
//!   `none` is no display; any other model is refused, naming the one supported.
//! - `<graphics>` alone implies a display (libvirt adds a default `<video>` for it too).
//!   `<graphics type='vnc'>` is served by the runner's VNC server ([`crate::launch::vnc`]);
//!   the engine serves no SPICE, which is a warning, not a refusal: the screen is still there
//!   (`vireoctl screenshot`, Vireo's window).
//! - `<input type='keyboard|tablet' bus='virtio'/>` are virtio-input devices; USB ones become
//!   virtio ones (with a warning). `<input type='keyboard' bus='ps2'/>` (which libvirt adds to
//!   every x86 domain with graphics) is the PS/2 keyboard on the i8042, which the host's keys
//!   reach when there is no virtio keyboard; the PS/2 mouse is left out quietly (the tablet
//!   is the pointer); other mice and passthrough devices are left out with a warning.

use crate::domain::Domain;
use crate::engine::config::{DisplayConfig, InputKind};
use crate::launch::vnc::{VncSettings, vnc_settings};

/// The largest display side accepted from `<resolution>` (virtio-gpu resources are capped in
/// host memory; 8K fits).
const MAX_SIDE: u32 = 8192;

/// The display and input devices of a domain, and what the user should know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedDisplay {
    pub display: Option<DisplayConfig>,
    pub inputs: Vec<InputKind>,
    /// `<input type='keyboard' bus='ps2'/>`: the i8042's keyboard.
    pub ps2_keyboard: bool,
    /// The VNC server the runner starts, from the first `<graphics type='vnc'>`.
    pub vnc: Option<VncSettings>,
    pub warnings: Vec<String>,
}

/// Maps the domain's display and input devices; an error names the element and the fix.
pub fn domain_display(domain: &Domain) -> Result<MappedDisplay, String> {
    let mut mapped = MappedDisplay::default();
    let videos = domain.videos();
    let graphics = domain.graphics();
    if videos.len() > 1 {
        return Err(format!(
            "the domain has {} <video> devices but the built-in engine supports one; keep one \
             <video><model type='virtio'/></video>",
            videos.len()
        ));
    }
    match videos.first() {
        Some(video) => match video.model.as_deref().unwrap_or("virtio") {
            "virtio" => {
                if video.heads.as_deref().is_some_and(|h| h != "1") {
                    return Err(format!(
                        "<video> model 'virtio' with heads='{}': the built-in engine has one \
                         head; remove heads or set heads='1'",
                        video.heads.as_deref().unwrap_or_default()
                    ));
                }
                mapped.display = Some(resolution(video.resolution.as_ref())?);
            }
            "none" => {}
            other => {
                return Err(format!(
                    "<video> model '{other}' is not supported by the built-in engine; use \
                     <model type='virtio'/> (virtio-gpu, which Linux drives with virtio_gpu) or \
                     type='none'"
                ));
            }
        },
        None if !graphics.is_empty() => mapped.display = Some(DisplayConfig::default()),
        None => {}
    }
    for (index, g) in graphics.iter().enumerate() {
        let kind = g.graphics_type.as_deref().unwrap_or("?");
        if kind == "vnc" && mapped.vnc.is_none() {
            mapped.vnc = vnc_settings(g, index, &mut mapped.warnings)?;
            continue;
        }
        mapped.warnings.push(format!(
            "<graphics type='{kind}'>: the built-in engine does not serve {} yet; the guest's \
             screen is shown in Vireo's window and by `vireoctl screenshot`",
            match kind {
                "vnc" => "a second VNC server",
                "spice" => "SPICE",
                _ => "remote displays",
            }
        ));
    }
    for input in domain.inputs() {
        let kind = input.input_type.as_deref().unwrap_or("?");
        let bus = input.bus.as_deref().unwrap_or("");
        let mapped_kind = match kind {
            "keyboard" => Some(InputKind::Keyboard),
            "tablet" => Some(InputKind::Tablet),
            _ => None,
        };
        match (mapped_kind, bus) {
            (Some(k), "virtio") => mapped.inputs.push(k),
            (Some(InputKind::Keyboard), "ps2") => mapped.ps2_keyboard = true,
            (Some(k), "usb") => {
                mapped.warnings.push(format!(
                    "<input type='{kind}' bus='usb'>: the built-in engine has no USB; the guest \
                     gets a virtio {kind} instead (set bus='virtio' to say so)"
                ));
                mapped.inputs.push(k);
            }
            // libvirt's implicit PS/2 mouse: nothing to attach, nothing to say.
            (_, "ps2") | (_, "") if kind != "passthrough" && kind != "evdev" => {}
            _ => mapped.warnings.push(format!(
                "<input type='{kind}'{}> is not supported by the built-in engine and is left \
                 out; use <input type='tablet' bus='virtio'/> for a pointer",
                if bus.is_empty() {
                    String::new()
                } else {
                    format!(" bus='{bus}'")
                }
            )),
        }
    }
    if mapped.display.is_none() && !mapped.inputs.is_empty() {
        mapped.warnings.push(
            "the domain has input devices but no display; add <video><model type='virtio'/></video> to see the screen"
                .into(),
        );
    }
    Ok(mapped)
}

fn resolution(given: Option<&(String, String)>) -> Result<DisplayConfig, String> {
    let Some((x, y)) = given else {
        return Ok(DisplayConfig::default());
    };
    let side = |v: &str| v.parse::<u32>().ok().filter(|n| (1..=MAX_SIDE).contains(n));
    match (side(x), side(y)) {
        (Some(width), Some(height)) => Ok(DisplayConfig { width, height }),
        _ => Err(format!(
            "<video><model><resolution x='{x}' y='{y}'/>: each side must be a number from 1 to \
             {MAX_SIDE}; fix or remove <resolution>"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(devices: &str) -> Result<MappedDisplay, String> {
        let xml = format!(
            "<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><devices>{devices}</devices></domain>"
        );
        domain_display(&Domain::parse(&xml).unwrap())
    }

    #[test]
    fn a_virtio_video_with_keyboard_and_tablet_maps_to_the_devices() {
        let m = map(
            "<video><model type='virtio'><resolution x='1024' y='768'/></model></video>\
                     <input type='keyboard' bus='virtio'/><input type='tablet' bus='virtio'/>\
                     <input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>",
        )
        .unwrap();
        assert_eq!(
            m.display,
            Some(DisplayConfig {
                width: 1024,
                height: 768
            })
        );
        assert_eq!(m.inputs, [InputKind::Keyboard, InputKind::Tablet]);
        assert!(m.ps2_keyboard, "the PS/2 keyboard is attached too");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn another_video_model_is_refused_naming_both_models() {
        let e = map("<video><model type='qxl'/></video>").unwrap_err();
        assert!(e.contains("'qxl'") && e.contains("type='virtio'"), "{e}");
        let e = map("<video><model type='virtio'><resolution x='0' y='9'/></model></video>")
            .unwrap_err();
        assert!(e.contains("resolution"), "{e}");
        assert_eq!(
            map("<video><model type='none'/></video>").unwrap().display,
            None
        );
    }

    #[test]
    fn graphics_implies_a_display_vnc_is_served_and_spice_a_warning() {
        let m = map("<graphics type='vnc' port='-1'/><graphics type='spice'/>\
             <input type='tablet' bus='usb'/>")
        .unwrap();
        assert_eq!(m.display, Some(DisplayConfig::default()));
        assert_eq!(m.inputs, [InputKind::Tablet]);
        assert_eq!(m.vnc.as_ref().map(|v| v.index), Some(0));
        assert!(m.warnings[0].contains("SPICE"), "{:?}", m.warnings);
        assert!(m.warnings[1].contains("no USB"), "{:?}", m.warnings);
        assert_eq!(map("").unwrap(), MappedDisplay::default());
    }
}
