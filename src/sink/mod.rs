//! Where violations go: the `violations` table reviewers query, and the
//! webhook outbox that the dispatcher delivers from.
//!
//! A batch is written in one transaction: the violations, skipping those
//! whose `dedup_key` is already there, the current state of the new ones
//! and the resolutions (see [`lifecycle`]), the reference checks still
//! waiting for their grace window (see [`pending`]), then, for the violations
//! that were new, each webhook's alert groups (see [`grouping`]) and one
//! outbox row per group that alerts at once. A replayed batch therefore adds
//! neither violations nor alerts, and counts no occurrence twice. While no
//! conflict is expected, violations and states are first inserted without
//! `ON CONFLICT` (see [`plain`]). The caller acknowledges the source position
//! only after [`Sink::write_batch`] has returned, so nothing acknowledged can
//! be lost.

mod alert;
pub mod ddl;
pub mod endpoint;
pub mod format;
mod grouping;
pub mod lifecycle;
pub mod pending;
mod plain;
mod signature;
pub mod webhook;

pub use alert::{Alert, Event, EventData, EventKind};
pub use lifecycle::Resolution;
pub use pending::PendingReference;
pub use signature::sign;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_postgres::Client;

use crate::config::{SinkSettings, WebhookSettings};
use crate::postgres::{self, ConnectError, quote_ident};
use crate::schema::Severity;
use crate::validate::Operation;

/// One row of `walguard.violations`, before it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub table_schema: String,
    pub table_name: String,
    /// The change the violation is about; `None` for a finding about the
    /// table (schema drift, a rule that cannot be checked).
    pub operation: Option<Operation>,
    pub commit_lsn: u64,
    /// Commit time, microseconds since 2000-01-01 00:00 UTC.
    pub commit_time: i64,
    pub xid: u32,
    /// Position of the change within its transaction, counting from 0.
    pub change_ordinal: u32,
    pub row_key: Value,
    pub rule: String,
    pub column: Option<String>,
    pub severity: Severity,
    pub message: String,
    pub value: Option<Value>,
    /// A key of its own for a finding about the table, recorded once however
    /// often it is found; `None` keys the violation by its change.
    pub dedup: Option<String>,
}

impl Violation {
    /// The key that makes a replayed change land on the same row.
    pub fn dedup_key(&self) -> String {
        if let Some(key) = &self.dedup {
            return key.clone();
        }
        format!(
            "stream/{}/{}/{}/{}",
            format_lsn(self.commit_lsn),
            self.change_ordinal,
            self.rule,
            self.column.as_deref().unwrap_or("")
        )
    }
}

/// Formats an LSN the way PostgreSQL shows it (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// What can go wrong while writing to the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the sink table {schema}.{table} does not exist: run `walguard setup` first")]
    MissingTable { schema: String, table: String },
    #[error("failed to {action} in the sink database: {source}")]
    Sql { action: &'static str, source: tokio_postgres::Error },
}

impl SinkError {
    fn sql(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SinkError {
        move |source| SinkError::Sql { action, source }
    }

    /// Whether retrying later can succeed (a cut connection, a restarting
    /// server), as opposed to a problem an operator must fix.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::MissingTable { .. } => false,
            SinkError::Connect(err) => err.is_transient(),
            SinkError::Sql { source, .. } => {
                source.is_closed() || source.code().is_none_or(crate::postgres::is_transient_code)
            }
        }
    }
}

/// The open sink: a connection and what the outbox needs to know.
pub struct Sink {
    client: Client,
    schema: String,
    insert_violations: String,
    /// [`Sink::insert_violations`] without `ON CONFLICT`: see [`plain`].
    insert_violations_plain: String,
    violation_conflicts: plain::Conflicts,
    insert_outbox: String,
    statements: lifecycle::Statements,
    pending: pending::Statements,
    groups: grouping::GroupStatements,
    /// Each webhook with its endpoint name.
    webhooks: Vec<(String, WebhookSettings)>,
    outbox_ready: Arc<Notify>,
    /// Whether a write began a transaction it has not ended.
    in_transaction: AtomicBool,
}

