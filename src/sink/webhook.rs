//! Delivery of queued alerts from `webhook_outbox` to the webhook endpoints.
//!
//! Each endpoint has its own task, so a slow or dead endpoint delays only its
//! own alerts and never replication, which only ever inserts outbox rows. A
//! task first queues the summaries of alert groups whose window ended (see
//! [`super::grouping`]), then claims due rows by pushing their
//! `next_attempt_at` a lease ahead (`FOR UPDATE SKIP LOCKED`, so a second
//! walguard never takes the same row), posts them with at most
//! `max_in_flight` requests at once, and records each outcome. A crash
//! mid-delivery leaves the row pending, and it is sent again when the lease
//! ends: delivery is at-least-once, and the `webhook-id` header stays the same
//! on every attempt so receivers can drop repeats.
//!
//! A failed attempt is retried after the webhook's `retry_schedule` step
//! (jittered by a tenth), or later if the endpoint sent `Retry-After`; after
//! the last step the delivery is marked dead and kept for inspection. A 410
//! Gone stops the endpoint's task until walguard restarts; its deliveries stay
//! pending.

use crate::telemetry::metrics;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::RngExt;
use tokio::sync::Notify;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

pub use super::endpoint::endpoint_name;
use super::endpoint::{Endpoint, Outcome};
use super::grouping;
use crate::config::{SinkSettings, WebhookSettings};
use crate::postgres::{self, quote_ident};

/// Longest an idle task waits before looking for due work it was not woken
/// for (retries and summaries are woken for by their own due time).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest wait between two idle looks.
const MIN_WAIT: Duration = Duration::from_millis(10);

