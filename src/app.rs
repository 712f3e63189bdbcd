//! `walguard run`: the supervisor that keeps a streaming session going
//! through restarts and cuts, and its orderly shutdown.
//!
//! Each session checks the slot and publications, opens the sink if it is not
//! open, starts the replication stream from the slot's confirmed position and
//! streams ([`session`]). When a session fails, [`reconnect`] decides: a
//! transient failure (a cut connection, a server restart, a terminated
//! walsender or sink backend) reconnects after a capped exponential backoff
//! with jitter, logging each attempt once; a slot held by another consumer
//! makes this walguard stand by until it can take the slot over; anything
//! else stops the run with a message that says what to do. Nothing is lost
//! in between: the batch that was not written is dropped, the slot sends its
//! changes again, and the violations' unique key drops what was written twice.
//!
//! On SIGTERM or Ctrl-C (the `stop` token) the current batch is written, its
//! position acknowledged and reported to the server, and the stream closed.
//! A stop during a backoff or a standby wait returns at once.

mod oversized;
mod reconnect;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::monitor::{self, Activity};
use crate::pipeline::{Pipeline, PipelineError};
use crate::postgres::{self, ConnectError};
use crate::references::Checker;
use crate::reload;
use crate::replication::{SlotError, Transport, TransportError, slot};
use crate::schema::{SchemaError, SchemaSet};
use crate::sink::{self, Sink, SinkError};
use crate::telemetry::admin::{self, AdminError, Readiness};
use crate::telemetry::metrics as telemetry_metrics;
use crate::type_catalog;
use reconnect::{Backoff, Disposition, STANDBY_POLL};
use session::Stream;

/// How long a stop waits for the final acknowledgement to reach the server.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why `walguard run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the server ended the replication stream")]
    StreamEnded,
    #[error(
        "a change to {subject} is a {size}-byte message, over source.max_message_bytes \
         ({limit}): raise source.max_message_bytes to validate it"
    )]
    RowTooLarge { subject: String, size: usize, limit: usize },
}

/// Options of one `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once everything up to this position is durable.
    pub until_lsn: Option<u64>,
}

/// Runs until `stop` is cancelled, `until_lsn` is reached, or an error that
/// retrying cannot fix.
pub async fn run(
    settings: Settings,
    options: RunOptions,
    stop: CancellationToken,
) -> Result<(), RunError> {
    // Load and compile the schema files before touching any database.
    let loaded = reload::fingerprint(&settings.schemas);
    let schemas = Arc::new(SchemaSet::load(&settings.schemas)?);
    tracing::info!(tables = schemas.len(), folder = %settings.schemas.display(), "schemas loaded");
    warn_of_unwatched_alert_tables(&settings, &schemas);

    // Metrics and health, when an admin address is configured.
    let readiness = Arc::new(Readiness::default());
    let admin_stop = CancellationToken::new();
    if let Some(address) = settings.admin.listen {
        admin::start(address, readiness.clone(), admin_stop.clone()).await?;
    }

    // Deliver alerts beside the stream, never in its way.
    let outbox_ready = Arc::new(Notify::new());
    let dispatcher_stop = CancellationToken::new();
    let dispatcher = tokio::spawn(sink::webhook::dispatch(
        settings.sink.clone(),
        settings.webhooks.clone(),
        outbox_ready.clone(),
        dispatcher_stop.clone(),
    ));

    // Reload the schema files on SIGHUP and on change, and run the monitors,
    // both following the current schemas.
    let (schemas_sender, current_schemas) = watch::channel(schemas.clone());
    let reloader = tokio::spawn(reload::watch(
        settings.clone(),
        loaded,
        schemas_sender,
        dispatcher_stop.clone(),
    ));
    let activity = Arc::new(Activity::default());
    let monitors = tokio::spawn(monitor::run(
        settings.sink.clone(),
        settings.webhooks.clone(),
        outbox_ready.clone(),
        current_schemas.clone(),
        activity.clone(),
        dispatcher_stop.clone(),
    ));

    // Stream, session after session, until stopped.
    let checker = Checker::new(settings.source.connection.clone());
    let mut pipeline = Pipeline::new(schemas).with_origins(settings.source.origins);
    pipeline.set_activity(activity);
    let mut stream = Stream::new(pipeline, checker, &settings.sink, options.until_lsn);
    stream.follow_reloads(current_schemas);
    let mut supervisor =
        Supervisor { settings: &settings, stream, sink: None, outbox_ready, readiness };
    let result = supervisor.run(&stop).await;

    // Then stop the dispatcher, the reloader, the monitors and the admin
    // listener.
    dispatcher_stop.cancel();
    let _ = tokio::join!(dispatcher, reloader, monitors);
    admin_stop.cancel();
    let load = supervisor.stream.reference_load();
    if load.checks > 0 {
        tracing::info!(
            checks = load.checks,
            cache_hits = load.cache_hits,
            queries = load.queries,
            queries_per_1000_checks = format!("{:.1}", load.queries_per_thousand()),
            "reference look-up load"
        );
    }
    if result.is_ok() {
        let acknowledged = sink::format_lsn(supervisor.stream.acknowledged());
        tracing::info!(acknowledged = %acknowledged, "stopped");
    }
    result
}

