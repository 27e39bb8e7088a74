//! Network verbs with virsh's syntax and output: `domiflist`, `domifaddr`, `attach-interface`,
//! `detach-interface`, `domif-setlink`, `domif-getlink`. Interfaces are added to and removed from the stored definition only
//! (`launch::nic_edit`); on a running domain only `--config` is accepted.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use vireo::domain::{Domain, DomainStore};
use vireo::engine::config::format_mac;
use vireo::launch::nic_edit::{NicToAttach, attach_interface, detach_interface, set_link_state};
use vireo::launch::nics::generated_mac;
use vireo::launch::{passt, runner};

use crate::disk_cmds::{refuse_live, table};

#[derive(Subcommand)]
pub enum NetCommand {
    /// List a VM's network interfaces: interface, type, source, model and MAC. A running VM's
    /// live definition, else the stored one.
    Domiflist {
        /// The domain's name.
        domain: String,
        /// List the stored definition's interfaces even while the VM runs.
        #[arg(long)]
        inactive: bool,
    },
    /// Show a running VM's IP addresses (user-mode: the addresses passt hands the guest).
    Domifaddr {
        /// The domain's name.
        domain: String,
    },
    /// Add a network interface to a VM's definition (takes effect at the next start).
    AttachInterface {
        /// The domain's name.
        domain: String,
        /// The interface type: user (user-mode networking through passt).
        #[arg(value_name = "TYPE")]
        if_type: String,
        /// The source (unused for user-mode interfaces).
        source: Option<String>,
        /// The MAC address; one in 52:54:00:xx:xx:xx is chosen when absent.
        #[arg(long)]
        mac: Option<String>,
        /// The card model (Vireo's engine has virtio).
        #[arg(long)]
        model: Option<String>,
        /// Change the stored definition (required while the VM runs).
        #[arg(long)]
        config: bool,
        /// Change the definition, and the running VM if any (not supported yet while it runs).
        #[arg(long)]
        persistent: bool,
    },
    /// Remove a network interface from a VM's definition.
    DetachInterface {
        /// The domain's name.
        domain: String,
        /// The interface type (user).
        #[arg(value_name = "TYPE")]
        if_type: String,
        /// The MAC address of the interface (needed when several have this type).
        #[arg(long)]
        mac: Option<String>,
        /// Change the stored definition (required while the VM runs).
        #[arg(long)]
        config: bool,
        /// Change the definition, and the running VM if any (not supported yet while it runs).
        #[arg(long)]
        persistent: bool,
    },
    /// Plug or unplug a network card (`<link state>`): an unplugged card is there with its link
    /// down, and no passt runs for it.
    #[command(name = "domif-setlink")]
    DomifSetlink {
        /// The domain's name.
        domain: String,
        /// The card's MAC address.
        interface: String,
        /// up or down.
        #[arg(value_parser = ["up", "down"])]
        state: String,
        /// Change the stored definition (required while the VM runs).
        #[arg(long)]
        config: bool,
    },
    /// Show whether a network card is plugged (`<link state>`: up or down).
    #[command(name = "domif-getlink")]
    DomifGetlink {
        /// The domain's name.
        domain: String,
        /// The card's MAC address.
        interface: String,
        /// Read the stored definition even while the VM runs.
        #[arg(long)]
        config: bool,
    },
}

