//! The real `vireoctl` binary with XDG_DATA_HOME/XDG_CONFIG_HOME in temp dirs.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod store_support;
use store_support::snapshot;

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn domains(&self) -> PathBuf {
        self.tmp.path().join("data/vireo/domains")
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A script usable as $EDITOR.
    fn editor(&self, script: &str) -> PathBuf {
        let path = self.file("editor.sh", &format!("#!/bin/sh\n{script}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn run_with(&self, args: &[&str], editor: Option<&Path>, stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vireoctl"));
        cmd.args(args)
            .env("XDG_DATA_HOME", self.tmp.path().join("data"))
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("HOME", self.tmp.path())
            .env_remove("VISUAL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(editor) = editor {
            cmd.env("EDITOR", editor);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None, "")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const VM: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  <!-- mine -->\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n</domain>\n";

#[test]
fn define_list_dumpxml_rename_undefine() {
    let env = Env::new();
    let file = env.file("vm1.xml", VM);
    let out = env.run(&["define", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Domain 'vm1' defined"));
    assert!(
        env.domains().join("vm1.xml").exists(),
        "XDG_DATA_HOME is honoured"
    );

    let dumped = stdout(&env.run(&["dumpxml", "vm1"]));
    assert!(
        dumped.contains("<!-- mine -->") && dumped.contains("<uuid>"),
        "{dumped}"
    );

    std::fs::write(env.domains().join("broken.xml"), "<domain>").unwrap();
    let listed = stdout(&env.run(&["list", "--all"]));
    assert!(listed.contains(" -    vm1      shut off"), "{listed}");
    assert!(listed.contains("broken   error:"), "{listed}");
    let running = stdout(&env.run(&["list"]));
    assert!(
        !running.contains("vm1") && running.contains("broken"),
        "{running}"
    );

    let out = env.run(&["domrename", "vm1", "vm2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&env.run(&["dumpxml", "vm2"])).contains("<name>vm2</name>"));

    let out = env.run(&["undefine", "vm2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["dumpxml", "vm2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no domain named 'vm2'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn refused_define_exits_2_and_writes_nothing() {
    let env = Env::new();
    env.run(&["define", env.file("ok.xml", VM).to_str().unwrap()]);
    let before = snapshot(&env.domains());
    let bad = env.file("bad.xml", &VM.replace("vm1", "vm3").replace(">64<", ">0<"));
    let out = env.run(&["define", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<memory>: is 0"), "{}", stderr(&out));
    assert_eq!(snapshot(&env.domains()), before);
}

#[test]
fn validate_answers_with_exit_codes() {
    let env = Env::new();
    let good = env.file("good.xml", VM);
    let out = env.run(&["validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bad = env.file("bad.xml", &VM.replace("unit='MiB'", "unit='parsecs'"));
    let out = env.run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown unit 'parsecs'"),
        "{}",
        stderr(&out)
    );
    let missing_kernel = env.file(
        "k.xml",
        &VM.replace("</type>", "</type>\n    <kernel>/no/such/vmlinuz</kernel>"),
    );
    let out = env.run(&["validate", missing_kernel.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without --host the file is fine"
    );
    let out = env.run(&["validate", "--host", missing_kernel.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("<os><kernel>: '/no/such/vmlinuz' cannot be opened"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn edit_saves_valid_changes_and_keeps_the_rest() {
    let env = Env::new();
    env.run(&["define", env.file("vm1.xml", VM).to_str().unwrap()]);
    let editor = env.editor("sed -i 's/>64</>128</' \"$1\"");
    let out = env.run_with(&["edit", "vm1"], Some(&editor), "");
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = std::fs::read_to_string(env.domains().join("vm1.xml")).unwrap();
    assert!(saved.contains("<memory unit='MiB'>128</memory>") && saved.contains("<!-- mine -->"));

    let noop = env.editor("true");
    let out = env.run_with(&["edit", "vm1"], Some(&noop), "");
    assert!(stdout(&out).contains("not changed"), "{}", stdout(&out));
}

/// `edit` of a definition that cannot be parsed opens the file as it is: leaving it unchanged
/// touches nothing (exit 2), and a valid domain of the same name repairs it.
#[test]
fn edit_repairs_an_unreadable_definition() {
    let env = Env::new();
    std::fs::create_dir_all(env.domains()).unwrap();
    let broken = "<domain type='kvm'><name>vm1</name><memory>64";
    std::fs::write(env.domains().join("vm1.xml"), broken).unwrap();
    let out = env.run_with(&["edit", "vm1"], Some(&env.editor("true")), "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be read") && stderr(&out).contains("repair"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(env.domains().join("vm1.xml")).unwrap(),
        broken,
        "left as it was"
    );
    let wrong_name = env.editor(&format!(
        "printf '%s' \"{}\" > \"$1\"",
        VM.replace("vm1", "other").replace('"', "\\\"")
    ));
    let out = env.run_with(&["edit", "vm1"], Some(&wrong_name), "n\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("must stay 'vm1'"), "{}", stderr(&out));
    let fixer = env.editor(&format!(
        "printf '%s' \"{}\" > \"$1\"",
        VM.replace('"', "\\\"")
    ));
    let out = env.run_with(&["edit", "vm1"], Some(&fixer), "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("repaired"), "{}", stdout(&out));
    let listed = stdout(&env.run(&["list", "--all"]));
    assert!(
        listed.contains("vm1") && listed.contains("shut off"),
        "{listed}"
    );
}

#[test]
fn edit_rejects_invalid_xml_and_reopens_on_request() {
    let env = Env::new();
    env.run(&["define", env.file("vm1.xml", VM).to_str().unwrap()]);
    let before = snapshot(&env.domains());
    let breaker = env.editor("sed -i 's/<vcpu>1</<vcpu>0</' \"$1\"");
    let out = env.run_with(&["edit", "vm1"], Some(&breaker), "n\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<vcpu>: is 0") && stderr(&out).contains("Try again?"));
    assert_eq!(snapshot(&env.domains()), before);

    // First pass breaks it, the second (after "y") fixes it: like virsh edit's re-open.
    let counter = env.tmp.path().join("count");
    let two_pass = env.editor(&format!(
        "if [ -e {c} ]; then sed -i 's/<vcpu>0</<vcpu>2</' \"$1\"; else touch {c}; sed -i 's/<vcpu>1</<vcpu>0</' \"$1\"; fi",
        c = counter.display()
    ));
    let out = env.run_with(&["edit", "vm1"], Some(&two_pass), "y\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = std::fs::read_to_string(env.domains().join("vm1.xml")).unwrap();
    assert!(saved.contains("<vcpu>2</vcpu>"), "{saved}");
}

#[test]
fn prefs_and_new_follow_the_cpu_mode() {
    let env = Env::new();
    assert_eq!(
        stdout(&env.run(&["prefs", "get", "new-vm-cpu-mode"])).trim(),
        "app-default"
    );
    let out = env.run(&["prefs", "set", "new-vm-cpu-mode", "warp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("host-passthrough"),
        "{}",
        stderr(&out)
    );
    assert!(
        env.run(&["prefs", "set", "new-vm-cpu-mode", "hv-default"])
            .status
            .success()
    );
    assert!(
        env.tmp.path().join("config/vireo/prefs.toml").exists(),
        "XDG_CONFIG_HOME is honoured"
    );
    assert!(stdout(&env.run(&["prefs", "list"])).contains("new-vm-cpu-mode = hv-default"));

    let out = env.run(&[
        "new",
        "n1",
        "--memory",
        "256",
        "--vcpus",
        "2",
        "--kernel",
        "/k",
        "--cmdline",
        "console=ttyS0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = stdout(&env.run(&["dumpxml", "n1"]));
    assert!(!xml.contains("<cpu"), "hv-default writes no <cpu>: {xml}");
    assert!(xml.contains("<cmdline>console=ttyS0</cmdline>"));

    env.run(&["prefs", "set", "new-vm-cpu-mode", "host-passthrough"]);
    let out = env.run(&[
        "new",
        "n2",
        "--memory",
        "256",
        "--vcpus",
        "1",
        "--disk",
        "/img.qcow2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = stdout(&env.run(&["dumpxml", "n2"]));
    assert!(
        xml.contains("<cpu mode='host-passthrough'") && xml.contains("<source file='/img.qcow2'/>"),
        "{xml}"
    );

    let out = env.run(&["new", "n3", "--memory", "1", "--vcpus", "1"]);
    assert_eq!(out.status.code(), Some(2), "a boot source is required");
}

#[test]
fn edit_that_races_another_save_keeps_the_users_copy() {
    let env = Env::new();
    env.run(&["define", env.file("vm1.xml", VM).to_str().unwrap()]);
    // The "editor" changes the file and, meanwhile, another program redefines the domain.
    let other = env.file("other.xml", &VM.replace(">64<", ">96<"));
    let racer = env.editor(&format!(
        "sed -i 's/>64</>128</' \"$1\"; {} define {} >/dev/null",
        env!("CARGO_BIN_EXE_vireoctl"),
        other.display()
    ));
    let out = env.run_with(&["edit", "vm1"], Some(&racer), "");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("changed on disk by another program"), "{err}");
    let kept = err.rsplit("kept in ").next().unwrap().trim();
    assert!(
        std::fs::read_to_string(kept).unwrap().contains(">128<"),
        "{err}"
    );
    std::fs::remove_file(kept).unwrap();
    let saved = std::fs::read_to_string(env.domains().join("vm1.xml")).unwrap();
    assert!(
        saved.contains(">96<"),
        "the other program's save stands: {saved}"
    );
}
