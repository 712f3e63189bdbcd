//! The current state of each violation: one row of `violation_state` per
//! (table, row key, rule, column), beside the append-only `violations` log.
//!
//! A state is opened by the first violation for its key and counts every new
//! one (`occurrences`, `first_seen_at`, `last_seen_at`). It resolves itself
//! when a later change to the same row passes the rule, or deletes the row:
//! the stream sends a [`Resolution`] for such a change, and the resolving
//! position and commit time are recorded. A resolved state that fails again
//! reopens. Reviewers set `acknowledged` with a note (the `acknowledge`
//! function); an acknowledged state still counts occurrences and still
//! resolves.
//!
//! Ordering: within one batch the new violations are recorded before the
//! resolutions are applied, and a resolution only applies to a state last
//! seen at an earlier position than the resolving change, so the result is
//! the same as applying every change in stream order. Only violations that
//! are new in the log are recorded, so a replay counts nothing twice.

use serde_json::Value;
use tokio_postgres::GenericClient;

use super::plain::Conflicts;
use super::{SinkError, Violation, format_lsn};

/// A change that makes its row pass every rule except those in `keep`, or
/// that deletes the row (nothing kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub table_schema: String,
    pub table_name: String,
    pub row_key: Value,
    pub commit_lsn: u64,
    pub change_ordinal: u32,
    /// Commit time, microseconds since 2000-01-01 00:00 UTC.
    pub commit_time: i64,
    /// (rule, column) pairs the row still fails; `""` for a row rule.
    pub keep: Vec<(String, String)>,
    /// Rules the change did not decide (not evaluated, or unknown).
    pub keep_rules: Vec<String>,
    /// Columns the change did not check (unchanged TOAST values).
    pub keep_columns: Vec<String>,
    /// When set, the change settles only the `reference` state of this
    /// column: its referenced row was found.
    pub only_reference: Option<String>,
}

/// The statements, with the sink schema filled in.
pub(super) struct Statements {
    record: String,
    /// [`Statements::record`] without `ON CONFLICT`: see [`super::plain`].
    record_plain: String,
    record_conflicts: Conflicts,
    resolve: String,
}

impl Statements {
    pub(super) fn new(s: &str) -> Self {
        let record_plain = record_sql(s);
        Statements {
            record: format!("{record_plain}\n{RECORD_ON_CONFLICT}"),
            record_plain,
            record_conflicts: Conflicts::default(),
            resolve: resolve_sql(s),
        }
    }
}

/// Opens or updates the state of each new row-level violation.
pub(super) async fn record(
    transaction: &impl GenericClient,
    statements: &Statements,
    fresh: &[&Violation],
) -> Result<(), SinkError> {
    let rows: Vec<&&Violation> = fresh.iter().filter(|v| v.operation.is_some()).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Violation) -> String| rows.iter().map(|v| f(v)).collect::<Vec<_>>();
    let table_schema = text(|v| v.table_schema.clone());
    let table_name = text(|v| v.table_name.clone());
    let row_key = text(|v| v.row_key.to_string());
    let rule = text(|v| v.rule.clone());
    let column: Vec<Option<String>> = rows.iter().map(|v| v.column.clone()).collect();
    let severity = text(|v| v.severity.as_str().to_owned());
    let message = text(|v| v.message.clone());
    let lsn = text(|v| format_lsn(v.commit_lsn));
    let ordinal: Vec<i64> = rows.iter().map(|v| i64::from(v.change_ordinal)).collect();
    let commit_us: Vec<i64> = rows.iter().map(|v| v.commit_time).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &table_schema,
        &table_name,
        &row_key,
        &rule,
        &column,
        &severity,
        &message,
        &lsn,
        &ordinal,
        &commit_us,
    ];
    let action = "record the state of violations";
    let plain = &statements.record_plain;
    if !statements.record_conflicts.insert(transaction, plain, &params, action).await? {
        transaction.execute(&statements.record, &params).await.map_err(SinkError::sql(action))?;
    }
    Ok(())
}

