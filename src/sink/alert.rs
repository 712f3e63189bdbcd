//! The alert a webhook receives for a batch of new violations.
//!
//! The payload follows the Standard Webhooks convention of a `type`, a
//! `timestamp` and a `data` object. It names at most [`MAX_LISTED`]
//! violations and counts the rest, so one huge batch cannot make a huge
//! request. Values were already redacted for `x-pii` columns before they got
//! here, and alerts never carry values at all: only where the problem is.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Violation, format_lsn};
use crate::config::WebhookSettings;

/// How many violations one alert lists in full.
pub const MAX_LISTED: usize = 20;

/// One queued delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable across every attempt, so receivers can deduplicate.
    pub webhook_id: String,
    pub payload: Value,
}

impl Alert {
    /// The alert for `hook` about the violations at or above its minimum
    /// severity, or `None` when there are none.
    pub fn for_webhook(hook: &WebhookSettings, violations: &[&Violation]) -> Option<Alert> {
        let wanted: Vec<&Violation> =
            violations.iter().copied().filter(|v| v.severity >= hook.min_severity).collect();
        if wanted.is_empty() {
            return None;
        }

        // The id hashes the endpoint and the violations, which are unique.
        let mut hasher = Sha256::new();
        hasher.update(super::webhook::endpoint_name(hook).as_bytes());
        for violation in &wanted {
            hasher.update(violation.dedup_key().as_bytes());
            hasher.update(b"\n");
        }
        let webhook_id = format!("msg_{}", &hex::encode(hasher.finalize())[..32]);

        let listed: Vec<Value> = wanted.iter().take(MAX_LISTED).map(|v| describe(v)).collect();
        let mut tables: Vec<String> =
            wanted.iter().map(|v| format!("{}.{}", v.table_schema, v.table_name)).collect();
        tables.sort();
        tables.dedup();
        let payload = json!({
            "type": "violation.detected",
            "timestamp": now_rfc3339(),
            "data": {
                "count": wanted.len(),
                "tables": tables,
                "violations": listed,
                "not_listed": wanted.len().saturating_sub(MAX_LISTED),
            }
        });
        Some(Alert { webhook_id, payload })
    }
}

fn describe(v: &Violation) -> Value {
    json!({
        "table": format!("{}.{}", v.table_schema, v.table_name),
        "operation": v.operation.map(|operation| operation.as_str()),
        "rule": v.rule,
        "column": v.column,
        "severity": v.severity.as_str(),
        "message": v.message,
        "row_key": v.row_key,
        "commit_lsn": format_lsn(v.commit_lsn),
    })
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
