//! Domain verbs (`define`, `undefine`, `list`, `dumpxml`, `validate`, `edit`, `domrename`, `new`)
//! and `prefs`, over the same store and preferences the GUI uses.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{ArgGroup, Subcommand};
use vireo::domain::canon::canonicalize;
use vireo::domain::new_vm::{Boot, NewVm, resolve_cpu_mode};
use vireo::domain::validate::{document_problems, host_problems};
use vireo::domain::{Domain, DomainError, DomainStore, HostFacts, StoreError};
use vireo::launch::runner;
use vireo::prefs::{CpuModePref, Prefs};

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Define (or redefine) a VM from a libvirt domain XML file.
    Define { file: PathBuf },
    /// Remove a VM's definition; its disk images are kept unless --remove-all-storage.
    Undefine {
        name: String,
        /// Also delete the VM's disk image files (not CD-ROM or read-only images).
        #[arg(long)]
        remove_all_storage: bool,
    },
    /// List VMs (running and paused ones unless --all or --inactive); unreadable definitions
    /// are shown with their error.
    List(ListArgs),
    /// Print a VM's domain XML: the live definition while it runs (host-model expanded to the
    /// concrete CPU it got), else the stored one.
    Dumpxml {
        name: String,
        /// Print the stored definition even while the VM runs.
        #[arg(long)]
        inactive: bool,
    },
    /// Check a domain XML file; --host also checks it against this host. Exit 1 if problems.
    Validate {
        file: PathBuf,
        #[arg(long)]
        host: bool,
    },
    /// Edit a VM's XML in $EDITOR; it is re-validated before saving.
    Edit { name: String },
    /// Rename a VM.
    Domrename { old: String, new: String },
    /// Read or change preferences.
    #[command(subcommand)]
    Prefs(PrefsCommand),
    /// Create a VM whose CPU follows the new-vm-cpu-mode preference.
    #[command(group(ArgGroup::new("boot").required(true).args(["kernel", "disk"])))]
    New {
        name: String,
        /// Memory in MiB.
        #[arg(long)]
        memory: u64,
        #[arg(long)]
        vcpus: u32,
        /// Kernel for direct boot.
        #[arg(long)]
        kernel: Option<PathBuf>,
        #[arg(long, requires = "kernel")]
        initrd: Option<PathBuf>,
        #[arg(long, requires = "kernel")]
        cmdline: Option<String>,
        /// Disk image to boot from.
        #[arg(long)]
        disk: Option<PathBuf>,
    },
}

/// `list`'s filters and output forms, virsh's.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Running, paused and shut-off VMs.
    #[arg(long)]
    all: bool,
    /// Only VMs that are not running.
    #[arg(long)]
    inactive: bool,
    /// Only running VMs (with other --state-* options: any of them).
    #[arg(long)]
    state_running: bool,
    /// Only paused VMs.
    #[arg(long)]
    state_paused: bool,
    /// Only shut-off VMs.
    #[arg(long)]
    state_shutoff: bool,
    /// Only VMs marked to start automatically (`vireoctl autostart`).
    #[arg(long, conflicts_with = "no_autostart")]
    autostart: bool,
    /// Only VMs not marked to start automatically.
    #[arg(long)]
    no_autostart: bool,
    /// Only defined VMs (not those running from a file).
    #[arg(long, conflicts_with = "transient")]
    persistent: bool,
    /// Only transient VMs (running from a file, or undefined while running).
    #[arg(long)]
    transient: bool,
    /// Print names only, one per line (with --uuid: UUID, then name).
    #[arg(long)]
    name: bool,
    /// Print UUIDs only, one per line.
    #[arg(long)]
    uuid: bool,
}

#[derive(Subcommand)]
pub enum PrefsCommand {
    /// Print a preference's value.
    Get { key: String },
    /// Change a preference.
    Set { key: String, value: String },
    /// Print every preference with its value.
    List,
}

/// The domain a name, id or UUID stands for (see `vireo::launch::lookup::resolve`).
fn resolve(name: &str) -> anyhow::Result<String> {
    Ok(vireo::launch::lookup::resolve(
        &DomainStore::open_default()?,
        name,
    )?)
}

