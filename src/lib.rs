//! Vireo: a desktop virtual-machine manager with an in-process KVM engine.
//!
//! The library holds everything below the user interface so that the GUI (`vireo`) and the CLI
//! (`vireoctl`) are thin shells over the same calls. Dependencies point down:
//! `engine`, `domain`, `prefs` → `cpu`, `host`. Nothing here links GTK.

pub mod cpu;
pub mod domain;
pub mod engine;
pub mod host;
pub mod logging;
pub mod prefs;

/// Vireo's version, as shown by `vireoctl --version` and the About window.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The application id, used for D-Bus, the desktop file, icons and GSettings-like paths.
pub const APP_ID: &str = "dev.vireo.Vireo";

#[cfg(feature = "gui")]
pub mod ui;
