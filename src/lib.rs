//! Vireo: a desktop virtual-machine manager with an in-process KVM engine.
//!
//! The library holds everything below the user interface so that the GUI (`vireo`) and the CLI
//! (`vireoctl`) are thin shells over the same calls. Dependencies point one way, down:
//!
//! ```text
//! ui (GTK), bin  →  launch  →  domain, engine  →  prefs, host  →  cpu
//!                          util: for every layer, uses none
//! ```
//!
//! `domain` reads and stores documents and knows nothing of KVM's vCPUs or threads; `engine` runs
//! a plain `VmConfig` and reads no XML; `launch` is the one bridge between them. `prefs` sits
//! below `domain` (new VMs take their CPU default from it), `host` below the engine (it opens KVM
//! and reads its facts). Nothing outside `ui` links GTK.

pub mod cpu;
pub mod domain;
pub mod engine;
pub mod host;
pub mod launch;
pub mod logging;
pub mod prefs;
pub mod util;

/// Vireo's version, as shown by `vireoctl --version` and the About window.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The application id, used for D-Bus, the desktop file, icons and GSettings-like paths.
pub const APP_ID: &str = "dev.vireo.Vireo";

#[cfg(feature = "gui")]
pub mod ui;
