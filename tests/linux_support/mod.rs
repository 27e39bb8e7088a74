//! Helpers for the Linux-guest tests: the test bed's guest images, booting a scenario of the
//! guest's /init, reading its console, and comparing the CPUID it saw with Vireo's table.
#![allow(dead_code)]

pub mod disk;
pub mod net;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vireo::cpu::guest::GuestCpuid;
use vireo::cpu::map::CpuMap;
use vireo::engine::{Vm, VmConfig, VmState, cpuid_for_vcpu};
use vireo::launch::{HostFacts, PreparedDomain, prepare_domain};

/// The kernel and initramfs `tools/testbed build` makes.
pub fn guest_images() -> (PathBuf, PathBuf) {
    let dir = match std::env::var_os("VIREO_TESTBED_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/vireo/testbed"),
    };
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("l2.cpio.gz"));
    assert!(
        kernel.exists() && initrd.exists(),
        "no Linux test guest in {}: run tools/testbed build",
        dir.display()
    );
    (kernel, initrd)
}

/// This host's facts, measured once per test process.
pub fn host() -> &'static HostFacts {
    static HOST: OnceLock<HostFacts> = OnceLock::new();
    HOST.get_or_init(|| HostFacts::probe().expect("probing /dev/kvm"))
}

/// Named CPU models this host's KVM can give in full that can run a 64-bit kernel (`lm`),
/// base names only (versions and aliases repeat a base model's table).
pub fn usable_64bit_models() -> Vec<String> {
    let map = CpuMap::builtin().expect("built-in CPU map");
    let available = vireo::cpu::guest::map_catalog::to_cpuid_data(&host().kvm_supported);
    map.models()
        .filter(|m| m.parent().is_none() && m.features().iter().any(|f| f == "lm"))
        .filter(|m| {
            vireo::cpu::missing_features(&map, m.name(), &available)
                .is_ok_and(|missing| missing.is_empty())
        })
        .map(|m| m.name().to_string())
        .collect()
}

/// A Linux guest to boot: a scenario of the test guest's /init and the domain around it.
#[derive(Clone)]
pub struct Guest {
    scenario: String,
    name: Option<String>,
    devices: String,
    vcpus: u32,
    cpu: String,
    on_reboot: String,
    extra_cmdline: String,
    paravirt: bool,
}

