//! `vireoctl` as a virsh user types it (issue 16): the real binary with private XDG
//! directories. The first tests need no KVM; the last runs the probe guest on /dev/kvm.

mod engine_support;
mod require_env;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run")).unwrap();
        Env { tmp }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn domains(&self) -> PathBuf {
        self.path("data/vireo/domains")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vireoctl"))
            .args(args)
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("HOME", self.tmp.path())
            .output()
            .expect("run vireoctl")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and expects exit 2 with `needle` on stderr.
    fn fails(&self, args: &[&str], needle: &str) {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: wanted {needle:?} in {}",
            stderr(&out)
        );
    }

    fn define(&self, name: &str, body: &str) {
        let xml = format!(
            "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory>{body}\
             <os><type arch='x86_64'>hvm</type></os></domain>"
        );
        let file = self.path(&format!("{name}.xml"));
        std::fs::write(&file, xml).unwrap();
        self.ok(&["define", file.to_str().unwrap()]);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const UUID: &str = "6a1f0c2e-6c1b-4d4e-9c53-2b1e0f7a9d10";

#[test]
fn state_id_and_uuid_of_a_shut_off_domain_and_uuids_wherever_a_name_goes() {
    let env = Env::new();
    env.define("vm1", &format!("<uuid>{UUID}</uuid><vcpu>1</vcpu>"));
    assert_eq!(env.ok(&["domstate", "vm1"]), "shut off\n");
    assert_eq!(
        env.ok(&["domstate", "vm1", "--reason"]),
        "shut off (unknown)\n"
    );
    assert_eq!(env.ok(&["domid", "vm1"]), "-\n");
    assert_eq!(env.ok(&["domuuid", "vm1"]), format!("{UUID}\n"));
    // The UUID, in any case, stands for the name.
    assert_eq!(env.ok(&["domstate", &UUID.to_uppercase()]), "shut off\n");
    assert!(env.ok(&["dumpxml", UUID]).contains("<name>vm1</name>"));
    assert!(env.ok(&["dominfo", UUID]).contains("Name:           vm1"));
    env.fails(
        &["domstate", "00000000-0000-0000-0000-000000000001"],
        "no domain with UUID '00000000-0000-0000-0000-000000000001'",
    );
    env.fails(&["domuuid", "nosuch"], "no domain named 'nosuch'");
    env.ok(&["domrename", UUID, "vm2"]);
    assert_eq!(env.ok(&["domuuid", "vm2"]), format!("{UUID}\n"));
    env.ok(&["undefine", UUID]);
    assert!(!env.domains().join("vm2.xml").exists());
}

#[test]
fn list_filters_and_forms_and_autostart() {
    let env = Env::new();
    env.define("alpha", &format!("<uuid>{UUID}</uuid><vcpu>1</vcpu>"));
    env.define("beta", "<vcpu>1</vcpu>");
    assert_eq!(env.ok(&["list", "--inactive", "--name"]), "alpha\nbeta\n");
    assert_eq!(
        env.ok(&["list", "--all", "--state-shutoff", "--name"]),
        "alpha\nbeta\n"
    );
    assert_eq!(env.ok(&["list", "--state-running", "--name"]), "");
    assert_eq!(
        env.ok(&["list", "--name"]),
        "",
        "only active ones by default"
    );
    let uuids = env.ok(&["list", "--all", "--uuid"]);
    assert_eq!(uuids.lines().next(), Some(UUID), "{uuids}");
    assert_eq!(uuids.lines().count(), 2);
    assert_eq!(
        env.ok(&["list", "--all", "--uuid", "--name"])
            .lines()
            .next(),
        Some(format!("{UUID} alpha").as_str())
    );

    assert!(
        env.ok(&["autostart", "beta"])
            .contains("marked as autostarted")
    );
    assert_eq!(
        env.ok(&["list", "--all", "--autostart", "--name"]),
        "beta\n"
    );
    assert_eq!(
        env.ok(&["list", "--all", "--no-autostart", "--name"]),
        "alpha\n"
    );
    assert!(
        env.ok(&["dominfo", "beta"])
            .contains("Autostart:      enable")
    );
    // A rename keeps the mark, an undefine drops it.
    env.ok(&["domrename", "beta", "gamma"]);
    assert_eq!(
        env.ok(&["list", "--all", "--autostart", "--name"]),
        "gamma\n"
    );
    env.ok(&["autostart", "gamma", "--disable"]);
    assert_eq!(env.ok(&["list", "--all", "--autostart", "--name"]), "");
    env.ok(&["autostart", "gamma"]);
    env.ok(&["undefine", "gamma"]);
    assert!(!env.domains().join("autostart/gamma.xml").exists());
    env.fails(&["autostart", "nosuch"], "no domain named 'nosuch'");
}

#[test]
fn setvcpus_and_setmem_change_the_definition_and_are_validated_as_define_does() {
    let env = Env::new();
    env.define(
        "vm",
        "<vcpu>2</vcpu><cpu><topology sockets='1' dies='1' cores='2' threads='1'/></cpu>",
    );
    env.fails(&["setvcpus", "vm", "3", "--config"], "topology");
    env.fails(&["setvcpus", "vm", "0", "--config"], "at least 1 vCPU");
    env.define("small", "<vcpu>1</vcpu>");
    env.ok(&["setvcpus", "small", "4", "--config"]);
    // virsh reads a bare number as KiB.
    env.ok(&["setmem", "small", "131072", "--config"]);
    let xml = env.ok(&["dumpxml", "small"]);
    assert!(xml.contains(">4</vcpu>"), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>131072</memory>"), "{xml}");
    env.ok(&["setmem", "small", "1G"]);
    assert!(env.ok(&["dumpxml", "small"]).contains(">1048576</memory>"));
    env.fails(&["setmem", "small", "12parsecs", "--config"], "not a unit");
    env.fails(&["setvcpus", "small", "2", "--live"], "add --config");
}

#[test]
fn spelling_suggestions_keep_the_meaning_and_modes_are_checked() {
    let env = Env::new();
    let out = env.run(&["reboo", "vm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean 'reboot'?"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["domstat", "vm"]);
    assert!(stderr(&out).contains("domstate"), "{}", stderr(&out));
    // `reboot` is a verb of its own now, not a typo of `reset`.
    let out = env.run(&["reboot"]);
    assert!(
        !stderr(&out).contains("reset") && stderr(&out).contains("<NAME>"),
        "{}",
        stderr(&out)
    );
    env.fails(&["shutdown", "vm", "--mode", "agent"], "use --mode acpi");
    env.fails(
        &["reboot", "vm", "--mode", "acpi,initctl"],
        "--mode initctl",
    );
}

#[test]
fn a_failed_undefine_leaves_no_lock_file_behind() {
    let env = Env::new();
    env.define("keep", "<vcpu>1</vcpu>");
    env.fails(&["undefine", "nosuch"], "no domain named 'nosuch'");
    env.fails(
        &["domrename", "nosuch", "other"],
        "no domain named 'nosuch'",
    );
    let mut files: Vec<String> = std::fs::read_dir(env.domains())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, [".keep.lock", "keep.xml"]);
}

/// Polls `check` for up to 10 s.
/// The network verbs on a stored definition: attach-interface, domiflist, domif-setlink /
/// domif-getlink (an unplugged card needs no passt at start), detach-interface; a bad MAC is
/// named and changes nothing.
#[test]
fn network_cards_are_attached_unplugged_listed_and_detached() {
    let env = Env::new();
    env.define("net1", "");
    env.ok(&[
        "attach-interface",
        "net1",
        "user",
        "--mac",
        "52:54:00:aa:bb:01",
        "--config",
    ]);
    let list = env.ok(&["domiflist", "net1"]);
    assert!(
        list.contains("user") && list.contains("52:54:00:aa:bb:01"),
        "{list}"
    );
    assert_eq!(
        env.ok(&["domif-getlink", "net1", "52:54:00:aa:bb:01"])
            .trim(),
        "52:54:00:aa:bb:01 up"
    );
    env.ok(&[
        "domif-setlink",
        "net1",
        "52:54:00:AA:BB:01",
        "down",
        "--config",
    ]);
    assert_eq!(
        env.ok(&["domif-getlink", "net1", "52:54:00:aa:bb:01"])
            .trim(),
        "52:54:00:aa:bb:01 down"
    );
    let xml = env.ok(&["dumpxml", "net1"]);
    assert!(
        xml.contains("<link state=\"down\"/>") || xml.contains("<link state='down'/>"),
        "{xml}"
    );
    let before = std::fs::read(env.domains().join("net1.xml")).unwrap();
    env.fails(
        &[
            "domif-setlink",
            "net1",
            "52:54:00:00:00:99",
            "up",
            "--config",
        ],
        "52:54:00:00:00:99",
    );
    assert_eq!(
        std::fs::read(env.domains().join("net1.xml")).unwrap(),
        before,
        "a refused change leaves the file as it was"
    );
    env.ok(&[
        "domif-setlink",
        "net1",
        "52:54:00:aa:bb:01",
        "up",
        "--config",
    ]);
    env.ok(&[
        "detach-interface",
        "net1",
        "user",
        "--mac",
        "52:54:00:aa:bb:01",
        "--config",
    ]);
    assert!(!env.ok(&["domiflist", "net1"]).contains("52:54:00:aa:bb:01"));
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_domain_through_virsh_verbs() {
    require_kvm!();
    let env = Env::new();
    // The probe guest waits for the ACPI power button, then powers off.
    env.define(
        "vm",
        &format!(
            "<uuid>{UUID}</uuid><vcpu>2</vcpu><cpu mode='host-passthrough'/><os><type \
             arch='x86_64'>hvm</type><kernel>{}</kernel><cmdline>console=ttyS0 \
             vireo.probe=w</cmdline></os><on_poweroff>destroy</on_poweroff>",
            engine_support::probe_guest().display()
        )
        .replace("<os><type arch='x86_64'>hvm</type></os>", ""),
    );
    assert!(
        env.ok(&["start", "vm", "--paused"])
            .contains("started (paused)")
    );
    let guard = Destroy(&env);
    assert_eq!(env.ok(&["domstate", "vm", "--reason"]), "paused (user)\n");
    let id = env.ok(&["domid", "vm"]).trim().to_string();
    assert!(id.parse::<u32>().is_ok_and(|id| id > 0), "{id}");
    let table = env.ok(&["list"]);
    assert!(
        table.contains(&format!(" {id:<4} vm     paused")),
        "{table}"
    );
    assert_eq!(env.ok(&["list", "--state-paused", "--name"]), "vm\n");
    assert_eq!(env.ok(&["list", "--inactive", "--name"]), "");
    // The id and the UUID stand for the name.
    env.ok(&["resume", &id]);
    assert_eq!(
        env.ok(&["domstate", UUID, "--reason"]),
        "running (booted)\n"
    );

    let vcpus = env.ok(&["vcpuinfo", "vm"]);
    assert!(
        vcpus.contains("VCPU:           0") && vcpus.contains("VCPU:           1"),
        "{vcpus}"
    );
    assert!(vcpus.contains("CPU Affinity:   y"), "{vcpus}");
    let mem = env.ok(&["dommemstat", "vm"]);
    assert!(mem.starts_with("actual 65536\nrss "), "{mem}");
    let stats = env.ok(&["domstats", "vm"]);
    for line in [
        "Domain: 'vm'",
        "state.state=1",
        "vcpu.current=2",
        "balloon.current=65536",
    ] {
        assert!(stats.contains(line), "{line} in {stats}");
    }
    env.fails(&["send-key", "vm", "KEY_A"], "has no keyboard");
    env.fails(&["send-key", "vm", "KEY_NOPE"], "not a Linux key name");
    env.fails(
        &["screenshot", "vm", &env.path("shot.png").to_string_lossy()],
        "has no display",
    );
    env.fails(&["setvcpus", "vm", "1"], "add --config");

    // reboot: the power button, the guest powers off, and the same runner starts it again
    // with the same id.
    let exit_file = env.path("run/vireo/vm.exit");
    assert!(!exit_file.exists());
    assert!(env.ok(&["reboot", "vm"]).contains("is being rebooted"));
    wait_for("the guest to power off", || exit_file.exists());
    wait_for("the restart", || env.ok(&["domstate", "vm"]) == "running\n");
    assert_eq!(env.ok(&["domid", "vm"]).trim(), id);

    env.ok(&["shutdown", "vm", "--mode", "acpi"]);
    wait_for("the shutdown", || {
        env.ok(&["domstate", "vm"]) == "shut off\n"
    });
    assert_eq!(
        env.ok(&["domstate", "vm", "--reason"]),
        "shut off (shutdown)\n"
    );
    assert_eq!(env.ok(&["domid", "vm"]), "-\n");

    // destroy --graceful, and a new start gets a new id.
    env.ok(&["start", "vm"]);
    assert_ne!(env.ok(&["domid", "vm"]).trim(), id);
    assert!(
        env.ok(&["destroy", "vm", "--graceful"])
            .contains("destroyed")
    );
    assert_eq!(
        env.ok(&["domstate", "vm", "--reason"]),
        "shut off (destroyed)\n"
    );
    drop(guard);
}

/// Forces the VM off if a test step fails while it runs.
struct Destroy<'a>(&'a Env);

impl Drop for Destroy<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["destroy", "vm"]);
    }
}
