use super::*;
use crate::domain::Domain;
use crate::launch::nics::domain_nics;

fn domain(interfaces: &str) -> Domain {
    Domain::parse(&format!(
        "<domain type='kvm'><name>n</name><uuid>6f2d1a4e-3c1b-4d0e-9a57-1b2c3d4e5f60</uuid>\
         <memory>65536</memory><os><type>hvm</type></os><devices>{interfaces}</devices></domain>"
    ))
    .unwrap()
}

const CARD: &str = "<interface type='user'><mac address='52:54:00:00:00:01'/>\
    <backend type='passt'/><model type='virtio'/>\
    <portForward proto='tcp'><range start='2222' to='22'/></portForward>\
    <portForward proto='udp'><range start='5000' end='5009' to='6000'/>\
    <range start='5005' exclude='yes'/></portForward></interface>";

#[test]
fn typed_macs_are_checked_and_an_empty_one_is_generated_later() {
    let d = domain(CARD);
    assert_eq!(check_new_mac(&d, "  "), Ok(None));
    assert_eq!(
        check_new_mac(&d, "52:54:00:AA:bb:02"),
        Ok(Some("52:54:00:aa:bb:02".into()))
    );
    assert_eq!(
        check_new_mac(&d, "52:54:00:zz"),
        Err(NicInputProblem::MacMalformed("52:54:00:zz".into()))
    );
    assert_eq!(
        check_new_mac(&d, "01:00:5e:00:00:01"),
        Err(NicInputProblem::MacNotUnicast("01:00:5e:00:00:01".into()))
    );
    assert_eq!(
        check_new_mac(&d, "00:00:00:00:00:00"),
        Err(NicInputProblem::MacNotUnicast("00:00:00:00:00:00".into()))
    );
    assert_eq!(
        check_new_mac(&d, "52:54:00:00:00:01"),
        Err(NicInputProblem::MacTaken("52:54:00:00:00:01".into()))
    );
}

#[test]
fn typed_forwards_need_real_free_unprivileged_host_ports() {
    let d = domain(CARD);
    for (host, guest, field) in [
        ("0", "22", PortField::Host),
        ("65536", "22", PortField::Host),
        ("ssh", "22", PortField::Host),
        ("", "22", PortField::Host),
        ("2223", "-1", PortField::Guest),
        ("2223", "", PortField::Guest),
    ] {
        assert!(
            matches!(
                check_forward(&d, false, host, guest, 1024),
                Err(NicInputProblem::PortNotANumber { field: f, .. }) if f == field
            ),
            "{host} → {guest}"
        );
    }
    assert_eq!(
        check_forward(&d, false, "2222", "80", 1024),
        Err(NicInputProblem::PortDuplicate {
            port: 2222,
            udp: false
        })
    );
    assert_eq!(
        check_forward(&d, true, "5003", "53", 1024),
        Err(NicInputProblem::PortDuplicate {
            port: 5003,
            udp: true
        }),
        "inside a forwarded range"
    );
    assert_eq!(
        check_forward(&d, true, "5005", "53", 1024).map(|f| f.host_port),
        Ok(5005),
        "an excluded port is free"
    );
    assert_eq!(
        check_forward(&d, true, "2222", "22", 1024),
        Ok(NewForward {
            udp: true,
            host_port: 2222,
            guest_port: 22
        }),
        "the same port over UDP is another forward"
    );
    let privileged = check_forward(&d, false, "22", "22", 1024).unwrap_err();
    assert_eq!(
        privileged,
        NicInputProblem::PortPrivileged {
            port: 22,
            lowest: 1024
        }
    );
    assert!(privileged.to_string().contains("8022"), "{privileged}");
    assert!(
        check_forward(&d, false, "80", "80", 0).is_ok(),
        "a host that lets everyone listen on port 80"
    );
}

#[test]
fn forwards_are_listed_for_people() {
    let listed = list_forwards(&domain(CARD).interfaces()[0]);
    let texts: Vec<(bool, &str)> = listed.iter().map(|l| (l.udp, l.text.as_str())).collect();
    assert_eq!(
        texts,
        [(false, "2222 → 22"), (true, "5000-5009 → 6000-6009, ¬5005")]
    );
}

#[test]
fn cards_and_forwards_are_added_and_removed_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(dir.path().join("domains")).unwrap();
    store.define(&domain("").to_xml()).unwrap();
    let nic = NicToAttach {
        if_type: "user".into(),
        mac: None,
        model: None,
    };
    let mac = attach_interface(&store, "n", &nic).unwrap();
    parse_mac(&mac).unwrap();
    let forward =
        check_forward(&store.get("n").unwrap().domain, false, "2222", "22", 1024).unwrap();
    add_port_forward(&store, "n", &mac.to_uppercase(), &forward).unwrap();
    let stored = store.get("n").unwrap();
    let xml = stored.domain.to_xml();
    assert!(
        xml.contains("<portForward proto='tcp'>") && xml.contains("<range start='2222' to='22'/>"),
        "{xml}"
    );
    let plans = domain_nics(&stored.domain).unwrap();
    assert_eq!(plans[0].forwards[0].spec, "2222:22", "start takes it");

    // Added twice (as another program might have meanwhile): refused, nothing saved.
    let before = store.get("n").unwrap().domain.to_xml();
    assert!(matches!(
        add_port_forward(&store, "n", &mac, &forward),
        Err(NicEditError::Input(NicInputProblem::PortDuplicate { .. }))
    ));
    assert!(matches!(
        add_port_forward(&store, "n", "52:54:00:99:99:99", &forward),
        Err(NicEditError::NoSuchMac { .. })
    ));
    assert_eq!(store.get("n").unwrap().domain.to_xml(), before);

    let listed = list_forwards(&store.get("n").unwrap().domain.interfaces()[0]);
    let mut stale = listed[0].clone();
    stale.seen.proto = Some("udp".into());
    assert!(matches!(
        remove_port_forward(&store, "n", &mac, &stale),
        Err(NicEditError::ForwardChanged { .. })
    ));
    remove_port_forward(&store, "n", &mac, &listed[0]).unwrap();
    let interfaces = store.get("n").unwrap().domain.interfaces();
    assert!(interfaces[0].port_forwards.is_empty());
    detach_interface(&store, "n", "user", Some(&mac)).unwrap();
    assert!(store.get("n").unwrap().domain.interfaces().is_empty());
}
