//! CPU verbs of `vireoctl`: CPUID dumps, decode, compare, baseline, capabilities.
//!
//! Output is libvirt-format XML, byte-stable, so scripts and tests can compare it with
//! libvirt's own answers. Errors (bad XML, unknown model/feature/policy, vendor mismatch, …)
//! exit 2 through `main`; a negative compare answer exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use vireo::cpu::{
    BaselineFlags, CompareOutcome, CpuDef, CpuMap, CpuidData, baseline, compare_explained,
    decode_guest, decode_host, domcapabilities_cpu_xml, host_model, model_usability,
};
use vireo::host::{cpuid::read_host_cpuid, kvm::supported_cpuid};

#[derive(Subcommand)]
pub enum CpuCommand {
    /// Print this host's CPUID (or, with --kvm, what KVM can give a guest) as libvirt <cpudata>.
    CpuidDump {
        /// Dump KVM_GET_SUPPORTED_CPUID instead of the raw CPU.
        #[arg(long)]
        kvm: bool,
    },
    /// Decode a <cpudata> dump into a libvirt <cpu> (host form, or guest form with --guest).
    CpuDecode {
        /// Print the guest form (unversioned model, require/disable policies).
        #[arg(long)]
        guest: bool,
        /// A <cpudata arch='x86'> file.
        file: PathBuf,
    },
    /// Compare a <cpu> with a host CPU: prints identical, superset or incompatible: FEATURES.
    CpuCompare {
        /// Host <cpu> file (or capabilities XML); without it, what this host's KVM can give.
        #[arg(long)]
        host: Option<PathBuf>,
        /// The CPU to check: the first <cpu> of the file, which may be a domain, capabilities
        /// or domain capabilities XML (as virsh reads it).
        cpu_file: PathBuf,
    },
    /// Print the baseline <cpu> all given CPUs can run.
    CpuBaseline {
        /// List every feature of the resulting model.
        #[arg(long)]
        features: bool,
        /// Leave out features that block migration (invtsc, …).
        #[arg(long)]
        migratable: bool,
        /// Files holding <cpu> elements, domain, capabilities or domain capabilities XML (every
        /// CPU virsh would find is an input), or libvirt's <cpuTest> lists.
        files: Vec<PathBuf>,
    },
    /// Print this host's capabilities (host CPU) in libvirt's format.
    Capabilities,
    /// Print what guests can get on this host: host-passthrough, host-model, usable models.
    Domcapabilities,
    /// List the known CPU model names, one per line.
    CpuModels {
        /// The architecture (virsh takes one; only x86_64 and its aliases have models here).
        arch: Option<String>,
    },
    /// List the CPU features the CPU map knows, one per line (the names `<feature name=…>`
    /// takes); --details adds where each lives (CPUID leaf/register/bit or MSR) and its aliases.
    CpuFeatures {
        #[arg(long)]
        details: bool,
    },
}

/// One `cpu-features` line: the name, and with `details` its bit and aliases.
fn feature_line(feature: &vireo::cpu::map::CpuFeature, details: bool) -> String {
    use vireo::cpu::map::FeatureBit;
    if !details {
        return format!("{}\n", feature.name());
    }
    let place = match feature.bit() {
        FeatureBit::Cpuid {
            leaf,
            subleaf: 0,
            register,
            bit,
        } => format!("cpuid {leaf:#x} {} {bit}", register.name()),
        FeatureBit::Cpuid {
            leaf,
            subleaf,
            register,
            bit,
        } => format!("cpuid {leaf:#x}.{subleaf} {} {bit}", register.name()),
        FeatureBit::Msr { index, bit } => format!("msr {index:#x} {bit}"),
    };
    let aliases = if feature.aliases().is_empty() {
        String::new()
    } else {
        format!("  alias {}", feature.aliases().join(", "))
    };
    format!("{:<24} {place}{aliases}\n", feature.name())
}

