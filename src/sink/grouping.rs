//! Grouping without delay: the first violation of a (table, rule, column)
//! is alerted at once; further ones within the webhook's window are folded
//! into one summary sent when the window ends.
//!
//! The state lives in `alert_groups` in the sink database, one row per
//! webhook and group with an open window, not in memory: it is updated in the
//! same transaction as the violations it counts, and a summary is queued in
//! the same transaction that resets its row. So a crash or restart neither
//! loses a folded violation nor counts one twice (a replayed batch has no new
//! violations), and memory does not grow with the number of groups. The only
//! in-memory state is one batch's tally.
//!
//! The sink's writer ([`record`]) and each endpoint's dispatcher
//! ([`flush_due`]) touch the same rows from different connections; both
//! decide inside one SQL statement or under a row lock, so neither acts on a
//! stale view: the writer's upsert opens a window only if none is open, and
//! the dispatcher takes rows `FOR UPDATE SKIP LOCKED`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::GenericClient;

use super::alert::{Alert, Event, EventData, EventKind, now_rfc3339, random_webhook_id};
use super::{Violation, format_lsn};
use crate::config::WebhookSettings;
use crate::schema::Severity;

/// Row keys a summary lists at most.
pub const SAMPLE_ROW_KEYS: i64 = 5;
/// Due groups one dispatcher pass summarises at most.
const FLUSH_BATCH: i64 = 100;

/// One batch's violations of one group, for one webhook.
struct Tally<'a> {
    endpoint: &'a str,
    window: Duration,
    first: &'a Violation,
    rest: Vec<&'a Violation>,
}

type GroupKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

impl<'a> Tally<'a> {
    fn key(&self) -> GroupKey<'a> {
        let v = self.first;
        let column = v.column.as_deref().unwrap_or("");
        (self.endpoint, &v.table_schema, &v.table_name, &v.rule, column)
    }
}

/// The SQL for the writer's side, prepared once per sink.
pub struct GroupStatements {
    upsert: String,
}

impl GroupStatements {
    pub fn new(s: &str) -> Self {
        // A conflicting row whose window has ended with nothing folded is
        // reopened as if new; otherwise the batch is added to it. Whoever
        // (re)opened the row in this transaction alerts at once.
        let upsert = format!(
            "INSERT INTO {s}.alert_groups AS g (endpoint, table_schema, table_name, rule,
    column_name, window_start, window_end, opened_xid, first_row_key, folded, severity,
    sample_row_keys, last_message, last_commit_lsn)
SELECT u.endpoint, u.table_schema, u.table_name, u.rule, u.column_name, now(),
    now() + u.window_ms * interval '1 millisecond', txid_current(), u.first_key::jsonb,
    u.rest, u.severity, u.rest_keys::jsonb, u.last_message, u.last_lsn::pg_lsn
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
    $7::text[], $8::int4[], $9::text[], $10::text[], $11::text[], $12::text[])
    AS u(endpoint, table_schema, table_name, rule, column_name, window_ms, first_key, rest,
         severity, rest_keys, last_message, last_lsn)
ON CONFLICT (endpoint, table_schema, table_name, rule, column_name) DO UPDATE SET
    window_start = CASE WHEN g.folded = 0 AND g.window_end <= now()
        THEN EXCLUDED.window_start ELSE g.window_start END,
    window_end = CASE WHEN g.folded = 0 AND g.window_end <= now()
        THEN EXCLUDED.window_end ELSE g.window_end END,
    opened_xid = CASE WHEN g.folded = 0 AND g.window_end <= now()
        THEN EXCLUDED.opened_xid ELSE g.opened_xid END,
    first_row_key = CASE WHEN g.folded = 0 AND g.window_end <= now()
        THEN EXCLUDED.first_row_key ELSE g.first_row_key END,
    folded = CASE WHEN g.folded = 0 AND g.window_end <= now()
        THEN EXCLUDED.folded ELSE g.folded + EXCLUDED.folded + 1 END,
    sample_row_keys = CASE WHEN g.folded = 0 AND g.window_end <= now()
        THEN EXCLUDED.sample_row_keys
        ELSE (SELECT coalesce(jsonb_agg(k.key ORDER BY k.n), '[]')
              FROM jsonb_array_elements(g.sample_row_keys
                  || jsonb_build_array(EXCLUDED.first_row_key) || EXCLUDED.sample_row_keys)
                  WITH ORDINALITY AS k(key, n)
              WHERE k.n <= {SAMPLE_ROW_KEYS}) END,
    severity = CASE WHEN g.folded = 0 AND g.window_end <= now() THEN EXCLUDED.severity
        ELSE {max_severity} END,
    last_message = EXCLUDED.last_message,
    last_commit_lsn = EXCLUDED.last_commit_lsn
RETURNING endpoint, table_schema, table_name, rule, column_name,
    opened_xid = txid_current() AS opened",
            max_severity = max_severity_sql("g.severity", "EXCLUDED.severity"),
        );
        GroupStatements { upsert }
    }
}

