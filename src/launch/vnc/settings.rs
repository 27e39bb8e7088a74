//! `<graphics type='vnc'>` as where the runner's VNC server listens, following libvirt's
//! attributes: `port` / `autoport='yes'` (the first free port from 5900), `listen` or
//! `<listen type='address' address='…'/>` (default 127.0.0.1), `<listen type='socket'
//! socket='…'/>` (a Unix socket; without `socket`, one in the VM's runtime directory), and
//! `passwd` (VNC authentication).
//!
//! Only the loopback address is used unless the XML names another one; then a warning says
//! that anyone who can reach it sees and controls the guest (VNC is not encrypted).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::domain::devices::Graphics;

/// Where the VNC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VncListen {
    /// A TCP port on `address`; `port` `None` is autoport.
    Tcp { address: IpAddr, port: Option<u16> },
    /// A Unix socket; `None` for `<name>.vnc` in the runtime directory.
    Unix(Option<PathBuf>),
}

/// What a runner needs to serve `<graphics type='vnc'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VncSettings {
    /// Which `<graphics>` element (its index among them), for the live XML.
    pub index: usize,
    pub listen: VncListen,
    /// `passwd`, for VNC authentication.
    pub password: Option<String>,
}

/// The VNC server `graphics` (the `index`th `<graphics>`) asks for, with warnings; an error
/// names the attribute and the fix. `Ok(None)` for `<listen type='none'/>` (no listener).
pub fn vnc_settings(
    graphics: &Graphics,
    index: usize,
    warnings: &mut Vec<String>,
) -> Result<Option<VncSettings>, String> {
    let listen = graphics.listens.first();
    if graphics.listens.len() > 1 {
        warnings.push(
            "<graphics type='vnc'> has several <listen> elements; the built-in VNC server \
             listens on the first only"
                .into(),
        );
    }
    let password = graphics.passwd.clone().filter(|p| !p.is_empty());
    if password.as_ref().is_some_and(|p| p.len() > 8) {
        warnings.push(
            "<graphics type='vnc' passwd='…'>: VNC uses only the first 8 characters of a \
             password"
                .into(),
        );
    }
    let listen = match listen.and_then(|l| l.listen_type.as_deref()) {
        Some("none") => return Ok(None),
        Some("socket") => {
            VncListen::Unix(listen.and_then(|l| l.socket.as_deref()).map(PathBuf::from))
        }
        Some("network") => {
            return Err(
                "<graphics type='vnc'><listen type='network'>: the built-in engine \
                        listens on an address or a socket; use <listen type='address' \
                        address='127.0.0.1'/>"
                    .into(),
            );
        }
        Some("address") | None => {
            let given = listen
                .and_then(|l| l.address.as_deref())
                .or(graphics.listen.as_deref());
            let address = match given {
                None | Some("") | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(text) => text.parse::<IpAddr>().map_err(|_| {
                    format!(
                        "<graphics type='vnc' listen='{text}'>: not an IP address; use one \
                         such as 127.0.0.1 (or ::1)"
                    )
                })?,
            };
            if !address.is_loopback() {
                warnings.push(format!(
                    "<graphics type='vnc'> listens on {address}, which other machines can \
                     reach: VNC is not encrypted, and anyone who connects sees and controls \
                     the guest{}; use 127.0.0.1 and an SSH tunnel unless this is meant",
                    if password.is_some() {
                        " once past an 8-character password"
                    } else {
                        ""
                    }
                ));
            }
            VncListen::Tcp {
                address,
                port: port(graphics)?,
            }
        }
        Some(other) => {
            return Err(format!(
                "<graphics type='vnc'><listen type='{other}'> is not a listen type; use \
                 'address', 'socket' or 'none'"
            ));
        }
    };
    Ok(Some(VncSettings {
        index,
        listen,
        password,
    }))
}

/// `port` and `autoport` as libvirt reads them: autoport='yes', no port or port='-1' mean
/// the first free port from 5900.
fn port(graphics: &Graphics) -> Result<Option<u16>, String> {
    if graphics.autoport.as_deref() == Some("yes") {
        return Ok(None);
    }
    match graphics.port.as_deref() {
        None | Some("-1") | Some("0") => Ok(None),
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p >= 1024)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "<graphics type='vnc' port='{text}'>: a port is a number from 1024 to \
                     65535; or use autoport='yes'"
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::devices::GraphicsListen;

    fn vnc(port: Option<&str>, autoport: Option<&str>, listens: &[(&str, &str)]) -> Graphics {
        Graphics {
            graphics_type: Some("vnc".into()),
            port: port.map(Into::into),
            autoport: autoport.map(Into::into),
            listens: listens
                .iter()
                .map(|(t, v)| GraphicsListen {
                    listen_type: Some((*t).into()),
                    address: (*t == "address").then(|| (*v).into()),
                    socket: (*t == "socket" && !v.is_empty()).then(|| (*v).into()),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn ports_and_addresses_follow_libvirt() {
        let mut w = Vec::new();
        let s = vnc_settings(&vnc(Some("-1"), Some("yes"), &[]), 0, &mut w)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.listen,
            VncListen::Tcp {
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: None
            }
        );
        let s = vnc_settings(&vnc(Some("5905"), None, &[]), 0, &mut w)
            .unwrap()
            .unwrap();
        assert!(matches!(
            s.listen,
            VncListen::Tcp {
                port: Some(5905),
                ..
            }
        ));
        assert!(w.is_empty(), "{w:?}");
        let e = vnc_settings(&vnc(Some("80"), None, &[]), 0, &mut w).unwrap_err();
        assert!(e.contains("port='80'"), "{e}");
        let s = vnc_settings(&vnc(None, None, &[("socket", "/tmp/x.sock")]), 0, &mut w)
            .unwrap()
            .unwrap();
        assert_eq!(s.listen, VncListen::Unix(Some("/tmp/x.sock".into())));
        assert_eq!(
            vnc_settings(&vnc(None, None, &[("none", "")]), 0, &mut w).unwrap(),
            None
        );
    }

    #[test]
    fn a_non_loopback_address_is_served_only_with_a_warning() {
        let mut w = Vec::new();
        let s = vnc_settings(&vnc(None, None, &[("address", "0.0.0.0")]), 0, &mut w)
            .unwrap()
            .unwrap();
        assert!(matches!(s.listen, VncListen::Tcp { address, .. } if address.is_unspecified()));
        assert!(w[0].contains("not encrypted"), "{w:?}");
        let e =
            vnc_settings(&vnc(None, None, &[("address", "example.org")]), 0, &mut w).unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
    }
}
