//! Persistent domains through `vireoctl`: `start` leaves a runner holding the VM; the other
//! verbs reach it through its control socket.

mod engine_support;
mod require_env;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Env {
    root: PathBuf,
}

impl Env {
    fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!("vireo-runner-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("run")).unwrap();
        Self { root }
    }

    fn vireoctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vireoctl"))
            .args(args)
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("XDG_STATE_HOME", self.root.join("state"))
            .output()
            .expect("run vireoctl")
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self.vireoctl(args);
        assert!(
            out.status.success(),
            "vireoctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn define(&self, name: &str, kernel: &Path, mode: char) {
        self.define_with_cpu(name, kernel, mode, "");
    }

    fn define_with_cpu(&self, name: &str, kernel: &Path, mode: char, cpu: &str) {
        let xml = format!(
            "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>{cpu}\
             <os><type arch='x86_64'>hvm</type><kernel>{}</kernel>\
             <cmdline>console=ttyS0 vireo.probe={mode}</cmdline></os></domain>",
            kernel.display()
        );
        let file = self.root.join(format!("{name}.xml"));
        std::fs::write(&file, xml).unwrap();
        self.stdout(&["define", file.to_str().unwrap()]);
    }

    fn state(&self, name: &str) -> String {
        let info = self.stdout(&["dominfo", name]);
        info.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .unwrap_or_else(|| panic!("no State in {info}"))
            .trim()
            .to_string()
    }

