//! The user's CPU map overlay in `$XDG_CONFIG_HOME/vireo/cpu_map/` reaches `vireoctl`.

use std::process::Command;

fn config_home(tag: &str, overlay: &str) -> std::path::PathBuf {
    let home = std::env::temp_dir().join(format!("vireo-cpu-overlay-{tag}-{}", std::process::id()));
    let dir = home.join("vireo").join("cpu_map");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mine.map"), overlay).unwrap();
    home
}

fn run(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vireoctl"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .output()
        .unwrap()
}

#[test]
fn overlay_models_are_listed_and_usable_in_compare() {
    let home = config_home("ok", "model Tiny486\n  features fpu pse\n");
    let out = run(&home, &["cpu-models"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().last(), Some("Tiny486"));

    let host = home.join("host.xml");
    std::fs::write(&host, "<cpu><arch>x86_64</arch><model>486</model></cpu>").unwrap();
    let cpu = home.join("cpu.xml");
    std::fs::write(&cpu, "<cpu match='exact'><model>Tiny486</model></cpu>").unwrap();
    let out = run(
        &home,
        &[
            "cpu-compare",
            "--host",
            host.to_str().unwrap(),
            cpu.to_str().unwrap(),
        ],
    );
    // 486 = fpu pse vme, so the host offers Tiny486 and more.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "superset\n");
}

#[test]
fn broken_overlay_is_reported_with_file_and_line() {
    let home = config_home("bad", "model Broken\n  features fpu sse5\n");
    let out = run(&home, &["cpu-models"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mine.map:2:") && err.contains("unknown feature `sse5`"),
        "{err}"
    );
}
