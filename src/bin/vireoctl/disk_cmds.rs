//! Disk verbs: a VM's disks (`domblklist`, `attach-disk`, `detach-disk`) and disk images
//! (`vol-create`, `vol-info`, `vol-resize`), with virsh's syntax and output.
//!
//! Disks are added to and removed from the stored definition only (`launch::disk_edit`); the
//! engine cannot yet change the disks of a running VM, so on a running domain only `--config`
//! is accepted, and the change takes effect at its next start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use vireo::domain::units::parse_size;
use vireo::domain::{Domain, DomainStore};
use vireo::engine::block;
use vireo::engine::config::DiskFormat;
use vireo::launch::disk_edit::{DiskToAttach, attach_disk, detach_disk};
use vireo::launch::runner;

#[derive(Subcommand)]
pub enum DiskCommand {
    /// List a VM's disks: target and source (--details adds type and device). A running VM's
    /// live definition, else the stored one.
    Domblklist {
        /// The domain's name.
        domain: String,
        /// Also show each disk's type and device.
        #[arg(long)]
        details: bool,
        /// List the stored definition's disks even while the VM runs.
        #[arg(long)]
        inactive: bool,
    },
    /// Create a disk image of SIZE (10G, 512M, 1T, or bytes): qcow2 unless --format raw.
    VolCreate {
        /// The new image; an existing file is never overwritten.
        path: PathBuf,
        /// The size the guest sees: a whole number with an optional unit (10G, 512M, 1T, 4096).
        size: String,
        /// The image format.
        #[arg(long, default_value = "qcow2", value_parser = ["qcow2", "raw"])]
        format: String,
    },
    /// Show a disk image's format, size the guest sees, space used and backing file.
    VolInfo {
        /// The image.
        path: PathBuf,
    },
    /// Grow a disk image to SIZE (10G, 512M, 1T, or bytes); --shrink allows making it smaller.
    VolResize {
        /// The image; no running VM may hold it.
        path: PathBuf,
        /// The new size.
        size: String,
        /// Allow a smaller size (the guest's data past the end is lost).
        #[arg(long)]
        shrink: bool,
    },
    /// Add a disk to a VM's definition (virtio; takes effect at the next start).
    AttachDisk {
        /// The domain's name.
        domain: String,
        /// The image file; it must exist (see vol-create).
        source: PathBuf,
        /// The guest's disk name: vda, vdb, … (the guest sees /dev/vdX in target order).
        target: String,
        /// The image format; by default the image's own (raw or qcow2).
        #[arg(long, value_parser = ["raw", "qcow2"])]
        subdriver: Option<String>,
        /// The bus (Vireo attaches disks on virtio only).
        #[arg(long, default_value = "virtio")]
        targetbus: String,
        /// A disk, or a CD-ROM (attached read-only; the guest sees it as a disk).
        #[arg(long = "type", default_value = "disk", value_parser = ["disk", "cdrom"])]
        device: String,
        /// readonly: the guest cannot write the disk.
        #[arg(long, value_parser = ["readonly"])]
        mode: Option<String>,
        /// Cache mode: none, writeback, writethrough or unsafe.
        #[arg(long)]
        cache: Option<String>,
        /// The serial number the guest reads (at most 20 bytes).
        #[arg(long)]
        serial: Option<String>,
        /// Change the stored definition (required while the VM runs).
        #[arg(long)]
        config: bool,
        /// Change the definition, and the running VM if any (not supported yet while it runs).
        #[arg(long)]
        persistent: bool,
    },
    /// Remove a disk from a VM's definition (the image is kept).
    DetachDisk {
        /// The domain's name.
        domain: String,
        /// The disk's target (vda, vdb, …).
        target: String,
        /// Change the stored definition (required while the VM runs).
        #[arg(long)]
        config: bool,
        /// Change the definition, and the running VM if any (not supported yet while it runs).
        #[arg(long)]
        persistent: bool,
    },
}

/// The domain a name, id or UUID stands for (see `vireo::launch::lookup::resolve`).
fn resolve(domain: &str) -> anyhow::Result<String> {
    Ok(vireo::launch::lookup::resolve(
        &DomainStore::open_default()?,
        domain,
    )?)
}

