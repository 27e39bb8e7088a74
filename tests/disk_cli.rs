//! The disk verbs of the real `vireoctl` binary (`domblklist`, `attach-disk`, `detach-disk`,
//! `vol-create`, `vol-info`, `vol-resize`, and `validate --host`'s disk verdict), with
//! XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_RUNTIME_DIR in temp dirs.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod require_env;
mod store_support;
use require_env::skip_or_fail;
use store_support::snapshot;

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(env.runtime())
            .unwrap();
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn domains(&self) -> PathBuf {
        self.path("data/vireo/domains")
    }

    /// `$XDG_RUNTIME_DIR/vireo`, where runners keep their sockets and live XML.
    fn runtime(&self) -> PathBuf {
        self.path("run/vireo")
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vireoctl"))
            .args(args)
            .current_dir(self.tmp.path())
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("HOME", self.tmp.path())
            .output()
            .unwrap()
    }

    /// Runs `args`, which must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs `args`, which must fail with exit 2 and change no definition; returns stderr.
    fn refused(&self, args: &[&str]) -> String {
        let before = snapshot(&self.domains());
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            snapshot(&self.domains()),
            before,
            "{args:?} changed the store"
        );
        stderr(&out)
    }

    fn define(&self, xml: &str) {
        let file = self.file("def.xml", xml.as_bytes());
        self.ok(&["define", file.to_str().unwrap()]);
    }

    /// Pretends `name` runs: a socket that accepts (as a runner's does) and its live XML.
    fn fake_runner(&self, name: &str, live_xml: &str) -> UnixListener {
        std::fs::write(self.runtime().join(format!("{name}.xml")), live_xml).unwrap();
        UnixListener::bind(self.runtime().join(format!("{name}.sock"))).unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn vm(devices: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>vm1</name>\n  <memory unit='MiB'>64</memory>\n  \
         <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n\
         {devices}  </devices>\n</domain>\n"
    )
}

const DISKS: &str = "    <disk type='file' device='disk'>\n      \
    <driver name='qemu' type='qcow2'/>\n      <source file='/var/lib/images/root.qcow2'/>\n      \
    <target dev='vda' bus='virtio'/>\n    </disk>\n    \
    <disk type='file' device='cdrom'>\n      <target dev='sda' bus='sata'/>\n      <readonly/>\n    \
    </disk>\n    <disk type='block' device='disk'>\n      <source dev='/dev/sdz'/>\n      \
    <target dev='vdb' bus='virtio'/>\n    </disk>\n";

#[test]
fn domblklist_prints_virshs_tables() {
    let env = Env::new();
    env.define(&vm(DISKS));
    // Columns padded to their widest cell plus two; dashes: every width plus three.
    assert_eq!(
        env.ok(&["domblklist", "vm1"]),
        format!(
            " Target   Source\n{}\n \
             vda      /var/lib/images/root.qcow2\n \
             sda      -\n \
             vdb      /dev/sdz\n",
            "-".repeat(6 + 3 + 26 + 3)
        )
    );
    assert_eq!(
        env.ok(&["domblklist", "vm1", "--details"]),
        format!(
            " Type    Device   Target   Source\n{}\n \
             file    disk     vda      /var/lib/images/root.qcow2\n \
             file    cdrom    sda      -\n \
             block   disk     vdb      /dev/sdz\n",
            "-".repeat(5 + 3 + 6 + 3 + 6 + 3 + 26 + 3)
        )
    );
    let err = env.refused(&["domblklist", "nosuch"]);
    assert!(err.contains("no domain named 'nosuch'"), "{err}");
}

