//! The alert events webhooks receive, before any format is applied.
//!
//! An event is what the outbox stores (so reviewers read plain JSON in SQL)
//! and, unchanged, the body of a `standard` webhook: a Standard Webhooks
//! `type`, a `timestamp` and a thin `data` object saying where the problem is.
//! Events never carry column values: the message already leaves out values of
//! `x-pii` columns, and row keys had their pii columns redacted upstream.
//!
//! Three kinds exist: `violation.detected`, the first violation of a group
//! (table, rule, column), sent at once; `violation.summary`, the violations
//! folded into that group during its window; and `walguard.test`, the sample
//! that `walguard alerts test` sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Violation, format_lsn};
use crate::schema::Severity;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "violation.detected")]
    Detected,
    #[serde(rename = "violation.summary")]
    Summary,
    #[serde(rename = "walguard.test")]
    Test,
}

/// One alert, as stored in the outbox and sent by the `standard` format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When the event was created (RFC 3339, UTC).
    pub timestamp: String,
    pub data: EventData,
}

/// Where the problem is and how often it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    /// Qualified table name, `public.orders`.
    pub table: String,
    pub rule: String,
    pub column: Option<String>,
    pub severity: Severity,
    pub message: String,
    /// The violations this event stands for: 1 for a detection, the number
    /// folded for a summary.
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_key: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_lsn: Option<String>,
    /// A few of the summarised rows' keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_row_keys: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<String>,
}

/// One queued delivery: an event for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable across every attempt, so receivers can deduplicate.
    pub webhook_id: String,
    pub event: Event,
}

impl Alert {
    /// The immediate alert for the first violation of a group.
    pub fn detected(endpoint: &str, v: &Violation) -> Alert {
        // The id hashes the endpoint and the violation's unique key, so a
        // replayed batch would queue the very same delivery.
        let mut hasher = Sha256::new();
        hasher.update(endpoint.as_bytes());
        hasher.update(b"\n");
        hasher.update(v.dedup_key().as_bytes());
        let webhook_id = format!("msg_{}", &hex::encode(hasher.finalize())[..32]);
        let event = Event {
            kind: EventKind::Detected,
            timestamp: now_rfc3339(),
            data: EventData {
                table: format!("{}.{}", v.table_schema, v.table_name),
                rule: v.rule.clone(),
                column: v.column.clone(),
                severity: v.severity,
                message: v.message.clone(),
                count: 1,
                operation: Some(v.operation.as_str().to_string()),
                row_key: Some(v.row_key.clone()),
                commit_lsn: Some(format_lsn(v.commit_lsn)),
                sample_row_keys: Vec::new(),
                window_start: None,
                window_end: None,
            },
        };
        Alert { webhook_id, event }
    }
}

impl Event {
    /// The sample `walguard alerts test` sends.
    pub fn sample() -> Event {
        Event {
            kind: EventKind::Test,
            timestamp: now_rfc3339(),
            data: EventData {
                table: "public.orders".into(),
                rule: "minimum".into(),
                column: Some("amount".into()),
                severity: Severity::Error,
                message: "amount must be at least 0, got -5 (a test alert from walguard)".into(),
                count: 1,
                operation: Some("insert".into()),
                row_key: Some(serde_json::json!({ "id": 42 })),
                commit_lsn: Some("0/16B3748".into()),
                sample_row_keys: Vec::new(),
                window_start: None,
                window_end: None,
            },
        }
    }

    /// `table`, `rule` and `column` joined: what identifies a group.
    pub fn group(&self) -> String {
        let data = &self.data;
        match &data.column {
            Some(column) => format!("{}/{}/{column}", data.table, data.rule),
            None => format!("{}/{}", data.table, data.rule),
        }
    }
}

/// A random webhook id, for events that are queued exactly once (summaries)
/// or never queued (tests).
pub fn random_webhook_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("msg_{}", hex::encode(bytes))
}

/// The current time as RFC 3339, in seconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