impl Sink {
    /// Connects and checks that `walguard setup` created the tables.
    pub async fn connect(
        settings: &SinkSettings,
        webhooks: &[WebhookSettings],
        outbox_ready: Arc<Notify>,
    ) -> Result<Self, SinkError> {
        let client = postgres::connect(&settings.connection, "walguard sink").await?;
        for table in ddl::REQUIRED_TABLES {
            let row = client
                .query_one(
                    "SELECT to_regclass($1) IS NOT NULL",
                    &[&format!("{}.{}", quote_ident(&settings.schema), table)],
                )
                .await
                .map_err(SinkError::sql("look up walguard's tables"))?;
            if !row.get::<_, bool>(0) {
                return Err(SinkError::MissingTable {
                    schema: settings.schema.clone(),
                    table: table.to_string(),
                });
            }
        }
        let s = quote_ident(&settings.schema);
        Ok(Sink {
            client,
            insert_violations: format!(
                "{}\nON CONFLICT (dedup_key) DO NOTHING\nRETURNING dedup_key",
                insert_violations_sql(&s)
            ),
            insert_violations_plain: insert_violations_sql(&s),
            violation_conflicts: plain::Conflicts::default(),
            statements: lifecycle::Statements::new(&s),
            pending: pending::Statements::new(&s),
            insert_outbox: format!(
                "INSERT INTO {s}.webhook_outbox (endpoint, webhook_id, payload)
                 SELECT u.endpoint, u.webhook_id, u.payload::jsonb
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(endpoint, webhook_id, payload)
                 ON CONFLICT (webhook_id) DO NOTHING"
            ),
            groups: grouping::GroupStatements::new(&s),
            schema: settings.schema.clone(),
            webhooks: webhooks
                .iter()
                .map(|hook| (webhook::endpoint_name(hook), hook.clone()))
                .collect(),
            outbox_ready,
            in_transaction: AtomicBool::new(false),
        })
    }

    /// Whether the connection has broken, so a new one is needed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The schema walguard's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Up to `limit` stored reference checks due at `now`, earliest first.
    pub async fn due_references(
        &self,
        now: std::time::SystemTime,
        limit: i64,
    ) -> Result<Vec<PendingReference>, SinkError> {
        pending::due(&self.client, &self.pending, now, limit).await
    }

    /// When the earliest stored reference check is due.
    pub async fn next_reference_due(&self) -> Result<Option<std::time::SystemTime>, SinkError> {
        pending::next_due(&self.client, &self.pending).await
    }

    /// Calls `each` with the table and row key of every violation state not
    /// yet resolved, at most `limit` times; returns `false` when there were
    /// more (then [`Sink::tables_with_open_states`] names their tables).
    pub async fn open_states(
        &self,
        limit: usize,
        mut each: impl FnMut(&str, &str, Option<Value>),
    ) -> Result<bool, SinkError> {
        use futures_util::TryStreamExt;
        let s = quote_ident(&self.schema);
        let sql = format!(
            "SELECT DISTINCT table_schema, table_name, row_key::text FROM {s}.violation_state
             WHERE status <> 'resolved' LIMIT {}",
            limit.saturating_add(1)
        );
        let failed = || SinkError::sql("read the open violation states");
        let no_params = std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>();
        let rows = self.client.query_raw(&sql, no_params).await.map_err(failed())?;
        futures_util::pin_mut!(rows);
        let mut count = 0;
        while let Some(row) = rows.try_next().await.map_err(failed())? {
            count += 1;
            if count > limit {
                return Ok(false);
            }
            each(row.get(0), row.get(1), serde_json::from_str(row.get::<_, &str>(2)).ok());
        }
        Ok(true)
    }