pub fn run(cmd: DomainCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DomainCommand::Define { file } => {
            let xml = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let stored = DomainStore::open_default()?.define(&xml)?;
            println!("Domain '{}' defined from {}", stored.name, file.display());
        }
        DomainCommand::Undefine {
            name,
            remove_all_storage,
        } => {
            let name = resolve(&name)?;
            let deleted = DomainStore::open_default()?.undefine(&name, remove_all_storage)?;
            for path in deleted {
                println!("Storage '{}' removed", path.display());
            }
            println!("Domain '{name}' has been undefined");
        }
        DomainCommand::List(args) => list(&args)?,
        DomainCommand::Dumpxml { name, inactive } => {
            print!("{}", dumpxml(&resolve(&name)?, inactive)?)
        }
        DomainCommand::Validate { file, host } => return validate(&file, host),
        DomainCommand::Edit { name } => return edit(&resolve(&name)?),
        DomainCommand::Domrename { old, new } => {
            let old = resolve(&old)?;
            DomainStore::open_default()?.rename(&old, &new)?;
            println!("Domain '{old}' XML configuration edited.\nDomain successfully renamed");
        }
        DomainCommand::Prefs(cmd) => prefs(cmd)?,
        DomainCommand::New {
            name,
            memory,
            vcpus,
            kernel,
            initrd,
            cmdline,
            disk,
        } => {
            let boot = match (kernel, disk) {
                (Some(kernel), _) => Boot::Kernel {
                    kernel,
                    initrd,
                    cmdline,
                },
                (None, Some(disk)) => Boot::Disk(disk),
                (None, None) => bail!("give --kernel or --disk"),
            };
            let vm = NewVm {
                name,
                memory_mib: memory,
                vcpus,
                boot,
            };
            let prefs = Prefs::load()?;
            let host = HostFacts::detect();
            let domain = vm.build(&prefs, &host)?;
            if let Some(warning) =
                vireo::domain::new_vm::cpu_fallback_warning(prefs.new_vm_cpu_mode, &host)
            {
                eprintln!("warning: {warning}");
            }
            let stored = DomainStore::open_default()?.define(&domain.to_xml())?;
            let mode = resolve_cpu_mode(prefs.new_vm_cpu_mode, &host);
            println!(
                "Domain '{}' defined (CPU: {})",
                stored.name,
                mode.display_name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The XML `dumpxml` prints. A running VM's live XML wins (like `virsh dumpxml`), because only
/// it says which CPU the guest really got; `inactive` asks for the stored definition instead.
fn dumpxml(name: &str, inactive: bool) -> anyhow::Result<String> {
    match (!inactive).then(|| runner::live_xml(name)).flatten() {
        Some(live) => Ok(live),
        None => Ok(DomainStore::open_default()?.get(name)?.domain.to_xml()),
    }
}

/// One row of `list` (the built-in engine's or a libvirt connection's).
pub(crate) struct Row {
    pub(crate) name: String,
    /// The running domain's id.
    pub(crate) id: Option<u32>,
    /// `running`, `paused`, `shut off`, or `error: …` for an unreadable definition.
    pub(crate) state: String,
    pub(crate) uuid: Option<String>,
    pub(crate) transient: bool,
    pub(crate) autostart: bool,
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    let store = DomainStore::open_default()?;
    let mut rows: Vec<Row> = Vec::new();
    for entry in store.list() {
        let (name, uuid, broken) = match entry {
            Ok(d) => (d.name, d.domain.uuid(), None),
            Err(b) => (b.name, None, Some(b.error)),
        };
        let status = vireo::launch::lookup::status(&name);
        rows.push(Row {
            id: status.info.as_ref().map(|i| i.id),
            state: match broken {
                Some(error) => format!("error: {error}"),
                None => status.state.to_string(),
            },
            uuid,
            transient: false,
            autostart: store.autostart(&name),
            name,
        });
    }
    // Running but not defined (created from a file, or undefined while running): virsh lists
    // these as transient domains, and so do we; they only exist running.
    for name in runner::running_names() {
        if rows.iter().any(|r| r.name == name) {
            continue;
        }
        let status = vireo::launch::lookup::status(&name);
        rows.push(Row {
            id: status.info.as_ref().map(|i| i.id),
            state: status.state.to_string(),
            uuid: vireo::launch::lookup::uuid(&store, &name),
            transient: true,
            autostart: false,
            name,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    print_rows(args, &rows);
    Ok(())
}

/// Prints the rows `args` selects, in virsh's table or as names/UUIDs.
pub(crate) fn print_rows(args: &ListArgs, rows: &[Row]) {
    let states_asked = args.state_running || args.state_paused || args.state_shutoff;
    let shown = |row: &Row| {
        let broken = row.state.starts_with("error: ");
        let active = row.id.is_some();
        let by_state = if states_asked {
            (args.state_running && row.state == "running")
                || (args.state_paused && row.state == "paused")
                || (args.state_shutoff && row.state == "shut off")
        } else if args.all {
            true
        } else if args.inactive {
            !active
        } else {
            // Unreadable definitions are shown by default so they get noticed.
            active || broken
        };
        by_state
            && (!args.autostart || row.autostart)
            && (!args.no_autostart || !row.autostart)
            && (!args.persistent || !row.transient)
            && (!args.transient || row.transient)
    };
    let rows: Vec<&Row> = rows.iter().filter(|r| shown(r)).collect();
    if args.name || args.uuid {
        for row in rows {
            let uuid = row.uuid.as_deref().unwrap_or("-");
            match (args.uuid, args.name) {
                (true, true) => println!("{uuid:<36} {}", row.name),
                (true, false) => println!("{uuid}"),
                _ => println!("{}", row.name),
            }
        }
        return;
    }
    let width = rows
        .iter()
        .map(|r| r.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    println!(" {:<4} {:<width$}   State", "Id", "Name");
    println!("{}", "-".repeat(width + 20));
    for row in rows {
        let id = row.id.map_or_else(|| "-".to_string(), |id| id.to_string());
        let transient = if row.transient { " (transient)" } else { "" };
        println!(" {id:<4} {:<width$}   {}{transient}", row.name, row.state);
    }
}

fn print_problems(problems: &[DomainError]) {
    for p in problems {
        eprintln!("  {p}");
    }
}

fn validate(file: &PathBuf, host: bool) -> anyhow::Result<ExitCode> {
    let xml =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let problems = match Domain::parse(&xml) {
        Err(e) => vec![e],
        Ok(domain) => {
            let mut problems = document_problems(&domain);
            if host {
                problems.extend(host_problems(&domain, &HostFacts::detect()));
                // The disks: start's own mapping, so validate refuses what start refuses.
                let (disk_problems, disk_warnings) =
                    vireo::launch::disks::disk_host_problems(&domain);
                for warning in &disk_warnings {
                    eprintln!("warning: {warning}");
                }
                problems.extend(disk_problems);
                // The network cards: start's own mapping too.
                problems.extend(vireo::launch::nics::nic_host_problems(&domain));
                // The guest CPU: start's own resolution, where KVM is usable.
                match vireo::launch::HostFacts::probe() {
                    Ok(facts) => {
                        let cpu = vireo::cpu::guest::HostCpuFacts {
                            kvm_supported: facts.kvm_supported,
                            cpuid_enforced: facts.cpuid_enforced,
                        };
                        if let Some(warning) = domain.vcpu().ok().flatten().and_then(|v| {
                            vireo::launch::prepare::oversubscription(v.count, facts.online_cpus)
                        }) {
                            eprintln!("warning: {warning}");
                        }
                        let verdict = vireo::launch::cpu_verdict(&xml, &cpu);
                        if let Ok(resolved) = &verdict {
                            let lm = vireo::launch::cpu_verdict::no_long_mode_warning(resolved);
                            for warning in resolved.warnings.iter().chain(&lm) {
                                eprintln!("warning: {warning}");
                            }
                        }
                        problems.extend(vireo::launch::cpu_host_problem(&verdict));
                    }
                    Err(e) => eprintln!("warning: the guest CPU is not checked: {e}"),
                }
            }
            problems
        }
    };
    if problems.is_empty() {
        println!("{} validates", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} fails to validate:", file.display());
    print_problems(&problems);
    Ok(ExitCode::from(1))
}

/// Runs the user's editor on `path` ($VISUAL, then $EDITOR, then vi), through the shell so
/// editors given with arguments ("code --wait") work.
fn run_editor(path: &std::path::Path) -> anyhow::Result<()> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .with_context(|| format!("cannot run the editor '{editor}'"))?;
    if !status.success() {
        bail!("the editor '{editor}' failed ({status}); nothing was changed");
    }
    Ok(())
}

/// Asks "Try again?" on stdin; end of input counts as no.
fn ask_retry() -> bool {
    eprint!("Failed. Try again? [y,n]: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
    read > 0 && line.trim().eq_ignore_ascii_case("y")
}

/// The temporary copy the editor works on, removed when dropped.
struct EditFile(PathBuf);

impl EditFile {
    fn create(name: &str, contents: &str) -> anyhow::Result<EditFile> {
        let path = std::env::temp_dir().join(format!(
            "vireo-{name}-{}.xml",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot create {} for editing", path.display()))?;
        Ok(EditFile(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Keeps the file (so the user's edit is not lost) and returns its path.
    fn keep(self) -> PathBuf {
        let path = self.0.clone();
        std::mem::forget(self);
        path
    }
}

impl Drop for EditFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn edit(name: &str) -> anyhow::Result<ExitCode> {
    let store = DomainStore::open_default()?;
    let mut stored = match store.get(name) {
        Err(StoreError::Broken { path, error, .. }) => return repair(&store, name, &path, &error),
        other => other?,
    };
    let original = stored.domain.to_xml();
    let tmp = EditFile::create(name, &original)?;
    loop {
        run_editor(tmp.path())?;
        let edited = std::fs::read_to_string(tmp.path())?;
        if canonicalize(&edited).ok() == canonicalize(&original).ok() {
            println!("Domain '{name}' XML configuration not changed.");
            return Ok(ExitCode::SUCCESS);
        }
        let result = Domain::parse(&edited)
            .map_err(|e| vec![e])
            .and_then(|domain| {
                let problems = document_problems(&domain);
                if problems.is_empty() {
                    Ok(domain)
                } else {
                    Err(problems)
                }
            });
        match result {
            Ok(domain) => {
                stored.domain = domain;
                match store.save(&mut stored) {
                    Ok(()) => {
                        println!("Domain '{name}' XML configuration edited.");
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e @ StoreError::Conflict(_)) => {
                        // Retrying cannot help: the edit was made on a copy that is now stale.
                        let kept = tmp.keep();
                        bail!("{e}; your edited XML is kept in {}", kept.display());
                    }
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            Err(problems) => {
                eprintln!("error: the edited XML is not valid:");
                print_problems(&problems);
            }
        }
        if !ask_retry() {
            eprintln!("Domain '{name}' left unchanged.");
            return Ok(ExitCode::from(2));
        }
    }
}

/// `edit` of a definition that cannot be read: the file as it is goes to the editor, and what
/// comes back replaces it only when it is a valid domain of the same name (as the GUI's repair
/// editor does); the broken file is never touched otherwise.
fn repair(
    store: &DomainStore,
    name: &str,
    path: &std::path::Path,
    error: &str,
) -> anyhow::Result<ExitCode> {
    eprintln!(
        "{} cannot be read ({error}); opening it as it is, so that you can repair it",
        path.display()
    );
    let original = std::fs::read_to_string(path)?;
    let tmp = EditFile::create(name, &original)?;
    loop {
        run_editor(tmp.path())?;
        let edited = std::fs::read_to_string(tmp.path())?;
        if edited == original {
            eprintln!("Domain '{name}' left unchanged (still unreadable).");
            return Ok(ExitCode::from(2));
        }
        match store.repair(name, &edited) {
            Ok(_) => {
                println!("Domain '{name}' XML configuration repaired.");
                return Ok(ExitCode::SUCCESS);
            }
            Err(StoreError::Invalid(problems)) => {
                eprintln!("error: the edited XML is not valid:");
                print_problems(&problems);
            }
            Err(e) => eprintln!("error: {e}"),
        }
        if !ask_retry() {
            eprintln!("Domain '{name}' left unchanged (still unreadable).");
            return Ok(ExitCode::from(2));
        }
    }
}

fn prefs(cmd: PrefsCommand) -> anyhow::Result<()> {
    let mut prefs = Prefs::load()?;
    match cmd {
        PrefsCommand::Get { key } => println!("{}", prefs.get(&key)?),
        PrefsCommand::Set { key, value } => {
            prefs.set(&key, &value)?;
            prefs.save()?;
        }
        PrefsCommand::List => {
            for key in Prefs::KEYS {
                println!("{key} = {}", prefs.get(key)?);
            }
            let modes: Vec<String> = CpuModePref::ALL
                .iter()
                .map(|m| format!("{} ({})", m.key(), m.display_name()))
                .collect();
            println!("# new-vm-cpu-mode values: {}", modes.join(", "));
        }
    }
    Ok(())
}
