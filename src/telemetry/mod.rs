//! Logs, metrics and health: how walguard tells operators what it is doing.
//!
//! Log levels: `error`, an operator must act; `warn`, recovered but
//! unexpected; `info`, lifecycle; `debug`, per batch; `trace`, per message.
//! Row values, secrets and connection strings are never logged.

pub mod admin;
pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Libraries whose own logs stay quiet unless `RUST_LOG` names them:
/// pgwire-replication logs every ended session as an error, which walguard
/// reports itself once per reconnect attempt, and tokio-postgres logs every
/// server NOTICE (such as "already exists, skipping" on a repeated setup).
const QUIET_LIBRARIES: [(&str, &str); 2] =
    [("pgwire_replication", "pgwire_replication=off"), ("tokio_postgres", "tokio_postgres=warn")];

/// Starts logging to stderr; `RUST_LOG` picks the levels (default `info`).
/// Colours are used only when stderr is a terminal.
pub fn init_logs(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    for (target, directive) in QUIET_LIBRARIES {
        if !rust_log.contains(target) {
            filter = filter.add_directive(directive.parse().expect("a valid directive"));
        }
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// An error with every cause below it, `: `-separated, skipping a cause whose
/// text the message already contains (many errors quote their source).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
