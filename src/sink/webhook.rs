//! Delivery of queued alerts from `webhook_outbox` to the webhook endpoints.
//!
//! Each endpoint has its own task, so a slow or dead endpoint delays only its
//! own alerts and never replication, which only ever inserts outbox rows. A
//! task claims due rows by pushing their `next_attempt_at` a lease ahead
//! (`FOR UPDATE SKIP LOCKED`, so a second walguard never takes the same row),
//! posts them, then records the outcome. A crash mid-delivery leaves the row
//! pending, and it is sent again when the lease ends: delivery is
//! at-least-once, and the `webhook-id` header stays the same on every attempt
//! so receivers can drop repeats.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::sign;
use crate::config::{SinkSettings, WebhookSettings};
use crate::postgres::{self, quote_ident};

/// Waits between attempts after the first, from the Standard Webhooks
/// recommendation; after the last one the delivery is marked dead.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// How long a claimed delivery stays reserved before another attempt may
/// take it (longer than any request timeout).
const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// How often an idle task looks for due deliveries it was not woken for.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries claimed at once by one endpoint's task.
const CLAIM_BATCH: i64 = 20;

/// The name an endpoint is stored under in the outbox: derived from its URL,
/// which may carry a token and so is never stored itself.
pub fn endpoint_name(hook: &WebhookSettings) -> String {
    let digest = Sha256::digest(hook.url.as_bytes());
    format!("hook-{}", &hex::encode(digest)[..12])
}

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
            let endpoint = Endpoint::new(sink.clone(), hook, ready.clone());
            tokio::spawn(endpoint.run(stop.clone()))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

struct Endpoint {
    sink: SinkSettings,
    hook: WebhookSettings,
    name: String,
    http: reqwest::Client,
    ready: Arc<Notify>,
}

/// The outcome of one attempt, as recorded in the outbox.
enum Outcome {
    Delivered,
    Failed(String),
}

impl Endpoint {
    fn new(sink: SinkSettings, hook: WebhookSettings, ready: Arc<Notify>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(hook.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("walguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with a timeout and no redirects always builds");
        Endpoint { name: endpoint_name(&hook), sink, hook, http, ready }
    }

    async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            match self.deliver_due(&stop).await {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(endpoint = %self.name, error = %err, "webhook outbox unreachable");
                    let wait = Duration::from_secs(1 << failures.min(5));
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Delivers what is due, then waits to be woken; returns on a database error.
    async fn deliver_due(&self, stop: &CancellationToken) -> Result<(), tokio_postgres::Error> {
        let client = match postgres::connect(&self.sink.connection, "walguard dispatcher").await {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(endpoint = %self.name, error = %err, "dispatcher cannot connect");
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => return Ok(()),
                }
            }
        };
        let s = quote_ident(&self.sink.schema);
        let claim = format!(
            "UPDATE {s}.webhook_outbox SET attempts = attempts + 1,
                 next_attempt_at = now() + $2 * interval '1 second'
             WHERE id IN (SELECT id FROM {s}.webhook_outbox
                 WHERE endpoint = $1 AND status = 'pending' AND next_attempt_at <= now()
                 ORDER BY id LIMIT {CLAIM_BATCH} FOR UPDATE SKIP LOCKED)
             RETURNING id, webhook_id, payload::text, attempts"
        );
        let delivered = format!(
            "UPDATE {s}.webhook_outbox SET status = 'delivered', delivered_at = now(),
                 last_error = NULL WHERE id = $1"
        );
        let failed = format!(
            "UPDATE {s}.webhook_outbox SET last_error = $2,
                 status = CASE WHEN $3 THEN 'dead' ELSE 'pending' END,
                 next_attempt_at = now() + $4 * interval '1 millisecond' WHERE id = $1"
        );
        let lease = CLAIM_LEASE.as_secs_f64();

        loop {
            // Listen before looking, so a wake-up between the two is not missed.
            let woken = self.ready.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let rows = client.query(&claim, &[&self.name, &lease]).await?;
            for row in &rows {
                let (id, webhook_id, payload, attempts): (i64, String, String, i32) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                match self.post(&webhook_id, payload).await {
                    Outcome::Delivered => {
                        client.execute(&delivered, &[&id]).await?;
                        tracing::debug!(endpoint = %self.name, webhook_id, "alert delivered");
                    }
                    Outcome::Failed(reason) => {
                        let retry = usize::try_from(attempts - 1)
                            .ok()
                            .and_then(|index| RETRY_SCHEDULE.get(index).copied());
                        let dead = retry.is_none();
                        let wait_ms = retry.map_or(0.0, |wait| jitter(wait).as_millis() as f64);
                        client.execute(&failed, &[&id, &reason, &dead, &wait_ms]).await?;
                        if dead {
                            tracing::error!(endpoint = %self.name, webhook_id, attempts,
                                error = %reason, "alert undeliverable, marked dead");
                        } else {
                            tracing::warn!(endpoint = %self.name, webhook_id, attempts,
                                error = %reason, "alert delivery failed, will retry");
                        }
                    }
                }
            }
            if !rows.is_empty() {
                continue;
            }

            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = &mut woken => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    async fn post(&self, webhook_id: &str, payload: String) -> Outcome {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        let mut request = self
            .http
            .post(&self.hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &self.hook.secret {
            let signature = sign(secret.expose(), webhook_id, timestamp, payload.as_bytes());
            request = request.header("webhook-signature", signature);
        }
        match request.body(payload).send().await {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) => Outcome::Failed(format!("HTTP {}", response.status().as_u16())),
            Err(err) if err.is_timeout() => Outcome::Failed("request timed out".into()),
            Err(err) if err.is_connect() => Outcome::Failed("connection failed".into()),
            Err(_) => Outcome::Failed("request failed".into()),
        }
    }
}

/// Spreads retries by up to a tenth either way, so endpoints that come back
/// are not hit by every pending alert at the same instant.
fn jitter(wait: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..1.1);
    wait.mul_f64(factor)
}