/// Runs one delivery task per webhook until `stop` is cancelled.
pub async fn dispatch(
    sink: SinkSettings,
    webhooks: Vec<WebhookSettings>,
    ready: Arc<Notify>,
    stop: CancellationToken,
) {
    let tasks: Vec<_> = webhooks
        .into_iter()
        .map(|hook| {
            let dispatcher = Dispatcher::new(sink.clone(), hook, ready.clone());
            tokio::spawn(dispatcher.run(stop.clone()))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

struct Dispatcher {
    sink: SinkSettings,
    endpoint: Endpoint,
    ready: Arc<Notify>,
}

/// Why a delivery pass ended without a database error.
enum PassEnd {
    Stopped,
    /// The endpoint answered 410 Gone.
    Gone,
    /// The sink could not be reached; try again later.
    Unreachable,
}

/// How sending a claim ended.
enum Sent {
    All,
    /// The endpoint answered 410 Gone at least once.
    Gone,
    Stopped,
}

/// The SQL one endpoint's task runs, with its parameters fixed.
struct Statements {
    claim: String,
    delivered: String,
    failed: String,
    gone: String,
    release: String,
    next_due: String,
}

impl Dispatcher {
    fn new(sink: SinkSettings, hook: WebhookSettings, ready: Arc<Notify>) -> Self {
        Dispatcher { sink, endpoint: Endpoint::new(hook), ready }
    }

    async fn run(self, stop: CancellationToken) {
        let name = self.endpoint.name().to_string();
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            let wait = match self.deliver_due(&stop).await {
                Ok(PassEnd::Stopped) => return,
                Ok(PassEnd::Gone) => {
                    tracing::error!(endpoint = %name, origin = %self.endpoint.origin(),
                        "webhook endpoint answered 410 Gone: no more deliveries to it until \
                         walguard restarts; its alerts stay pending in the outbox");
                    return;
                }
                Ok(PassEnd::Unreachable) => Duration::from_secs(2),
                Err(err) => {
                    failures += 1;
                    tracing::warn!(endpoint = %name, error = %err, "webhook outbox unreachable");
                    Duration::from_secs(1 << failures.min(5))
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn statements(&self) -> Statements {
        let s = quote_ident(&self.sink.schema);
        let hook = self.endpoint.settings();
        // A claimed row stays reserved long enough for every request of the
        // claim to time out, in groups of `max_in_flight`.
        let batch = (hook.max_in_flight * 2).max(20);
        let rounds = batch.div_ceil(hook.max_in_flight) as u32;
        let lease = (hook.timeout * rounds + Duration::from_secs(60)).as_secs_f64();
        Statements {
            claim: format!(
                "UPDATE {s}.webhook_outbox SET attempts = attempts + 1,
                     next_attempt_at = now() + {lease} * interval '1 second'
                 WHERE id IN (SELECT id FROM {s}.webhook_outbox
                     WHERE endpoint = $1 AND status = 'pending' AND next_attempt_at <= now()
                     ORDER BY id LIMIT {batch} FOR UPDATE SKIP LOCKED)
                 RETURNING id, webhook_id, payload::text, attempts"
            ),
            delivered: format!(
                "UPDATE {s}.webhook_outbox SET status = 'delivered', delivered_at = now(),
                     last_error = NULL WHERE id = $1"
            ),
            failed: format!(
                "UPDATE {s}.webhook_outbox SET last_error = $2,
                     status = CASE WHEN $3 THEN 'dead' ELSE 'pending' END,
                     next_attempt_at = now() + $4 * interval '1 millisecond' WHERE id = $1"
            ),
            gone: format!(
                "UPDATE {s}.webhook_outbox SET next_attempt_at = now(),
                     last_error = 'HTTP 410 Gone: endpoint disabled until walguard restarts'
                 WHERE id = $1"
            ),
            release: format!(
                "UPDATE {s}.webhook_outbox SET next_attempt_at = now()
                 WHERE id = ANY($1) AND status = 'pending'"
            ),
            next_due: format!(
                "SELECT extract(epoch FROM least(
                     (SELECT min(next_attempt_at) FROM {s}.webhook_outbox
                      WHERE endpoint = $1 AND status = 'pending'),
                     (SELECT min(window_end) FROM {s}.alert_groups WHERE endpoint = $1))
                     - now())::float8"
            ),
        }
    }

    /// Summarises ended groups and delivers what is due, then waits to be
    /// woken, until stopped or the endpoint is gone; returns on a database
    /// error.
    async fn deliver_due(
        &self,
        stop: &CancellationToken,
    ) -> Result<PassEnd, tokio_postgres::Error> {
        let name = self.endpoint.name();
        let mut client = match postgres::connect(&self.sink.connection, "walguard dispatcher").await
        {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(endpoint = %name, error = %err, "dispatcher cannot connect");
                return Ok(PassEnd::Unreachable);
            }
        };
        let sql = self.statements();
        let schema = quote_ident(&self.sink.schema);
        let window = self.endpoint.settings().group_window;

        loop {
            // Listen before looking, so a wake-up between the two is not missed.
            let woken = self.ready.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            // Summaries of windows that ended, queued like any alert.
            let summaries = grouping::flush_due(&mut client, &schema, name, window).await?;
            if summaries > 0 {
                tracing::debug!(endpoint = %name, summaries, "alert summaries queued");
            }

            // Claim what is due and send it, a few requests at a time.
            let rows = client.query(&sql.claim, &[&name]).await?;
            match self.send_claimed(&client, &sql, &rows, stop).await? {
                Sent::All => {}
                Sent::Gone => return Ok(PassEnd::Gone),
                Sent::Stopped => return Ok(PassEnd::Stopped),
            }
            if !rows.is_empty() || summaries > 0 {
                continue;
            }

            // Sleep until woken, or until the next retry or window end.
            let next_due: Option<f64> = client.query_one(&sql.next_due, &[&name]).await?.get(0);
            let wait = next_due
                .map_or(POLL_INTERVAL, |secs| Duration::from_secs_f64(secs.max(0.0)))
                .clamp(MIN_WAIT, POLL_INTERVAL);
            tokio::select! {
                _ = stop.cancelled() => return Ok(PassEnd::Stopped),
                _ = &mut woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends claimed rows with at most `max_in_flight` requests at once and
    /// records each outcome. On `stop`, requests still in flight are
    /// abandoned and their rows released for the next run at once, rather
    /// than when their lease ends.
    async fn send_claimed(
        &self,
        client: &Client,
        sql: &Statements,
        rows: &[tokio_postgres::Row],
        stop: &CancellationToken,
    ) -> Result<Sent, tokio_postgres::Error> {
        let name = self.endpoint.name();
        let hook = self.endpoint.settings();
        let sends: Vec<_> = rows.iter().map(|row| self.send_row(row)).collect();
        let mut outcomes = futures_util::stream::iter(sends).buffer_unordered(hook.max_in_flight);
        let mut unrecorded: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
        let mut gone = false;
        loop {
            let next = tokio::select! {
                next = outcomes.next() => next,
                _ = stop.cancelled() => {
                    client.execute(&sql.release, &[&unrecorded]).await?;
                    return Ok(Sent::Stopped);
                }
            };
            let Some((row, outcome)) = next else { break };
            let (id, webhook_id, attempts): (i64, &str, i32) = (row.get(0), row.get(1), row.get(3));
            unrecorded.retain(|&other| other != id);
            match outcome {
                Outcome::Delivered { status } => {
                    client.execute(&sql.delivered, &[&id]).await?;
                    tracing::debug!(endpoint = %name, webhook_id, status, "alert delivered");
                    count_attempt(metrics::DELIVERED);
                }
                Outcome::Gone => {
                    client.execute(&sql.gone, &[&id]).await?;
                    gone = true;
                }
                Outcome::Failed { reason, retry_after } => {
                    let retry = usize::try_from(attempts - 1)
                        .ok()
                        .and_then(|index| hook.retry_schedule.get(index).copied());
                    let dead = retry.is_none();
                    let wait = retry.map_or(Duration::ZERO, |wait| {
                        jitter(wait).max(retry_after.unwrap_or(Duration::ZERO))
                    });
                    let wait_ms = wait.as_millis() as f64;
                    client.execute(&sql.failed, &[&id, &reason, &dead, &wait_ms]).await?;
                    count_attempt(if dead { metrics::DEAD } else { metrics::RETRIED });
                    if dead {
                        tracing::error!(endpoint = %name, webhook_id, attempts,
                            error = %reason, "alert undeliverable, marked dead");
                    } else {
                        tracing::warn!(endpoint = %name, webhook_id, attempts,
                            error = %reason, retry_in_ms = wait.as_millis() as u64,
                            "alert delivery failed, will retry");
                    }
                }
            }
        }
        Ok(if gone { Sent::Gone } else { Sent::All })
    }
}

impl Dispatcher {
    async fn send_row<'r>(
        &self,
        row: &'r tokio_postgres::Row,
    ) -> (&'r tokio_postgres::Row, Outcome) {
        let (webhook_id, payload): (&str, &str) = (row.get(1), row.get(2));
        (row, self.endpoint.send(webhook_id, payload).await)
    }
}

/// Spreads retries by up to a tenth either way, so endpoints that come back
/// are not hit by every pending alert at the same instant.
fn jitter(wait: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..1.1);
    wait.mul_f64(factor)
}

/// Counts one delivery attempt by its outcome.
fn count_attempt(outcome: &'static str) {
    ::metrics::counter!(metrics::WEBHOOK_ATTEMPTS_TOTAL, metrics::OUTCOME => outcome).increment(1);
}