#[test]
fn domblklist_of_a_running_vm_reads_its_live_definition() {
    let env = Env::new();
    env.define(&vm(DISKS));
    let live = vm(
        "    <disk type='file' device='disk'><source file='/live.raw'/>\
                   <target dev='vda' bus='virtio'/></disk>\n",
    );
    let _runner = env.fake_runner("vm1", &live);
    let listed = env.ok(&["domblklist", "vm1"]);
    assert!(
        listed.contains(" vda      /live.raw\n") && !listed.contains("root.qcow2"),
        "{listed}"
    );
    let stored = env.ok(&["domblklist", "vm1", "--inactive"]);
    assert!(stored.contains("/var/lib/images/root.qcow2"), "{stored}");
}

/// A raw image: any file is one.
fn raw_image(env: &Env, name: &str) -> PathBuf {
    env.file(name, &vec![0u8; 1 << 20])
}

#[test]
fn attach_and_detach_edit_the_stored_definition() {
    let env = Env::new();
    env.define(&vm(""));
    let data = raw_image(&env, "data.raw");
    let out = env.ok(&["attach-disk", "vm1", data.to_str().unwrap(), "vdb"]);
    assert_eq!(out, "Disk attached successfully\n");
    // A relative source is made absolute (libvirt requires absolute paths).
    raw_image(&env, "second.raw");
    env.ok(&[
        "attach-disk",
        "vm1",
        "second.raw",
        "vdc",
        "--cache",
        "none",
        "--serial",
        "SN-42",
        "--mode",
        "readonly",
        "--subdriver",
        "raw",
    ]);
    let iso = raw_image(&env, "install.iso");
    env.ok(&[
        "attach-disk",
        "vm1",
        iso.to_str().unwrap(),
        "vdd",
        "--type",
        "cdrom",
    ]);
    let xml = env.ok(&["dumpxml", "vm1"]);
    let second = env.path("second.raw");
    for expected in [
        format!("<source file='{}'/>", data.display()),
        format!("<source file='{}'/>", second.display()),
        "<driver name='qemu' type='raw' cache='none'/>".to_string(),
        "<serial>SN-42</serial>".to_string(),
        "<disk type='file' device='cdrom'>".to_string(),
    ] {
        assert!(xml.contains(&expected), "{expected} missing from\n{xml}");
    }
    assert_eq!(xml.matches("<readonly/>").count(), 2, "{xml}");
    assert_schema_valid("after attach-disk", &xml);
    let listed = env.ok(&["domblklist", "vm1"]);
    assert!(
        listed.contains(&format!(" vdb      {}\n", data.display()))
            && listed.contains(" vdd      "),
        "{listed}"
    );

    let err = env.refused(&["detach-disk", "vm1", "vdz"]);
    assert!(
        err.contains("domain 'vm1' has no disk on target vdz; its disks are on: vdb, vdc, vdd"),
        "{err}"
    );
    assert_eq!(
        env.ok(&["detach-disk", "vm1", "vdc"]),
        "Disk detached successfully\n"
    );
    let xml = env.ok(&["dumpxml", "vm1"]);
    assert!(
        !xml.contains("second.raw") && !xml.contains("SN-42") && xml.contains("data.raw"),
        "{xml}"
    );
    assert!(second.exists(), "detaching keeps the image");
    assert_schema_valid("after detach-disk", &xml);
    env.ok(&["detach-disk", "vm1", "vdb"]);
    env.ok(&["detach-disk", "vm1", "vdd"]);
    assert_eq!(
        env.ok(&["domblklist", "vm1"]),
        format!(" Target   Source\n{}\n", "-".repeat(6 + 3 + 6 + 3))
    );
    assert_schema_valid("every disk detached", &env.ok(&["dumpxml", "vm1"]));
}

