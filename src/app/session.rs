//! One streaming session: read the stream, validate, write batches and
//! acknowledge what they made durable.
//!
//! Violations and reference checks collect in a batch that is written when
//! it is full, or at the latest `batch_max_delay` after the first commit it
//! waits for; the reference checks are settled just before (see
//! [`crate::references`]). Only after the write returns is the newest commit
//! in it acknowledged. A transaction
//! larger than a batch is written in several batches before its commit
//! arrives, which bounds memory; its position is acknowledged at its commit.
//!
//! The stream is read on while a batch is written, so the source's WAL keeps
//! flowing: one write is under way at a time, the next batch collects behind
//! it, and nothing else uses the sink until it returns. A position read while
//! a write is under way waits for that write too.
//!
//! The same [`Stream`] carries over from one session to the next: after a
//! failure, [`Stream::restart`] drops what was not written (the slot sends it
//! again, and the violations' unique key makes the second write harmless)
//! and forgets the relations, which the server sends again.

use crate::telemetry::metrics as telemetry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use pgwire_replication::ReplicationEvent;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RunError;
use crate::config::SinkSettings;
use crate::pipeline::{Output, Pipeline};
use crate::references::{Checker, Load};
use crate::replication::{Progress, Transport};
use crate::schema::SchemaSet;
use crate::sink::{Batch, Sink, SinkError};

/// A batch being written while the stream is read on.
type Write<'s> = Pin<Box<dyn Future<Output = Written> + Send + 's>>;

/// A finished write: its outcome, the batch (for its memory) and the
/// position it makes durable.
struct Written {
    result: Result<usize, SinkError>,
    batch: Batch,
    ack: Option<u64>,
}

/// The state of the stream, kept across sessions.
pub(super) struct Stream {
    pub(super) pipeline: Pipeline,
    checker: Checker,
    /// Reloaded schemas, switched to between transactions; `None` when
    /// nothing reloads them.
    schemas: Option<watch::Receiver<Arc<SchemaSet>>>,
    progress: Progress,
    batch: Output,
    /// The furthest position that becomes durable once `batch` is written.
    pending_ack: Option<u64>,
    /// When `batch` must be written at the latest.
    deadline: Option<Instant>,
    max_violations: usize,
    max_delay: Duration,
    until_lsn: Option<u64>,
}

/// The next reloaded schemas, or `None` once the reloader has gone.
async fn changed(schemas: &mut Option<watch::Receiver<Arc<SchemaSet>>>) -> Option<Arc<SchemaSet>> {
    let receiver = schemas.as_mut()?;
    receiver.changed().await.ok()?;
    Some(receiver.borrow_and_update().clone())
}

impl Stream {
    pub(super) fn new(
        pipeline: Pipeline,
        checker: Checker,
        sink: &SinkSettings,
        until_lsn: Option<u64>,
    ) -> Self {
        Stream {
            pipeline,
            checker,
            schemas: None,
            progress: Progress::default(),
            batch: Output::default(),
            pending_ack: None,
            deadline: None,
            max_violations: sink.batch_max_violations,
            max_delay: sink.batch_max_delay,
            until_lsn,
        }
    }

    /// Switches the pipeline to each set of schemas `schemas` receives.
    pub(super) fn follow_reloads(&mut self, schemas: watch::Receiver<Arc<SchemaSet>>) {
        self.schemas = Some(schemas);
    }

    /// The furthest position acknowledged in any session.
    pub(super) fn acknowledged(&self) -> u64 {
        self.progress.acknowledged()
    }

    /// What reference checking has cost the source so far.
    pub(super) fn reference_load(&self) -> Load {
        self.checker.load(self.pipeline.known_hits())
    }

    /// Forgets everything that belonged to a failed session.
    pub(super) fn restart(&mut self) {
        if !self.batch.is_empty() {
            tracing::debug!(
                violations = self.batch.batch.violations.len(),
                checks = self.batch.references.len(),
                "unwritten batch dropped for replay"
            );
        }
        self.pipeline.reset();
        self.checker.restart();
        self.batch.clear();
        self.pending_ack = None;
        self.deadline = None;
    }