impl Guest {
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.into(),
            name: None,
            devices: String::new(),
            vcpus: 1,
            cpu: String::new(),
            on_reboot: "destroy".into(),
            extra_cmdline: String::new(),
            // In the nested test bed the KVM paravirtual leaves stay hidden unless a test needs
            // them: a guest using them (kvm-clock, async PF, PV EOI, …) makes L1's emulated
            // CPU lose its timer interrupt far more often (see tools/testbed).
            paravirt: std::env::var_os("VIREO_IN_TESTBED").is_none(),
        }
    }

    /// Shows or hides KVM's paravirtual CPUID leaves (`<kvm><hidden state='on'/>`).
    pub fn paravirt(mut self, on: bool) -> Self {
        self.paravirt = on;
        self
    }

    pub fn vcpus(mut self, n: u32) -> Self {
        self.vcpus = n;
        self
    }

    pub fn cpu(mut self, xml: &str) -> Self {
        self.cpu = xml.into();
        self
    }

    pub fn on_reboot(mut self, action: &str) -> Self {
        self.on_reboot = action.into();
        self
    }

    pub fn cmdline(mut self, extra: &str) -> Self {
        self.extra_cmdline = extra.into();
        self
    }

    /// The domain's name (default `linux-SCENARIO`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a device element (e.g. a `<disk>`, see [`disk::disk_xml`]) to `<devices>`, after
    /// those added before.
    pub fn device(mut self, xml: &str) -> Self {
        self.devices.push_str(xml);
        self
    }

    /// The domain's name.
    pub fn domain_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("linux-{}", self.scenario))
    }

    /// Writes the domain XML to `dir/NAME.xml` (for `vireoctl create`) and returns its path.
    pub fn write_xml(&self, dir: &std::path::Path) -> PathBuf {
        let path = dir.join(format!("{}.xml", self.domain_name()));
        std::fs::write(&path, self.xml())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The domain XML, as a user would write it.
    pub fn xml(&self) -> String {
        let (kernel, initrd) = guest_images();
        format!(
            "<domain type='kvm'><name>{}</name><memory unit='MiB'>256</memory>\
             <vcpu>{}</vcpu>{}{}<os><type arch='x86_64'>hvm</type><kernel>{}</kernel>\
             <initrd>{}</initrd><cmdline>console=ttyS0 quiet nokaslr panic=-1 vireo.test={} {}</cmdline>\
             </os><on_poweroff>destroy</on_poweroff><on_reboot>{}</on_reboot>\
             <on_crash>destroy</on_crash>{}</domain>",
            self.domain_name(),
            self.vcpus,
            self.cpu,
            if self.paravirt {
                ""
            } else {
                "<features><kvm><hidden state='on'/></kvm></features>"
            },
            kernel.display(),
            initrd.display(),
            self.scenario,
            self.extra_cmdline,
            self.on_reboot,
            if self.devices.is_empty() {
                String::new()
            } else {
                format!("<devices>{}</devices>", self.devices)
            }
        )
    }

    /// Starts the guest.
    pub fn start(&self) -> Running {
        let mut prepared = prepare_domain(&self.xml(), host())
            .unwrap_or_else(|e| panic!("preparing {}: {e:?}", self.xml()));
        let network = prepared
            .start_network()
            .unwrap_or_else(|e| panic!("starting the network: {e}"));
        let vm = Vm::start(prepared.config.clone()).expect("starting the VM");
        Running {
            vm,
            prepared,
            network,
        }
    }
}

/// A started guest.
pub struct Running {
    pub vm: Vm,
    pub prepared: PreparedDomain,
    /// The passt processes of its network cards, stopped when the guest is dropped.
    pub network: vireo::launch::passt::NetworkBackends,
}

