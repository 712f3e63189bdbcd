//! The replication connection: pgwire-replication, configured for walguard.
//!
//! The session pins `DateStyle`, `IntervalStyle`, `TimeZone` and
//! `extra_float_digits`, so the text form of every value is the same whatever
//! the server's or the role's defaults are, and `format: date-time` behaves
//! the same everywhere. pgwire-replication's own configuration is never
//! logged: its `Debug` shows the password.

use std::time::Duration;

use pgwire_replication::{
    FeedbackObserver, Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig,
};

use crate::config::{SourceSettings, SslMode};

/// Session settings that fix the text form of dates, intervals and floats.
pub const SESSION_OPTIONS: &str = "-c DateStyle=ISO,MDY -c IntervalStyle=postgres \
     -c TimeZone=UTC -c extra_float_digits=3";
/// How soon an acknowledged position reaches the server. A graceful stop
/// waits for it to be sent, so it is short: a status update is a few bytes.
const STATUS_INTERVAL: Duration = Duration::from_millis(100);
/// How long a silent stream waits before sending a status update anyway.
const WAKEUP_INTERVAL: Duration = Duration::from_secs(10);
/// Events buffered between the network task and the pipeline.
const EVENT_BUFFER: usize = 8_192;

/// A failure of the replication connection.
#[derive(Debug, thiserror::Error)]
#[error("replication from slot {slot} on {target} failed: {source}{}", hint(source))]
pub struct TransportError {
    pub slot: String,
    pub target: String,
    #[source]
    pub source: pgwire_replication::PgWireError,
}

impl TransportError {
    /// Whether reconnecting may help: a cut connection, or a server that is
    /// shutting down, starting up, out of resources or ended the session
    /// (`pg_terminate_backend`).
    pub fn is_transient(&self) -> bool {
        if self.source.is_transient() || self.source.is_io() {
            return true;
        }
        self.sqlstate().is_some_and(|code| {
            code != SLOT_IN_USE
                && crate::postgres::is_transient_code(&tokio_postgres::error::SqlState::from_code(
                    code,
                ))
        })
    }

    /// Whether another session holds the slot (SQLSTATE 55006, "replication
    /// slot ... is active for PID ...").
    pub fn is_slot_busy(&self) -> bool {
        self.sqlstate() == Some(SLOT_IN_USE)
    }

    /// The size and limit when a message was larger than
    /// `source.max_message_bytes`.
    pub fn message_too_large(&self) -> Option<(usize, usize)> {
        match self.source {
            pgwire_replication::PgWireError::MessageTooLarge { payload_bytes, limit_bytes } => {
                Some((payload_bytes, limit_bytes))
            }
            _ => None,
        }
    }

    /// The SQLSTATE of a server error; pgwire-replication keeps only the
    /// text, which ends in `(SQLSTATE xxxxx)`.
    pub fn sqlstate(&self) -> Option<&str> {
        sqlstate(&self.source)
    }
}

/// SQLSTATE object_in_use: the slot is active for another session.
const SLOT_IN_USE: &str = "55006";

fn sqlstate(error: &pgwire_replication::PgWireError) -> Option<&str> {
    let pgwire_replication::PgWireError::Server(text) = error else { return None };
    let code = text.strip_suffix(')')?.rsplit_once("(SQLSTATE ")?.1;
    (code.len() == 5).then_some(code)
}

/// What an operator should do about a fatal server error.
fn hint(error: &pgwire_replication::PgWireError) -> &'static str {
    match sqlstate(error) {
        // undefined_object: the slot or a publication was dropped.
        Some("42704") => ": run `walguard setup`",
        // object_not_in_prerequisite_state: the slot was invalidated.
        Some("55000") => ": drop the slot and run `walguard setup` again",
        Some("28000" | "28P01") => ": check the user and password in source.url",
        _ if error.is_auth() => ": check the user and password in source.url",
        _ => "",
    }
}

/// An open replication stream.
pub struct Transport {
    client: ReplicationClient,
    slot: String,
    target: String,
}