/// Writes `text` to stdout; a closed pipe (`vireoctl … | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_map() -> anyhow::Result<CpuMap> {
    CpuMap::load().context("loading the CPU map")
}

pub fn run(cmd: CpuCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CpuCommand::CpuidDump { kvm } => {
            let data = if kvm {
                supported_cpuid()?
            } else {
                read_host_cpuid()
            };
            emit(&data.to_xml())?;
        }
        CpuCommand::CpuDecode { guest, file } => {
            let map = load_map()?;
            let data = CpuidData::from_xml(&read(&file)?)
                .with_context(|| format!("{}", file.display()))?;
            let cpu = if guest {
                decode_guest(&map, &data)?
            } else {
                decode_host(&map, &data)?
            };
            emit(&cpu.to_xml())?;
        }
        CpuCommand::CpuCompare { host, cpu_file } => {
            return compare_cmd(host.as_deref(), &cpu_file);
        }
        CpuCommand::CpuBaseline {
            features,
            migratable,
            files,
        } => {
            let map = load_map()?;
            let mut cpus = Vec::new();
            for file in &files {
                cpus.extend(
                    CpuDef::all_from_xml(&read(file)?)
                        .with_context(|| format!("{}", file.display()))?,
                );
            }
            let flags = BaselineFlags {
                expand_features: features,
                migratable,
            };
            emit(&baseline(&map, &cpus, flags)?.to_xml())?;
        }
        CpuCommand::Capabilities => {
            let map = load_map()?;
            let host = decode_host(&map, &read_host_cpuid())?;
            emit(&format!(
                "<capabilities>\n  <host>\n{}  </host>\n</capabilities>\n",
                host.to_xml_indented(4)
            ))?;
        }
        CpuCommand::Domcapabilities => {
            let map = load_map()?;
            let kvm = supported_cpuid()?;
            let models = model_usability(&map, &kvm);
            let host_model = host_model(&map, &kvm).ok();
            emit(&format!(
                "<domainCapabilities>\n  <domain>kvm</domain>\n  <arch>x86_64</arch>\n{}</domainCapabilities>\n",
                domcapabilities_cpu_xml(host_model.as_ref(), &models, 2)
            ))?;
        }
        CpuCommand::CpuFeatures { details } => {
            let map = load_map()?;
            let lines: String = map
                .features()
                .iter()
                .map(|f| feature_line(f, details))
                .collect();
            emit(&lines)?;
        }
        CpuCommand::CpuModels { arch } => {
            if let Some(arch) = arch.filter(|a| !matches!(a.as_str(), "x86_64" | "x86" | "i686")) {
                bail!(
                    "no CPU models for architecture '{arch}': Vireo runs x86_64 guests; use x86_64"
                );
            }
            let names: String = load_map()?
                .models()
                .map(|m| format!("{}\n", m.name()))
                .collect();
            emit(&names)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn compare_cmd(host_file: Option<&Path>, cpu_file: &Path) -> anyhow::Result<ExitCode> {
    let map = load_map()?;
    // Like virsh: the first CPU of the file, which may be a capabilities or domain document.
    let cpu = CpuDef::first_from_xml(&read(cpu_file)?)
        .with_context(|| format!("{}", cpu_file.display()))?;
    let host = match host_file {
        Some(path) => {
            CpuDef::first_from_xml(&read(path)?).with_context(|| format!("{}", path.display()))?
        }
        None => decode_host(&map, &supported_cpuid()?).context("decoding what KVM can give")?,
    };
    let (outcome, why) = compare_explained(&map, &host, &cpu)?;
    match outcome {
        CompareOutcome::Identical => emit("identical\n")?,
        CompareOutcome::Superset => emit("superset\n")?,
        CompareOutcome::Incompatible { features } => {
            emit(&format!("incompatible: {}\n", features.join(" ")))?;
            if let Some(why) = why {
                eprintln!("{why}");
            }
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