/// The more serious of two severity columns, in SQL.
fn max_severity_sql(a: &str, b: &str) -> String {
    let rank = |col: &str| {
        format!(
            "CASE {col} WHEN 'critical' THEN 3 WHEN 'error' THEN 2 WHEN 'warn' THEN 1 ELSE 0 END"
        )
    };
    format!("CASE WHEN {} >= {} THEN {a} ELSE {b} END", rank(a), rank(b))
}

/// Records a batch's new violations in each webhook's groups, inside the
/// sink transaction, and returns the immediate alerts to queue: one per group
/// that had no open window.
pub async fn record(
    transaction: &impl GenericClient,
    statements: &GroupStatements,
    webhooks: &[(String, WebhookSettings)],
    fresh: &[&Violation],
) -> Result<Vec<(String, Alert)>, tokio_postgres::Error> {
    // Tally the batch per webhook and group, in order of first appearance.
    let mut tallies: Vec<Tally<'_>> = Vec::new();
    let mut index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    for (endpoint, hook) in webhooks {
        for &v in fresh {
            if !hook.wants(&v.table_schema, &v.table_name, v.severity) {
                continue;
            }
            let tally = Tally { endpoint, window: hook.group_window, first: v, rest: Vec::new() };
            match index.get(&tally.key()) {
                Some(&i) => tallies[i].rest.push(v),
                None => {
                    index.insert(tally.key(), tallies.len());
                    tallies.push(tally);
                }
            }
        }
    }
    if tallies.is_empty() {
        return Ok(Vec::new());
    }

    // One upsert for every group the batch touched.
    let mut c = GroupColumns::default();
    for t in &tallies {
        let (endpoint, schema, table, rule, column) = t.key();
        let last = t.rest.last().copied().unwrap_or(t.first);
        let keys: Vec<&Value> =
            t.rest.iter().take(SAMPLE_ROW_KEYS as usize).map(|v| &v.row_key).collect();
        let severity = t.rest.iter().map(|v| v.severity).fold(t.first.severity, Severity::max);
        c.endpoint.push(endpoint);
        c.table_schema.push(schema);
        c.table_name.push(table);
        c.rule.push(rule);
        c.column_name.push(column);
        c.window_ms.push(i64::try_from(t.window.as_millis()).unwrap_or(i64::MAX));
        c.first_key.push(t.first.row_key.to_string());
        c.rest.push(i32::try_from(t.rest.len()).unwrap_or(i32::MAX));
        c.severity.push(severity.as_str());
        c.rest_keys.push(serde_json::to_string(&keys).expect("row keys serialise"));
        c.last_message.push(&last.message);
        c.last_lsn.push(format_lsn(last.commit_lsn));
    }
    let rows = transaction
        .query(
            &statements.upsert,
            &[
                &c.endpoint,
                &c.table_schema,
                &c.table_name,
                &c.rule,
                &c.column_name,
                &c.window_ms,
                &c.first_key,
                &c.rest,
                &c.severity,
                &c.rest_keys,
                &c.last_message,
                &c.last_lsn,
            ],
        )
        .await?;

    // The groups opened now alert with their first violation.
    let mut alerts = Vec::new();
    for row in rows {
        if !row.get::<_, bool>(5) {
            continue;
        }
        let key: GroupKey<'_> = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        if let Some(&i) = index.get(&key) {
            let tally = &tallies[i];
            alerts.push((tally.endpoint.to_string(), Alert::detected(tally.endpoint, tally.first)));
        }
    }
    Ok(alerts)
}