/// Resolves the states that the changes in `resolutions` settle.
pub(super) async fn resolve(
    transaction: &impl GenericClient,
    statements: &Statements,
    resolutions: &[Resolution],
) -> Result<(), SinkError> {
    if resolutions.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Resolution) -> String| resolutions.iter().map(f).collect::<Vec<_>>();
    let table_schema = text(|r| r.table_schema.clone());
    let table_name = text(|r| r.table_name.clone());
    let row_key = text(|r| r.row_key.to_string());
    let lsn = text(|r| format_lsn(r.commit_lsn));
    let ordinal: Vec<i64> = resolutions.iter().map(|r| i64::from(r.change_ordinal)).collect();
    let commit_us: Vec<i64> = resolutions.iter().map(|r| r.commit_time).collect();
    let keep = text(|r| serde_json::to_string(&r.keep).unwrap_or_else(|_| "[]".into()));
    let keep_rules = text(|r| serde_json::to_string(&r.keep_rules).unwrap_or_else(|_| "[]".into()));
    let keep_columns =
        text(|r| serde_json::to_string(&r.keep_columns).unwrap_or_else(|_| "[]".into()));
    let only: Vec<Option<String>> = resolutions.iter().map(|r| r.only_reference.clone()).collect();

    // The state table grows faster during a run than autovacuum analyzes
    // it. Planned from stale statistics, the update once walked every state
    // of the table for each resolution (62 s for 2 000 resolutions against
    // 50 000 states). Each resolution names its row, so a nested loop over
    // the key index is always right; these settings rule out the rest.
    transaction
        .batch_execute(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
             SET LOCAL enable_mergejoin = off",
        )
        .await
        .map_err(SinkError::sql("plan the resolution of violation states"))?;
    transaction
        .execute(
            &statements.resolve,
            &[
                &table_schema,
                &table_name,
                &row_key,
                &lsn,
                &ordinal,
                &commit_us,
                &keep,
                &keep_rules,
                &keep_columns,
                &only,
            ],
        )
        .await
        .map_err(SinkError::sql("resolve violation states"))?;
    transaction
        .batch_execute(
            "SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; \
             SET LOCAL enable_mergejoin TO DEFAULT",
        )
        .await
        .map_err(SinkError::sql("plan the resolution of violation states"))?;
    Ok(())
}

/// The commit time in microseconds since 2000 as a timestamptz.
const COMMIT_TS: &str = "timestamptz '2000-01-01 00:00:00+00' + interval '1 microsecond' *";

fn record_sql(s: &str) -> String {
    let key = "table_schema, table_name, row_key, rule, coalesce(column_name, '')";
    format!(
        "WITH u AS (
    SELECT table_schema, table_name, row_key::jsonb AS row_key, rule, column_name, severity,
        message, lsn::pg_lsn AS lsn, ordinal, {COMMIT_TS} commit_us AS seen_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::int8[], $10::int8[])
        AS u(table_schema, table_name, row_key, rule, column_name, severity, message, lsn,
             ordinal, commit_us)
), g AS (
    SELECT DISTINCT ON ({key}) table_schema, table_name, row_key, rule, column_name, severity,
        message, lsn, ordinal, seen_at, count(*) OVER w AS n, min(lsn) OVER w AS first_lsn,
        min(seen_at) OVER w AS first_at
    FROM u
    WINDOW w AS (PARTITION BY {key})
    ORDER BY {key}, lsn DESC, ordinal DESC
)
INSERT INTO {s}.violation_state AS st (table_schema, table_name, row_key, rule, column_name,
    severity, message, first_seen_at, last_seen_at, first_lsn, last_lsn, last_ordinal,
    occurrences)
SELECT table_schema, table_name, row_key, rule, column_name, severity, message, first_at,
    seen_at, first_lsn, lsn, ordinal, n
FROM g"
    )
}

/// What [`record_sql`] does to a state that exists: count the new
/// occurrences, and reopen it if it was resolved.
const RECORD_ON_CONFLICT: &str = "\
ON CONFLICT (table_schema, table_name, row_key, rule, (coalesce(column_name, '')))
DO UPDATE SET severity = excluded.severity, message = excluded.message,
    last_seen_at = excluded.last_seen_at, last_lsn = excluded.last_lsn,
    last_ordinal = excluded.last_ordinal, occurrences = st.occurrences + excluded.occurrences,
    status = CASE WHEN st.status = 'resolved' THEN 'open' ELSE st.status END,
    resolved_lsn = NULL, resolved_at = NULL";

fn resolve_sql(s: &str) -> String {
    // The states of each resolution's row are found through the key index
    // alone: `OFFSET 0` keeps the look-up apart, so the partial index of
    // unresolved states (which holds every state of the table) is never
    // chosen for it.
    format!(
        "UPDATE {s}.violation_state AS st
SET status = 'resolved', resolved_lsn = m.lsn, resolved_at = {COMMIT_TS} m.commit_us
FROM (
    SELECT found.id, u.lsn::pg_lsn AS lsn, u.commit_us
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
        $7::text[], $8::text[], $9::text[], $10::text[])
        AS u(table_schema, table_name, row_key, lsn, ordinal, commit_us, keep, keep_rules,
             keep_columns, only_reference)
    CROSS JOIN LATERAL (
        SELECT id, rule, column_name, status, last_lsn, last_ordinal
        FROM {s}.violation_state AS state
        WHERE state.table_schema = u.table_schema AND state.table_name = u.table_name
          AND state.row_key = u.row_key::jsonb
        OFFSET 0
    ) AS found
    WHERE found.status <> 'resolved'
      AND (found.last_lsn, found.last_ordinal) < (u.lsn::pg_lsn, u.ordinal)
      AND NOT u.keep::jsonb @> jsonb_build_array(jsonb_build_array(found.rule,
          coalesce(found.column_name, '')))
      AND NOT u.keep_rules::jsonb ? found.rule
      AND NOT u.keep_columns::jsonb ? coalesce(found.column_name, '')
      AND (u.only_reference IS NULL
           OR (found.rule = 'reference' AND found.column_name = u.only_reference))
) AS m
WHERE st.id = m.id"
    )
}