    fn wait_for_state(&self, name: &str, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.state(name) != wanted {
            assert!(Instant::now() < deadline, "{name} never became {wanted}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn start_suspend_resume_shutdown_through_the_runner() {
    require_kvm!();
    let env = Env::new("life");
    env.define("waiter", &engine_support::probe_guest(), 'w');
    assert_eq!(env.state("waiter"), "shut off");
    assert!(env.stdout(&["start", "waiter"]).contains("started"));
    assert_eq!(env.state("waiter"), "running");
    // Only this user may reach the runner: a private directory, a private socket.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let run = env.root.join("run/vireo");
    assert_eq!(mode(&run), 0o700, "runtime directory");
    assert_eq!(mode(&run.join("waiter.sock")), 0o600, "control socket");
    assert!(
        !env.vireoctl(&["start", "waiter"]).status.success(),
        "second start refused"
    );
    env.stdout(&["suspend", "waiter"]);
    assert_eq!(env.state("waiter"), "paused");
    env.stdout(&["resume", "waiter"]);
    assert_eq!(env.state("waiter"), "running");
    // The probe waits for the ACPI power button, then powers off.
    env.stdout(&["shutdown", "waiter"]);
    env.wait_for_state("waiter", "shut off");
    // The detached runner's log: private, one line when it started and one when it ended.
    let log_file = env.root.join("state/vireo/log/waiter.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("ended:")) {
        assert!(
            Instant::now() < deadline,
            "no end in {}",
            log_file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("started") && log.contains("domain=\"waiter\""),
        "{log}"
    );
    assert!(log.contains("ended: shut off (guest powered off)"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no terminal colours in a file: {log}"
    );
    assert_eq!(mode(&log_file), 0o600, "the VM's log");
}

#[test]
fn destroy_stops_a_guest_that_ignores_everything() {
    require_kvm!();
    let env = Env::new("destroy");
    env.define("halter", &engine_support::probe_guest(), 'h');
    env.stdout(&["start", "halter"]);
    env.stdout(&["destroy", "halter"]);
    env.wait_for_state("halter", "shut off");
    assert!(
        !env.vireoctl(&["destroy", "halter"]).status.success(),
        "not running any more"
    );
}

#[test]
fn start_reports_a_bad_kernel_and_leaves_nothing_running() {
    require_kvm!();
    let env = Env::new("bad");
    env.define("broken", Path::new("/nonexistent/vmlinuz"), 'p');
    let out = env.vireoctl(&["start", "broken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/vmlinuz"));
    assert_eq!(env.state("broken"), "shut off");
    let log = std::fs::read_to_string(env.root.join("state/vireo/log/broken.log")).unwrap();
    assert!(
        log.contains("not started") && log.contains("/nonexistent/vmlinuz"),
        "the refusal is in the VM's log too: {log}"
    );
    assert!(!env.root.join("run/vireo/broken.sock").exists());
}

#[test]
fn host_model_expansion_is_recorded_in_the_live_xml() {
    require_kvm!();
    let env = Env::new("live");
    env.define_with_cpu(
        "copy",
        &engine_support::probe_guest(),
        'h',
        "<cpu mode='host-model' check='none'/>",
    );
    env.stdout(&["start", "copy"]);
    let live = std::fs::read_to_string(env.root.join("run/vireo/copy.xml")).expect("live XML");
    env.stdout(&["destroy", "copy"]);
    assert!(!live.contains("host-model"), "{live}");
    assert!(live.contains("<model fallback='forbid'>"), "{live}");
    assert!(live.contains("policy='require'"), "{live}");
    assert!(live.contains("<name>copy</name>"), "{live}");
    env.wait_for_state("copy", "shut off");
    assert!(
        !env.root.join("run/vireo/copy.xml").exists(),
        "live XML removed when the VM ends"
    );
}

#[test]
fn dumpxml_shows_the_live_cpu_while_running_and_the_definition_with_inactive() {
    require_kvm!();
    let env = Env::new("dumpxml");
    env.define_with_cpu(
        "shown",
        &engine_support::probe_guest(),
        'w',
        "<cpu mode='host-model' check='none'/>",
    );
    env.stdout(&["start", "shown"]);
    let live = env.stdout(&["dumpxml", "shown"]);
    let inactive = env.stdout(&["dumpxml", "--inactive", "shown"]);
    env.stdout(&["destroy", "shown"]);
    env.wait_for_state("shown", "shut off");
    let stopped = env.stdout(&["dumpxml", "shown"]);

    assert!(live.contains("mode='custom'"), "{live}");
    assert!(live.contains("<model fallback='forbid'>"), "{live}");
    assert!(!live.contains("host-model"), "{live}");
    assert!(inactive.contains("mode='host-model'"), "{inactive}");
    assert!(!inactive.contains("<model"), "{inactive}");
    assert_eq!(
        stopped, inactive,
        "a stopped VM shows its stored definition"
    );
}

/// virsh's semantics: a running domain that has no definition (undefined while it ran, or
/// created from a file) is listed as transient until it stops; nothing runs unseen.
#[test]
fn running_vms_without_a_definition_are_listed_as_transient() {
    require_kvm!();
    let env = Env::new("transient");
    env.define("kept", &engine_support::probe_guest(), 'h');
    env.stdout(&["start", "kept"]);
    env.stdout(&["undefine", "kept"]);
    let file = env.root.join("made.xml");
    std::fs::write(
        &file,
        format!(
            "<domain type='kvm'><name>made</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64'>hvm</type><kernel>{}</kernel>\
             <cmdline>console=ttyS0 vireo.probe=h</cmdline></os></domain>",
            engine_support::probe_guest().display()
        ),
    )
    .unwrap();
    env.stdout(&["create", file.to_str().unwrap()]);
    let list = env.stdout(&["list"]);
    for name in ["kept", "made"] {
        assert!(
            list.lines()
                .any(|l| l.contains(name) && l.contains("running (transient)")),
            "{name} in:\n{list}"
        );
    }
    // The list the GUI shows says the same.
    let running: Vec<String> = env
        .stdout(&["list", "--all"])
        .lines()
        .filter(|l| l.contains("(transient)"))
        .map(str::to_owned)
        .collect();
    assert_eq!(running.len(), 2, "{running:?}");
    env.stdout(&["destroy", "kept"]);
    env.stdout(&["destroy", "made"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.stdout(&["list"]).contains("transient") {
        assert!(
            Instant::now() < deadline,
            "transient domains gone once stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// More vCPUs than host CPUs: the VM starts (as under libvirt), with a warning naming both
/// numbers; `dominfo` keeps reporting it.
#[test]
fn start_warns_of_more_vcpus_than_host_cpus() {
    require_kvm!();
    let env = Env::new("oversub");
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    let vcpus = host_cpus + 2;
    env.define("wide", &engine_support::probe_guest(), 'h');
    let file = env.root.join("wide.xml");
    let xml = std::fs::read_to_string(&file)
        .unwrap()
        .replace("<vcpu>1</vcpu>", &format!("<vcpu>{vcpus}</vcpu>"));
    std::fs::write(&file, xml).unwrap();
    env.stdout(&["define", file.to_str().unwrap()]);
    let out = env.vireoctl(&["start", "wide"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "<vcpu> is {vcpus} but this host has {host_cpus} CPU"
        )),
        "{stderr}"
    );
    let validate = env.vireoctl(&["validate", "--host", file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&validate.stderr).contains(&format!("<vcpu> is {vcpus}")),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    env.stdout(&["destroy", "wide"]);
}

#[test]
fn the_first_start_clears_the_wizards_never_started_marker() {
    require_kvm!();
    let env = Env::new("firststart");
    env.define("fresh", &engine_support::probe_guest(), 'h');
    let path = env.root.join("data/vireo/domains/fresh.xml");
    let mut domain =
        vireo::domain::Domain::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    domain.set_awaits_first_start(true);
    std::fs::write(&path, domain.to_xml()).unwrap();
    env.stdout(&["start", "fresh"]);
    let after = vireo::domain::Domain::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!after.awaits_first_start(), "{}", after.to_xml());
    env.stdout(&["destroy", "fresh"]);
    env.wait_for_state("fresh", "shut off");
}

#[test]
fn start_autostart_starts_only_the_marked_vms() {
    require_kvm!();
    let env = Env::new("autostart");
    env.define("marked", &engine_support::probe_guest(), 'w');
    env.define("unmarked", &engine_support::probe_guest(), 'w');
    env.stdout(&["autostart", "marked"]);
    let out = env.stdout(&["start", "--autostart"]);
    assert!(out.contains("Domain 'marked' started"), "{out}");
    assert_eq!(env.state("marked"), "running");
    assert_eq!(env.state("unmarked"), "shut off");
    // Running already: nothing left to start, and that is no error.
    let again = env.stdout(&["start", "--autostart"]);
    assert!(!again.contains("started"), "{again}");
    env.stdout(&["destroy", "marked"]);
    env.wait_for_state("marked", "shut off");
}

#[test]
fn start_autostart_reports_a_failing_vm_and_still_starts_the_others() {
    require_kvm!();
    let env = Env::new("autofail");
    env.define("aa-broken", Path::new("/nonexistent/vmlinuz"), 'w');
    env.define("bb-good", &engine_support::probe_guest(), 'w');
    env.stdout(&["autostart", "aa-broken"]);
    env.stdout(&["autostart", "bb-good"]);
    let out = env.vireoctl(&["start", "--autostart"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("autostart of 'aa-broken' failed")
            && stderr.contains("/nonexistent/vmlinuz"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Domain 'bb-good' started"));
    assert_eq!(env.state("bb-good"), "running");
    assert_eq!(env.state("aa-broken"), "shut off");
    env.stdout(&["destroy", "bb-good"]);
    env.wait_for_state("bb-good", "shut off");
}
