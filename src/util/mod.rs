//! Small helpers every layer may use: no Vireo types, no GTK, no KVM.

pub mod atomic;

/// For the library's own tests: a test whose environment (KVM, passt…) is missing skips with
/// the reason, or fails under `VIREO_REQUIRE_ENV=1` (CI), as the integration tests'
/// `require_env::skip_or_fail` does.
#[cfg(test)]
pub(crate) fn skip_or_fail(what: &str) {
    assert!(
        std::env::var("VIREO_REQUIRE_ENV").as_deref() != Ok("1"),
        "required environment missing: {what}"
    );
    eprintln!("skipping: {what}");
}
