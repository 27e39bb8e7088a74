//! Log set-up shared by both binaries: quiet by default, `RUST_LOG` to turn it up.

use tracing_subscriber::EnvFilter;

/// Installs a stderr `tracing` subscriber filtered by `RUST_LOG`.
///
/// Without `RUST_LOG` only warnings and errors are shown, so normal use prints nothing extra.
/// Calling it twice is harmless (the second call is ignored), which keeps tests simple.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a runner's stderr is its VM's log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
