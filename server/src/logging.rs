//! The log: text or bunyan JSON on stderr, every record through the
//! redaction, the `log` crate's records bridged in, and dropshot's record
//! of each answered request counted for the metrics.

use std::sync::Arc;

use slog::Drain as _;

use crate::metrics::Metrics;

/// The log's format on stderr (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text a record (slog-term).
    #[default]
    Text,
    /// One bunyan JSON object a line (as Oxide's services log).
    Json,
}

/// The log: one line a record on stderr, each written whole and before the
/// call that logs it returns, so that it never runs into the lines the
/// program prints (the admin token, where it listens). A record that cannot
/// be written is dropped. Every record passes [`crate::redact`] first.
pub fn logger(level: slog::Level, format: LogFormat) -> slog::Logger {
    match format {
        LogFormat::Text => request_log(level, std::io::stderr()),
        LogFormat::Json => {
            // Each line written whole (slog-json writes a record in pieces).
            let stderr = std::io::LineWriter::new(std::io::stderr());
            let json = slog_bunyan::with_name("runners-server", stderr).build();
            let drain = crate::redact::Redact(std::sync::Mutex::new(json))
                .filter_level(level)
                .ignore_res();
            slog::Logger::root(drain, slog::o!())
        }
    }
}

/// [`logger`], whose every record (whatever its level) passes `metrics`
/// first: dropshot's record of each answered request is counted.
pub(crate) fn metered_logger(
    level: slog::Level,
    format: LogFormat,
    metrics: &Arc<Metrics>,
) -> slog::Logger {
    let inner = logger(level, format);
    let drain = crate::metrics::drain::Metered {
        inner,
        metrics: std::panic::AssertUnwindSafe(Arc::clone(metrics)),
    };
    slog::Logger::root(drain.ignore_res(), slog::o!())
}

/// Hands the `log` crate's records (rustls, tokio-postgres, deadpool,
/// reqwest) to `log` at `level` and above: the most recently started
/// server's log, for the rest of the process. Two crates' verbose records
/// carry what the redaction cannot see, and are left out: tungstenite's
/// trace records print each frame's payload in hex (a job's registry
/// token, a runner's message), and tokio-postgres's debug records each
/// statement's parameters (the signing secret, the registry keys).
pub(crate) fn bridge_log_crate(log: &slog::Logger, level: slog::Level) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let capped = slog::Filter::new(log.clone(), |record: &slog::Record<'_>| {
        bridged(record.module(), record.level())
    });
    let capped = slog::Logger::root(capped.ignore_res(), slog::o!());
    slog_scope::set_global_logger(capped).cancel_reset();
    INSTALLED.call_once(|| {
        let _ = slog_stdlog::init_with_level(log::Level::Trace);
    });
    let max = match level {
        slog::Level::Critical | slog::Level::Error => log::LevelFilter::Error,
        slog::Level::Warning => log::LevelFilter::Warn,
        slog::Level::Info => log::LevelFilter::Info,
        slog::Level::Debug => log::LevelFilter::Debug,
        slog::Level::Trace => log::LevelFilter::Trace,
    };
    log::set_max_level(max);
}

/// Whether a `log` record of `module` at `level` reaches the log (see
/// [`bridge_log_crate`]).
fn bridged(module: &str, level: slog::Level) -> bool {
    let most = if module.starts_with("tokio_postgres") {
        slog::Level::Info
    } else if module.starts_with("tungstenite") || module.starts_with("tokio_tungstenite") {
        slog::Level::Debug
    } else {
        slog::Level::Trace
    };
    level.is_at_least(most)
}

#[test]
fn statements_parameters_and_frames_payloads_are_not_bridged() {
    use slog::Level::{Debug, Info, Trace};
    assert!(!bridged("tokio_postgres::query", Debug));
    assert!(bridged("tokio_postgres::connection", Info));
    assert!(!bridged("tungstenite::protocol::frame", Trace));
    assert!(bridged("tungstenite::protocol", Debug));
    assert!(bridged("rustls::server::hs", Trace));
}

/// The request log's format and locking, written to `out` (the benchmark's
/// ceiling logs the same way, to /dev/null).
pub fn request_log<W: std::io::Write + Send + 'static>(level: slog::Level, out: W) -> slog::Logger {
    let decorator = slog_term::PlainSyncDecorator::new(out);
    // A write error (stderr closed, a full disk) drops the record: `fuse()`
    // would panic, inside dropshot's accept loop, and stop the serving.
    let drain = crate::redact::Redact(slog_term::FullFormat::new(decorator).build())
        .filter_level(level)
        .ignore_res();
    slog::Logger::root(drain, slog::o!("name" => "runners-server"))
}

/// dropshot's log: the request log without dropshot's `listening` record,
/// which names its loopback port, not the address clients reach (the
/// program says where it listens, and the loopback port is logged at
/// debug).
pub(crate) fn dropshot_log(log: &slog::Logger) -> slog::Logger {
    let drain = slog::Filter::new(log.clone(), |record: &slog::Record<'_>| {
        record.msg().as_str() != Some("listening")
    });
    slog::Logger::root(drain.ignore_res(), slog::o!())
}
