//! passt started for real (as `nobody` when the tests run as root), talked to over the card's
//! socket, and reaped; and the refusals that come before it starts.

use std::io::Read;
use std::time::Duration;

use super::*;

/// passt present, or (outside CI) a skip.
fn passt_available() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(PASST).is_file()));
    if !found {
        crate::util::skip_or_fail("passt is not installed (Debian package 'passt')");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn plan(forwards: Vec<Forward>) -> NicPlan {
    NicPlan {
        id: "net0".into(),
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        generated_mac: false,
        forwards,
        link_down: false,
    }
}

fn tcp(port: u16) -> Forward {
    Forward {
        udp: false,
        spec: format!("{port}:22"),
        host_ports: vec![port],
    }
}

#[test]
fn arguments_carry_the_socket_pid_file_and_forwards() {
    let args = passt_args(
        &plan(vec![
            tcp(2222),
            Forward {
                udp: true,
                spec: "5353".into(),
                host_ports: vec![5353],
            },
        ]),
        7,
        "/dev/fd/9",
        false,
    );
    assert_eq!(
        args.join(" "),
        "--fd 7 --foreground --quiet --pid /dev/fd/9 -t 2222:22 -u 5353"
    );
    let offline = passt_args(&plan(Vec::new()), 7, "/dev/fd/9", true).join(" ");
    assert!(offline.contains("--address 10.0.2.15 --netmask 24 --gateway 10.0.2.2"));
}

#[test]
fn a_missing_passt_names_the_package() {
    let err = start_with("/nonexistent/passt", "vm", &[plan(Vec::new())]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PasstError::NotInstalled { .. }), "{text}");
    assert!(
        text.contains("net0") && text.contains("Debian package 'passt'"),
        "{text}"
    );
}

#[test]
fn a_card_with_its_link_down_starts_without_passt() {
    // The user's way of saying "start without this network": <link state='down'/>. No passt
    // runs (a missing one is no error), and the engine's card is there with its link down.
    let unplugged = NicPlan {
        link_down: true,
        ..plan(vec![tcp(free_port())])
    };
    let (nics, backends) = start_with("/nonexistent/passt", "vm", &[unplugged]).unwrap();
    assert!(backends.pids().is_empty(), "no passt for an unplugged card");
    assert_eq!(nics.len(), 1);
    assert_eq!(nics[0].mac, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    let NetBackend::Stream(stream) = &nics[0].backend;
    assert!(
        stream.buffers().lock().unwrap().dead,
        "the card's link is down"
    );
}

#[test]
fn a_forward_from_a_port_in_use_or_privileged_is_refused() {
    let taken = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = start_with(PASST, "vm", &[plan(vec![tcp(port)])]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("host port {port}/tcp")) && text.contains("already in use"),
        "{text}"
    );
    let err = start_with(PASST, "vm", &[plan(vec![tcp(22)])]).unwrap_err();
    assert!(err.to_string().contains("privileged port"), "{err}");
}

#[test]
fn passt_answers_the_card_listens_on_the_forward_and_is_reaped() {
    if !passt_available() {
        return;
    }
    let port = free_port();
    let (nics, backends) = start_with(PASST, "vm", &[plan(vec![tcp(port)])]).unwrap();
    let pid = backends.pids()[0].1;
    assert!(
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_err(),
        "passt listens on the forwarded port {port}"
    );
    let NetBackend::Stream(stream) = &nics[0].backend;
    let socket = stream.socket();
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // An ARP request for the gateway from the guest's MAC: passt answers every ARP request.
    let mac = nics[0].mac;
    let mut arp = vec![0xff; 6];
    arp.extend(mac);
    arp.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend(mac);
    arp.extend([10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
    arp.resize(60, 0);
    let mut framed = (arp.len() as u32).to_be_bytes().to_vec();
    framed.extend(&arp);
    std::io::Write::write_all(&mut &*socket, &framed).unwrap();
    let mut len = [0u8; 4];
    (&*socket).read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    (&*socket).read_exact(&mut reply).unwrap();
    assert_eq!(reply[..6], mac, "addressed to the guest");
    assert_eq!(reply[12..14], [0x08, 0x06], "ARP");
    assert_eq!(reply[20..22], [0, 2], "a reply");
    drop(backends);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "passt {pid} was stopped and reaped"
    );
}