impl Running {
    /// The console output so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.vm.console().scrollback()).into_owned()
    }

    /// Waits until the console shows `needle`; panics with the console's tail after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        self.wait_for_count(needle, 1, timeout);
    }

    /// Waits until the console shows `needle` `count` times.
    pub fn wait_for_count(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            if text.matches(needle).count() >= count {
                return;
            }
            if self.vm.state().is_final() || Instant::now() > deadline {
                panic!(
                    "waited {timeout:?} for {count}× '{needle}'; VM {}; console:\n{}",
                    self.vm.state(),
                    tail(&text, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the VM to end (forcing it off after `timeout`) and returns what happened.
    pub fn finish(self, timeout: Duration) -> Finished {
        let state = self.vm.wait_timeout(timeout).unwrap_or_else(|| {
            let text = self.text();
            self.vm.force_off();
            panic!(
                "the guest was still running after {timeout:?}; console:\n{}",
                tail(&text, 40)
            )
        });
        Finished {
            state,
            output: self.text(),
            config: self.prepared.config.clone(),
        }
    }
}

/// A guest that has ended.
pub struct Finished {
    pub state: VmState,
    pub output: String,
    pub config: VmConfig,
}

/// Boots `guest` and waits for it to end.
pub fn boot(guest: &Guest, timeout: Duration) -> Finished {
    guest.start().finish(timeout)
}

impl Finished {
    pub fn tail(&self, n: usize) -> String {
        tail(&self.output, n)
    }

    /// What vCPU `vcpu` saw, against the table Vireo programmed for it: every leaf.
    pub fn compare_cpuid(&self, vcpu: u32) -> Result<(), String> {
        compare(
            &cpuid_for_vcpu(&self.config, vcpu),
            &guest_cpuid(&self.output, vcpu)?,
            |_| true,
        )
    }

    /// As [`Self::compare_cpuid`], for the per-CPU topology leaves the guest dumps on every CPU.
    pub fn compare_cpuid_topology(&self, vcpu: u32) -> Result<(), String> {
        compare(
            &cpuid_for_vcpu(&self.config, vcpu),
            &guest_cpuid(&self.output, vcpu)?,
            |leaf| matches!(leaf, 1 | 4 | 0xb | 0x1f | 0x8000_001e),
        )
    }
}

/// Leaves for which the guest's cpuid-dump reads subleaves beyond 0.
const INDEXED: [u32; 19] = [
    4,
    7,
    0xb,
    0xd,
    0xf,
    0x10,
    0x12,
    0x14,
    0x17,
    0x18,
    0x1d,
    0x1e,
    0x1f,
    0x20,
    0x23,
    0x24,
    0x8000_001d,
    0x8000_0020,
    0x8000_0026,
];

/// Bits the CPU derives at run time from the guest's own control registers, so no table can
/// fix them: OSXSAVE (CR4.OSXSAVE), OSPKE (CR4.PKE), and XSAVE's area sizes for the enabled XCR0
/// and XSS. (leaf, subleaf, register index, mask of bits to ignore).
const DYNAMIC: [(u32, u32, usize, u32); 4] = [
    (1, 0, 2, 1 << 27),
    (7, 0, 2, 1 << 4),
    (0xd, 0, 1, u32::MAX),
    (0xd, 1, 1, u32::MAX),
];

/// What the CPUID instruction returns for a subleaf the table lacks: zeros, except that the
/// topology leaves echo the subleaf in ECX[7:0] (an "invalid" level, as the SDM specifies and
/// KVM emulates).
fn absent(leaf: u32, sub: u32) -> [u32; 4] {
    if matches!(leaf, 0xb | 0x1f) {
        [0, 0, sub & 0xff, 0]
    } else {
        [0; 4]
    }
}

fn masked(leaf: u32, sub: u32, regs: [u32; 4]) -> [u32; 4] {
    let mut r = regs;
    for (l, s, i, mask) in DYNAMIC {
        if l == leaf && s == sub {
            r[i] &= !mask;
        }
    }
    r
}

/// What the guest's cpuid-dump printed for one CPU.
pub struct GuestDump {
    /// (leaf, subleaf) → [eax, ebx, ecx, edx].
    pub regs: BTreeMap<(u32, u32), [u32; 4]>,
    /// Enumerating leaf → the subleaf that ended its enumeration (nothing dumped past it).
    pub stops: BTreeMap<u32, u32>,
}

/// The CPUID lines the guest printed for `cpu`.
pub fn guest_cpuid(output: &str, cpu: u32) -> Result<GuestDump, String> {
    if !output.contains("VIREO-CPUID end") {
        return Err("the guest printed no complete CPUID dump".into());
    }
    let prefix = format!("VIREO-CPUID cpu={cpu} ");
    let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let mut map = BTreeMap::new();
    let mut stops = BTreeMap::new();
    for l in output
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix(&prefix))
    {
        let fields: BTreeMap<&str, u32> = l
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k, hex(v)?)))
            .collect();
        let get = |k: &str| fields.get(k).copied().ok_or(format!("no {k} in '{l}'"));
        if let Some(&stop) = fields.get("stop") {
            stops.insert(get("leaf")?, stop);
            continue;
        }
        map.insert(
            (get("leaf")?, get("sub")?),
            [get("eax")?, get("ebx")?, get("ecx")?, get("edx")?],
        );
    }
    if map.is_empty() {
        return Err(format!("the guest printed no CPUID for CPU {cpu}"));
    }
    Ok(GuestDump { regs: map, stops })
}