    /// Streams until `stop` is cancelled or `until_lsn` is durable (`Ok`), or
    /// an error ends the session.
    pub(super) async fn run(
        &mut self,
        transport: &mut Transport,
        sink: &Sink,
        stop: &CancellationToken,
    ) -> Result<(), RunError> {
        self.progress.resume(transport);
        sink.end_abandoned_transaction().await?;
        self.read_open_states(sink).await?;
        self.checker.refresh(sink).await?;
        let mut writing: Option<Write<'_>> = None;
        loop {
            if self.until_lsn.is_some_and(|until| self.progress.acknowledged() >= until) {
                return Ok(());
            }
            let deadline = self.deadline;
            let references_due = self.checker.next_due().map(instant_of);
            let event = tokio::select! {
                biased;
                _ = stop.cancelled() => return self.flush_all(transport, sink, &mut writing).await,
                written = in_flight(&mut writing) => {
                    writing = None;
                    self.complete(written, transport)?;
                    continue;
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if deadline.is_some() => {
                    self.flush(transport, sink, &mut writing).await?;
                    continue;
                }
                _ = tokio::time::sleep_until(references_due.unwrap_or_else(Instant::now)),
                    if references_due.is_some() && !self.pipeline.in_transaction() => {
                    self.flush(transport, sink, &mut writing).await?;
                    continue;
                }
                changed = changed(&mut self.schemas), if self.schemas.is_some() => {
                    match changed {
                        Some(schemas) => self.pipeline.replace_schemas(schemas),
                        None => self.schemas = None,
                    }
                    continue;
                }
                event = transport.recv() => event?,
            };
            let Some(event) = event else {
                self.flush_all(transport, sink, &mut writing).await?;
                return Err(RunError::StreamEnded);
            };
            self.handle(event, transport, sink, &mut writing).await?;
        }
    }

    /// Reads which rows have open violation states, at the start of every
    /// session: what a failed session noted without writing is forgotten.
    async fn read_open_states(&mut self, sink: &Sink) -> Result<(), RunError> {
        let open = self.pipeline.open_states();
        open.clear();
        let complete = sink
            .open_states(crate::pipeline::KEY_LIMIT, |schema, table, key| match key {
                Some(key) => open.insert(schema, table, &key),
                None => open.mark_table(schema, table),
            })
            .await?;
        if !complete {
            for (schema, table) in sink.tables_with_open_states().await? {
                open.mark_table(&schema, &table);
            }
        }
        tracing::debug!(rows = open.row_count(), complete, "open violation states read");
        Ok(())
    }

    async fn handle<'s>(
        &mut self,
        event: ReplicationEvent,
        transport: &mut Transport,
        sink: &'s Sink,
        writing: &mut Option<Write<'s>>,
    ) -> Result<(), RunError> {
        match event {
            ReplicationEvent::Begin { final_lsn, xid, commit_time_micros } => {
                self.pipeline.begin(final_lsn.as_u64(), commit_time_micros, xid);
            }
            ReplicationEvent::XLogData { data, .. } => {
                metrics::counter!(telemetry::MESSAGES_TOTAL).increment(1);
                self.pipeline.handle(&data, &mut self.batch)?;
                // Resolutions count too: every row of a table with open
                // states carries one, and they must not pile up unbounded in
                // a large transaction.
                if self.batch.batch.violations.len() >= self.max_violations
                    || self.batch.batch.resolutions.len() >= self.max_violations
                    || self.batch.references.len() >= self.max_violations
                {
                    self.flush(transport, sink, writing).await?;
                }
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                self.pipeline.commit();
                metrics::counter!(telemetry::TRANSACTIONS_TOTAL).increment(1);
                tracing::debug!(lsn = %crate::sink::format_lsn(end_lsn.as_u64()), "commit read");
                self.advance(end_lsn.as_u64(), transport, writing.is_some());
            }
            ReplicationEvent::KeepAlive { wal_end, .. } if !self.pipeline.in_transaction() => {
                self.advance(wal_end.as_u64(), transport, writing.is_some());
            }
            _ => {}
        }
        Ok(())
    }

