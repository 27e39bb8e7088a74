use super::*;

fn domain(interfaces: &str) -> Domain {
    Domain::parse(&format!(
        "<domain type='kvm'><name>n</name><uuid>6f2d1a4e-3c1b-4d0e-9a57-1b2c3d4e5f60</uuid>\
         <devices>{interfaces}</devices></domain>"
    ))
    .unwrap()
}

fn problems(interfaces: &str) -> String {
    domain_nics(&domain(interfaces))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_user_interface_with_passt_and_forwards_becomes_a_plan() {
    let plans = domain_nics(&domain(
        "<interface type='user'><mac address='52:54:00:AB:cd:01'/><backend type='passt'/>\
         <model type='virtio'/>\
         <portForward proto='tcp'><range start='2222' to='22'/></portForward>\
         <portForward proto='udp' address='127.0.0.1'><range start='5000' end='5009' to='6000'/>\
         <range start='5005' exclude='yes'/></portForward></interface>",
    ))
    .unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].id, "net0");
    assert_eq!(plans[0].mac, [0x52, 0x54, 0, 0xab, 0xcd, 1]);
    assert!(!plans[0].generated_mac);
    assert_eq!(
        plans[0].forwards[0],
        Forward {
            udp: false,
            spec: "2222:22".into(),
            host_ports: vec![2222]
        }
    );
    assert!(plans[0].forwards[1].udp);
    assert_eq!(
        plans[0].forwards[1].spec,
        "127.0.0.1/5000-5009:6000-6009,~5005"
    );
    assert_eq!(plans[0].forwards[1].host_ports.len(), 9, "5005 excluded");
}

#[test]
fn a_missing_mac_is_generated_stably_per_uuid_and_position() {
    let plans = domain_nics(&domain(
        "<interface type='user'/><interface type='user'><backend type='passt'/></interface>",
    ))
    .unwrap();
    assert!(plans[0].generated_mac);
    assert_eq!(plans[0].mac[..3], [0x52, 0x54, 0x00]);
    assert_ne!(plans[0].mac, plans[1].mac, "two cards, two addresses");
    let again = domain_nics(&domain("<interface type='user'/>")).unwrap();
    assert_eq!(again[0].mac, plans[0].mac, "same UUID, same address");
    assert_ne!(generated_mac("other-uuid", 0), plans[0].mac);
}

#[test]
fn bad_interfaces_are_refused_naming_the_culprit_and_the_fix() {
    let text = problems(
        "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>",
    );
    assert!(text.contains("interface 1 (52:54:00:00:00:01)"), "{text}");
    assert!(
        text.contains("type 'network' is not supported by the built-in engine yet"),
        "{text}"
    );
    assert!(text.contains("<interface type='user'>"), "{text}");

    let text = problems("<interface type='user'><model type='e1000'/></interface>");
    assert!(
        text.contains("model 'e1000'") && text.contains("<model type='virtio'/>"),
        "{text}"
    );

    let text = problems("<interface type='user'><mac address='01:00:5e:00:00:01'/></interface>");
    assert!(text.contains("multicast"), "{text}");
    let text = problems("<interface type='user'><mac address='52:54:00:zz:00:01'/></interface>");
    assert!(text.contains("not six hex pairs"), "{text}");

    let text = problems(
        "<interface type='user'><mac address='52:54:00:00:00:07'/></interface>\
         <interface type='user'><mac address='52:54:00:00:00:07'/></interface>",
    );
    assert!(
        text.contains("interface 2") && text.contains("also interface 1's"),
        "{text}"
    );

    for (range, needle) in [
        ("<range start='70000' to='22'/>", "from 1 to 65535"),
        ("<range start='0' to='22'/>", "from 1 to 65535"),
        ("<range start='2222' to='99999'/>", "from 1 to 65535"),
        (
            "<range start='65530' end='65535' to='65533'/>",
            "past port 65535",
        ),
        ("<range start='10' end='5'/>", "ends before it starts"),
        ("<range to='22'/>", "without start"),
    ] {
        let text = problems(&format!(
            "<interface type='user'><portForward proto='tcp'>{range}</portForward></interface>"
        ));
        assert!(text.contains(needle), "{range}: {text}");
    }
    let text = problems(
        "<interface type='user'><portForward proto='sctp'><range start='1'/></portForward></interface>",
    );
    assert!(text.contains("proto='sctp'"), "{text}");
}

#[test]
fn link_state_down_unplugs_the_card_and_a_bad_state_is_named() {
    let plans = domain_nics(&domain(
        "<interface type='user'><link state='down'/></interface>\
         <interface type='user'><link state='up'/></interface><interface type='user'/>",
    ))
    .unwrap();
    let down: Vec<bool> = plans.iter().map(|p| p.link_down).collect();
    assert_eq!(down, [true, false, false]);
    let text = problems("<interface type='user'><link state='sideways'/></interface>");
    assert!(
        text.contains("<link state='sideways'>") && text.contains("'up' or 'down'"),
        "{text}"
    );
}