impl Transport {
    /// Starts streaming from the slot's confirmed position.
    pub async fn start(
        source: &SourceSettings,
        publications: &[String],
    ) -> Result<Self, TransportError> {
        let connection = &source.connection;
        let tls = match connection.sslmode {
            SslMode::Disable | SslMode::Prefer => TlsConfig::disabled(),
            SslMode::Require => TlsConfig::require(),
            SslMode::VerifyCa => TlsConfig::verify_ca(connection.sslrootcert.clone()),
            SslMode::VerifyFull => TlsConfig::verify_full(connection.sslrootcert.clone()),
        };
        let password = connection.password.as_ref().map_or("", |secret| secret.expose());
        let config = ReplicationConfig::new(
            connection.host.clone(),
            connection.user.clone(),
            password,
            connection.dbname.clone(),
            source.slot.clone(),
            publications.to_vec(),
        )
        .with_port(connection.port)
        .with_tls(tls)
        .with_start_lsn(Lsn(0))
        .with_status_interval(STATUS_INTERVAL)
        .with_wakeup_interval(WAKEUP_INTERVAL)
        .with_buffer_size(EVENT_BUFFER)
        .with_options(SESSION_OPTIONS)
        .with_application_name("walguard")
        .with_max_message_size(source.max_message_bytes)
        // An observer makes the client track unreported acknowledgements,
        // which a graceful stop waits for.
        .with_feedback_observer(FeedbackObserver::new(|_| {}));

        let slot = source.slot.clone();
        let target = connection.describe();
        let failed = |source| TransportError { slot: slot.clone(), target: target.clone(), source };
        let mut client = ReplicationClient::connect(config).await.map_err(failed)?;
        client.wait_started().await.map_err(failed)?;
        Ok(Transport { client, slot, target })
    }

    /// The next event; `None` once the stream ended after [`Transport::stop`].
    pub async fn recv(&mut self) -> Result<Option<ReplicationEvent>, TransportError> {
        self.client.recv().await.map_err(|source| TransportError {
            slot: self.slot.clone(),
            target: self.target.clone(),
            source,
        })
    }

    /// Tells the server that everything up to `lsn` is durable. Only
    /// [`super::progress::Progress`] calls this.
    pub(super) fn acknowledge(&self, lsn: u64) {
        self.client.update_applied_lsn(Lsn(lsn));
    }

    /// Whether an acknowledged position has not reached the server yet.
    pub fn feedback_pending(&self) -> bool {
        self.client.feedback_pending_since().is_some()
    }

    /// Ends the stream, first waiting (up to `grace`) until the last
    /// acknowledged position has been reported, so the next start does not
    /// replay what is already durable.
    pub async fn stop(mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.feedback_pending() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Err(err) = self.client.shutdown().await {
            tracing::debug!(slot = %self.slot, error = %err, "replication stream ended with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire_replication::PgWireError;

    fn server_error(text: &str) -> TransportError {
        TransportError {
            slot: "walguard".into(),
            target: "walguard@db:5432/shop".into(),
            source: PgWireError::Server(text.into()),
        }
    }

    #[test]
    fn terminated_walsender_and_shutdown_are_transient() {
        let terminated =
            server_error("terminating connection due to administrator command (SQLSTATE 57P01)");
        assert!(terminated.is_transient() && !terminated.is_slot_busy());
        let starting = server_error("the database system is starting up (SQLSTATE 57P03)");
        assert!(starting.is_transient());
    }

    #[test]
    fn slot_held_by_another_session_is_busy_not_transient() {
        let busy =
            server_error("replication slot \"walguard\" is active for PID 4242 (SQLSTATE 55006)");
        assert!(busy.is_slot_busy());
        assert!(!busy.is_transient());
    }

    #[test]
    fn missing_slot_or_publication_is_fatal_and_says_to_run_setup() {
        let missing = server_error("publication \"walguard\" does not exist (SQLSTATE 42704)");
        assert!(!missing.is_transient());
        assert!(missing.to_string().ends_with("run `walguard setup`"), "{missing}");
        let auth = server_error("password authentication failed for user \"w\" (SQLSTATE 28P01)");
        assert!(!auth.is_transient());
        assert!(auth.to_string().contains("source.url"), "{auth}");
    }

    #[test]
    fn server_text_without_a_code_has_no_sqlstate() {
        assert_eq!(server_error("unknown server error").sqlstate(), None);
        assert_eq!(server_error("odd (SQLSTATE 1)").sqlstate(), None);
        assert_eq!(server_error("x (SQLSTATE 55006)").sqlstate(), Some("55006"));
    }
}
