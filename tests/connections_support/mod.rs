//! Shared pieces of the connection tests: `vireoctl` with private XDG directories, and a
//! domain XML for a given hypervisor type.
#![allow(dead_code)]

pub mod libvirtd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private home for `vireoctl`: its own preferences, domain store and runtime directory.
pub struct Home {
    pub tmp: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run")).unwrap();
        Home { tmp }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs `vireoctl args` with `VIREO_DEFAULT_URI` as given (unset when `None`).
    pub fn run_with_default(&self, default_uri: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vireoctl"));
        cmd.args(args)
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("HOME", self.tmp.path())
            .env_remove("VIREO_DEFAULT_URI");
        if let Some(uri) = default_uri {
            cmd.env("VIREO_DEFAULT_URI", uri);
        }
        cmd.output().expect("run vireoctl")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_default(None, args)
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Runs and expects exit `code` with `needle` on stderr; returns stdout.
    pub fn fails(&self, code: i32, args: &[&str], needle: &str) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: wanted {needle:?} in {}",
            stderr(&out)
        );
        stdout(&out)
    }

    /// Writes `text` to a file in the home and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path_str(&path)
    }
}

pub fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A minimal domain of hypervisor `virt_type` (`test`, `kvm`, `qemu`) that libvirt can start:
/// no disks (the firmware finds nothing to boot and waits), ACPI on (libvirt 9 would otherwise
/// pass QEMU 10 the `-no-acpi` it no longer has).
pub fn domain_xml(name: &str, virt_type: &str, cpu: &str) -> String {
    format!(
        "<domain type='{virt_type}'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n  \
         <vcpu>1</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n  <features><acpi/></features>\n  \
         {cpu}\n</domain>\n"
    )
}
