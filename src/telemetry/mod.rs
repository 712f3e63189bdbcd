//! Logs, metrics and health: how walguard tells operators what it is doing.
//!
//! Log levels: `error`, an operator must act; `warn`, recovered but
//! unexpected; `info`, lifecycle; `debug`, per batch; `trace`, per message.
//! Row values, secrets and connection strings are never logged.

pub mod admin;
pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// pgwire-replication logs every ended session as an error; walguard reports
/// those itself, once per reconnect attempt, so the crate's own logs stay off
/// unless `RUST_LOG` names it.
const TRANSPORT_LOGS_OFF: &str = "pgwire_replication=off";

/// Starts logging to stderr; `RUST_LOG` picks the levels (default `info`).
pub fn init_logs(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let named = std::env::var("RUST_LOG").is_ok_and(|value| value.contains("pgwire_replication"));
    if !named {
        filter = filter.add_directive(TRANSPORT_LOGS_OFF.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