    /// The tables that have violation states not yet resolved.
    pub async fn tables_with_open_states(&self) -> Result<Vec<(String, String)>, SinkError> {
        let s = quote_ident(&self.schema);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT DISTINCT table_schema, table_name FROM {s}.violation_state
                     WHERE status <> 'resolved'"
                ),
                &[],
            )
            .await
            .map_err(SinkError::sql("read the tables with open violation states"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Ends a transaction that a write dropped unfinished left open (the
    /// session that started it failed), so nothing runs inside it.
    pub async fn end_abandoned_transaction(&self) -> Result<(), SinkError> {
        if self.in_transaction.swap(false, Ordering::SeqCst) {
            self.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(SinkError::sql("roll back an abandoned transaction"))?;
        }
        Ok(())
    }

    /// Writes a batch in one transaction; returns how many violations were
    /// new (a replay returns 0).
    ///
    /// It takes `&self` so that a session can keep reading the stream while
    /// the write is under way; nothing else may use the sink until it returns.
    pub async fn write_batch(&self, batch: &Batch) -> Result<usize, SinkError> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.end_abandoned_transaction().await?;
        self.in_transaction.store(true, Ordering::SeqCst);
        let transaction = &self.client;
        transaction.batch_execute("BEGIN").await.map_err(SinkError::sql("begin a transaction"))?;
        match self.write_in_transaction(batch).await {
            Ok((fresh, alerted)) => {
                transaction
                    .batch_execute("COMMIT")
                    .await
                    .map_err(SinkError::sql("commit violations"))?;
                self.in_transaction.store(false, Ordering::SeqCst);
                if alerted {
                    self.outbox_ready.notify_waiters();
                }
                Ok(fresh)
            }
            Err(err) => {
                // The write's own error says what failed; a rollback that
                // fails as well (the connection is gone) would only hide it.
                let _ = self.end_abandoned_transaction().await;
                Err(err)
            }
        }
    }

    /// The statements of [`Sink::write_batch`], inside its transaction;
    /// returns how many violations were new and whether any alert was queued.
    async fn write_in_transaction(&self, batch: &Batch) -> Result<(usize, bool), SinkError> {
        let transaction = &self.client;

        // The violations, one per key, the first: a change that fails one
        // keyword twice in a column (through `allOf`, or at two places in a
        // jsonb value) has two findings under one key, and only one can be
        // stored, so only one may count. Then skipping those a previous run
        // already wrote.
        let keys: Vec<String> = batch.violations.iter().map(Violation::dedup_key).collect();
        let mut seen = HashSet::with_capacity(keys.len());
        let unique: Vec<(&Violation, &str)> = batch
            .violations
            .iter()
            .zip(&keys)
            .filter(|(_, key)| seen.insert(key.as_str()))
            .map(|(violation, key)| (violation, key.as_str()))
            .collect();
        let mut fresh: Vec<&Violation> = Vec::new();
        if !unique.is_empty() {
            let columns = ViolationColumns::from_batch(&unique);
            let params = columns.params();
            let action = "insert violations";
            let plain = &self.insert_violations_plain;
            if self.violation_conflicts.insert(transaction, plain, &params, action).await? {
                fresh = unique.iter().map(|(violation, _)| *violation).collect();
            } else {
                let rows = transaction
                    .query(&self.insert_violations, &params)
                    .await
                    .map_err(SinkError::sql(action))?;
                let inserted: HashSet<&str> = rows.iter().map(|row| row.get(0)).collect();
                fresh = unique
                    .iter()
                    .filter(|(_, key)| inserted.contains(key))
                    .map(|(violation, _)| *violation)
                    .collect();
            }
        }

        // The current state of each (row, rule, column): new violations
        // first, then the changes that made rows pass, in that order so that
        // a row fixed later in the batch ends resolved.
        lifecycle::record(transaction, &self.statements, &fresh).await?;
        lifecycle::resolve(transaction, &self.statements, &batch.resolutions).await?;

        // Reference checks that wait for their grace window, and those done.
        pending::store(transaction, &self.pending, &batch.pending_added).await?;
        pending::remove(transaction, &self.pending, &batch.pending_done).await?;

        // Count them in each webhook's groups; a group without an open window
        // alerts at once.
        let alerts = grouping::record(transaction, &self.groups, &self.webhooks, &fresh)
            .await
            .map_err(SinkError::sql("count violations in alert groups"))?;
        if !alerts.is_empty() {
            let mut columns: [Vec<String>; 3] = Default::default();
            for (endpoint, alert) in &alerts {
                columns[0].push(endpoint.clone());
                columns[1].push(alert.webhook_id.clone());
                columns[2].push(serde_json::to_string(&alert.event).expect("events serialise"));
            }
            transaction
                .execute(&self.insert_outbox, &[&columns[0], &columns[1], &columns[2]])
                .await
                .map_err(SinkError::sql("queue webhook alerts"))?;
        }

        Ok((fresh.len(), !alerts.is_empty()))
    }
}

/// Everything one sink transaction writes.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub violations: Vec<Violation>,
    /// Changes that may have made rows pass rules they failed before.
    pub resolutions: Vec<Resolution>,
    /// Reference checks to keep until their grace window ends.
    pub pending_added: Vec<PendingReference>,
    /// Ids of stored reference checks that are now settled.
    pub pending_done: Vec<String>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
            && self.resolutions.is_empty()
            && self.pending_added.is_empty()
            && self.pending_done.is_empty()
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.violations.clear();
        self.resolutions.clear();
        self.pending_added.clear();
        self.pending_done.clear();
    }
}