#[derive(Default)]
struct GroupColumns<'a> {
    endpoint: Vec<&'a str>,
    table_schema: Vec<&'a str>,
    table_name: Vec<&'a str>,
    rule: Vec<&'a str>,
    column_name: Vec<&'a str>,
    window_ms: Vec<i64>,
    first_key: Vec<String>,
    rest: Vec<i32>,
    severity: Vec<&'static str>,
    rest_keys: Vec<String>,
    last_message: Vec<&'a str>,
    last_lsn: Vec<String>,
}

/// Queues the summary of every group of `endpoint` whose window has ended
/// with violations folded, and starts a fresh window for it, so a storm that
/// goes on sends one summary per window; a group whose window ended quietly
/// is closed, and its next violation alerts at once. Runs in one
/// transaction; returns how many summaries were queued.
pub async fn flush_due(
    client: &mut tokio_postgres::Client,
    schema: &str,
    endpoint: &str,
    window: Duration,
) -> Result<usize, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    let due = transaction
        .query(
            &format!(
                "SELECT table_schema, table_name, rule, column_name, folded, severity,
                    sample_row_keys::text, last_message, last_commit_lsn::text,
                    to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                 FROM {schema}.alert_groups
                 WHERE endpoint = $1 AND window_end <= now()
                 ORDER BY window_end LIMIT {FLUSH_BATCH} FOR UPDATE SKIP LOCKED"
            ),
            &[&endpoint],
        )
        .await?;
    let mut queued = 0;
    for row in &due {
        let (table_schema, table_name, rule, column): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let folded: i32 = row.get(4);
        let key_where = "endpoint = $1 AND table_schema = $2 AND table_name = $3 AND rule = $4 \
                         AND column_name = $5";
        if folded == 0 {
            transaction
                .execute(
                    &format!("DELETE FROM {schema}.alert_groups WHERE {key_where}"),
                    &[&endpoint, &table_schema, &table_name, &rule, &column],
                )
                .await?;
            continue;
        }
        let severity: String = row.get(5);
        let samples: String = row.get(6);
        let event = Event {
            kind: EventKind::Summary,
            timestamp: now_rfc3339(),
            data: EventData {
                table: format!("{table_schema}.{table_name}"),
                rule: rule.clone(),
                column: (!column.is_empty()).then(|| column.clone()),
                severity: severity.parse().unwrap_or_default(),
                message: row.get::<_, Option<String>>(7).unwrap_or_default(),
                count: u64::try_from(folded).unwrap_or(0),
                operation: None,
                row_key: None,
                commit_lsn: row.get(8),
                sample_row_keys: serde_json::from_str(&samples).unwrap_or_default(),
                window_start: row.get(9),
                window_end: row.get(10),
            },
        };
        let payload = serde_json::to_string(&event).expect("events serialise");
        transaction
            .execute(
                &format!(
                    "INSERT INTO {schema}.webhook_outbox (endpoint, webhook_id, payload)
                     VALUES ($1, $2, $3::text::jsonb)"
                ),
                &[&endpoint, &random_webhook_id(), &payload],
            )
            .await?;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        transaction
            .execute(
                &format!(
                    "UPDATE {schema}.alert_groups SET window_start = now(),
                        window_end = now() + $6::int8 * interval '1 millisecond', folded = 0,
                        sample_row_keys = '[]'
                     WHERE {key_where}"
                ),
                &[&endpoint, &table_schema, &table_name, &rule, &column, &window_ms],
            )
            .await?;
        queued += 1;
    }
    transaction.commit().await?;
    Ok(queued)
}
