//! User-mode networking in real Linux guests: each virtio-net card gets its own passt, which
//! gives the guest DHCP, DNS forwarding, outbound TCP and host → guest port forwards
//! (the guest side is the `net` and `netwatch` scenarios of `tools/testbed-guest/init`).

use std::time::{Duration, Instant};

use super::BOOT;
use crate::linux_support::{Guest, Running, line, net, tail};
use vireo::engine::VmState;

/// A user-mode card with `mac`, forwarding host TCP port `port` (if any) to the same port in
/// the guest. (Debian 12's passt, 2023-03-09, segfaults on the guest's first outbound TCP
/// connection to the host's loopback when a forward maps to another guest port: the tests keep
/// the numbers equal.)
fn user_nic(mac: &str, port: Option<u16>) -> String {
    let forward = port
        .map(|port| format!("<portForward proto='tcp'><range start='{port}'/></portForward>"))
        .unwrap_or_default();
    format!(
        "<interface type='user'><mac address='{mac}'/><backend type='passt'/>\
         <model type='virtio'/>{forward}</interface>"
    )
}

/// Sends `token` through host port `port` until `guest` reports what it received (passt drops
/// connections that come before the guest listens); returns that report.
fn deliver(guest: &Running, port: u16, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Err(e) = net::send_through_forward(port, token) {
            last = e;
        }
        for _ in 0..30 {
            let text = guest.text();
            if text.contains("VIREO-L2 NET RECEIVED") || text.contains("VIREO-L2 NET NOT-RECEIVED")
            {
                return line(&text, "VIREO-L2 NET RECEIVED");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!(
        "the guest never reported a connection through host port {port} (last: {last}); its \
         console:\n{}",
        tail(&guest.text(), 30)
    );
}

/// The guest's card (the MAC from the definition) gets a DHCP lease from passt, resolves a name
/// at its gateway (a DNS server on L1's loopback), fetches a file over TCP from a server on L1's
/// loopback, gets an IPv6 address in the host's prefix and fetches the file again over IPv6 (from
/// L1's ::1), and a token L1 sends to the host port of a `<portForward>` reaches the guest's TCP
/// server on the same port.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_user_mode_nic_gets_a_lease_resolves_fetches_and_serves_through_a_port_forward() {
    net::dns_responder([10, 9, 8, 7]);
    let http = net::http_server("VIREO-HTTP-OK\n");
    let port = net::free_port();
    let mac = "52:54:00:12:34:56";
    let guest = Guest::new("net")
        .cmdline(&format!("vireo.http={http} vireo.listen={port}"))
        .device(&user_nic(mac, Some(port)))
        .start();
    guest.wait_for("VIREO-L2 NET LISTENING", BOOT);
    let token = format!("VIREO-HOST-TOKEN-{port}");
    let received = deliver(&guest, port, &token);
    let done = guest.finish(BOOT);
    let out = &done.output;
    assert_eq!(line(out, "VIREO-L2 NET LINK"), mac);
    let lease = line(out, "VIREO-L2 NET LEASE");
    assert!(
        lease.contains("router="),
        "a DHCP lease from passt: {lease}"
    );
    assert_eq!(
        line(out, "VIREO-L2 NET RESOLVED"),
        "10.9.8.7",
        "DNS at the gateway"
    );
    assert_eq!(
        line(out, "VIREO-L2 NET FETCHED"),
        "VIREO-HTTP-OK",
        "HTTP over TCP from L1's loopback at the gateway"
    );
    let v6 = line(out, "VIREO-L2 NET IPV6");
    assert!(
        v6.starts_with("fd00:100::"),
        "an IPv6 address in the host's prefix, from passt's router advertisement: {v6}"
    );
    assert_eq!(
        line(out, "VIREO-L2 NET FETCHED6"),
        "VIREO-HTTP-OK",
        "HTTP over TCP/IPv6 from L1's ::1 at the gateway"
    );
    assert_eq!(
        received, token,
        "what L1 sent to host port {port} reached the guest's server on port {port}"
    );
}

/// Two VMs side by side: each card has its own passt process, each guest gets its lease, each
/// host port forward reaches its own guest only (both guests have the same address behind their
/// passt), and neither guest learns of any neighbour but its own gateway.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn two_vms_each_get_their_own_passt_and_do_not_see_each_other() {
    net::dns_responder([10, 9, 8, 7]);
    let (mac_a, mac_b) = ("52:54:00:aa:00:01", "52:54:00:bb:00:02");
    let (port_a, port_b) = (net::free_port(), net::free_port());
    // Each guest listens on its own port; the other's port number is forwarded to nobody in it.
    let a = Guest::new("net")
        .name("linux-net-a")
        .cmdline(&format!("vireo.listen={port_a}"))
        .device(&user_nic(mac_a, Some(port_a)))
        .start();
    let b = Guest::new("net")
        .name("linux-net-b")
        .cmdline(&format!("vireo.listen={port_b}"))
        .device(&user_nic(mac_b, Some(port_b)))
        .start();
    let (pids_a, pids_b) = (a.network.pids(), b.network.pids());
    assert_eq!(pids_a.len(), 1, "one passt for A's card: {pids_a:?}");
    assert_eq!(pids_b.len(), 1, "one passt for B's card: {pids_b:?}");
    assert_ne!(pids_a[0].1, pids_b[0].1, "each VM has its own passt");
    a.wait_for("VIREO-L2 NET LISTENING", BOOT);
    b.wait_for("VIREO-L2 NET LISTENING", BOOT);
    // B first: A must not see B's connection.
    let token_b = format!("VIREO-TOKEN-FOR-B-{port_b}");
    assert_eq!(
        deliver(&b, port_b, &token_b),
        token_b,
        "B's forward reaches B"
    );
    assert!(
        !a.text().contains("VIREO-L2 NET RECEIVED"),
        "A received nothing while B was reached"
    );
    let token_a = format!("VIREO-TOKEN-FOR-A-{port_a}");
    assert_eq!(
        deliver(&a, port_a, &token_a),
        token_a,
        "A's forward reaches A"
    );
    for (guest, done) in [("A", a.finish(BOOT)), ("B", b.finish(BOOT))] {
        let out = &done.output;
        let lease = line(out, "VIREO-L2 NET LEASE");
        let router = lease
            .split("router=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{guest} got no lease: {lease}"));
        let neighbours = line(out, "VIREO-L2 NET NEIGHBOURS");
        let seen: Vec<&str> = neighbours.split_whitespace().collect();
        assert_eq!(
            seen.len(),
            1,
            "{guest} knows only its gateway: {neighbours}"
        );
        assert!(
            seen[0].starts_with(&format!("{router}=")),
            "{guest}'s one neighbour is its gateway {router}: {neighbours}"
        );
        for other in [mac_a, mac_b] {
            assert!(
                !neighbours.contains(other),
                "{guest} saw a guest's MAC: {neighbours}"
            );
        }
    }
}

