//! One rule for tests that need something from the machine (KVM, the libvirt oracle,
//! `virt-xml-validate`, a display, the probe guest, a German locale): without it they skip with
//! the reason, unless `VIREO_REQUIRE_ENV=1` (CI sets it in `.ci/run`), where a missing
//! environment fails the test instead of letting it pass without checking anything.
//!
//! A condition that is a property of the host rather than a missing piece of the test
//! environment (say, a KVM that offers every feature) is not routed through here.
#![allow(dead_code)]

/// The variable that turns a skip for a missing environment into a failure.
pub const REQUIRE_ENV: &str = "VIREO_REQUIRE_ENV";

/// Whether this run demands the whole test environment.
pub fn env_required() -> bool {
    std::env::var(REQUIRE_ENV).as_deref() == Ok("1")
}

/// Panics with "required environment missing: {reason}" under `VIREO_REQUIRE_ENV=1`, otherwise
/// prints "skipping: {reason}"; the caller then returns from the test.
#[track_caller]
pub fn skip_or_fail(reason: impl std::fmt::Display) {
    if env_required() {
        panic!("required environment missing: {reason}");
    }
    eprintln!("skipping: {reason}");
}