#[test]
fn attach_disk_refusals_name_the_disk_and_change_nothing() {
    let env = Env::new();
    env.define(&vm(""));
    let data = raw_image(&env, "data.raw");
    let data = data.to_str().unwrap();
    env.ok(&["attach-disk", "vm1", data, "vda"]);

    let err = env.refused(&["attach-disk", "vm1", data, "vda"]);
    assert!(
        err.contains("already has a disk on target vda") && err.contains("data.raw"),
        "{err}"
    );
    let err = env.refused(&["attach-disk", "vm1", data, "sdb", "--targetbus", "sata"]);
    assert!(
        err.contains("disk sdb (")
            && err.contains(
                "Vireo attaches disks on virtio only: set <target dev='vdX' bus='virtio'/>"
            ),
        "{err}"
    );
    let err = env.refused(&["attach-disk", "vm1", data, "vdb", "--cache", "directsync"]);
    assert!(err.contains("cache='directsync'"), "{err}");
    let err = env.refused(&[
        "attach-disk",
        "vm1",
        data,
        "vdb",
        "--serial",
        &"S".repeat(21),
    ]);
    assert!(err.contains("at most 20"), "{err}");
    let err = env.refused(&["attach-disk", "vm1", data, "vdb"]);
    assert!(
        err.contains("disk vdb (") && err.contains("the image is also disk vda's"),
        "{err}"
    );
    let missing = env.path("missing.qcow2");
    let err = env.refused(&["attach-disk", "vm1", missing.to_str().unwrap(), "vdb"]);
    assert!(err.contains("missing.qcow2"), "{err}");
    let err = env.refused(&["attach-disk", "nosuch", data, "vdb", "--config"]);
    assert!(err.contains("no domain named 'nosuch'"), "{err}");
    let err = env.refused(&["attach-disk", "vm1", data, "vdb", "--type", "floppy"]);
    assert!(err.contains("floppy"), "{err}");
}

#[test]
fn a_running_vm_is_changed_with_config_only() {
    let env = Env::new();
    env.define(&vm(""));
    let _runner = env.fake_runner("vm1", &vm(""));
    let data = raw_image(&env, "data.raw");
    let data = data.to_str().unwrap();
    for args in [
        vec!["attach-disk", "vm1", data, "vdb"],
        vec!["attach-disk", "vm1", data, "vdb", "--persistent"],
        vec!["detach-disk", "vm1", "vdb"],
    ] {
        let err = env.refused(&args);
        assert!(
            err.contains("domain 'vm1' is running")
                && err.contains(
                    "is not supported yet; use --config, it takes effect at the next start"
                ),
            "{args:?}: {err}"
        );
    }
    let out = env.ok(&["attach-disk", "vm1", data, "vdb", "--config"]);
    assert!(
        out.starts_with("Disk attached successfully\n") && out.contains("next start"),
        "{out}"
    );
    assert!(
        env.ok(&["dumpxml", "vm1", "--inactive"])
            .contains("data.raw")
    );
    let out = env.ok(&["detach-disk", "vm1", "vdb", "--config"]);
    assert!(out.starts_with("Disk detached successfully\n"), "{out}");
}

