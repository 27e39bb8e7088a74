//! virsh's `screenshot`: a PNG of a running VM's screen (what its virtio-gpu shows), taken by
//! the VM's runner; and `domdisplay`: where its VNC server listens.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use vireo::domain::store::DomainStore;
use vireo::launch::{lookup, runner};

#[derive(Subcommand)]
pub enum ScreenCommand {
    /// Save a running VM's screen as a PNG (FILE, or NAME-<time>.png in this directory).
    Screenshot {
        /// The domain's name, id or UUID.
        name: String,
        /// Where to write the PNG.
        file: Option<PathBuf>,
        /// The same, as virsh spells it.
        #[arg(long = "file", conflicts_with = "file")]
        file_option: Option<PathBuf>,
        /// The head to capture; the built-in engine's display has one, head 0.
        #[arg(long)]
        screen: Option<u32>,
    },
    /// Print the URI of a running VM's VNC server (vnc://127.0.0.1:5900, vnc+unix:///path).
    Domdisplay {
        /// The domain's name, id or UUID.
        name: String,
    },
}

pub fn run(cmd: ScreenCommand) -> anyhow::Result<ExitCode> {
    let (name, file, file_option, screen) = match cmd {
        ScreenCommand::Screenshot {
            name,
            file,
            file_option,
            screen,
        } => (name, file, file_option, screen),
        ScreenCommand::Domdisplay { name } => return domdisplay(&name),
    };
    let store = DomainStore::open_default()?;
    let name = lookup::resolve(&store, &name)?;
    if let Some(head) = screen.filter(|s| *s != 0) {
        bail!("--screen {head}: the VM's display has one head, 0");
    }
    let png = runner::screenshot(&name)?;
    let path = file.or(file_option).unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("{name}-{now}.png"))
    });
    std::fs::write(&path, &png)
        .with_context(|| format!("writing the screenshot to {}", path.display()))?;
    println!(
        "Screenshot saved to {}, with type of image/png",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// virsh's `domdisplay`: the VNC URI the runner reports; an error when the VM serves none.
fn domdisplay(name: &str) -> anyhow::Result<ExitCode> {
    let store = DomainStore::open_default()?;
    let name = lookup::resolve(&store, name)?;
    match runner::info(&name)?.display {
        Some(uri) => {
            println!("{uri}");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "domain '{name}' serves no remote display; add <graphics type='vnc'/> with \
             `vireoctl edit {name}` and start it again"
        ),
    }
}
