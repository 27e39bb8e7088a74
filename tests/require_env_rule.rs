//! The rule of tests/require_env: a missing environment is a skip with the reason, or under
//! `VIREO_REQUIRE_ENV=1` a failure. Checked by running this test binary again as a child whose
//! one test meets a missing environment.

use std::process::{Command, Output};

mod require_env;
use require_env::{REQUIRE_ENV, skip_or_fail};

const CHILD_ENV: &str = "VIREO_REQUIRE_ENV_RULE_CHILD";

/// Does nothing unless re-executed by the tests below; then it meets a missing environment.
#[test]
fn child_meets_a_missing_environment() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    if std::env::var_os("PATH").is_some() {
        return skip_or_fail("the stand-in tool is not installed");
    }
    println!("the test body ran on");
}

fn run_child(require: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_meets_a_missing_environment",
        "--nocapture",
    ])
    .env(CHILD_ENV, "1")
    .env_remove(REQUIRE_ENV);
    if let Some(value) = require {
        cmd.env(REQUIRE_ENV, value);
    }
    cmd.output().unwrap()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_missing_environment_fails_when_required() {
    let out = run_child(Some("1"));
    let text = all_output(&out);
    assert!(!out.status.success(), "child passed: {text}");
    assert!(
        text.contains("required environment missing: the stand-in tool is not installed"),
        "{text}"
    );
    assert!(!text.contains("the test body ran on"), "{text}");
}

#[test]
fn a_missing_environment_is_a_skip_with_the_reason_otherwise() {
    for require in [None, Some("0"), Some("")] {
        let out = run_child(require);
        let text = all_output(&out);
        assert!(
            out.status.success(),
            "child failed with {require:?}: {text}"
        );
        assert!(
            text.contains("skipping: the stand-in tool is not installed"),
            "{text}"
        );
    }
}