fn compare(
    table: &GuestCpuid,
    dump: &GuestDump,
    leaves: impl Fn(u32) -> bool,
) -> Result<(), String> {
    let guest = &dump.regs;
    // Past the subleaf that ends an enumeration the guest dumped nothing to compare.
    let dumped = |leaf: u32, sub: u32| dump.stops.get(&leaf).is_none_or(|&stop| sub <= stop);
    let mut diffs = Vec::new();
    let mut expected = BTreeMap::new();
    for e in table.entries() {
        expected.insert((e.leaf, e.subleaf), [e.eax, e.ebx, e.ecx, e.edx]);
    }
    let show = |r: [u32; 4]| format!("{:08x} {:08x} {:08x} {:08x}", r[0], r[1], r[2], r[3]);
    for (&(leaf, sub), &want) in expected
        .iter()
        .filter(|((l, s), _)| leaves(*l) && dumped(*l, *s))
    {
        let seen = match guest.get(&(leaf, sub)) {
            Some(&r) => r,
            // The guest omits all-zero subleaves of indexed leaves, and dumps no others.
            None if sub > 0 && INDEXED.contains(&leaf) => absent(leaf, sub),
            None if sub > 0 => continue,
            None => {
                diffs.push(format!("leaf {leaf:#x}: not visible to the guest"));
                continue;
            }
        };
        if masked(leaf, sub, seen) != masked(leaf, sub, want) {
            diffs.push(format!(
                "leaf {leaf:#x}.{sub}: guest {} table {}",
                show(seen),
                show(want)
            ));
        }
    }
    for (&(leaf, sub), &seen) in guest.iter().filter(|((l, _), _)| leaves(*l)) {
        if !expected.contains_key(&(leaf, sub))
            && masked(leaf, sub, seen) != masked(leaf, sub, absent(leaf, sub))
        {
            diffs.push(format!(
                "leaf {leaf:#x}.{sub}: guest {} but the table has no such leaf",
                show(seen)
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

/// The guest's /proc/cpuinfo flags.
pub fn cpu_flags(output: &str) -> Vec<String> {
    line(output, "VIREO-L2 FLAGS")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The rest of the first console line starting with `key`.
pub fn line(output: &str, key: &str) -> String {
    lines(output, key)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no '{key}' line in:\n{}", tail(output, 40)))
}

/// The rest of every console line starting with `key`.
pub fn lines(output: &str, key: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix(key))
        .map(|rest| rest.trim().to_string())
        .collect()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..].join("\n")
}

/// Boots the same guest under QEMU `-machine q35` with KVM (the reference platform) and returns
/// its serial output.
pub fn boot_qemu_q35(scenario: &str) -> String {
    let (kernel, initrd) = guest_images();
    let out = std::process::Command::new("timeout")
        .args([
            "300",
            "qemu-system-x86_64",
            "-machine",
            "q35",
            "-accel",
            "kvm",
            "-cpu",
            "host",
        ])
        .args([
            "-m",
            "256",
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(["-serial", "stdio", "-no-reboot", "-kernel"])
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 quiet panic=-1 vireo.test={scenario}"
        ))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running qemu-system-x86_64 (tools/testbed setup installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The kernel's messages of level warning or worse (`dmesg -r` lines), with numbers and
/// addresses blanked so that two boots compare.
pub fn boot_warnings(output: &str) -> std::collections::BTreeSet<String> {
    lines(output, "VIREO-L2 DMESG")
        .into_iter()
        .filter_map(|l| {
            let rest = l.strip_prefix('<')?;
            let (level, message) = rest.split_once('>')?;
            let level: u32 = level.parse().ok()?;
            let message = message.split_once(']').map_or(message, |(_, m)| m).trim();
            (level & 7 <= 4).then(|| blank_numbers(message))
        })
        .collect()
}

fn blank_numbers(message: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_hexdigit() && (in_number || c.is_ascii_digit()) || (in_number && c == 'x') {
            if !in_number {
                out.push('#');
                in_number = true;
            }
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}
