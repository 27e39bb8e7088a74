//! Every run path checks the domain name before building a path from it (`create`, `start`,
//! `vireo-runner`, engine config preparation), and the engine reads `<memory>` and
//! `<topology>` with the domain's rules: one unit table, checked products.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vireo::cpu::guest::GuestCpuid;
use vireo::cpu::map::CpuMap;
use vireo::launch::{HostFacts, prepare_domain_with};

struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!("vireo-names-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // The runtime dir sits two levels down, so `../../x` would land in `root`.
        std::fs::create_dir_all(root.join("a/b/run")).unwrap();
        Self { root }
    }

    fn run_dir(&self) -> PathBuf {
        self.root.join("a/b/run")
    }

    fn vireoctl(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_vireoctl"), args)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_RUNTIME_DIR", self.run_dir())
            .env("XDG_STATE_HOME", self.root.join("state"))
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    fn domain_file(&self, name: &str) -> PathBuf {
        let kernel = self.root.join("kernel");
        std::fs::write(&kernel, b"not really a kernel").unwrap();
        let path = self.root.join("domain.xml");
        std::fs::write(
            &path,
            domain_xml(name, &kernel, "<memory unit='MiB'>64</memory>", ""),
        )
        .unwrap();
        path
    }

    /// Files anywhere in the sandbox other than the ones the test wrote.
    fn stray_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if !matches!(
                    path.file_name().and_then(|n| n.to_str()),
                    Some("kernel" | "domain.xml")
                ) {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn domain_xml(name: &str, kernel: &Path, memory: &str, cpu: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>{name}</name>\n  {memory}\n  <vcpu>1</vcpu>\n  {cpu}\n\
         \x20 <os>\n    <type arch='x86_64'>hvm</type>\n    <kernel>{}</kernel>\n  </os>\n</domain>\n",
        kernel.display()
    )
}

fn assert_name_refused(out: &Output, name: &str, rule: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stderr}{stdout}");
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("domain name '{name}' cannot be used")),
        "the name is named: {text}"
    );
    assert!(text.contains(rule), "the rule {rule:?} is named: {text}");
    assert!(!text.contains("talking to the runner"), "{text}");
}

#[test]
fn create_refuses_a_name_that_leaves_the_runtime_directory() {
    let sandbox = Sandbox::new("create");
    let file = sandbox.domain_file("../../x");
    let out = sandbox.vireoctl(&["create", file.to_str().unwrap()]);
    assert_name_refused(&out, "../../x", "must not contain '/'");
    assert_eq!(sandbox.stray_files(), Vec::<PathBuf>::new());
}

#[test]
fn create_refuses_slashes_and_overlong_names() {
    let sandbox = Sandbox::new("long");
    let file = sandbox.domain_file("a/b");
    let out = sandbox.vireoctl(&["create", file.to_str().unwrap()]);
    assert_name_refused(&out, "a/b", "must not contain '/'");
    let long = "n".repeat(300);
    let file = sandbox.domain_file(&long);
    let out = sandbox.vireoctl(&["create", file.to_str().unwrap()]);
    assert_name_refused(&out, &long, "at most 200 bytes");
    assert_eq!(sandbox.stray_files(), Vec::<PathBuf>::new());
}

#[test]
fn start_and_the_runner_refuse_bad_names() {
    let sandbox = Sandbox::new("start");
    let out = sandbox.vireoctl(&["start", "../x"]);
    assert_name_refused(&out, "../x", "must not contain '/'");
    let out = sandbox.vireoctl(&["start", ".hidden"]);
    assert_name_refused(&out, ".hidden", "must not start with '.'");
    let file = sandbox.domain_file("../../x");
    let out = sandbox.run(
        env!("CARGO_BIN_EXE_vireo-runner"),
        &["../../x", "--file", file.to_str().unwrap()],
    );
    assert_name_refused(&out, "../../x", "must not contain '/'");
    let out = sandbox.vireoctl(&["shutdown", "a..b"]);
    assert_name_refused(&out, "a..b", "must not contain '..'");
    assert_eq!(sandbox.stray_files(), Vec::<PathBuf>::new());
}

fn host() -> HostFacts {
    HostFacts {
        kvm_supported: GuestCpuid::default(),
        cpuid_enforced: false,
        max_vcpus: 4096,
        ..HostFacts::default()
    }
}

fn prepare_error(xml: &str) -> String {
    let map = CpuMap::builtin().unwrap();
    match prepare_domain_with(xml, &host(), &map) {
        Ok(_) => String::new(),
        Err(e) => {
            // The whole chain, as vireoctl prints it.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

#[test]
fn engine_config_refuses_bad_names() {
    let err = prepare_error(&domain_xml(
        "../../x",
        Path::new("/nonexistent"),
        "<memory unit='MiB'>64</memory>",
        "",
    ));
    assert!(
        err.contains("domain name '../../x' cannot be used"),
        "{err}"
    );
}

#[test]
fn engine_memory_units_are_the_domain_units() {
    // `define` accepts every libvirt unit, single letters in either case: so must `start`.
    for memory in [
        "<memory unit='m'>64</memory>",
        "<memory unit='M'>64</memory>",
        "<memory unit='g'>1</memory>",
        "<memory unit='PiB'>1</memory>",
        "<memory>65536</memory>",
    ] {
        let err = prepare_error(&domain_xml("vm", Path::new("/nonexistent"), memory, ""));
        assert!(!err.contains("<memory"), "{memory}: {err}");
    }
    let err = prepare_error(&domain_xml(
        "vm",
        Path::new("/nonexistent"),
        "<memory unit='furlongs'>64</memory>",
        "",
    ));
    assert!(
        err.contains("unit='furlongs'") && err.contains("KiB"),
        "{err}"
    );
    let err = prepare_error(&domain_xml(
        "vm",
        Path::new("/nonexistent"),
        "<memory unit='EiB'>100</memory>",
        "",
    ));
    assert!(err.contains("more than 2^64 bytes"), "{err}");
}

#[test]
fn engine_topology_products_that_overflow_are_errors() {
    let err = prepare_error(&domain_xml(
        "vm",
        Path::new("/nonexistent"),
        "<memory unit='MiB'>64</memory>",
        "<cpu><topology sockets='65536' dies='1' cores='65536' threads='1'/></cpu>",
    ));
    assert!(err.contains("gives more than 4294967295 vCPUs"), "{err}");
    let err = prepare_error(&domain_xml(
        "vm",
        Path::new("/nonexistent"),
        "<memory unit='MiB'>64</memory>",
        "<cpu><topology sockets='65536' clusters='65536' cores='65536' threads='65536'/></cpu>",
    ));
    assert!(err.contains("gives more than"), "{err}");
}