pub fn run(cmd: DiskCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DiskCommand::Domblklist {
            domain,
            details,
            inactive,
        } => print!("{}", domblklist(&resolve(&domain)?, details, inactive)?),
        DiskCommand::VolCreate { path, size, format } => {
            let bytes = parse_size(&size).map_err(anyhow::Error::msg)?;
            let format = DiskFormat::from_libvirt(&format).context("clap checked the format")?;
            block::create(&path, format, bytes, &mut |_| {})?;
            println!("Vol {} created", path.display());
        }
        DiskCommand::VolInfo { path } => print!("{}", vol_info(&path)?),
        DiskCommand::VolResize { path, size, shrink } => {
            let bytes = parse_size(&size).map_err(anyhow::Error::msg)?;
            if let Err(e) = block::resize(&path, bytes, shrink) {
                match vireo::launch::disks::explain_in_use(&e, "") {
                    Some(message) => bail!(message),
                    None => return Err(e.into()),
                }
            }
            println!(
                "Size of volume '{}' successfully changed to {size}",
                file_name(&path)
            );
        }
        DiskCommand::AttachDisk {
            domain,
            source,
            target,
            subdriver,
            targetbus,
            device,
            mode,
            cache,
            serial,
            config,
            persistent,
        } => {
            let domain = resolve(&domain)?;
            let running = refuse_live(&domain, config, persistent, "attach")?;
            let disk = DiskToAttach {
                source,
                target,
                format: subdriver.as_deref().and_then(DiskFormat::from_libvirt),
                bus: targetbus,
                cdrom: device == "cdrom",
                readonly: mode.is_some(),
                cache,
                serial,
            };
            attach_disk(&DomainStore::open_default()?, &domain, &disk)?;
            println!("Disk attached successfully");
            if running {
                println!(
                    "The stored definition of '{domain}' changed; the running VM gets the disk \
                     at its next start"
                );
            }
        }
        DiskCommand::DetachDisk {
            domain,
            target,
            config,
            persistent,
        } => {
            let domain = resolve(&domain)?;
            let running = refuse_live(&domain, config, persistent, "detach")?;
            detach_disk(&DomainStore::open_default()?, &domain, &target)?;
            println!("Disk detached successfully");
            if running {
                println!(
                    "The stored definition of '{domain}' changed; the running VM keeps the disk \
                     until it stops"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `domain` runs; an error when it does and the change would have to reach the running
/// VM (no `--config`, or `--persistent`, which also means live).
pub(crate) fn refuse_live(
    domain: &str,
    config: bool,
    persistent: bool,
    verb: &str,
) -> anyhow::Result<bool> {
    vireo::domain::name::check(domain)?;
    let running = runner::is_running(domain);
    if running && (!config || persistent) {
        bail!(
            "domain '{domain}' is running: live {verb} is not supported yet; use --config, it \
             takes effect at the next start"
        );
    }
    Ok(running)
}

/// `domblklist`'s table, virsh's layout.
fn domblklist(name: &str, details: bool, inactive: bool) -> anyhow::Result<String> {
    let live = (!inactive)
        .then(|| runner::live_xml(name))
        .flatten()
        .map(|xml| Domain::parse(&xml))
        .transpose()?;
    let domain = match live {
        Some(domain) => domain,
        None => DomainStore::open_default()?.get(name)?.domain,
    };
    let mut header = vec!["Target", "Source"];
    if details {
        header.splice(0..0, ["Type", "Device"]);
    }
    let rows: Vec<Vec<String>> = domain
        .disks()
        .into_iter()
        .map(|d| {
            let mut row = vec![
                d.target_dev.unwrap_or_else(|| "-".into()),
                d.source.unwrap_or_else(|| "-".into()),
            ];
            if details {
                // libvirt's defaults when the attributes are absent.
                row.splice(
                    0..0,
                    [
                        d.disk_type.unwrap_or_else(|| "file".into()),
                        d.device.unwrap_or_else(|| "disk".into()),
                    ],
                );
            }
            row
        })
        .collect();
    Ok(table(&header, &rows))
}

/// virsh's table (`vshTablePrint`): each cell after one space, columns padded to their widest
/// cell plus two, a dashed line as wide as every column plus three.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push(' ');
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    out.push_str(&"-".repeat(widths.iter().map(|w| w + 3).sum()));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `vol-info`: virsh's fields (Name, Type, Capacity, Allocation) plus Format and Backing.
fn vol_info(path: &Path) -> anyhow::Result<String> {
    let info = block::inspect(path)?;
    let field = |name: &str, value: &str| format!("{:<15} {value}\n", format!("{name}:"));
    Ok([
        field("Name", &file_name(path)),
        field("Type", "file"),
        field("Capacity", &pretty_capacity(info.virtual_size)),
        field("Allocation", &pretty_capacity(info.allocated)),
        field("Format", info.format.as_str()),
        field(
            "Backing",
            &info
                .backing
                .map(|b| b.display().to_string())
                .unwrap_or_else(|| "-".into()),
        ),
    ]
    .concat())
}

/// virsh's `vshPrettyCapacity`: two decimals in the largest binary unit below the value.
fn pretty_capacity(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_laid_out_like_virsh() {
        let rows = vec![
            vec!["vda".to_string(), "/var/lib/images/a.qcow2".to_string()],
            vec!["sda".to_string(), "-".to_string()],
        ];
        assert_eq!(
            table(&["Target", "Source"], &rows),
            format!(
                " Target   Source\n{}\n \
                 vda      /var/lib/images/a.qcow2\n \
                 sda      -\n",
                "-".repeat(6 + 3 + 23 + 3)
            )
        );
    }

    #[test]
    fn capacities_are_pretty_like_virsh() {
        assert_eq!(pretty_capacity(512), "512.00 B");
        assert_eq!(pretty_capacity(196 << 10), "196.00 KiB");
        assert_eq!(pretty_capacity(10 << 30), "10.00 GiB");
        assert_eq!(pretty_capacity(1536 << 20), "1.50 GiB");
    }
}
