//! `walguard run`: the loop that reads the stream, validates, writes batches
//! and acknowledges, and its orderly shutdown.
//!
//! Violations collect in a batch that is written when it is full, or at the
//! latest `batch_max_delay` after the first commit it waits for. Only after
//! the write returns is the newest commit in it acknowledged. A transaction
//! larger than a batch is written in several batches before its commit
//! arrives, which bounds memory; its position is acknowledged at its commit.
//!
//! On SIGTERM or Ctrl-C (the `stop` token) the current batch is written, its
//! position acknowledged and reported to the server, and the stream closed.

use std::sync::Arc;
use std::time::Duration;

use pgwire_replication::ReplicationEvent;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::pipeline::{Pipeline, PipelineError};
use crate::postgres::{self, ConnectError};
use crate::replication::{Progress, SlotError, Transport, TransportError, slot};
use crate::schema::{SchemaError, SchemaSet};
use crate::sink::{self, Sink, SinkError, Violation};
use crate::type_catalog;

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
    #[error("the server ended the replication stream")]
    StreamEnded,
}

/// Options of one `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once everything up to this position is durable.
    pub until_lsn: Option<u64>,
}

/// Runs until `stop` is cancelled, `until_lsn` is reached, or an error.
pub async fn run(
    settings: Settings,
    options: RunOptions,
    stop: CancellationToken,
) -> Result<(), RunError> {
    // Load and compile the schema files before touching any database.
    let schemas = Arc::new(SchemaSet::load(&settings.schemas)?);
    tracing::info!(tables = schemas.len(), folder = %settings.schemas.display(), "schemas loaded");

    // Check the slot and publications, then open the sink.
    let source = postgres::connect(&settings.source.connection, "walguard").await?;
    let publications =
        slot::check(&source, &settings.source.slot, &settings.source.publication).await?;
    let type_kinds = type_catalog::load(&source)
        .await
        .map_err(|source| SlotError::Sql { action: "read user-defined types", source })?;
    drop(source);
    let outbox_ready = Arc::new(Notify::new());
    let mut sink = Sink::connect(&settings.sink, &settings.webhooks, outbox_ready.clone()).await?;

    // Deliver alerts beside the stream, never in its way.
    let dispatcher_stop = CancellationToken::new();
    let dispatcher = tokio::spawn(sink::webhook::dispatch(
        settings.sink.clone(),
        settings.webhooks.clone(),
        outbox_ready,
        dispatcher_stop.clone(),
    ));

    // Stream until stopped.
    let mut transport = Transport::start(&settings.source, &publications).await?;
    tracing::info!(slot = %settings.source.slot, source = %settings.source.connection.describe(),
        "streaming");
    let mut stream = Stream {
        pipeline: Pipeline::new(schemas)
            .with_type_kinds(type_kinds)
            .with_origins(settings.source.origins),
        progress: Progress::default(),
        batch: Vec::new(),
        pending_ack: None,
        deadline: None,
        max_violations: settings.sink.batch_max_violations,
        max_delay: settings.sink.batch_max_delay,
        until_lsn: options.until_lsn,
    };
    let result = stream.run(&mut transport, &mut sink, &stop).await;

    // Close the stream after the last acknowledgement, then the dispatcher.
    transport.stop(STOP_GRACE).await;
    dispatcher_stop.cancel();
    let _ = dispatcher.await;
    if result.is_ok() {
        tracing::info!(acknowledged = %sink::format_lsn(stream.progress.acknowledged()), "stopped");
    }
    result
}

/// The state of one streaming session.
struct Stream {
    pipeline: Pipeline,
    progress: Progress,
    batch: Vec<Violation>,
    /// The furthest position that becomes durable once `batch` is written.
    pending_ack: Option<u64>,
    /// When `batch` must be written at the latest.
    deadline: Option<Instant>,
    max_violations: usize,
    max_delay: Duration,
    until_lsn: Option<u64>,
}

impl Stream {
    async fn run(
        &mut self,
        transport: &mut Transport,
        sink: &mut Sink,
        stop: &CancellationToken,
    ) -> Result<(), RunError> {
        loop {
            if self.until_lsn.is_some_and(|until| self.progress.acknowledged() >= until) {
                return Ok(());
            }
            let deadline = self.deadline;
            let event = tokio::select! {
                biased;
                _ = stop.cancelled() => return self.flush(transport, sink).await,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if deadline.is_some() => {
                    self.flush(transport, sink).await?;
                    continue;
                }
                event = transport.recv() => event?,
            };
            let Some(event) = event else {
                self.flush(transport, sink).await?;
                return Err(RunError::StreamEnded);
            };
            self.handle(event, transport, sink).await?;
        }
    }

    async fn handle(
        &mut self,
        event: ReplicationEvent,
        transport: &mut Transport,
        sink: &mut Sink,
    ) -> Result<(), RunError> {
        match event {
            ReplicationEvent::Begin { final_lsn, xid, commit_time_micros } => {
                self.pipeline.begin(final_lsn.as_u64(), commit_time_micros, xid);
            }
            ReplicationEvent::XLogData { data, .. } => {
                self.pipeline.handle(&data, &mut self.batch)?;
                if self.batch.len() >= self.max_violations {
                    self.flush(transport, sink).await?;
                }
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                self.pipeline.commit();
                self.advance(end_lsn.as_u64(), transport);
            }
            ReplicationEvent::KeepAlive { wal_end, .. } if !self.pipeline.in_transaction() => {
                self.advance(wal_end.as_u64(), transport);
            }
            _ => {}
        }
        Ok(())
    }

    /// Everything before `lsn` has been read: acknowledge it now if nothing is
    /// waiting to be written, else once the batch is.
    fn advance(&mut self, lsn: u64, transport: &Transport) {
        if self.batch.is_empty() && self.pending_ack.is_none() {
            self.progress.acknowledge(transport, lsn);
        } else {
            self.pending_ack = Some(self.pending_ack.map_or(lsn, |pending| pending.max(lsn)));
            self.deadline.get_or_insert_with(|| Instant::now() + self.max_delay);
        }
    }

    /// Writes the batch and acknowledges what it made durable.
    async fn flush(&mut self, transport: &Transport, sink: &mut Sink) -> Result<(), RunError> {
        if !self.batch.is_empty() {
            let fresh = sink.write(&self.batch).await?;
            tracing::debug!(violations = self.batch.len(), fresh, "batch written");
            self.batch.clear();
        }
        if let Some(lsn) = self.pending_ack.take() {
            self.progress.acknowledge(transport, lsn);
        }
        self.deadline = None;
        Ok(())
    }
}