    /// Everything before `lsn` has been read: acknowledge it now if nothing is
    /// waiting to be written, nor being written, else once the batch is; at
    /// once when `lsn` reaches `--until-lsn`, where nothing more will come.
    fn advance(&mut self, lsn: u64, transport: &Transport, writing: bool) {
        if self.batch.is_empty() && self.pending_ack.is_none() && !writing {
            self.progress.acknowledge(transport, lsn);
        } else {
            self.pending_ack = Some(self.pending_ack.map_or(lsn, |pending| pending.max(lsn)));
            if self.until_lsn.is_some_and(|until| lsn >= until) {
                self.deadline = Some(Instant::now());
            }
            self.deadline.get_or_insert_with(|| Instant::now() + self.max_delay);
        }
    }

    /// Settles reference checks and starts writing the batch, once the
    /// write under way has finished; the batch's position is acknowledged
    /// when its own write has.
    async fn flush<'s>(
        &mut self,
        transport: &Transport,
        sink: &'s Sink,
        writing: &mut Option<Write<'s>>,
    ) -> Result<(), RunError> {
        // One write at a time, and nothing else on the sink meanwhile.
        self.finish_write(transport, writing).await?;

        // Reference checks, even those of a transaction still being read:
        // the stream only carries committed transactions, so the source
        // already holds every row of it, parents written after their
        // children included.
        let checks = std::mem::take(&mut self.batch.references);
        let known = self.pipeline.known_keys();
        let before = self.batch.batch.violations.len();
        self.checker.settle(checks, known, sink, &mut self.batch.batch).await?;
        for violation in &self.batch.batch.violations[before..] {
            self.pipeline.note_open(violation);
        }
        self.checker.refresh(sink).await?;

        // The write, under way while the stream is read on.
        self.deadline = None;
        let ack = self.pending_ack.take();
        if self.batch.batch.is_empty() {
            if let Some(lsn) = ack {
                self.progress.acknowledge(transport, lsn);
            }
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch.batch);
        *writing = Some(Box::pin(async move {
            let result = sink.write_batch(&batch).await;
            Written { result, batch, ack }
        }));
        Ok(())
    }

    /// [`Stream::flush`], then waits for the write.
    async fn flush_all<'s>(
        &mut self,
        transport: &Transport,
        sink: &'s Sink,
        writing: &mut Option<Write<'s>>,
    ) -> Result<(), RunError> {
        self.flush(transport, sink, writing).await?;
        self.finish_write(transport, writing).await
    }

    /// Waits for the write under way, if any, and acknowledges it.
    async fn finish_write(
        &mut self,
        transport: &Transport,
        writing: &mut Option<Write<'_>>,
    ) -> Result<(), RunError> {
        match writing.take() {
            Some(write) => self.complete(write.await, transport),
            None => Ok(()),
        }
    }

    /// Acknowledges what a finished write made durable.
    fn complete(&mut self, written: Written, transport: &Transport) -> Result<(), RunError> {
        let fresh = written.result?;
        let batch = written.batch;
        tracing::debug!(
            violations = batch.violations.len(),
            fresh,
            resolutions = batch.resolutions.len(),
            "batch written"
        );
        metrics::counter!(telemetry::BATCHES_TOTAL).increment(1);
        metrics::counter!(telemetry::VIOLATIONS_TOTAL).increment(fresh as u64);
        if let Some(lsn) = written.ack {
            self.progress.acknowledge(transport, lsn);
        }
        if self.batch.batch.is_empty() {
            let mut batch = batch;
            batch.clear();
            self.batch.batch = batch;
        }
        Ok(())
    }
}

/// The write under way, or a future that never finishes when there is none.
async fn in_flight(writing: &mut Option<Write<'_>>) -> Written {
    match writing.as_mut() {
        Some(write) => write.await,
        None => std::future::pending().await,
    }
}

/// The instant a clock time falls at, now if it is past.
fn instant_of(time: std::time::SystemTime) -> Instant {
    let wait = time.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    Instant::now() + wait
}