#[test]
fn validate_host_gives_starts_disk_verdict() {
    let env = Env::new();
    let image = raw_image(&env, "data.raw");
    let sata = vm(&format!(
        "    <disk type='file' device='disk'><source file='{}'/>\
         <target dev='sda' bus='sata'/></disk>\n",
        image.display()
    ));
    let file = env.file("sata.xml", sata.as_bytes());
    let out = env.run(&["validate", "--host", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("virtio only: set <target dev='vdX' bus='virtio'/>"),
        "{}",
        stderr(&out)
    );
    let cdrom = vm(&format!(
        "    <disk type='file' device='cdrom'><source file='{}'/>\
         <target dev='sda' bus='sata'/><readonly/></disk>\n",
        image.display()
    ));
    let file = env.file("cdrom.xml", cdrom.as_bytes());
    let out = env.run(&["validate", "--host", file.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("warning: disk sda (") && stderr(&out).contains("/dev/vda"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("<disk>:"),
        "a CD-ROM is no problem: {}",
        stderr(&out)
    );
}

#[test]
fn volumes_are_created_inspected_and_resized() {
    let env = Env::new();
    let image = env.path("a.qcow2");
    let path = image.to_str().unwrap();
    assert_eq!(
        env.ok(&["vol-create", path, "10G"]),
        format!("Vol {path} created\n")
    );
    let info = env.ok(&["vol-info", path]);
    for line in [
        "Name:           a.qcow2\n",
        "Type:           file\n",
        "Capacity:       10.00 GiB\n",
        "Format:         qcow2\n",
        "Backing:        -\n",
    ] {
        assert!(info.contains(line), "{line:?} missing from\n{info}");
    }
    assert!(info.contains("Allocation:     "), "{info}");
    let before = std::fs::read(&image).unwrap();
    let out = env.run(&["vol-create", path, "1G"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a.qcow2"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&image).unwrap(),
        before,
        "an existing file is never overwritten"
    );

    assert_eq!(
        env.ok(&["vol-resize", path, "20G"]),
        "Size of volume 'a.qcow2' successfully changed to 20G\n"
    );
    assert!(
        env.ok(&["vol-info", path])
            .contains("Capacity:       20.00 GiB\n")
    );
    let out = env.run(&["vol-resize", path, "1G"]);
    assert_eq!(out.status.code(), Some(2), "shrinking needs --shrink");
    assert!(
        env.ok(&["vol-info", path])
            .contains("Capacity:       20.00 GiB\n")
    );
    env.ok(&["vol-resize", path, "1G", "--shrink"]);
    assert!(
        env.ok(&["vol-info", path])
            .contains("Capacity:       1.00 GiB\n")
    );

    let raw = env.path("b.raw");
    env.ok(&[
        "vol-create",
        raw.to_str().unwrap(),
        "512M",
        "--format",
        "raw",
    ]);
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 512 << 20);
    let info = env.ok(&["vol-info", raw.to_str().unwrap()]);
    assert!(
        info.contains("Capacity:       512.00 MiB\n") && info.contains("Format:         raw\n"),
        "{info}"
    );

    let err = env.run(&["vol-create", env.path("c.raw").to_str().unwrap(), "10Q"]);
    assert_eq!(err.status.code(), Some(2));
    assert!(
        stderr(&err).contains("'Q' is not a unit"),
        "{}",
        stderr(&err)
    );
}

#[test]
fn attach_disk_takes_the_images_own_format() {
    let env = Env::new();
    env.define(&vm(""));
    let image = env.path("a.qcow2");
    let path = image.to_str().unwrap();
    env.ok(&["vol-create", path, "1G"]);
    let err = env.refused(&["attach-disk", "vm1", path, "vda", "--subdriver", "raw"]);
    assert!(
        err.contains("is a qcow2 image but raw was asked for"),
        "{err}"
    );
    env.ok(&["attach-disk", "vm1", path, "vda"]);
    let xml = env.ok(&["dumpxml", "vm1"]);
    assert!(xml.contains("<driver name='qemu' type='qcow2'/>"), "{xml}");
    assert_schema_valid("qcow2 disk", &xml);
    let raw = raw_image(&env, "b.raw");
    let err = env.refused(&[
        "attach-disk",
        "vm1",
        raw.to_str().unwrap(),
        "vdb",
        "--subdriver",
        "qcow2",
    ]);
    assert!(
        err.contains("is a raw image but qcow2 was asked for"),
        "{err}"
    );
}

/// libvirt's own schema check; without `virt-xml-validate` the check is skipped (or fails
/// under VIREO_REQUIRE_ENV=1).
fn assert_schema_valid(label: &str, xml: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v virt-xml-validate && command -v xmllint")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        return skip_or_fail(
            "virt-xml-validate or xmllint is not installed (apt-get install libvirt-clients \
             libxml2-utils)",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("domain.xml");
    std::fs::write(path, xml).unwrap();
    let out = Command::new("virt-xml-validate")
        .arg(path)
        .arg("domain")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{label}: virt-xml-validate rejected\n{xml}\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}
