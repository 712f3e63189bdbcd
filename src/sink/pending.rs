//! Reference checks waiting for their grace window, kept in the sink table
//! `pending_references`.
//!
//! A check whose referenced row is missing and whose window
//! (`x-references: {to: ..., within: ...}`) has not ended is stored here in
//! the same transaction as the batch's violations, so the slot may be
//! acknowledged past its change: after a restart the check is read back from
//! the table, not re-derived from the stream. Memory holds none of them; when
//! one is due it is read, looked up once more, and either dropped (the row
//! appeared) or turned into its violation, in one transaction again. Its id
//! is the dedup key of the violation it would become, so storing it twice or
//! reporting it twice is harmless.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio_postgres::{Client, GenericClient};

use super::{SinkError, Violation};
use crate::schema::{ColumnRef, QualifiedName, Severity};
use crate::validate::Operation;

/// A reference check that waits for the referenced row.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReference {
    /// The target column.
    pub target: ColumnRef,
    /// The referencing value as text.
    pub value: String,
    /// When to look once more and report if still missing.
    pub due: SystemTime,
    /// The violation to record if the row never comes.
    pub violation: Violation,
}

impl PendingReference {
    /// The stable id: the dedup key of its violation.
    pub fn id(&self) -> String {
        self.violation.dedup_key()
    }
}

/// The statements, with the sink schema filled in.
pub(super) struct Statements {
    store: String,
    remove: String,
    due: String,
    next: String,
}

impl Statements {
    pub(super) fn new(s: &str) -> Self {
        Statements {
            store: format!(
                "INSERT INTO {s}.pending_references (id, due_at, target_schema, target_table,
    target_column, value, violation)
SELECT u.id, to_timestamp(u.due), u.target_schema, u.target_table, u.target_column, u.value,
    u.violation::jsonb
FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[]) AS u(id, due, target_schema, target_table, target_column, value, violation)
ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at"
            ),
            remove: format!("DELETE FROM {s}.pending_references WHERE id = ANY($1)"),
            due: format!(
                "SELECT target_schema, target_table, target_column, value,
    extract(epoch FROM due_at)::float8, violation::text
FROM {s}.pending_references WHERE due_at <= to_timestamp($1) ORDER BY due_at LIMIT $2"
            ),
            next: format!(
                "SELECT extract(epoch FROM min(due_at))::float8 FROM {s}.pending_references"
            ),
        }
    }
}

/// Stores checks that wait (again).
pub(super) async fn store(
    transaction: &impl GenericClient,
    statements: &Statements,
    pending: &[PendingReference],
) -> Result<(), SinkError> {
    if pending.is_empty() {
        return Ok(());
    }
    let id: Vec<String> = pending.iter().map(PendingReference::id).collect();
    let due: Vec<f64> = pending.iter().map(|p| epoch_seconds(p.due)).collect();
    let text = |f: fn(&PendingReference) -> String| pending.iter().map(f).collect::<Vec<_>>();
    let target_schema = text(|p| p.target.table.schema.clone());
    let target_table = text(|p| p.target.table.name.clone());
    let target_column = text(|p| p.target.column.clone());
    let value = text(|p| p.value.clone());
    let violation = text(|p| to_json(&p.violation).to_string());
    transaction
        .execute(
            &statements.store,
            &[&id, &due, &target_schema, &target_table, &target_column, &value, &violation],
        )
        .await
        .map_err(SinkError::sql("store pending reference checks"))?;
    Ok(())
}

/// Drops the settled checks with these ids.
pub(super) async fn remove(
    transaction: &impl GenericClient,
    statements: &Statements,
    ids: &[String],
) -> Result<(), SinkError> {
    if ids.is_empty() {
        return Ok(());
    }
    transaction
        .execute(&statements.remove, &[&ids])
        .await
        .map_err(SinkError::sql("remove settled reference checks"))?;
    Ok(())
}

/// Up to `limit` stored checks due at `now`, earliest first. A stored row
/// that cannot be read back (edited by hand) is skipped with a warning.
pub(super) async fn due(
    client: &Client,
    statements: &Statements,
    now: SystemTime,
    limit: i64,
) -> Result<Vec<PendingReference>, SinkError> {
    let rows = client
        .query(&statements.due, &[&epoch_seconds(now), &limit])
        .await
        .map_err(SinkError::sql("read due reference checks"))?;
    let mut due = Vec::with_capacity(rows.len());
    for row in rows {
        let violation = serde_json::from_str(row.get::<_, &str>(5)).ok().and_then(from_json);
        let Some(violation) = violation else {
            tracing::warn!("skipping an unreadable row of pending_references");
            continue;
        };
        due.push(PendingReference {
            target: ColumnRef {
                table: QualifiedName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
                column: row.get(2),
            },
            value: row.get(3),
            due: from_epoch_seconds(row.get(4)),
            violation,
        });
    }
    Ok(due)
}

/// When the earliest stored check is due, if any is stored.
pub(super) async fn next_due(
    client: &Client,
    statements: &Statements,
) -> Result<Option<SystemTime>, SinkError> {
    let row = client
        .query_one(&statements.next, &[])
        .await
        .map_err(SinkError::sql("read the next due reference check"))?;
    Ok(row.get::<_, Option<f64>>(0).map(from_epoch_seconds))
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn from_epoch_seconds(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default()
}

/// A violation as stored with its pending check.
fn to_json(v: &Violation) -> Value {
    json!({
        "table_schema": v.table_schema,
        "table_name": v.table_name,
        "operation": v.operation.map(Operation::as_str),
        "commit_lsn": v.commit_lsn,
        "commit_time": v.commit_time,
        "xid": v.xid,
        "change_ordinal": v.change_ordinal,
        "row_key": v.row_key,
        "rule": v.rule,
        "column": v.column,
        "severity": v.severity.as_str(),
        "message": v.message,
        "value": v.value,
        "dedup": v.dedup,
    })
}

/// The violation stored by [`to_json`], if the row still has that shape.
fn from_json(value: Value) -> Option<Violation> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| value.get(key).and_then(Value::as_i64);
    let operation = match value.get("operation") {
        Some(Value::Null) | None => None,
        Some(name) => Some(Operation::from_name(name.as_str()?)?),
    };
    Some(Violation {
        table_schema: text("table_schema")?,
        table_name: text("table_name")?,
        operation,
        commit_lsn: value.get("commit_lsn")?.as_u64()?,
        commit_time: number("commit_time")?,
        xid: u32::try_from(number("xid")?).ok()?,
        change_ordinal: u32::try_from(number("change_ordinal")?).ok()?,
        row_key: value.get("row_key")?.clone(),
        rule: text("rule")?,
        column: text("column"),
        severity: text("severity")?.parse::<Severity>().ok()?,
        message: text("message")?,
        value: value.get("value").filter(|v| !v.is_null()).cloned(),
        dedup: text("dedup"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_violation_reads_back_unchanged() {
        let violation = Violation {
            table_schema: "public".into(),
            table_name: "orders".into(),
            operation: Some(Operation::Insert),
            commit_lsn: 0x16_B374_D848,
            commit_time: 123_456,
            xid: 42,
            change_ordinal: 3,
            row_key: json!({"id": 7}),
            rule: "reference".into(),
            column: Some("account_id".into()),
            severity: Severity::Critical,
            message: "account_id has no match".into(),
            value: Some(json!(99)),
            dedup: None,
        };
        assert_eq!(from_json(to_json(&violation)), Some(violation));
    }
}
