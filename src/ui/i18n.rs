//! Translation set-up: every user-visible string goes through gettext with the `vireo` domain.

use std::path::{Path, PathBuf};

use gettextrs::{LocaleCategory, bind_textdomain_codeset, bindtextdomain, setlocale, textdomain};

/// The gettext domain of every Vireo string (`vireo.mo`).
pub const DOMAIN: &str = "vireo";

/// Chooses the locale directory and binds the `vireo` domain to it.
///
/// An installed Vireo finds its catalogues beside the binary (`<prefix>/share/locale`, where meson
/// puts them); a binary run from the build tree (`cargo run`) uses the catalogues `build.rs`
/// compiled into `OUT_DIR`, so translations can be checked without installing.
///
/// Call it first thing in `main`, before any other thread exists.
pub fn init() {
    // SAFETY: setlocale is unsafe because it races with other threads reading the locale; it is
    // called at start-up, before GTK, relm4 or the engine have spawned any thread.
    unsafe {
        setlocale(LocaleCategory::LcAll, "");
    }
    let dir = locale_dir();
    tracing::debug!(?dir, "binding the gettext domain");
    if let Err(err) = bindtextdomain(DOMAIN, dir) {
        tracing::warn!(%err, "could not bind the translation domain; strings stay in English");
    }
    let _ = bind_textdomain_codeset(DOMAIN, "UTF-8");
    let _ = textdomain(DOMAIN);
}

/// Where the `vireo.mo` catalogues are, for this binary.
pub fn locale_dir() -> PathBuf {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|bin| bin.join("../share/locale")));
    match installed {
        Some(dir) if has_catalogue(&dir) => dir,
        _ => PathBuf::from(concat!(env!("OUT_DIR"), "/locale")),
    }
}

fn has_catalogue(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|langs| {
            langs
                .flatten()
                .any(|lang| lang.path().join("LC_MESSAGES/vireo.mo").exists())
        })
        .unwrap_or(false)
}