/// A webhook limited to a table no schema file names would never fire: say
/// so at start rather than stay silent.
fn warn_of_unwatched_alert_tables(settings: &Settings, schemas: &SchemaSet) {
    let watched: Vec<String> = schemas.tables().map(|table| table.table.to_string()).collect();
    for (index, hook) in settings.webhooks.iter().enumerate() {
        for table in hook.tables.iter().flatten().filter(|table| !watched.contains(table)) {
            tracing::warn!(key = %format!("webhooks[{index}].tables"), table = %table,
                "no schema file names this table, so this webhook never alerts on it");
        }
    }
}

/// Runs sessions one after another and decides what a failure means.
struct Supervisor<'a> {
    settings: &'a Settings,
    stream: Stream,
    /// The sink connection, kept across sessions while it works.
    sink: Option<Sink>,
    outbox_ready: Arc<Notify>,
    readiness: Arc<Readiness>,
}

impl Supervisor<'_> {
    async fn run(&mut self, stop: &CancellationToken) -> Result<(), RunError> {
        let slot = self.settings.source.slot.clone();
        let mut backoff = Backoff::new();
        let mut standing_by = false;
        let mut interrupted: Option<Instant> = None;
        loop {
            // One session; a stop while connecting ends the run at once.
            let before = self.stream.acknowledged();
            let result = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                transport = self.open() => match transport {
                    Ok(transport) => {
                        if let Some(since) = interrupted.take() {
                            tracing::info!(slot = %slot, attempts = backoff.attempt,
                                downtime_ms = since.elapsed().as_millis() as u64,
                                "replication resumed");
                        }
                        standing_by = false;
                        self.readiness.set_streaming(true);
                        self.stream(transport, stop).await
                    }
                    Err(err) => Err(err),
                },
            };
            self.readiness.set_streaming(false);
            let Err(err) = result else { return Ok(()) };

            // Decide, and log each attempt once.
            if self.stream.acknowledged() > before {
                backoff = Backoff::new();
            }
            let delay = match err.disposition() {
                Disposition::Fatal => return Err(self.explain(err).await),
                Disposition::SlotBusy => {
                    if !standing_by {
                        tracing::info!(slot = %slot,
                            "the slot is in use by another consumer; standing by to take over");
                        standing_by = true;
                    }
                    backoff = Backoff::new();
                    STANDBY_POLL
                }
                Disposition::Retry => {
                    metrics::counter!(telemetry_metrics::RECONNECTS_TOTAL).increment(1);
                    let delay = backoff.next_delay();
                    tracing::warn!(slot = %slot, attempt = backoff.attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %crate::telemetry::chain(&err),
                        "replication interrupted; reconnecting");
                    interrupted.get_or_insert_with(Instant::now);
                    delay
                }
            };

            // Drop what the failed session left unwritten, then wait.
            self.stream.restart();
            if err.concerns_sink() {
                self.sink = None;
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Checks the slot, opens the sink if needed and starts the stream.
    async fn open(&mut self) -> Result<Transport, RunError> {
        let settings = self.settings;
        let source = postgres::connect(&settings.source.connection, "walguard").await?;
        let publications =
            slot::check(&source, &settings.source.slot, &settings.source.publication).await?;
        let type_kinds = type_catalog::load(&source)
            .await
            .map_err(|source| SlotError::Sql { action: "read user-defined types", source })?;
        self.stream.pipeline.set_type_kinds(type_kinds);
        let generated = type_catalog::load_generated(&source)
            .await
            .map_err(|source| SlotError::Sql { action: "read generated columns", source })?;
        self.stream.pipeline.set_generated_columns(generated);
        drop(source);
        if self.sink.as_ref().is_none_or(Sink::is_closed) {
            let sink = Sink::connect(&settings.sink, &settings.webhooks, self.outbox_ready.clone())
                .await?;
            self.sink = Some(sink);
        }
        let transport = Transport::start(&settings.source, &publications).await?;
        tracing::info!(slot = %settings.source.slot, source = %settings.source.connection.describe(),
            "streaming");
        Ok(transport)
    }

    /// Streams one session; on a clean end, closes it after the last
    /// acknowledgement has reached the server.
    async fn stream(
        &mut self,
        mut transport: Transport,
        stop: &CancellationToken,
    ) -> Result<(), RunError> {
        let sink = self.sink.as_mut().expect("open() connected the sink");
        let result = self.stream.run(&mut transport, sink, stop).await;
        if result.is_ok() {
            transport.stop(STOP_GRACE).await;
        }
        result
    }

    /// Turns a fatal error into the most useful message.
    async fn explain(&mut self, err: RunError) -> RunError {
        let Some((size, limit)) = err.transport().and_then(TransportError::message_too_large)
        else {
            return err;
        };
        let subject = oversized::describe(self.settings, &self.stream.pipeline, limit).await;
        RunError::RowTooLarge { subject, size, limit }
    }
}
