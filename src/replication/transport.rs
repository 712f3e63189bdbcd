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
/// How soon an acknowledged position reaches the server.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// How long a silent stream waits before sending a status update anyway.
const WAKEUP_INTERVAL: Duration = Duration::from_secs(10);
/// Events buffered between the network task and the pipeline.
const EVENT_BUFFER: usize = 8_192;

/// A failure of the replication connection.
#[derive(Debug, thiserror::Error)]
#[error("replication from slot {slot} on {target} failed: {source}")]
pub struct TransportError {
    pub slot: String,
    pub target: String,
    #[source]
    pub source: pgwire_replication::PgWireError,
}

impl TransportError {
    /// Whether reconnecting may help.
    pub fn is_transient(&self) -> bool {
        self.source.is_transient() || self.source.is_io()
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