fn insert_violations_sql(s: &str) -> String {
    format!(
        "INSERT INTO {s}.violations (source, table_schema, table_name, operation, commit_lsn,
    commit_ts, xid, row_key, rule, column_name, severity, message, value, dedup_key)
SELECT 'stream', u.table_schema, u.table_name, u.operation, u.commit_lsn::pg_lsn,
    timestamptz '2000-01-01 00:00:00+00' + u.commit_us * interval '1 microsecond',
    u.xid, u.row_key::jsonb, u.rule, u.column_name, u.severity, u.message, u.value::jsonb,
    u.dedup_key
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
    AS u(table_schema, table_name, operation, commit_lsn, commit_us, xid, row_key, rule,
         column_name, severity, message, value, dedup_key)"
    )
}

/// A batch turned into one array per column, for a single `unnest` insert.
#[derive(Default)]
struct ViolationColumns<'b> {
    table_schema: Vec<String>,
    table_name: Vec<String>,
    operation: Vec<Option<&'static str>>,
    commit_lsn: Vec<String>,
    commit_us: Vec<i64>,
    xid: Vec<i64>,
    row_key: Vec<String>,
    rule: Vec<String>,
    column_name: Vec<Option<String>>,
    severity: Vec<&'static str>,
    message: Vec<String>,
    value: Vec<Option<String>>,
    dedup_key: Vec<&'b str>,
}

impl<'b> ViolationColumns<'b> {
    /// The columns of each violation, with its dedup key.
    fn from_batch(batch: &[(&Violation, &'b str)]) -> Self {
        let mut c = ViolationColumns::default();
        for &(v, dedup_key) in batch {
            c.table_schema.push(v.table_schema.clone());
            c.table_name.push(v.table_name.clone());
            c.operation.push(v.operation.map(Operation::as_str));
            c.commit_lsn.push(format_lsn(v.commit_lsn));
            c.commit_us.push(v.commit_time);
            c.xid.push(i64::from(v.xid));
            c.row_key.push(v.row_key.to_string());
            c.rule.push(v.rule.clone());
            c.column_name.push(v.column.clone());
            c.severity.push(v.severity.as_str());
            c.message.push(v.message.clone());
            c.value.push(v.value.as_ref().map(Value::to_string));
            c.dedup_key.push(dedup_key);
        }
        c
    }

    fn params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        vec![
            &self.table_schema,
            &self.table_name,
            &self.operation,
            &self.commit_lsn,
            &self.commit_us,
            &self.xid,
            &self.row_key,
            &self.rule,
            &self.column_name,
            &self.severity,
            &self.message,
            &self.value,
            &self.dedup_key,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_is_formatted_like_postgres() {
        assert_eq!(format_lsn(0), "0/0");
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
    }
}
