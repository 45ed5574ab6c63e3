//! The process's log subscriber: one place that decides where lines go and how they look, shared by the
//! binary and the load program (which measures what the request line costs).

use crate::config::LogFormat;

/// Install the subscriber: lines go to standard error, as text or one JSON object per line, filtered by
/// `RUST_LOG` when it is set and otherwise by `level` (`log.level`). A second call is a no-op.
pub fn init(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
