//! A new VM for a real libvirtd (tests/connections_support/libvirtd.rs): the hypervisor type
//! and CPU come from that host's capabilities and domain capabilities, and the adapted domain
//! defines there. (It is not started: host-model under nested KVM may fail in QEMU itself on
//! some hosts, which says nothing about the plan.)

mod connections_support;
mod require_env;

use connections_support::domain_xml;
use connections_support::libvirtd::Libvirtd;
use vireo::launch::connections::LibvirtConnection;
use vireo::launch::connections::new_vm::HostPlan;

#[test]
fn a_new_vm_gets_the_hosts_type_and_a_cpu_it_can_run() {
    if let Some(missing) = Libvirtd::missing() {
        return require_env::skip_or_fail(format!("needs {missing}"));
    }
    let daemon = Libvirtd::start();
    let conn = LibvirtConnection::open(&daemon.uri()).unwrap();
    let plan = HostPlan::of(&conn).unwrap();
    let kvm = std::path::Path::new("/dev/kvm").exists();
    assert_eq!(plan.virt_type, if kvm { "kvm" } else { "qemu" });
    let (usable, listed) = plan.usable_count();
    assert!(usable > 0 && listed >= usable, "{plan:?}");

    // Built for this computer with a model the host may lack; adapted, it runs there.
    let built = domain_xml(
        "vireo-new",
        "kvm",
        "<cpu mode='custom' match='exact'><model>Icelake-Server</model></cpu>",
    );
    let adapted = plan.adapt(&built).unwrap();
    assert!(
        adapted.starts_with(&format!("<domain type='{}'>", plan.virt_type)),
        "{adapted}"
    );
    if plan.usable("Icelake-Server") != Some(true) {
        assert!(!adapted.contains("Icelake-Server"), "{adapted}");
    }
    conn.define(&adapted).unwrap();
    let defined = conn.dumpxml("vireo-new", true).unwrap();
    assert!(
        defined.starts_with(&format!("<domain type='{}'>", plan.virt_type)),
        "{defined}"
    );
    let cpu_ok = defined.contains("mode='host-model'")
        || plan
            .models
            .iter()
            .any(|(m, ok)| *ok && defined.contains(&format!(">{m}</model>")));
    assert!(cpu_ok, "a CPU the host can run: {defined}");
    conn.undefine("vireo-new").unwrap();
}
