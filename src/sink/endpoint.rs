//! One webhook endpoint seen from HTTP: how an event is posted to it, and
//! what its answer means for the delivery.
//!
//! 2xx is success. Redirects are never followed, so a 3xx is a failure
//! (a moved endpoint must be reconfigured, not guessed at). 410 Gone means
//! the endpoint was removed on purpose: the dispatcher stops sending to it.
//! Any other answer, a timeout or a connection error is retried; a
//! `Retry-After` header (seconds or an HTTP date) sets the earliest retry.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::alert::Event;
use super::{format, sign};
use crate::config::{WebhookFormat, WebhookSettings};

/// The longest `Retry-After` honoured; a larger one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The name an endpoint is stored under in the outbox: derived from its URL,
/// which may carry a token and so is never stored or logged itself.
pub fn endpoint_name(hook: &WebhookSettings) -> String {
    let digest = Sha256::digest(hook.url.as_bytes());
    format!("hook-{}", &hex::encode(digest)[..12])
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        status: u16,
    },
    /// Worth another attempt, not before `retry_after` if the endpoint said.
    Failed {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 410: the endpoint is gone and must not be sent to again.
    Gone,
}

/// An HTTP client set up for one webhook.
pub struct Endpoint {
    hook: WebhookSettings,
    name: String,
    http: reqwest::Client,
}

impl Endpoint {
    pub fn new(hook: WebhookSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(hook.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("walguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with a timeout and no redirects always builds");
        Endpoint { name: endpoint_name(&hook), hook, http }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.hook
    }

    /// The scheme, host and port of the URL, without the path, which may
    /// carry a token: what may be printed.
    pub fn origin(&self) -> String {
        reqwest::Url::parse(&self.hook.url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_else(|_| "<invalid url>".into())
    }

    /// Posts the event stored as `payload` in this endpoint's format,
    /// signed when a secret is configured.
    pub async fn send(&self, webhook_id: &str, payload: &str) -> Outcome {
        let body = match self.hook.format {
            WebhookFormat::Standard => payload.to_string(),
            format => match serde_json::from_str::<Event>(payload) {
                Ok(event) => format::render(
                    format,
                    &event,
                    self.hook.routing_key.as_ref().map(|key| key.expose()),
                ),
                Err(_) => {
                    return Outcome::Failed {
                        reason: "the queued payload is not a walguard event".into(),
                        retry_after: None,
                    };
                }
            },
        };
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        let mut request = self
            .http
            .post(&self.hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &self.hook.secret {
            let signature = sign(secret.expose(), webhook_id, timestamp, body.as_bytes());
            request = request.header("webhook-signature", signature);
        }
        match request.body(body).send().await {
            Ok(response) => classify(&response),
            Err(err) if err.is_timeout() => Outcome::Failed {
                reason: format!("no answer within {} ms", self.hook.timeout.as_millis()),
                retry_after: None,
            },
            Err(err) if err.is_connect() => {
                Outcome::Failed { reason: "connection failed".into(), retry_after: None }
            }
            Err(_) => Outcome::Failed { reason: "request failed".into(), retry_after: None },
        }
    }
}

/// Why `walguard alerts test` failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertTestError {
    #[error("no webhooks are configured: add a [[webhooks]] section")]
    NoWebhooks,
    #[error("{failed} of {total} webhooks did not accept the sample alert")]
    Failed { failed: usize, total: usize },
    #[error("failed to print the result: {0}")]
    Output(#[from] std::io::Error),
}

/// Sends the sample event to each webhook once, without the outbox or
/// retries, and prints one line per webhook to `out` (origins only, since a
/// URL's path may hold a token).
pub async fn test_webhooks(
    webhooks: &[WebhookSettings],
    out: &mut impl std::io::Write,
) -> Result<(), AlertTestError> {
    if webhooks.is_empty() {
        return Err(AlertTestError::NoWebhooks);
    }
    let payload = serde_json::to_string(&Event::sample()).expect("events serialise");
    let mut failed = 0;
    for hook in webhooks {
        let endpoint = Endpoint::new(hook.clone());
        let started = std::time::Instant::now();
        let outcome = endpoint.send(&super::alert::random_webhook_id(), &payload).await;
        let elapsed = started.elapsed().as_millis();
        let verdict = match outcome {
            Outcome::Delivered { status } => format!("delivered (HTTP {status}) in {elapsed} ms"),
            Outcome::Gone => {
                failed += 1;
                "failed: HTTP 410 Gone (the endpoint was removed)".to_string()
            }
            Outcome::Failed { reason, .. } => {
                failed += 1;
                format!("failed: {reason}")
            }
        };
        let format = format!("{:?}", hook.format).to_lowercase();
        writeln!(out, "{} {format} {}: {verdict}", endpoint.name(), endpoint.origin())?;
    }
    match failed {
        0 => Ok(()),
        failed => Err(AlertTestError::Failed { failed, total: webhooks.len() }),
    }
}

fn classify(response: &reqwest::Response) -> Outcome {
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered { status: status.as_u16() };
    }
    if status == reqwest::StatusCode::GONE {
        return Outcome::Gone;
    }
    let reason = if status.is_redirection() {
        format!("HTTP {} (redirects are not followed)", status.as_u16())
    } else {
        format!("HTTP {}", status.as_u16())
    };
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    Outcome::Failed { reason, retry_after }
}

/// A `Retry-After` value, delay-seconds or an HTTP date, as a wait from `now`.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