/// passt killed under a running VM: the library logs an error naming the card, the guest sees
/// its card's link go down (virtio-net STATUS with a configuration interrupt), and the VM keeps
/// running.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn a_killed_passt_takes_the_link_down_and_the_vm_keeps_running() {
    let log = net::log_capture();
    let guest = Guest::new("netwatch")
        .device(&user_nic("52:54:00:de:ad:01", None))
        .start();
    guest.wait_for("VIREO-L2 NET LEASE", BOOT);
    guest.wait_for("VIREO-L2 NET CARRIER 1", BOOT);
    let pids = guest.network.pids();
    assert_eq!(pids.len(), 1, "one passt: {pids:?}");
    let ticks_before = guest.text().matches("VIREO-L2 TICK").count();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pids[0].1.to_string()])
        .status()
        .expect("running kill");
    assert!(killed.success(), "killing passt {}", pids[0].1);
    guest.wait_for("VIREO-L2 NET CARRIER 0", Duration::from_secs(60));
    guest.wait_for_count("VIREO-L2 TICK", ticks_before + 3, Duration::from_secs(60));
    assert_eq!(guest.vm.state(), VmState::Running, "the VM keeps running");
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        logged.contains("ERROR") && logged.contains("nic=") && logged.contains("link is down"),
        "an error in the log naming the card's link: {logged}"
    );
    guest.vm.force_off();
    let done = guest.finish(BOOT);
    assert!(done.state.is_final());
}

/// A card unplugged in the definition (`<link state='down'/>`, virsh's `domif-setlink … down`):
/// no passt runs for it, and the guest has the card with no carrier.
#[test]
#[ignore = "needs hardware virtualization: run by tools/testbed test"]
fn an_unplugged_card_is_there_without_carrier_and_without_passt() {
    let guest = Guest::new("netwatch")
        .name("linux-net-unplugged")
        .device(
            "<interface type='user'><mac address='52:54:00:de:ad:02'/><backend type='passt'/>\
             <model type='virtio'/><link state='down'/></interface>",
        )
        .start();
    assert!(
        guest.network.pids().is_empty(),
        "no passt for an unplugged card"
    );
    guest.wait_for("VIREO-L2 NET LINK 52:54:00:de:ad:02", BOOT);
    guest.wait_for("VIREO-L2 NET CARRIER 0", BOOT);
    assert!(
        guest.text().contains("VIREO-L2 NET NO-LEASE"),
        "no DHCP lease without a link"
    );
    assert_eq!(guest.vm.state(), VmState::Running);
    guest.vm.force_off();
    guest.finish(BOOT);
}