pub fn run(cmd: NetCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NetCommand::Domiflist { domain, inactive } => print!("{}", domiflist(&domain, inactive)?),
        NetCommand::Domifaddr { domain } => print!("{}", domifaddr(&domain)?),
        NetCommand::AttachInterface {
            domain,
            if_type,
            source: _,
            mac,
            model,
            config,
            persistent,
        } => {
            let running = refuse_live(&domain, config, persistent, "attach")?;
            let nic = NicToAttach {
                if_type,
                mac,
                model,
            };
            let mac = attach_interface(&DomainStore::open_default()?, &domain, &nic)?;
            println!("Interface attached successfully");
            if running {
                println!(
                    "The stored definition of '{domain}' changed; the running VM gets the \
                     interface ({mac}) at its next start"
                );
            }
        }
        NetCommand::DetachInterface {
            domain,
            if_type,
            mac,
            config,
            persistent,
        } => {
            let running = refuse_live(&domain, config, persistent, "detach")?;
            detach_interface(
                &DomainStore::open_default()?,
                &domain,
                &if_type,
                mac.as_deref(),
            )?;
            println!("Interface detached successfully");
            if running {
                println!(
                    "The stored definition of '{domain}' changed; the running VM keeps the \
                     interface until it stops"
                );
            }
        }
        NetCommand::DomifSetlink {
            domain,
            interface,
            state,
            config,
        } => {
            let running = refuse_live(&domain, config, false, "link change")?;
            set_link_state(
                &DomainStore::open_default()?,
                &domain,
                &interface,
                state == "up",
            )?;
            println!("Device updated successfully");
            if running {
                println!(
                    "The stored definition of '{domain}' changed; the running VM's card keeps its \
                     link until the VM stops"
                );
            }
        }
        NetCommand::DomifGetlink {
            domain,
            interface,
            config,
        } => {
            let found = current(&domain, config)?
                .interfaces()
                .into_iter()
                .find(|i| {
                    i.mac
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case(&interface))
                });
            let Some(card) = found else {
                bail!(
                    "'{domain}' has no network card with MAC {interface}; `vireoctl domiflist \
                     {domain}` lists them"
                );
            };
            let state = card.link_state.as_deref().unwrap_or("up");
            println!("{interface} {state}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The running VM's live definition, or the stored one.
fn current(name: &str, inactive: bool) -> anyhow::Result<Domain> {
    let live = (!inactive)
        .then(|| runner::live_xml(name))
        .flatten()
        .map(|xml| Domain::parse(&xml))
        .transpose()?;
    Ok(match live {
        Some(domain) => domain,
        None => DomainStore::open_default()?.get(name)?.domain,
    })
}

/// Each interface's MAC as the guest sees it: written, or generated as start generates it.
fn macs(domain: &Domain) -> Vec<String> {
    let uuid = domain.uuid().unwrap_or_default();
    domain
        .interfaces()
        .iter()
        .enumerate()
        .map(|(i, nic)| {
            nic.mac
                .clone()
                .unwrap_or_else(|| format_mac(&generated_mac(&uuid, i)))
        })
        .collect()
}

/// `domiflist`'s table, virsh's layout (no host-side device: `-`).
fn domiflist(name: &str, inactive: bool) -> anyhow::Result<String> {
    let domain = current(name, inactive)?;
    let rows: Vec<Vec<String>> = domain
        .interfaces()
        .into_iter()
        .zip(macs(&domain))
        .map(|(nic, mac)| {
            vec![
                "-".into(),
                nic.if_type.unwrap_or_else(|| "-".into()),
                nic.source.unwrap_or_else(|| "-".into()),
                nic.model.unwrap_or_else(|| "virtio".into()),
                mac,
            ]
        })
        .collect();
    Ok(table(
        &["Interface", "Type", "Source", "Model", "MAC"],
        &rows,
    ))
}

/// `domifaddr`'s table: for each user-mode card of a running VM, the addresses passt gives it.
fn domifaddr(name: &str) -> anyhow::Result<String> {
    vireo::domain::name::check(name)?;
    if !runner::is_running(name) {
        bail!("domain '{name}' is not running; start it first (vireoctl start {name})");
    }
    let domain = current(name, false)?;
    let addresses = passt::guest_addresses();
    let mut rows = Vec::new();
    for (i, (nic, mac)) in domain
        .interfaces()
        .into_iter()
        .zip(macs(&domain))
        .enumerate()
    {
        if nic.if_type.as_deref() != Some("user") {
            continue;
        }
        for address in &addresses {
            rows.push(vec![
                format!("net{i}"),
                mac.clone(),
                if address.address.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                }
                .into(),
                format!("{}/{}", address.address, address.prefix),
            ]);
        }
    }
    Ok(table(
        &["Name", "MAC address", "Protocol", "Address"],
        &rows,
    ))
}
