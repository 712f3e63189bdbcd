//! walguard's own tables in the sink database: the reviewer-facing contract.
//!
//! Every statement is idempotent (`IF NOT EXISTS`, `CREATE OR REPLACE`), so
//! `walguard setup` can run again after an upgrade. Columns are only ever
//! added, never renamed or dropped: reviewers' saved queries depend on them.

use crate::postgres::quote_ident;

/// The tables `run` needs, checked at start.
pub const REQUIRED_TABLES: [&str; 3] = ["violations", "webhook_outbox", "alert_groups"];

/// The statements that create walguard's schema, tables and views.
pub fn setup_statements(schema: &str) -> Vec<String> {
    let s = quote_ident(schema);
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {s}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.violations (
    id           bigserial PRIMARY KEY,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL CHECK (source IN ('stream', 'scan', 'monitor')),
    table_schema text NOT NULL,
    table_name   text NOT NULL,
    operation    text CHECK (operation IN ('insert', 'update', 'delete')),
    commit_lsn   pg_lsn,
    commit_ts    timestamptz,
    xid          bigint,
    row_key      jsonb NOT NULL DEFAULT '{{}}',
    rule         text NOT NULL,
    column_name  text,
    severity     text NOT NULL CHECK (severity IN ('info', 'warn', 'error', 'critical')),
    message      text NOT NULL,
    value        jsonb,
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'acknowledged', 'resolved')),
    dedup_key    text NOT NULL UNIQUE
)"
        ),
        format!(
            "COMMENT ON COLUMN {s}.violations.dedup_key IS \
             'source, commit lsn, change ordinal within the transaction, rule and column: \
              the same change replayed after a crash maps to the same key'"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS violations_table_detected_idx \
             ON {s}.violations (table_schema, table_name, detected_at)"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS violations_open_idx ON {s}.violations (detected_at) \
             WHERE status = 'open'"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.webhook_outbox (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    endpoint        text NOT NULL,
    webhook_id      text NOT NULL UNIQUE,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz
)"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS webhook_outbox_due_idx \
             ON {s}.webhook_outbox (endpoint, next_attempt_at) WHERE status = 'pending'"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.alert_groups (
    endpoint         text NOT NULL,
    table_schema     text NOT NULL,
    table_name       text NOT NULL,
    rule             text NOT NULL,
    column_name      text NOT NULL DEFAULT '',
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    opened_xid       bigint NOT NULL,
    first_row_key    jsonb NOT NULL,
    folded           integer NOT NULL DEFAULT 0,
    severity         text NOT NULL,
    sample_row_keys  jsonb NOT NULL DEFAULT '[]',
    last_message     text,
    last_commit_lsn  pg_lsn,
    PRIMARY KEY (endpoint, table_schema, table_name, rule, column_name)
)"
        ),
        format!(
            "COMMENT ON TABLE {s}.alert_groups IS \
             'one row per webhook, table, rule and column alerted on within its grouping window: \
              folded counts the violations awaiting the summary sent when the window ends'"
        ),
        format!(
            "CREATE OR REPLACE VIEW {s}.open_violations AS
SELECT id, detected_at, table_schema, table_name, operation, row_key, rule, column_name,
       severity, message, value, commit_lsn, commit_ts
FROM {s}.violations
WHERE status = 'open'
ORDER BY detected_at DESC"
        ),
        format!(
            "CREATE OR REPLACE VIEW {s}.daily_counts AS
SELECT date_trunc('day', detected_at) AS day, table_schema, table_name, rule, severity,
       count(*) AS violations
FROM {s}.violations
GROUP BY 1, 2, 3, 4, 5"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_name_is_quoted_everywhere() {
        for statement in setup_statements("Audit Data") {
            assert!(statement.contains("\"Audit Data\""), "{statement}");
        }
    }
}
