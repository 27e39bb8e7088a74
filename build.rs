//! Build script: compiles the GResource bundle (ui/ files, icons, CSS) and the translations for
//! the GUI. Nothing happens for `--no-default-features` builds, so `vireoctl` needs no GTK tools.

fn main() {
    #[cfg(feature = "gui")]
    gui::build();
}

#[cfg(feature = "gui")]
mod gui {
    use std::path::Path;
    use std::process::Command;

    pub fn build() {
        glib_build_tools::compile_resources(
            &["resources", "ui"],
            "resources/vireo.gresource.xml",
            "vireo.gresource",
        );
        compile_translations();
    }

    /// Compiles po/<lang>.po into `$OUT_DIR/locale/<lang>/LC_MESSAGES/vireo.mo`, so that an
    /// uninstalled `vireo` (cargo run) is translated too. Installed builds use meson's copies.
    fn compile_translations() {
        println!("cargo:rerun-if-changed=po/LINGUAS");
        let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
        let linguas = std::fs::read_to_string("po/LINGUAS").unwrap_or_default();
        for lang in linguas
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let po = format!("po/{lang}.po");
            println!("cargo:rerun-if-changed={po}");
            let dir = Path::new(&out_dir)
                .join("locale")
                .join(lang)
                .join("LC_MESSAGES");
            std::fs::create_dir_all(&dir).expect("create the locale dir in OUT_DIR");
            let status = Command::new("msgfmt")
                .arg("--check")
                .arg("-o")
                .arg(dir.join("vireo.mo"))
                .arg(&po)
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => panic!("msgfmt failed on {po} ({s}); fix the translation file"),
                Err(e) => println!(
                    "cargo:warning=msgfmt not found ({e}); install the gettext package for translations"
                ),
            }
        }
    }
}
