//! Disks through `vireoctl start` (the probe guest; needs /dev/kvm): a VM starts with its disks
//! attached, a second VM writing the same image is refused with the first one's name, and a
//! disk Vireo cannot attach stops the start with the fix.

mod engine_support;
mod require_env;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    tmp: tempfile::TempDir,
    started: Vec<String>,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run")).unwrap();
        Env {
            tmp,
            started: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn vireoctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vireoctl"))
            .args(args)
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("state"))
            .output()
            .expect("run vireoctl")
    }

    /// Defines `name` (the probe guest, halting after its report) with these `<devices>`.
    fn define(&self, name: &str, devices: &str) {
        let xml = format!(
            "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64'>hvm</type><kernel>{}</kernel>\
             <cmdline>console=ttyS0 vireo.probe=h</cmdline></os><devices>{devices}</devices>\
             </domain>",
            engine_support::probe_guest().display()
        );
        let file = self.path(&format!("{name}.xml"));
        std::fs::write(&file, xml).unwrap();
        let out = self.vireoctl(&["define", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    fn start(&mut self, name: &str) -> Output {
        let out = self.vireoctl(&["start", name]);
        if out.status.success() {
            self.started.push(name.to_owned());
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in &self.started {
            let _ = self.vireoctl(&["destroy", name]);
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn disk(path: &Path, target: &str, extra: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='{target}' bus='virtio'/>{extra}</disk>",
        path.display()
    )
}

#[test]
fn a_second_writer_is_refused_with_the_holders_name() {
    require_kvm!();
    let mut env = Env::new();
    let image = env.path("shared.raw");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    env.define("one", &disk(&image, "vda", ""));
    let out = env.start("one");
    assert!(out.status.success(), "{}", stderr(&out));

    env.define("two", &disk(&image, "vdb", ""));
    let out = env.start("two");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let expected = format!(
        "disk vdb ({}) is in use by the running VM 'one'; stop it first or attach the image \
         read-only",
        image.display()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert!(
        !env.path("run/vireo/two.sock").exists(),
        "nothing left running"
    );
}

#[test]
fn a_disk_vireo_cannot_attach_stops_the_start_with_the_fix() {
    require_kvm!();
    let mut env = Env::new();
    let image = env.path("a.raw");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    env.define(
        "sata",
        &format!(
            "<disk type='file' device='disk'><source file='{}'/>\
             <target dev='sda' bus='sata'/></disk>",
            image.display()
        ),
    );
    let out = env.start("sata");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "disk sda ({}): bus 'sata' is not supported: Vireo attaches disks on virtio only: \
             set <target dev='vdX' bus='virtio'/>",
            image.display()
        )),
        "{}",
        stderr(&out)
    );
    // A CD-ROM starts, with the warning.
    env.define(
        "cd",
        &format!(
            "<disk type='file' device='cdrom'><source file='{}'/>\
             <target dev='sda' bus='sata'/><readonly/></disk>",
            image.display()
        ),
    );
    let out = env.start("cd");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: disk sda (") && stderr(&out).contains("/dev/vda"),
        "{}",
        stderr(&out)
    );
}
