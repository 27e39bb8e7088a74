//! Chooses how GTK draws before GTK starts: on a machine without a GPU render node, GTK 4's GL
//! renderer runs on Mesa's software rasteriser (llvmpipe), which costs seconds of shader
//! compilation at start-up and a whole CPU core while anything animates. Vireo's users include
//! people on GPU-less desktops (remote sessions, VMs, servers with a virtual display), so there it
//! draws with cairo and does not initialise GL at all (GL initialisation alone loads LLVM and
//! costs ~100 ms before the first window, measured with `tools/bench/startup.sh`).
//!
//! The user's own `GSK_RENDERER` / `GDK_DEBUG` always win: nothing is changed when either is set.

use std::path::Path;

/// What [`choose`] decided, for the debug log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RendererChoice {
    /// The user set `GSK_RENDERER` or `GDK_DEBUG`; GTK is left to follow them.
    UserSetting,
    /// A GPU render node exists: GTK picks its default (GL) renderer.
    GtkDefault,
    /// No GPU render node: cairo drawing, GL disabled.
    SoftwareCairo,
}

/// Decides from the environment and the DRM device directory (normally `/dev/dri`).
pub fn choose(env: impl Fn(&str) -> Option<String>, dri_dir: &Path) -> RendererChoice {
    let set = |name: &str| env(name).is_some_and(|value| !value.is_empty());
    if set("GSK_RENDERER") || set("GDK_DEBUG") {
        return RendererChoice::UserSetting;
    }
    if has_render_node(dri_dir) {
        RendererChoice::GtkDefault
    } else {
        RendererChoice::SoftwareCairo
    }
}

/// Whether `dri_dir` holds a render node (`renderD128`, …), i.e. a GPU GL could run on.
fn has_render_node(dri_dir: &Path) -> bool {
    std::fs::read_dir(dri_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Applies [`choose`]'s decision for this process. Must run before GTK is initialised and
/// before any other thread exists (it sets environment variables).
pub fn apply() -> RendererChoice {
    let choice = choose(|name| std::env::var(name).ok(), Path::new("/dev/dri"));
    if choice == RendererChoice::SoftwareCairo {
        // SAFETY: called from `ui::run` at the start of `main`, before GTK, the async runtime
        // or any other thread exists, so nothing can read the environment concurrently.
        unsafe {
            std::env::set_var("GSK_RENDERER", "cairo");
            std::env::set_var("GDK_DEBUG", "gl-disable");
        }
    }
    tracing::debug!(?choice, "renderer");
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn no_render_node_means_cairo_without_gl() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("card0"), "").unwrap();
        assert_eq!(
            choose(env_of(&[]), dir.path()),
            RendererChoice::SoftwareCairo
        );
        assert_eq!(
            choose(env_of(&[]), &dir.path().join("absent")),
            RendererChoice::SoftwareCairo
        );
    }

    #[test]
    fn a_render_node_keeps_gtks_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("renderD128"), "").unwrap();
        assert_eq!(choose(env_of(&[]), dir.path()), RendererChoice::GtkDefault);
    }

    #[test]
    fn the_users_settings_win() {
        let dir = tempfile::tempdir().unwrap();
        for pairs in [[("GSK_RENDERER", "ngl")], [("GDK_DEBUG", "misc")]] {
            assert_eq!(
                choose(env_of(&pairs), dir.path()),
                RendererChoice::UserSetting
            );
        }
        assert_eq!(
            choose(env_of(&[("GSK_RENDERER", "")]), dir.path()),
            RendererChoice::SoftwareCairo
        );
    }
}
