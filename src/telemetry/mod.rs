//! Logs (and, later, metrics and health): how walguard tells operators what
//! it is doing.
//!
//! Log levels: `error`, an operator must act; `warn`, recovered but
//! unexpected; `info`, lifecycle; `debug`, per batch; `trace`, per message.
//! Row values, secrets and connection strings are never logged.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The levels when `RUST_LOG` is unset. pgwire-replication logs every ended
/// session as an error; walguard reports those itself, once, as it reconnects.
const DEFAULT_FILTER: &str = "info,pgwire_replication=off";

/// Starts logging to stderr; `RUST_LOG` picks the levels.
pub fn init_logs(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
