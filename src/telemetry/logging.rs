//! The process's log subscriber: one place that decides where lines go and how they look, shared by the
//! binary and the load program (which measures what the request line costs).
//!
//! Lines are formatted on the thread that logs them and written to standard error by a writer thread of
//! their own (`tracing-appender`), a burst of lines in one write, so a request never waits on the terminal
//! or the pipe behind it. Should
//! the writer fall behind by more than its buffer (128,000 lines), new lines are dropped rather than
//! slowing requests; the audit trail is not a log and never goes this way.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::reload::Handle;

use crate::config::LogFormat;

/// Keeps the writer thread running; dropping it writes out what is buffered. Hold it until the process ends.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
}

/// Changes the level of the installed subscriber while it runs (for the load program, which measures the
/// same requests with and without their log line in one run).
pub struct LogSwitch(Box<dyn Fn(&str) -> bool + Send + Sync>);

impl LogSwitch {
    /// Filter by `directives` (`RUST_LOG` syntax, e.g. `info` or `off`) from now on; `false` when they do
    /// not parse or no subscriber of this module's is installed.
    pub fn set(&self, directives: &str) -> bool {
        (self.0)(directives)
    }
}

/// Install the subscriber: lines go to standard error, as text or one JSON object per line, filtered by
/// `RUST_LOG` when it is set and otherwise by `level` (`log.level`). A second call installs nothing.
pub fn init(format: LogFormat, level: &str) -> LogGuard {
    init_switchable(format, level).0
}

/// [`init`], with a switch for the level.
pub fn init_switchable(format: LogFormat, level: &str) -> (LogGuard, LogSwitch) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // The writer thread drains what is queued, then flushes: buffered, a burst is one write.
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stderr(),
    ));
    fn switch<S: 'static>(handle: Handle<EnvFilter, S>) -> LogSwitch {
        LogSwitch(Box::new(move |d: &str| {
            EnvFilter::try_new(d)
                .ok()
                .is_some_and(|f| handle.reload(f).is_ok())
        }))
    }
    let (installed, switch) = match format {
        LogFormat::Json => {
            let b = tracing_subscriber::fmt()
                .json()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_filter_reloading();
            let s = switch(b.reload_handle());
            (b.try_init(), s)
        }
        LogFormat::Text => {
            let b = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_filter_reloading();
            let s = switch(b.reload_handle());
            (b.try_init(), s)
        }
    };
    let guard = LogGuard {
        _writer: installed.is_ok().then_some(guard),
    };
    (guard, switch)
}
