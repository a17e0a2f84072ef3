//! The tracing subscriber, installed once per process.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the process-wide subscriber: human-readable lines on stderr, filtered by
/// `filter` (an `EnvFilter` directive such as `info` or `info,auth_http=debug`; see
/// [`crate::Config::log`]). Does nothing if a subscriber is already installed, so tests
/// may call it freely.
pub fn init_tracing(filter: &str) {
    // The configuration has already checked the directive; this fallback only serves
    // callers that skip it.
    let (filter, rejected) = match EnvFilter::try_new(filter) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .is_ok();
    if let (true, Some(e)) = (installed, rejected) {
        tracing::warn!("invalid LOG directive ({e}); logging at info");
    }
}
